/** verifyIssuerChain: which intermediates may sign a CRL imported with issuerChainPem. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTrustStoreBundle } from '../pki/index.js';
import { generateKey, issueCertificate } from '../../test/helpers/pki.js';
import { verifyIssuerChain } from './index.js';

test('verifyIssuerChain: two intermediates in any order chain to the root; expired, non-CA, or unchained members refuse the whole chain', async () => {
  const day = 86400_000;
  const now = new Date();
  const v = { notBefore: new Date(now.getTime() - day), notAfter: new Date(now.getTime() + 30 * day) };
  const root = await issueCertificate({ subject: 'CN=Unit Root', ca: true, key: await generateKey('ec-p256', 'chain-root'), ...v });
  const mid = await issueCertificate({ subject: 'CN=Unit Mid', ca: true, issuer: root, key: await generateKey('ec-p256', 'chain-mid'), ...v });
  const low = await issueCertificate({ subject: 'CN=Unit Low', ca: true, issuer: mid, key: await generateKey('ec-p256', 'chain-low'), ...v });
  const anchors = parseTrustStoreBundle(root.pem);
  const set = verifyIssuerChain([low.cert, mid.cert], anchors, now);
  assert.equal(set.count, 3);
  assert.equal(set.bySubject(low.cert.subjectDer).length, 1);
  // `low` alone does not chain (its issuer `mid` is neither trusted nor given).
  assert.throws(() => verifyIssuerChain([low.cert], anchors, now), { code: 'InvalidArgument', message: /certificate #1 .*Unit Low.* does not chain to the trust store/ });
  const expired = await issueCertificate({ subject: 'CN=Unit Old', ca: true, issuer: root, key: await generateKey('ec-p256', 'chain-old'), notBefore: new Date(now.getTime() - 30 * day), notAfter: new Date(now.getTime() - day) });
  assert.throws(() => verifyIssuerChain([mid.cert, expired.cert], anchors, now), { message: /certificate #2 .*Unit Old.* is not valid now/ });
  const leaf = await issueCertificate({ subject: 'CN=Unit Leaf', issuer: root, ...v });
  assert.throws(() => verifyIssuerChain([leaf.cert], anchors, now), { message: /is not a CA certificate/ });
  assert.throws(() => verifyIssuerChain(Array.from({ length: 9 }, () => mid.cert), anchors, now), { message: /at most 8 intermediates/ });
});
