/**
 * Hardening cases found by adversarial review: contradictory SingleResponses, replayed
 * responses without nextUpdate, future producedAt, delegated responder certificates
 * below the SPEC section 2 key/signature bar, nonce display.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { OcspVerificationError } from '../../errors.js';
import { buildChain, type TestCert } from '../../../test/helpers/pki.js';
import { issueResponderCert, signOcspResponse } from '../../../test/helpers/ocsp-responder.js';
import { buildOcspRequest } from './request.js';
import { parseAndVerifyOcspResponse, type OcspVerifyContext } from './response.js';
import type { CertId } from './types.js';

const NOW = new Date(Math.floor(Date.now() / 1000) * 1000);
const DAY = 86400_000;
let issuer: TestCert;
let leaf: TestCert;
let certId: CertId;

before(async () => {
  const chain = await buildChain({ name: 'Hardening', keyType: 'ec-p256' });
  issuer = chain.intermediates[0]!;
  leaf = chain.leaf;
  certId = buildOcspRequest({ cert: leaf.cert, issuer: issuer.cert }).certId;
});

const ctx = (over: Partial<OcspVerifyContext> = {}): OcspVerifyContext =>
  ({ certId, issuer: issuer.cert, now: NOW, clockSkewMs: 300_000, ...over });

function failure(der: Buffer, c: OcspVerifyContext): OcspVerificationError {
  try {
    parseAndVerifyOcspResponse(der, c);
  } catch (err) {
    assert.ok(err instanceof OcspVerificationError, String(err));
    return err;
  }
  assert.fail('expected a verification failure');
}

test('contradictory SingleResponses for our CertID: revoked wins whatever the order', async () => {
  for (const [first, second] of [['good', 'revoked'], ['revoked', 'good']] as const) {
    const der = await signOcspResponse({
      issuer, certId, now: NOW, certStatus: first, revocationReason: 1,
      extraResponses: [{ certId, certStatus: second, revocationReason: 1 }],
    });
    assert.equal(parseAndVerifyOcspResponse(der, ctx()).certStatus, 'revoked', `${first} then ${second}`);
  }
  const der = await signOcspResponse({ issuer, certId, now: NOW, certStatus: 'good', extraResponses: [{ certId, certStatus: 'unknown' }] });
  assert.equal(parseAndVerifyOcspResponse(der, ctx()).certStatus, 'unknown');
});

test('a response without nextUpdate is refused once its thisUpdate is older than the maximum age', async () => {
  const old = await signOcspResponse({ issuer, certId, now: NOW, thisUpdate: new Date(NOW.getTime() - 5 * 365 * DAY), nextUpdate: null, producedAt: new Date(NOW.getTime() - 5 * 365 * DAY) });
  const e = failure(old, ctx());
  assert.equal(e.type, 'Expired');
  assert.match(e.message, /no nextUpdate/);
  const recent = await signOcspResponse({ issuer, certId, now: NOW, thisUpdate: new Date(NOW.getTime() - 3600_000), nextUpdate: null });
  assert.equal(parseAndVerifyOcspResponse(recent, ctx()).certStatus, 'good');
  assert.equal(failure(recent, ctx({ maxAgeWithoutNextUpdateMs: 60_000 })).type, 'Expired');
});

test('producedAt in the future beyond the skew is NotYetValid', async () => {
  const der = await signOcspResponse({ issuer, certId, now: NOW, producedAt: new Date(NOW.getTime() + 365 * DAY) });
  const e = failure(der, ctx());
  assert.equal(e.type, 'NotYetValid');
  assert.match(e.message, /producedAt/);
});

test('delegated responder certificates must meet the key and signature rules', async () => {
  const weakKey = await issueResponderCert(issuer, { key: 'rsa-1024', name: 'Weak Key Responder' });
  const p521 = await issueResponderCert(issuer, { key: 'ec-p521', name: 'P521 Responder' });
  for (const [responder, pattern] of [[weakKey, /unsupported key \(RSA 1024/], [p521, /unsupported key \(ECDSA P-521/]] as const) {
    const der = await signOcspResponse({ issuer, certId, now: NOW, signer: responder });
    const e = failure(der, ctx());
    assert.equal(e.type, 'ResponderNotAuthorized');
    assert.match(e.message, pattern);
  }
  // A SHA-1-signed responder certificate (RSA CA so that the hash is really SHA-1).
  const rsa = await buildChain({ name: 'HardeningRsa', keyType: 'rsa-2048' });
  const rsaIssuer = rsa.intermediates[0]!;
  const rsaCertId = buildOcspRequest({ cert: rsa.leaf.cert, issuer: rsaIssuer.cert }).certId;
  const sha1Responder = await issueResponderCert(rsaIssuer, { key: 'ec-p256', name: 'SHA1 Responder', extra: { hash: 'SHA-1' } });
  assert.equal(sha1Responder.cert.signatureAlgorithmOid, '1.2.840.113549.1.1.5');
  const der = await signOcspResponse({ issuer: rsaIssuer, certId: rsaCertId, now: NOW, signer: sha1Responder });
  const e = failure(der, { certId: rsaCertId, issuer: rsaIssuer.cert, now: NOW, clockSkewMs: 300_000 });
  assert.equal(e.type, 'ResponderNotAuthorized');
  assert.match(e.message, /sha1WithRSAEncryption/);
});

test('NonceMismatch names the echoed nonce without its DER wrapper', async () => {
  const sent = Buffer.alloc(32, 0xab);
  const echoed = Buffer.alloc(32, 0xcd);
  const der = await signOcspResponse({ issuer, certId, now: NOW, nonce: echoed });
  const e = failure(der, ctx({ nonce: sent }));
  assert.equal(e.type, 'NonceMismatch');
  assert.ok(e.message.includes(`echoes nonce ${echoed.toString('hex')},`), e.message);
});
