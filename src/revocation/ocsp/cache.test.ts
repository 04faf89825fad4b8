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

function good(now: number, opts: { nextUpdateInMs?: number | null; status?: 'good' | 'revoked' | 'unknown'; reason?: string; thisUpdateAgoMs?: number } = {}): OcspOutcome {
  const response: VerifiedOcspResponse = {
    certStatus: opts.status ?? 'good',
    revocationTime: opts.status === 'revoked' ? new Date(now - 86400_000) : undefined,
    revocationReason: opts.status === 'revoked' ? (opts.reason ?? 'keyCompromise') : undefined,
    thisUpdate: new Date(now - (opts.thisUpdateAgoMs ?? 1000)),
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

const status = (r: { outcome: OcspOutcome }) => (r.outcome.kind === 'response' ? r.outcome.response.certStatus : 'failure');

test('a cached Revoked is never replaced by a later Good, Unknown or failure; purge removes it', async () => {
  const c = clock();
  const cache = new OcspCache({ now: c.now, refreshAfterFraction: 0.8 });
  let answer: () => OcspOutcome = () => good(c.now(), { status: 'revoked', nextUpdateInMs: 10 * 60_000 });
  const loader = async () => answer();
  assert.equal(status(await cache.lookup(certId(), URL_A, loader)), 'revoked');
  // A background refresh brings a Good (a replayed or lagging response): still Revoked.
  answer = () => good(c.now(), { nextUpdateInMs: 10 * 60_000 });
  c.advance(9 * 60_000);
  assert.equal(status(await cache.lookup(certId(), URL_A, loader)), 'revoked');
  await tick();
  assert.equal(status(await cache.lookup(certId(), URL_A, loader)), 'revoked');
  assert.match(cache.list()[0]!.lastRefreshError ?? '', /keeping Revoked/);
  // After expiry the responder fails: a failure does not turn Revoked into Error either.
  answer = () => failure;
  c.advance(11 * 60_000);
  assert.equal(status(await cache.lookup(certId(), URL_A, loader)), 'revoked');
  answer = () => good(c.now(), { status: 'unknown' });
  c.advance(60_000);
  assert.equal(status(await cache.lookup(certId(), URL_A, loader)), 'revoked');
  // Only a purge lets the responder's current answer through.
  answer = () => good(c.now());
  cache.purge({ serialNumber: '01' });
  assert.equal(status(await cache.lookup(certId(), URL_A, loader)), 'good');
});

test('certificateHold may be lifted by a later Good', async () => {
  const c = clock();
  const cache = new OcspCache({ now: c.now, refreshAfterFraction: 1 });
  let answer = good(c.now(), { status: 'revoked', reason: 'certificateHold', nextUpdateInMs: 60_000 });
  const loader = async () => answer;
  assert.equal(status(await cache.lookup(certId(), URL_A, loader)), 'revoked');
  c.advance(60_000);
  answer = good(c.now());
  assert.equal(status(await cache.lookup(certId(), URL_A, loader)), 'good');
});

test('a refresh that brings an older response (thisUpdate) keeps the newer one', async () => {
  const c = clock();
  const cache = new OcspCache({ now: c.now, refreshAfterFraction: 0.5 });
  let answer = good(c.now(), { status: 'unknown', nextUpdateInMs: 10 * 60_000 });
  const loader = async () => answer;
  await cache.lookup(certId(), URL_A, loader);
  answer = good(c.now(), { thisUpdateAgoMs: 3600_000, nextUpdateInMs: 60 * 60_000 });
  c.advance(6 * 60_000);
  await cache.lookup(certId(), URL_A, loader);
  await tick();
  assert.equal(status(await cache.lookup(certId(), URL_A, loader)), 'unknown');
  assert.match(cache.list()[0]!.lastRefreshError ?? '', /older response/);
});

test('purge detaches a request under way: the next lookup asks anew and the old answer is not stored', async () => {
  const c = clock();
  const cache = new OcspCache({ now: c.now });
  let calls = 0;
  const releases: (() => void)[] = [];
  const answers = [good(c.now()), good(c.now(), { status: 'revoked' })];
  const loader = () => { const i = calls++; return new Promise<OcspOutcome>((r) => releases.push(() => r(answers[i]!))); };
  const before = cache.lookup(certId(), URL_A, loader) as Promise<unknown>;
  assert.equal(cache.purge(), 0);
  const after = cache.lookup(certId(), URL_A, loader) as Promise<{ outcome: OcspOutcome }>;
  assert.equal(calls, 2, 'the lookup after the purge did not join the earlier request');
  releases[1]!();
  assert.equal(status(await after), 'revoked');
  releases[0]!();
  await before;
  assert.equal(status(await cache.lookup(certId(), URL_A, loader)), 'revoked', 'the pre-purge Good was not stored');
  assert.equal(calls, 2);
});

test('purge during a background refresh: the refreshed answer is not put back', async () => {
  const c = clock();
  const cache = new OcspCache({ now: c.now, refreshAfterFraction: 0.5 });
  let calls = 0;
  let release!: () => void;
  const loader = () => {
    calls++;
    if (calls === 1) return Promise.resolve(good(c.now(), { nextUpdateInMs: 10 * 60_000 }));
    if (calls === 2) return new Promise<OcspOutcome>((r) => { release = () => r(good(c.now(), { nextUpdateInMs: 10 * 60_000 })); });
    return Promise.resolve(good(c.now(), { status: 'revoked' }));
  };
  await cache.lookup(certId(), URL_A, loader);
  c.advance(6 * 60_000);
  cache.lookup(certId(), URL_A, loader); // starts the refresh (call 2)
  assert.equal(calls, 2);
  cache.purge();
  release();
  await tick();
  assert.equal(cache.list().length, 0);
  assert.equal(status(await cache.lookup(certId(), URL_A, loader)), 'revoked');
});

test('purge by key removes exactly that CertID at that responder (the key list() shows)', async () => {
  const c = clock();
  const cache = new OcspCache({ now: c.now });
  const loader = async () => good(c.now());
  await cache.lookup(certId('01'), URL_A, loader);
  await cache.lookup(certId('01'), 'http://127.0.0.1:2/ocsp', loader);
  const [first] = cache.list();
  assert.equal(cache.purge({ key: 'no-such-key' }), 0);
  assert.equal(cache.purge({ key: first!.key }), 1);
  assert.equal(cache.list().length, 1);
  assert.notEqual(cache.list()[0]!.key, first!.key);
});

test('one CertId object looked up again: same key per responder; changed in place, it gets its own key', async () => {
  const c = clock();
  const cache = new OcspCache({ now: c.now });
  let calls = 0;
  const loader = async () => { calls++; return good(c.now()); };
  const id = certId('01');
  await cache.lookup(id, URL_A, loader);
  assert.equal((cache.lookup(id, URL_A, loader) as { source: string }).source, 'cache');
  // Another responder with the same object: another key.
  await cache.lookup(id, 'http://127.0.0.1:2/ocsp', loader);
  assert.equal(calls, 2);
  // The same object with another serial, issuer name hash or issuer key hash: never the old entry.
  id.serialNumber[0] = 2;
  await cache.lookup(id, URL_A, loader);
  assert.equal(calls, 3);
  id.issuerNameHash[0] = 9;
  await cache.lookup(id, URL_A, loader);
  assert.equal(calls, 4);
  id.issuerKeyHash[19] = 9;
  await cache.lookup(id, URL_A, loader);
  assert.equal(calls, 5);
  // And back: the first entry again, from the cache.
  id.serialNumber[0] = 1;
  id.issuerNameHash[0] = 1;
  id.issuerKeyHash[19] = 2;
  assert.equal((cache.lookup(id, URL_A, loader) as { source: string }).source, 'cache');
  assert.equal(calls, 5);
});
