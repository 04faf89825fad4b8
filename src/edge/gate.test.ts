import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildChain, issueCertificate } from '../../test/helpers/pki.js';
import { ParsedCertificate, TrustAnchorSet, validateClientChain } from '../pki/index.js';
import { PathValidationMemo } from './gate.js';

const DAY = 86400_000;

describe('PathValidationMemo', () => {
  it('gives what validateClientChain gives at every instant around the validity edges, and reuses successes in between', async () => {
    const chain = await buildChain({ name: 'Memo', intermediates: 1 });
    const t0 = Date.now();
    const leaf = await issueCertificate({
      subject: 'C=US,O=Portcullis Test,CN=Memo Short Client', issuer: chain.intermediates[0]!, key: chain.leaf.key,
      eku: ['1.3.6.1.5.5.7.3.2'], notBefore: new Date(t0 - DAY), notAfter: new Date(t0 + DAY),
    });
    const presented = [ParsedCertificate.fromDer(leaf.der), ParsedCertificate.fromDer(chain.intermediates[0]!.der)];
    const anchors = new TrustAnchorSet([chain.root.cert]);
    const memo = new PathValidationMemo();
    const nb = presented[0]!.notBefore.getTime(), na = presented[0]!.notAfter.getTime();
    const instants = [t0, nb - 1, nb, nb + 1, t0 + 1000, na - 1, na, na + 1, t0, nb - 1];
    for (const ignore of [false, true]) {
      for (const now of instants) {
        const got = memo.validate(presented, anchors, now, ignore);
        const want = validateClientChain(presented, anchors, { now: new Date(now), ignoreCertificateExpiry: ignore });
        assert.equal(got.ok, want.ok, `at ${now - t0} ms, ignoreExpiry ${ignore}`);
        if (!got.ok && !want.ok) assert.equal(got.code, want.code);
      }
    }
    const a = memo.validate(presented, anchors, t0, false);
    const b = memo.validate(presented, anchors, t0 + 5000, false);
    assert.ok(a.ok && a === b, 'a success inside the window is reused');
    // Another anchor set (a trust-store change) validates again: here it does not trust the chain.
    const other = await buildChain({ name: 'MemoOther', intermediates: 0 });
    const r = memo.validate(presented, new TrustAnchorSet([other.root.cert]), t0, false);
    assert.equal(r.ok, false);
    // A different presented list (intermediate missing) is its own entry.
    assert.equal(memo.validate(presented.slice(0, 1), anchors, t0, false).ok, false);
  });
});
