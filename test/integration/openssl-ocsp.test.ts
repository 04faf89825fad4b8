/**
 * Integration: the real RevocationChecker against REAL `openssl ocsp` responders
 * (OpensslDemoPki: root → intermediate → leaves, one responder per CA on 127.0.0.1),
 * SPEC section 3. Covers good and revoked answers and a revocation published after a
 * first good answer (cache until purge or expiry).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { OpensslDemoPki, type DemoCertificate } from '../../src/demo/index.js';
import {
  ParsedCertificate, parseTrustStoreBundle, splitCertificates, validateClientChain, type TrustAnchorSet,
} from '../../src/pki/index.js';
import { OcspCache, RevocationChecker, revocationDecision, type RevocationCheckResult, type RevocationStatus } from '../../src/revocation/index.js';

let pki: OpensslDemoPki;
let anchors: TrustAnchorSet;
const leaves: Record<string, DemoCertificate> = {};
const checkers: RevocationChecker[] = [];

async function pathOf(leaf: DemoCertificate): Promise<readonly ParsedCertificate[]> {
  const file = await pki.writeChain(leaf);
  const presented = splitCertificates(readFileSync(file)).map((b) => ParsedCertificate.fromDer(b.der, b.where));
  const v = validateClientChain(presented, anchors, { now: new Date() });
  assert.ok(v.ok, v.ok ? '' : `${v.code}: ${v.reason}`);
  return v.path;
}

function newChecker(options: ConstructorParameters<typeof RevocationChecker>[0] = {}): RevocationChecker {
  const c = new RevocationChecker({ timeoutMs: 5000, ...options });
  checkers.push(c);
  return c;
}

function okStatus(result: RevocationCheckResult): RevocationStatus {
  assert.ok(result.ok, result.ok ? '' : `${result.code}: ${result.reason}`);
  return result.revocationStatus;
}

function describeLeaf(s: RevocationStatus): string {
  const l = s.certificates.leaf;
  return `${l.status} ${l.errorType ?? ''} ${l.errorDetail ?? ''}`;
}

before(async () => {
  // nextUpdate 5 min (openssl ocsp -nmin 5).
  pki = await OpensslDemoPki.create({ nextUpdateMinutes: 5 });
  // openssl ocsp reads its index at start: issue every leaf first.
  for (const name of ['good', 'revoked', 'later', 'later-clock']) leaves[name] = await pki.issueLeaf(name);
  await pki.revoke(leaves.revoked!);
  await pki.startResponders();
  anchors = parseTrustStoreBundle(readFileSync(pki.trustStoreFile));
});

after(async () => {
  await Promise.all(checkers.splice(0).map((c) => c.close()));
  await pki?.close();
});

describe('openssl ocsp responders', () => {
  test('good leaf → Good, intermediate Good, chainValidity Valid', async () => {
    const status = okStatus(await newChecker().check(await pathOf(leaves.good!)));
    assert.equal(status.certificates.leaf.status, 'Good', describeLeaf(status));
    assert.equal(status.certificates.leaf.responder, pki.intermediateResponderUrl);
    assert.equal(status.certificates.leaf.serialNumber, leaves.good!.serialHex.toLowerCase().match(/../g)!.join(':'));
    assert.equal(typeof status.certificates.leaf.nextUpdate, 'string', 'openssl ocsp -nmin sets nextUpdate');
    assert.equal(status.certificates.intermediates.length, 1);
    assert.equal(status.certificates.intermediates[0]!.status, 'Good', status.certificates.intermediates[0]!.errorDetail);
    assert.equal(status.certificates.intermediates[0]!.responder, pki.rootResponderUrl);
    assert.equal(status.chainValidity, 'Valid');
    assert.deepEqual(revocationDecision(status), { allow: true });
  });

  test('nonce enabled: openssl echoes it and it verifies → Good', async () => {
    const status = okStatus(await newChecker({ nonce: true }).check(await pathOf(leaves.good!)));
    assert.equal(status.certificates.leaf.status, 'Good', describeLeaf(status));
    assert.equal(status.chainValidity, 'Valid');
  });

  test('revoked leaf → Revoked with reason keyCompromise, chainValidity Invalid', async () => {
    const status = okStatus(await newChecker().check(await pathOf(leaves.revoked!)));
    const leaf = status.certificates.leaf;
    assert.equal(leaf.status, 'Revoked', describeLeaf(status));
    assert.equal(leaf.revocationReason, 'keyCompromise');
    assert.match(leaf.revocationTime ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.ok(Date.parse(leaf.revocationTime!) <= Date.now());
    assert.equal(status.certificates.intermediates[0]!.status, 'Good');
    assert.equal(status.chainValidity, 'Invalid');
    assert.deepEqual(revocationDecision(status), { allow: false, code: 'ClientCertRevoked' });
  });

  test('revocation published after a good answer: cached Good until purge, then Revoked', async () => {
    const checker = newChecker();
    const path = await pathOf(leaves.later!);
    const first = okStatus(await checker.check(path));
    assert.equal(first.certificates.leaf.status, 'Good', describeLeaf(first));
    assert.equal(first.certificates.leaf.source, 'network');
    const second = okStatus(await checker.check(path));
    assert.equal(second.certificates.leaf.status, 'Good');
    assert.equal(second.certificates.leaf.source, 'cache');

    await pki.revoke(leaves.later!); // restarts the intermediate's responder with the new index
    const third = okStatus(await checker.check(path));
    assert.equal(third.certificates.leaf.status, 'Good', 'the cached answer is still served until it expires');
    assert.equal(third.certificates.leaf.source, 'cache');

    assert.ok(checker.cache.purge() >= 1);
    const fourth = okStatus(await checker.check(path));
    assert.equal(fourth.certificates.leaf.status, 'Revoked', describeLeaf(fourth));
    assert.equal(fourth.certificates.leaf.source, 'network');
    assert.equal(fourth.certificates.leaf.revocationReason, 'keyCompromise');
    assert.equal(fourth.chainValidity, 'Invalid');
  });

  test('revocation published after a good answer: Revoked without purge once the cached response expires', async () => {
    let t = Date.now();
    const now = () => t;
    const cache = new OcspCache({ now });
    const checker = newChecker({ cache, now });
    const path = await pathOf(leaves['later-clock']!);
    const first = okStatus(await checker.check(path));
    assert.equal(first.certificates.leaf.status, 'Good', describeLeaf(first));
    assert.equal(first.certificates.leaf.source, 'network');

    await pki.revoke(leaves['later-clock']!);
    t += 60_000;
    const cached = okStatus(await checker.check(path));
    assert.equal(cached.certificates.leaf.status, 'Good');
    assert.equal(cached.certificates.leaf.source, 'cache');

    // openssl's nextUpdate is 5 min after thisUpdate: 6 min later the entry has expired.
    t += 5 * 60_000;
    const after = okStatus(await checker.check(path));
    assert.equal(after.certificates.leaf.status, 'Revoked', describeLeaf(after));
    assert.equal(after.certificates.leaf.source, 'network');
    assert.equal(after.certificates.leaf.revocationReason, 'keyCompromise');
    assert.equal(after.chainValidity, 'Invalid');
  });
});
