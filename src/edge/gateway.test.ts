import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeListenError, describeListenGroup, listenSocketsOverlap, resolveListenAddress } from './gateway.js';

describe('listen addresses', () => {
  const fakeLookup = async (h: string) => (h === 'localhost' ? { address: '127.0.0.1', family: 4 } : h === 'v6only' ? { address: '0:0::1', family: 6 } : Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${h}`), { code: 'ENOTFOUND' })));

  it('resolves to the socket bound: names through lookup, IPv6 normalised', async () => {
    assert.equal((await resolveListenAddress('localhost:9543', fakeLookup)).key, '127.0.0.1:9543');
    assert.equal((await resolveListenAddress('127.0.0.1:9543', fakeLookup)).key, '127.0.0.1:9543');
    assert.equal((await resolveListenAddress('[0:0:0::1]:8443', fakeLookup)).key, '[::1]:8443');
    assert.equal((await resolveListenAddress('v6only:8443', fakeLookup)).key, '[::1]:8443');
    await assert.rejects(resolveListenAddress('nowhere.invalid:1', fakeLookup), { code: 'ENOTFOUND' });
    await assert.rejects(resolveListenAddress('no-port', fakeLookup), /host:port/);
  });

  it('wildcards overlap the addresses they cover on the same port; port 0 never', async () => {
    const r = (a: string) => resolveListenAddress(a, fakeLookup);
    assert.equal(listenSocketsOverlap(await r('0.0.0.0:9'), await r('127.0.0.1:9')), true);
    assert.equal(listenSocketsOverlap(await r('127.0.0.1:9'), await r('0.0.0.0:9')), true);
    assert.equal(listenSocketsOverlap(await r('[::]:9'), await r('127.0.0.1:9')), true);
    assert.equal(listenSocketsOverlap(await r('[::]:9'), await r('0.0.0.0:9')), true);
    assert.equal(listenSocketsOverlap(await r('0.0.0.0:9'), await r('[::1]:9')), false);
    assert.equal(listenSocketsOverlap(await r('0.0.0.0:9'), await r('127.0.0.1:10')), false);
    assert.equal(listenSocketsOverlap(await r('127.0.0.2:9'), await r('127.0.0.1:9')), false);
    assert.equal(listenSocketsOverlap(await r('0.0.0.0:0'), await r('127.0.0.1:0')), false);
  });

  it('errors name the distributions, their addresses and the cause', () => {
    assert.equal(`${describeListenGroup([{ name: 'otherdist', listen: '127.0.0.1:8443' }])}: ${describeListenError(Object.assign(new Error('x'), { code: 'EADDRINUSE' }))}`,
      'distribution "otherdist" (listen 127.0.0.1:8443): address in use');
    assert.equal(describeListenGroup([{ name: 'a', listen: '127.0.0.1:1' }, { name: 'b', listen: 'localhost:1' }]), 'distributions "a", "b" (listen 127.0.0.1:1, localhost:1)');
    assert.equal(describeListenError(Object.assign(new Error('x'), { code: 'EADDRNOTAVAIL' })), 'address not available on this host');
  });
});
