/**
 * Integration: the shared OCSP cache (SPEC section 3) in front of a real responder —
 * single flight, failure caching, refresh-ahead, serving a still-valid response while
 * a refresh fails, purge. The real RevocationChecker and OcspHttpClient talk to an
 * in-process responder on 127.0.0.1; time moves through an injected clock (the same
 * one for the cache, the checker and the responder's thisUpdate/nextUpdate), never by
 * sleeping.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTrustStoreBundle, validateClientChain, type ParsedCertificate } from '../../src/pki/index.js';
import { OcspCache, RevocationChecker, type OcspCacheOptions, type RevocationCheckResult, type RevocationStatus } from '../../src/revocation/index.js';
import { buildChain, type TestChain } from '../helpers/pki.js';
import { behaviours, startTestResponder, type ReceivedOcspRequest, type TestResponder, type TestResponderHandler } from '../helpers/ocsp-responder.js';

const MIN = 60_000;

let chain: TestChain;
let path: readonly ParsedCertificate[];
let leafResponder: TestResponder;
let rootResponder: TestResponder;

/** A clock shared by cache, checker and responder; starts at the real time (the test certificates are valid around it). */
function clock() {
  let t = Date.now();
  return { now: () => t, date: () => new Date(t), advance: (ms: number) => { t += ms; } };
}
type Clock = ReturnType<typeof clock>;

function isLeaf(r: ReceivedOcspRequest): boolean {
  return r.certId !== undefined && r.certId.serialNumber.equals(chain.leaf.cert.serialNumberBytes);
}
/** Requests the leaf responder received for the leaf. */
const leafRequests = () => leafResponder.requests.filter(isLeaf).length;

/** Waits (bounded) until `cond` holds; fails with `what` otherwise. Not a timing assertion: only a wait for background work. */
async function waitFor(cond: () => boolean, what: string, limitMs = 5000): Promise<void> {
  const end = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function okStatus(result: RevocationCheckResult): RevocationStatus {
  assert.ok(result.ok, 'the check must produce a revocationStatus');
  return result.revocationStatus;
}

interface Setup {
  clock: Clock;
  cache: OcspCache;
  checker: RevocationChecker;
}
const open: RevocationChecker[] = [];

/** A checker with its own cache; clock shared with the responders' signing behaviours. */
function setup(handler: (c: Clock) => TestResponderHandler, cacheOptions: Partial<OcspCacheOptions> = {}): Setup {
  const c = clock();
  const cache = new OcspCache({ now: c.now, ...cacheOptions });
  const checker = new RevocationChecker({ cache, now: c.now });
  open.push(checker);
  leafResponder.setHandler(handler(c));
  rootResponder.setHandler(behaviours.good(chain.root, { now: c.date }));
  return { clock: c, cache, checker };
}

before(async () => {
  const placeholder = behaviours.httpStatus(503);
  leafResponder = await startTestResponder(placeholder);
  rootResponder = await startTestResponder(placeholder);
  chain = await buildChain({ name: 'Cache', intermediates: 1, ocspUrl: (d) => (d === 0 ? leafResponder.url : rootResponder.url) });
  const v = validateClientChain(chain.presented.map((c) => c.cert), parseTrustStoreBundle(chain.root.pem), { now: new Date() });
  assert.ok(v.ok);
  path = v.path;
});

beforeEach(() => {
  leafResponder.reset();
  rootResponder.reset();
});

after(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
  await Promise.all([leafResponder?.close(), rootResponder?.close()]);
});

describe('single flight', () => {
  test('100 concurrent check() calls of one uncached certificate → exactly one request for the leaf', async () => {
    const issuer = chain.intermediates[0]!;
    // A slow answer keeps the first request in flight while the other 99 arrive.
    const { checker, cache } = setup((c) => behaviours.delay(100, behaviours.good(issuer, { now: c.date })));
    const results = await Promise.all(Array.from({ length: 100 }, () => checker.check(path)));
    for (const r of results) {
      const s = okStatus(r);
      assert.equal(s.certificates.leaf.status, 'Good', s.certificates.leaf.errorDetail);
      assert.equal(s.chainValidity, 'Valid');
    }
    assert.equal(leafRequests(), 1, 'the leaf responder is asked once');
    assert.equal(leafResponder.counts.total, 1);
    assert.equal(rootResponder.counts.total, 1, 'the intermediate is asked once too');
    assert.equal(cache.stats().misses, 2, 'one miss per certificate (leaf, intermediate)');
    assert.equal(cache.stats().coalesced, 198);
    // And a later check is served from the cache without any request.
    const again = okStatus(await checker.check(path));
    assert.equal(again.certificates.leaf.source, 'cache');
    assert.equal(leafResponder.counts.total, 1);
  });

  test('two checkers sharing one cache (two distributions) → one request', async () => {
    const issuer = chain.intermediates[0]!;
    const { checker, cache, clock: c } = setup((k) => behaviours.good(issuer, { now: k.date }));
    const second = new RevocationChecker({ cache, now: c.now });
    open.push(second);
    const first = okStatus(await checker.check(path));
    const other = okStatus(await second.check(path));
    assert.equal(first.certificates.leaf.source, 'network');
    assert.equal(other.certificates.leaf.source, 'cache');
    assert.equal(leafRequests(), 1);
  });
});

describe('failure caching', () => {
  test('HTTP 500: two checks within failureTtl → one request; after the TTL → a new request', async () => {
    const { checker, clock: c } = setup(() => behaviours.httpStatus(500), { failureTtlMs: 200 });
    const a = okStatus(await checker.check(path));
    assert.equal(a.certificates.leaf.status, 'Error');
    assert.equal(a.certificates.leaf.errorType, 'InternalError');
    assert.equal(a.certificates.leaf.source, 'network');
    c.advance(150);
    const b = okStatus(await checker.check(path));
    assert.equal(b.certificates.leaf.status, 'Error');
    assert.equal(b.certificates.leaf.errorType, 'InternalError');
    assert.equal(b.certificates.leaf.source, 'cache', 'the failure is served from the cache');
    assert.equal(b.chainValidity, 'Unknown');
    assert.equal(leafRequests(), 1, 'a dead responder is not hammered');
    c.advance(100); // 250 ms after the failure: past the 200 ms failure TTL
    const d = okStatus(await checker.check(path));
    assert.equal(d.certificates.leaf.source, 'network');
    assert.equal(leafRequests(), 2);
  });

  test('a cached failure is replaced by a good answer once its TTL has passed', async () => {
    const issuer = chain.intermediates[0]!;
    let healthy = false;
    const { checker, clock: c } = setup((k) => {
      const good = behaviours.good(issuer, { now: k.date });
      return (req) => (healthy ? good(req) : behaviours.httpStatus(503)(req));
    }, { failureTtlMs: 30_000 });
    assert.equal(okStatus(await checker.check(path)).certificates.leaf.status, 'Error');
    healthy = true;
    assert.equal(okStatus(await checker.check(path)).certificates.leaf.status, 'Error', 'still the cached failure');
    c.advance(30_001);
    const s = okStatus(await checker.check(path));
    assert.equal(s.certificates.leaf.status, 'Good');
    assert.equal(s.certificates.leaf.source, 'network');
    assert.equal(leafRequests(), 2);
  });

  test('a verification failure (bad signature) is cached like a transport failure', async () => {
    const issuer = chain.intermediates[0]!;
    const { checker } = setup((k) => behaviours.badSignature(issuer, { now: k.date }));
    const a = okStatus(await checker.check(path));
    const b = okStatus(await checker.check(path));
    assert.equal(a.certificates.leaf.errorType, 'OCSP response verification failed: SignatureInvalid');
    assert.equal(b.certificates.leaf.errorType, 'OCSP response verification failed: SignatureInvalid');
    assert.equal(b.certificates.leaf.source, 'cache');
    assert.equal(leafRequests(), 1);
  });
});

describe('refresh-ahead', () => {
  test('a hot entry is refreshed in the background before it expires; check() answers from the cache', async () => {
    const issuer = chain.intermediates[0]!;
    // nextUpdate now + 1 h, maxTtl 30 min → life 30 min, refresh after 80 % = 24 min.
    const { checker, cache, clock: c } = setup((k) => behaviours.good(issuer, { now: k.date }));
    const first = okStatus(await checker.check(path));
    assert.equal(first.certificates.leaf.source, 'network');
    const before = cache.list().find((e) => e.responderUrl === leafResponder.url)!;
    c.advance(10 * MIN);
    assert.equal(okStatus(await checker.check(path)).certificates.leaf.source, 'cache');
    assert.equal(leafRequests(), 1, 'no refresh early in the entry life');

    c.advance(15 * MIN); // 25 min: in the last fifth, not expired
    const hot = okStatus(await checker.check(path));
    assert.equal(hot.certificates.leaf.status, 'Good');
    assert.equal(hot.certificates.leaf.source, 'cache', 'the handshake does not wait for the refresh');
    await waitFor(() => leafRequests() === 2, 'a background refresh request for the leaf');
    await waitFor(() => cache.list().every((e) => !e.refreshing), 'the refresh to finish');
    const after = cache.list().find((e) => e.responderUrl === leafResponder.url)!;
    assert.ok(Date.parse(after.fetchedAt) > Date.parse(before.fetchedAt), 'the entry was replaced by the refreshed response');
    assert.ok(Date.parse(after.expiresAt) > Date.parse(before.expiresAt));
    assert.equal(after.lastRefreshError, undefined);

    // Past the original expiry: still answered from the (refreshed) cache.
    c.advance(6 * MIN);
    const later = okStatus(await checker.check(path));
    assert.equal(later.certificates.leaf.source, 'cache');
    assert.equal(later.certificates.leaf.status, 'Good');
    assert.equal(leafRequests(), 2);
  });

  test('a still-valid response is served while the refresh fails', async () => {
    const issuer = chain.intermediates[0]!;
    const { checker, cache, clock: c } = setup((k) => behaviours.good(issuer, { now: k.date }), { failureTtlMs: 30_000 });
    assert.equal(okStatus(await checker.check(path)).certificates.leaf.source, 'network');
    leafResponder.setHandler(behaviours.httpStatus(500));
    c.advance(25 * MIN);
    const hot = okStatus(await checker.check(path));
    assert.equal(hot.certificates.leaf.status, 'Good');
    assert.equal(hot.certificates.leaf.source, 'cache');
    await waitFor(() => leafRequests() === 2, 'the background refresh request');
    await waitFor(() => cache.list().every((e) => !e.refreshing), 'the refresh to finish');
    const entry = cache.list().find((e) => e.responderUrl === leafResponder.url)!;
    assert.equal(entry.state, 'good');
    assert.match(entry.lastRefreshError ?? '', /InternalError/);

    // Still served; no new attempt until the failure back-off has passed.
    c.advance(10_000);
    const again = okStatus(await checker.check(path));
    assert.equal(again.certificates.leaf.status, 'Good');
    assert.equal(again.certificates.leaf.source, 'cache');
    assert.equal(again.chainValidity, 'Valid');
    await new Promise((r) => setImmediate(r));
    assert.equal(leafRequests(), 2, 'failed refreshes back off for failureTtl');

    // Once the response itself has expired, the failure is what the next check gets.
    c.advance(6 * MIN); // 31 min + 10 s: past the 30 min life
    const expired = okStatus(await checker.check(path));
    assert.equal(expired.certificates.leaf.status, 'Error');
    assert.equal(expired.certificates.leaf.source, 'network');
    assert.equal(expired.chainValidity, 'Unknown');
  });
});

describe('purge', () => {
  test('purge forces a new request', async () => {
    const issuer = chain.intermediates[0]!;
    const { checker, cache } = setup((k) => behaviours.good(issuer, { now: k.date }));
    assert.equal(okStatus(await checker.check(path)).certificates.leaf.source, 'network');
    assert.equal(okStatus(await checker.check(path)).certificates.leaf.source, 'cache');
    assert.equal(leafRequests(), 1);
    assert.equal(cache.purge(), 2, 'leaf and intermediate entries');
    const s = okStatus(await checker.check(path));
    assert.equal(s.certificates.leaf.source, 'network');
    assert.equal(s.certificates.intermediates[0]!.source, 'network');
    assert.equal(leafRequests(), 2);
  });

  test('purge by serial number (colon form) removes only that certificate', async () => {
    const issuer = chain.intermediates[0]!;
    const { checker, cache } = setup((k) => behaviours.good(issuer, { now: k.date }));
    okStatus(await checker.check(path));
    const leafSerial = okStatus(await checker.check(path)).certificates.leaf.serialNumber;
    assert.equal(cache.purge({ serialNumber: leafSerial.toUpperCase() }), 1);
    const s = okStatus(await checker.check(path));
    assert.equal(s.certificates.leaf.source, 'network');
    assert.equal(s.certificates.intermediates[0]!.source, 'cache');
    assert.equal(leafRequests(), 2);
    assert.equal(rootResponder.counts.total, 1);
  });

  test('purge by responder URL', async () => {
    const issuer = chain.intermediates[0]!;
    const { checker, cache } = setup((k) => behaviours.good(issuer, { now: k.date }));
    okStatus(await checker.check(path));
    assert.equal(cache.purge({ responderUrl: rootResponder.url }), 1);
    const s = okStatus(await checker.check(path));
    assert.equal(s.certificates.leaf.source, 'cache');
    assert.equal(s.certificates.intermediates[0]!.source, 'network');
  });
});

describe('budget', () => {
  test('a responder slower than the budget: the handshake gets Error, the request finishes in the background and fills the cache', async () => {
    const issuer = chain.intermediates[0]!;
    const c = clock();
    const cache = new OcspCache({ now: c.now });
    const checker = new RevocationChecker({ cache, now: c.now, timeoutMs: 200, fetchTimeoutMs: 5000 });
    open.push(checker);
    leafResponder.setHandler(behaviours.delay(500, behaviours.good(issuer, { now: c.date })));
    rootResponder.setHandler(behaviours.good(chain.root, { now: c.date }));
    const first = okStatus(await checker.check(path));
    assert.equal(first.certificates.leaf.status, 'Error');
    assert.equal(first.certificates.leaf.errorType, 'InternalError');
    assert.match(first.certificates.leaf.errorDetail ?? '', /within the 200 ms OCSP budget/);
    await waitFor(() => cache.list().some((e) => e.state === 'good' && e.serialNumber === chain.leaf.cert.serialNumberBytes.toString('hex')), 'the slow answer to be cached');
    const second = okStatus(await checker.check(path));
    assert.equal(second.certificates.leaf.status, 'Good');
    assert.equal(second.certificates.leaf.source, 'cache');
    assert.equal(leafRequests(), 1);
  });
});
