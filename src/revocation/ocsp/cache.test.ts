import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OcspCache, type OcspOutcome } from './cache.js';
import type { CertId, VerifiedOcspResponse } from './types.js';

const certId = (serial = '01'): CertId => ({
  hashAlgorithm: '1.3.14.3.2.26',
  issuerNameHash: Buffer.alloc(20, 1),
  issuerKeyHash: Buffer.alloc(20, 2),
  serialNumber: Buffer.from(serial, 'hex'),
});
const URL_A = 'http://127.0.0.1:1/ocsp';

function clock(start = Date.parse('2026-01-01T00:00:00Z')) {
  let t = start;
  return { now: () => t, advance: (ms: number) => { t += ms; } };
}

function good(now: number, opts: { nextUpdateInMs?: number | null; status?: 'good' | 'revoked' | 'unknown' } = {}): OcspOutcome {
  const response: VerifiedOcspResponse = {
    certStatus: opts.status ?? 'good',
    revocationTime: undefined,
    revocationReason: undefined,
    thisUpdate: new Date(now - 1000),
    nextUpdate: opts.nextUpdateInMs === null ? undefined : new Date(now + (opts.nextUpdateInMs ?? 3600_000)),
    producedAt: new Date(now - 1000),
    signer: 'issuer',
    signerSubject: 'CN=Test',
    der: Buffer.alloc(0),
  };
  return { kind: 'response', response };
}

const failure: OcspOutcome = { kind: 'failure', errorType: 'InternalError', errorDetail: 'connection refused' };

/** Lets queued promise callbacks run. */
const tick = () => new Promise((r) => setImmediate(r));

test('100 concurrent lookups of one uncached key make exactly one loader call', async () => {
  const c = clock();
  const cache = new OcspCache({ now: c.now });
  let calls = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  const loader = async () => { calls++; await gate; return good(c.now()); };
  const all = Array.from({ length: 100 }, () => Promise.resolve(cache.lookup(certId(), URL_A, loader)));
  release();
  const results = await Promise.all(all);
  assert.equal(calls, 1);
  assert.ok(results.every((r) => r.outcome.kind === 'response'));
  assert.equal(cache.stats().coalesced, 99);
  // And the next lookup is a synchronous cache hit.
  const hit = cache.lookup(certId(), URL_A, loader);
  assert.ok(!(hit instanceof Promise));
  assert.equal(hit.source, 'cache');
  assert.equal(calls, 1);
});

test('a verified response is reused until the earlier of nextUpdate and max TTL', async () => {
  const c = clock();
  const cache = new OcspCache({ now: c.now, maxTtlMs: 30 * 60_000, refreshAfterFraction: 1 });
  let calls = 0;
  // nextUpdate in 10 minutes: earlier than the 30-minute max.
  const loader = async () => { calls++; return good(c.now(), { nextUpdateInMs: 10 * 60_000 }); };
  await cache.lookup(certId(), URL_A, loader);
  c.advance(10 * 60_000 - 1);
  assert.equal((await cache.lookup(certId(), URL_A, loader)).source, 'cache');
  c.advance(1);
  assert.equal((await cache.lookup(certId(), URL_A, loader)).source, 'network');
  assert.equal(calls, 2);

  // nextUpdate in 2 hours: capped at 30 minutes.
  const cache2 = new OcspCache({ now: c.now, maxTtlMs: 30 * 60_000, refreshAfterFraction: 1 });
  let calls2 = 0;
  const loader2 = async () => { calls2++; return good(c.now(), { nextUpdateInMs: 2 * 3600_000 }); };
  await cache2.lookup(certId(), URL_A, loader2);
  c.advance(30 * 60_000 - 1);
  assert.equal((await cache2.lookup(certId(), URL_A, loader2)).source, 'cache');
  c.advance(1);
  assert.equal((await cache2.lookup(certId(), URL_A, loader2)).source, 'network');
  assert.equal(calls2, 2);
});

test('a response without nextUpdate lives the default TTL', async () => {
  const c = clock();
  const cache = new OcspCache({ now: c.now, defaultTtlMs: 5 * 60_000, refreshAfterFraction: 1 });
  const loader = async () => good(c.now(), { nextUpdateInMs: null });
  await cache.lookup(certId(), URL_A, loader);
  c.advance(5 * 60_000 - 1);
  assert.equal((await cache.lookup(certId(), URL_A, loader)).source, 'cache');
  c.advance(1);
  assert.equal((await cache.lookup(certId(), URL_A, loader)).source, 'network');
});

test('failures are cached for the failure TTL, then retried', async () => {
  const c = clock();
  const cache = new OcspCache({ now: c.now, failureTtlMs: 30_000 });
  let calls = 0;
  const loader = async () => { calls++; return failure; };
  const first = await cache.lookup(certId(), URL_A, loader);
  assert.equal(first.source, 'network');
  assert.equal(first.outcome.kind, 'failure');
  for (let i = 0; i < 10; i++) {
    c.advance(2_000);
    const r = await cache.lookup(certId(), URL_A, loader);
    assert.equal(r.source, 'cache');
  }
  assert.equal(calls, 1);
  c.advance(10_000); // 30 s after the failure
  assert.equal((await cache.lookup(certId(), URL_A, loader)).source, 'network');
  assert.equal(calls, 2);
});

test('hot entries are refreshed in the background before they expire', async () => {
  const c = clock();
  const cache = new OcspCache({ now: c.now, refreshAfterFraction: 0.8 });
  let calls = 0;
  const loader = async () => { calls++; return good(c.now(), { nextUpdateInMs: 10 * 60_000 }); };
  await cache.lookup(certId(), URL_A, loader);
  c.advance(7 * 60_000); // 70%: no refresh yet
  assert.equal((await cache.lookup(certId(), URL_A, loader)).source, 'cache');
  await tick();
  assert.equal(calls, 1);
  c.advance(60_000); // 80%: a hit answers from cache and starts one refresh
  const hit = cache.lookup(certId(), URL_A, loader);
  assert.ok(!(hit instanceof Promise), 'the handshake does not wait');
  cache.lookup(certId(), URL_A, loader); // a second hit does not start another refresh
  await tick();
  assert.equal(calls, 2);
  // The refreshed entry lives from the refresh time: 10 more minutes (past the old expiry).
  c.advance(7 * 60_000);
  assert.equal((await cache.lookup(certId(), URL_A, loader)).source, 'cache');
  assert.equal(calls, 2);
});

test('a still-valid response keeps being served while a refresh fails', async () => {
  const c = clock();
  const cache = new OcspCache({ now: c.now, refreshAfterFraction: 0.5, failureTtlMs: 30_000 });
  let fail = false;
  let calls = 0;
  const loader = async () => { calls++; return fail ? failure : good(c.now(), { nextUpdateInMs: 10 * 60_000 }); };
  await cache.lookup(certId(), URL_A, loader);
  fail = true;
  c.advance(6 * 60_000);
  const r = await cache.lookup(certId(), URL_A, loader);
  assert.equal(r.outcome.kind, 'response');
  await tick();
  assert.equal(calls, 2);
  const listed = cache.list()[0]!;
  assert.equal(listed.state, 'good');
  assert.match(listed.lastRefreshError ?? '', /connection refused/);
  // Backoff: no new refresh within the failure TTL…
  c.advance(10_000);
  assert.equal((await cache.lookup(certId(), URL_A, loader)).outcome.kind, 'response');
  await tick();
  assert.equal(calls, 2);
  // …then another attempt; still serving the good answer.
  c.advance(25_000);
  assert.equal((await cache.lookup(certId(), URL_A, loader)).outcome.kind, 'response');
  await tick();
  assert.equal(calls, 3);
  // Once nextUpdate passes, the failure is what the caller gets.
  c.advance(4 * 60_000);
  const after = await cache.lookup(certId(), URL_A, loader);
  assert.equal(after.source, 'network');
  assert.equal(after.outcome.kind, 'failure');
});

test('keys separate responder URLs and serials; purge by serial, responder or all', async () => {
  const c = clock();
  const cache = new OcspCache({ now: c.now });
  let calls = 0;
  const loader = async () => { calls++; return good(c.now()); };
  await cache.lookup(certId('01'), URL_A, loader);
  await cache.lookup(certId('01'), 'http://127.0.0.1:2/ocsp', loader);
  await cache.lookup(certId('00ff'), URL_A, loader);
  assert.equal(calls, 3);
  assert.equal(cache.list().length, 3);
  assert.equal(cache.purge({ serialNumber: '00:FF' }), 1);
  assert.equal(cache.purge({ responderUrl: 'http://127.0.0.1:2/ocsp' }), 1);
  assert.deepEqual(cache.list().map((e) => e.serialNumber), ['01']);
  assert.equal(cache.purge(), 1);
  assert.equal((await cache.lookup(certId('01'), URL_A, loader)).source, 'network');
});

test('a response whose nextUpdate already passed is not cached', async () => {
  const c = clock();
  const cache = new OcspCache({ now: c.now });
  let calls = 0;
  const loader = async () => { calls++; return good(c.now(), { nextUpdateInMs: -1000 }); };
  await cache.lookup(certId(), URL_A, loader);
  await cache.lookup(certId(), URL_A, loader);
  assert.equal(calls, 2);
  assert.equal(cache.list().length, 0);
});

test('the cache evicts the oldest entries beyond maxEntries', async () => {
  const c = clock();
  const cache = new OcspCache({ now: c.now, maxEntries: 10 });
  for (let i = 0; i < 25; i++) await cache.lookup(certId(i.toString(16).padStart(2, '0')), URL_A, async () => good(c.now()));
  assert.ok(cache.list().length <= 10);
  assert.equal(cache.list().at(-1)!.serialNumber, '18');
  assert.ok(cache.stats().evictions >= 15);
});
