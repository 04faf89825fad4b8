import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { OcspVerificationError } from '../../errors.js';
import { OID } from '../../pki/index.js';
import { buildChain, generateKey, type KeyType, type TestCert, type TestChain, type TestKey } from '../../../test/helpers/pki.js';
import {
  NON_SUCCESSFUL_STATUSES, behaviours, issueResponderCert, signOcspResponse, startTestResponder, testCertId,
  type SignOcspResponseOptions, type TestResponder, type TestResponderHandler,
} from '../../../test/helpers/ocsp-responder.js';
import { buildOcspRequest } from './request.js';
import { OCSP_RESPONSE_STATUS, parseAndVerifyOcspResponse, type OcspVerifyContext } from './response.js';
import { CRL_REASONS, type CertId } from './types.js';

/** The real clock, to the second (test certificates are valid around the real now). */
const NOW = new Date(Math.floor(Date.now() / 1000) * 1000);
const SKEW = 300_000;
const MIN = 60_000;

interface Fixture {
  name: string;
  chain: TestChain;
  issuer: TestCert;
  leaf: TestCert;
  certId: CertId;
  /** Proper delegated responder of `issuer`. */
  responder: TestCert;
  key: TestKey;
}

async function fixture(keyType: KeyType, name: string): Promise<Fixture> {
  const chain = await buildChain({ keyType, name });
  const issuer = chain.intermediates[0]!;
  const key = await generateKey(keyType, `${name}-responder`);
  const responder = await issueResponderCert(issuer, { key, name: `${name} OCSP Responder` });
  const certId = buildOcspRequest({ cert: chain.leaf.cert, issuer: issuer.cert }).certId;
  return { name, chain, issuer, leaf: chain.leaf, certId, responder, key };
}

function ctx(f: Fixture, over: Partial<OcspVerifyContext> = {}): OcspVerifyContext {
  return { certId: f.certId, issuer: f.issuer.cert, now: NOW, clockSkewMs: SKEW, ...over };
}

function sign(f: Fixture, opts: Partial<SignOcspResponseOptions> = {}): Promise<Buffer> {
  return signOcspResponse({ issuer: f.issuer, certId: f.certId, now: NOW, ...opts });
}

function rejects(der: Uint8Array, c: OcspVerifyContext, type: string, message?: RegExp): OcspVerificationError {
  let caught: unknown;
  try {
    parseAndVerifyOcspResponse(der, c);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof OcspVerificationError, `expected OcspVerificationError ${type}, got ${caught === undefined ? 'success' : String(caught)}`);
  assert.equal(caught.type, type, caught.message);
  if (message) assert.match(caught.message, message);
  return caught;
}

let ec: Fixture;
let rsa: Fixture;
let p384: Fixture;
let pss: Fixture;
let other: Fixture;

before(async () => {
  [ec, rsa, p384, pss, other] = await Promise.all([
    fixture('ec-p256', 'RespEC'), fixture('rsa-2048', 'RespRSA'), fixture('ec-p384', 'RespP384'),
    fixture('rsa-pss-2048', 'RespPSS'), fixture('ec-p256', 'RespOther'),
  ]);
});

describe('verified statuses (RSA PKCS#1, RSA-PSS, ECDSA P-256/P-384 issuers)', () => {
  for (const which of ['ec', 'rsa', 'p384', 'pss'] as const) {
    const f = () => ({ ec, rsa, p384, pss })[which];

    test(`${which}: good, signed by the issuing CA (byName, no certs)`, async () => {
      const der = await sign(f());
      const r = parseAndVerifyOcspResponse(der, ctx(f()));
      assert.equal(r.certStatus, 'good');
      assert.equal(r.signer, 'issuer');
      assert.match(r.signerSubject, /^CN=Resp\w+ Intermediate CA 1, O=Portcullis Test, C=US$/);
      assert.deepEqual(r.thisUpdate, new Date(NOW.getTime() - MIN));
      assert.deepEqual(r.nextUpdate, new Date(NOW.getTime() + 60 * MIN));
      assert.deepEqual(r.producedAt, NOW);
      assert.equal(r.revocationTime, undefined);
      assert.equal(r.revocationReason, undefined);
      assert.deepEqual(r.der, der);
    });

    test(`${which}: revoked with time and reason, CA responderID byKey`, async () => {
      const revocationTime = new Date(NOW.getTime() - 86_400_000);
      const der = await sign(f(), { certStatus: 'revoked', revocationTime, revocationReason: 1, responderId: 'byKey' });
      const r = parseAndVerifyOcspResponse(der, ctx(f()));
      assert.equal(r.certStatus, 'revoked');
      assert.deepEqual(r.revocationTime, revocationTime);
      assert.equal(r.revocationReason, 'keyCompromise');
      assert.equal(r.signer, 'issuer');
    });

    test(`${which}: unknown, signed by a delegated responder (byName and byKey)`, async () => {
      for (const responderId of ['byName', 'byKey'] as const) {
        const der = await sign(f(), { certStatus: 'unknown', signer: f().responder, responderId });
        const r = parseAndVerifyOcspResponse(der, ctx(f()));
        assert.equal(r.certStatus, 'unknown');
        assert.equal(r.signer, 'delegated');
        assert.match(r.signerSubject, /^CN=Resp\w+ OCSP Responder, O=Portcullis Test, C=US$/);
      }
    });
  }

  test('the CA signing with its own certificate included in certs', async () => {
    const der = await sign(ec, { certs: [ec.issuer] });
    assert.equal(parseAndVerifyOcspResponse(der, ctx(ec)).signer, 'issuer');
  });

  test('a delegated responder included together with its CA and the root', async () => {
    const der = await sign(ec, { signer: ec.responder, certs: [ec.chain.root, ec.issuer, ec.responder] });
    assert.equal(parseAndVerifyOcspResponse(der, ctx(ec)).signer, 'delegated');
  });

  test('the CA answering for an intermediate: issuer = root', async () => {
    const int = ec.issuer;
    const f: Fixture = { ...ec, issuer: ec.chain.root, leaf: int, certId: testCertId(int, ec.chain.root) };
    const r = parseAndVerifyOcspResponse(await sign(f), ctx(f));
    assert.equal(r.certStatus, 'good');
    assert.match(r.signerSubject, /^CN=RespEC Root CA/);
  });

  test('every CRLReason maps to its RFC 5280 name; no reason; an unknown code', async () => {
    for (const [code, name] of Object.entries(CRL_REASONS)) {
      const der = await sign(ec, { certStatus: 'revoked', revocationReason: Number(code) });
      assert.equal(parseAndVerifyOcspResponse(der, ctx(ec)).revocationReason, name);
    }
    const none = parseAndVerifyOcspResponse(await sign(ec, { certStatus: 'revoked' }), ctx(ec));
    assert.equal(none.certStatus, 'revoked');
    assert.equal(none.revocationReason, undefined);
    assert.ok(none.revocationTime instanceof Date);
    assert.equal(parseAndVerifyOcspResponse(await sign(ec, { certStatus: 'revoked', revocationReason: 7 }), ctx(ec)).revocationReason, '7');
  });

  test('non-critical unknown extensions are ignored (RFC 6960 4.4)', async () => {
    const ext = new pkijs.Extension({ extnID: '1.3.6.1.4.1.99999.1', critical: false, extnValue: new asn1js.Null().toBER(false) });
    const der = await sign(ec, { responseExtensions: [ext], singleExtensions: [ext] });
    assert.equal(parseAndVerifyOcspResponse(der, ctx(ec)).certStatus, 'good');
  });
});

describe('ResponderStatus:<status>', () => {
  for (const status of NON_SUCCESSFUL_STATUSES) {
    test(status, async () => {
      rejects(await signOcspResponse({ responseStatus: status }), ctx(ec), `ResponderStatus:${status}`);
    });
  }

  test('status names are the RFC 6960 4.2.1 ones', () => {
    assert.deepEqual(Object.values(OCSP_RESPONSE_STATUS), ['successful', ...NON_SUCCESSFUL_STATUSES]);
  });

  test('a status RFC 6960 does not define is Malformed', async () => {
    for (const n of [4, 7, 99]) rejects(await signOcspResponse({ responseStatus: n }), ctx(ec), 'Malformed');
  });
});

describe('Malformed', () => {
  test('garbage, empty input, truncation, trailing bytes', async () => {
    const good = await sign(ec);
    rejects(Buffer.from('this is not DER at all'), ctx(ec), 'Malformed');
    rejects(Buffer.alloc(0), ctx(ec), 'Malformed');
    rejects(good.subarray(0, good.length - 10), ctx(ec), 'Malformed');
    rejects(Buffer.concat([good, Buffer.from([0])]), ctx(ec), 'Malformed', /trailing/);
    rejects(Buffer.from(new asn1js.Sequence({ value: [new asn1js.Integer({ value: 0 })] }).toBER(false)), ctx(ec), 'Malformed');
  });

  test('successful without responseBytes', () => {
    const der = Buffer.from(new pkijs.OCSPResponse({ responseStatus: new asn1js.Enumerated({ value: 0 }) }).toSchema().toBER(false));
    rejects(der, ctx(ec), 'Malformed', /no responseBytes/);
  });

  test('responseType other than id-pkix-ocsp-basic', async () => {
    rejects(await sign(ec, { responseType: '1.3.6.1.5.5.7.48.1.99' }), ctx(ec), 'Malformed', /id-pkix-ocsp-basic/);
  });

  test('responseBytes that are not a BasicOCSPResponse', () => {
    const der = Buffer.from(new pkijs.OCSPResponse({
      responseStatus: new asn1js.Enumerated({ value: 0 }),
      responseBytes: new pkijs.ResponseBytes({ responseType: OID.ocspBasic, response: new asn1js.OctetString({ valueHex: Buffer.from('3003020101', 'hex') }) }),
    }).toSchema().toBER(false));
    rejects(der, ctx(ec), 'Malformed');
  });

  test('no SingleResponse', async () => {
    rejects(await sign(ec, { omitMainResponse: true }), ctx(ec), 'Malformed', /no SingleResponse/);
  });

  test('ResponseData version other than v1', async () => {
    rejects(await sign(ec, { version: 1 }), ctx(ec), 'Malformed', /version/);
    assert.equal(parseAndVerifyOcspResponse(await sign(ec, { version: 0 }), ctx(ec)).certStatus, 'good', 'explicit v1 is fine');
  });

  test('critical extensions that are not understood; a duplicated nonce', async () => {
    const crit = new pkijs.Extension({ extnID: '1.3.6.1.4.1.99999.2', critical: true, extnValue: new asn1js.Null().toBER(false) });
    rejects(await sign(ec, { responseExtensions: [crit] }), ctx(ec), 'Malformed', /critical/);
    rejects(await sign(ec, { singleExtensions: [crit] }), ctx(ec), 'Malformed', /critical/);
    const nonce = Buffer.alloc(32, 1);
    const dup = new pkijs.Extension({ extnID: OID.ocspNonce, critical: false, extnValue: new asn1js.OctetString({ valueHex: nonce }).toBER(false) });
    rejects(await sign(ec, { nonce, responseExtensions: [dup] }), ctx(ec, { nonce }), 'Malformed', /twice/);
    const critNonce = new pkijs.Extension({ extnID: OID.ocspNonce, critical: true, extnValue: new asn1js.OctetString({ valueHex: nonce }).toBER(false) });
    assert.equal(parseAndVerifyOcspResponse(await sign(ec, { responseExtensions: [critNonce] }), ctx(ec, { nonce })).certStatus, 'good', 'a critical nonce is understood');
  });

  test('nextUpdate before thisUpdate', async () => {
    rejects(await sign(ec, { thisUpdate: NOW, nextUpdate: new Date(NOW.getTime() - 1000) }), ctx(ec), 'Malformed', /before thisUpdate/);
  });
});

describe('SignatureInvalid', () => {
  test('a flipped signature bit (ECDSA, RSA, RSA-PSS; CA and delegated signer)', async () => {
    for (const f of [ec, rsa, pss, p384]) {
      rejects(await sign(f, { corruptSignature: true }), ctx(f), 'SignatureInvalid');
      rejects(await sign(f, { corruptSignature: true, signer: f.responder }), ctx(f), 'SignatureInvalid');
    }
  });

  test('an unrelated key signing a response whose responderID names the CA', async () => {
    const stranger = await generateKey('ec-p256');
    rejects(await sign(ec, { signingKey: stranger }), ctx(ec), 'SignatureInvalid', /issuing CA/);
    rejects(await sign(ec, { signingKey: stranger, responderId: 'byKey' }), ctx(ec), 'SignatureInvalid');
    rejects(await sign(rsa, { signingKey: await generateKey('rsa-2048', 'stranger') }), ctx(rsa), 'SignatureInvalid');
    rejects(await sign(rsa, { signingKey: stranger }), ctx(rsa), 'SignatureInvalid', /key type|does not verify/);
  });

  test('a proper delegated responder certificate with a signature by another key', async () => {
    rejects(await sign(ec, { signer: ec.responder, signingKey: other.key }), ctx(ec), 'SignatureInvalid');
  });

  test('SHA-1 signatures are refused as weak', async () => {
    rejects(await sign(ec, { signatureHash: 'SHA-1' }), ctx(ec), 'SignatureInvalid', /too weak/);
  });
});

describe('ResponderNotAuthorized', () => {
  test('delegated responder without the id-kp-OCSPSigning EKU (none, or serverAuth only)', async () => {
    const noEku = await issueResponderCert(ec.issuer, { ocspSigning: false, name: 'No EKU Responder' });
    rejects(await sign(ec, { signer: noEku }), ctx(ec), 'ResponderNotAuthorized', /id-kp-OCSPSigning/);
    const serverAuth = await issueResponderCert(ec.issuer, { ocspSigning: false, extraEku: [OID.kpServerAuth, OID.anyExtendedKeyUsage] });
    rejects(await sign(ec, { signer: serverAuth }), ctx(ec), 'ResponderNotAuthorized', /id-kp-OCSPSigning/);
  });

  test('delegated responder outside its validity period at `now` (no skew allowance)', async () => {
    const expired = await issueResponderCert(ec.issuer, { notBefore: new Date(NOW.getTime() - 10 * 86_400_000), notAfter: new Date(NOW.getTime() - 1000) });
    rejects(await sign(ec, { signer: expired }), ctx(ec), 'ResponderNotAuthorized', /validity/);
    const future = await issueResponderCert(ec.issuer, { notBefore: new Date(NOW.getTime() + 1000), notAfter: new Date(NOW.getTime() + 86_400_000) });
    rejects(await sign(ec, { signer: future }), ctx(ec), 'ResponderNotAuthorized', /validity/);
    // At its last second it is still fine.
    assert.equal(parseAndVerifyOcspResponse(await sign(ec, { signer: expired }), ctx(ec, { now: new Date(NOW.getTime() - 1000) })).signer, 'delegated');
  });

  test('delegated responder certificate signed by a different CA', async () => {
    const foreign = await issueResponderCert(ec.issuer, { signedBy: other.issuer, name: 'Foreign Responder' });
    rejects(await sign(ec, { signer: foreign }), ctx(ec), 'ResponderNotAuthorized', /not issued by/);
  });

  test('delegated responder certificate signed by the root above the issuing CA (not directly)', async () => {
    const byRoot = await issueResponderCert(ec.issuer, { signedBy: ec.chain.root, name: 'Root Responder' });
    rejects(await sign(ec, { signer: byRoot }), ctx(ec), 'ResponderNotAuthorized', /not issued by/);
  });

  test('a certificate with the issuing CA subject name but another key is not the CA', async () => {
    const impostor = await issueResponderCert(ec.issuer, { signedBy: other.issuer, extra: { subject: 'C=US,O=Portcullis Test,CN=RespEC Intermediate CA 1' } });
    assert.deepEqual(impostor.subjectDer, ec.issuer.subjectDer);
    // responderID names the real CA, the impostor's key signs and is included: the CA key does not verify it.
    rejects(await sign(ec, { signingKey: impostor.key, certs: [impostor] }), ctx(ec), 'SignatureInvalid');
  });

  test('responderID names a responder that is not included', async () => {
    rejects(await sign(ec, { signer: ec.responder, certs: [] }), ctx(ec), 'ResponderNotAuthorized', /byName CN=RespEC OCSP Responder, O=Portcullis Test, C=US is neither the issuing CA .* nor a certificate included/);
    rejects(await sign(ec, { signer: ec.responder, certs: [], responderId: 'byKey' }), ctx(ec), 'ResponderNotAuthorized', /byKey/);
  });

  test('a proper responder is included but the responderID names someone else', async () => {
    rejects(await sign(ec, { signer: other.issuer, signingKey: ec.responder.key, certs: [ec.responder] }), ctx(ec), 'ResponderNotAuthorized');
  });

  test('the issuing CA of another chain signing for this one', async () => {
    rejects(await sign(ec, { signer: other.issuer }), ctx(ec), 'ResponderNotAuthorized');
  });

  test('delegated responder with an unhandled critical extension', async () => {
    const crit = new pkijs.Extension({ extnID: '1.3.6.1.4.1.99999.3', critical: true, extnValue: new asn1js.Null().toBER(false) });
    const odd = await issueResponderCert(ec.issuer, { extra: { extensions: [crit] } });
    rejects(await sign(ec, { signer: odd }), ctx(ec), 'ResponderNotAuthorized', /critical/);
  });
});

describe('CertIdMismatch', () => {
  test('a response for another serial', async () => {
    const serialNumber = Buffer.from(ec.certId.serialNumber);
    serialNumber[serialNumber.length - 1]! ^= 1;
    rejects(await sign(ec, { certIdOverride: { serialNumber } }), ctx(ec), 'CertIdMismatch');
  });

  test('a response for another issuer (name hash, key hash or both)', async () => {
    const otherId = other.certId;
    rejects(await sign(ec, { certIdOverride: { issuerNameHash: otherId.issuerNameHash } }), ctx(ec), 'CertIdMismatch');
    rejects(await sign(ec, { certIdOverride: { issuerKeyHash: otherId.issuerKeyHash } }), ctx(ec), 'CertIdMismatch');
    rejects(await sign(ec, { certIdOverride: { issuerNameHash: otherId.issuerNameHash, issuerKeyHash: otherId.issuerKeyHash } }), ctx(ec), 'CertIdMismatch');
  });

  test('another hash algorithm: recomputed (SHA-256, SHA-384); mislabelled SHA-1 hashes do not match', async () => {
    for (const certIdHash of ['SHA-256', 'SHA-384', 'SHA-512'] as const) {
      assert.equal(parseAndVerifyOcspResponse(await sign(ec, { certIdHash }), ctx(ec)).certStatus, 'good');
    }
    rejects(await sign(ec, { certIdOverride: { hashAlgorithm: OID.sha256 } }), ctx(ec), 'CertIdMismatch');
    rejects(await sign(ec, { certIdOverride: { hashAlgorithm: '1.2.840.113549.2.5' } }), ctx(ec), 'CertIdMismatch', /SingleResponse/);
  });

  test('the matching SingleResponse is picked among several', async () => {
    const der = await sign(ec, { extraResponses: [{ certId: other.certId, certStatus: 'revoked' }, { certId: { ...ec.certId, serialNumber: Buffer.from('01', 'hex') }, certStatus: 'revoked' }] });
    assert.equal(parseAndVerifyOcspResponse(der, ctx(ec)).certStatus, 'good');
    rejects(await sign(ec, { omitMainResponse: true, extraResponses: [{ certId: other.certId }] }), ctx(ec), 'CertIdMismatch', /1 SingleResponse/);
  });

  test('serials are compared as INTEGER values (a re-encoded non-minimal serial still matches)', async () => {
    const c = ctx(ec, { certId: { ...ec.certId, serialNumber: Buffer.from('000001', 'hex') } });
    assert.equal(parseAndVerifyOcspResponse(await sign(ec, { certIdOverride: { serialNumber: Buffer.from('01', 'hex') } }), c).certStatus, 'good');
    rejects(await sign(ec, { certIdOverride: { serialNumber: Buffer.from('0101', 'hex') } }), c, 'CertIdMismatch');
    // 0x80 (negative) and 0x0080 (128) are different values.
    const c2 = ctx(ec, { certId: { ...ec.certId, serialNumber: Buffer.from('0080', 'hex') } });
    rejects(await sign(ec, { certIdOverride: { serialNumber: Buffer.from('80', 'hex') } }), c2, 'CertIdMismatch');
  });
});

describe('freshness: NotYetValid / Expired with clock skew', () => {
  test('thisUpdate exactly now + skew passes; one second later is NotYetValid', async () => {
    const at = new Date(NOW.getTime() + SKEW);
    assert.equal(parseAndVerifyOcspResponse(await sign(ec, { thisUpdate: at, nextUpdate: new Date(at.getTime() + 3_600_000) }), ctx(ec)).certStatus, 'good');
    const later = new Date(at.getTime() + 1000);
    rejects(await sign(ec, { thisUpdate: later, nextUpdate: new Date(later.getTime() + 3_600_000) }), ctx(ec), 'NotYetValid');
  });

  test('nextUpdate exactly now − skew passes; one second earlier is Expired', async () => {
    const at = new Date(NOW.getTime() - SKEW);
    const base = { thisUpdate: new Date(at.getTime() - 3_600_000) };
    assert.equal(parseAndVerifyOcspResponse(await sign(ec, { ...base, nextUpdate: at }), ctx(ec)).certStatus, 'good');
    rejects(await sign(ec, { ...base, nextUpdate: new Date(at.getTime() - 1000) }), ctx(ec), 'Expired');
  });

  test('with zero skew the bounds are now itself', async () => {
    const c = ctx(ec, { clockSkewMs: 0 });
    assert.equal(parseAndVerifyOcspResponse(await sign(ec, { thisUpdate: NOW, nextUpdate: NOW }), c).certStatus, 'good');
    rejects(await sign(ec, { thisUpdate: new Date(NOW.getTime() + 1000) }), c, 'NotYetValid');
    rejects(await sign(ec, { thisUpdate: new Date(NOW.getTime() - 2000), nextUpdate: new Date(NOW.getTime() - 1000) }), c, 'Expired');
  });

  test('no nextUpdate: accepted, reported as undefined', async () => {
    const r = parseAndVerifyOcspResponse(await sign(ec, { nextUpdate: null, thisUpdate: new Date(NOW.getTime() - 86_400_000) }), ctx(ec));
    assert.equal(r.nextUpdate, undefined);
    assert.equal(r.certStatus, 'good');
  });

  test('an old producedAt is not checked', async () => {
    assert.equal(parseAndVerifyOcspResponse(await sign(ec, { producedAt: new Date(NOW.getTime() - 86_400_000) }), ctx(ec)).certStatus, 'good');
  });
});

describe('NonceMismatch (RFC 8954)', () => {
  const nonce = Buffer.alloc(32, 0x5a);

  test('echoed nonce equal to the one sent (RFC 8954 form, or bare bytes)', async () => {
    assert.equal(parseAndVerifyOcspResponse(await sign(ec, { nonce }), ctx(ec, { nonce })).certStatus, 'good');
    assert.equal(parseAndVerifyOcspResponse(await sign(ec, { nonce, nonceEncoding: 'bare' }), ctx(ec, { nonce })).certStatus, 'good');
  });

  test('a different echoed nonce', async () => {
    rejects(await sign(ec, { nonce: Buffer.alloc(32, 0x5b) }), ctx(ec, { nonce }), 'NonceMismatch');
    rejects(await sign(ec, { nonce: nonce.subarray(0, 16) }), ctx(ec, { nonce }), 'NonceMismatch');
  });

  test('a nonce sent but not echoed is accepted (SPEC 3); one echoed but not sent is ignored', async () => {
    assert.equal(parseAndVerifyOcspResponse(await sign(ec), ctx(ec, { nonce })).certStatus, 'good');
    assert.equal(parseAndVerifyOcspResponse(await sign(ec, { nonce }), ctx(ec)).certStatus, 'good');
  });
});

describe('check order: Malformed → ResponderStatus → authorization → signature → CertID → freshness → nonce', () => {
  test('unauthorized signer with a bad signature → ResponderNotAuthorized', async () => {
    const noEku = await issueResponderCert(ec.issuer, { ocspSigning: false });
    rejects(await sign(ec, { signer: noEku, corruptSignature: true }), ctx(ec), 'ResponderNotAuthorized');
  });

  test('bad signature and wrong CertID → SignatureInvalid', async () => {
    rejects(await sign(ec, { corruptSignature: true, certIdOverride: { serialNumber: Buffer.from('01', 'hex') } }), ctx(ec), 'SignatureInvalid');
  });

  test('wrong CertID and expired → CertIdMismatch', async () => {
    rejects(await sign(ec, { certIdOverride: { serialNumber: Buffer.from('01', 'hex') }, thisUpdate: new Date(0), nextUpdate: new Date(1000) }), ctx(ec), 'CertIdMismatch');
  });

  test('expired and wrong nonce → Expired', async () => {
    rejects(await sign(ec, { thisUpdate: new Date(0), nextUpdate: new Date(1000), nonce: Buffer.alloc(8, 1) }), ctx(ec, { nonce: Buffer.alloc(8, 2) }), 'Expired');
  });

  test('a critical unknown extension on an otherwise unauthorized response → Malformed', async () => {
    const crit = new pkijs.Extension({ extnID: '1.3.6.1.4.1.99999.2', critical: true, extnValue: new asn1js.Null().toBER(false) });
    rejects(await sign(ec, { signer: other.issuer, responseExtensions: [crit] }), ctx(ec), 'Malformed');
  });
});

describe('responses produced by a real `openssl ocsp` responder', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-ocsp-resp-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function write(name: string, content: string | Buffer): string {
    const p = join(dir, name);
    writeFileSync(p, content);
    return p;
  }

  /** index.txt line (OpenSSL ca database): status, expiry, revocation[,reason], serial hex, file, subject. */
  function indexLine(cert: TestCert, revoked?: string): string {
    const serial = cert.cert.serialNumberBytes.toString('hex').toUpperCase();
    return `${revoked ? 'R' : 'V'}\t351231235959Z\t${revoked ?? ''}\t${serial}\tunknown\t/CN=x\n`;
  }

  function opensslRespond(f: Fixture, opts: { index: string; signer: TestCert; nonce?: boolean; byKey?: boolean; ndays?: boolean }): { der: Buffer; request: ReturnType<typeof buildOcspRequest> } {
    const request = buildOcspRequest({ cert: f.leaf.cert, issuer: f.issuer.cert, nonce: opts.nonce === true });
    const respout = join(dir, 'resp.der');
    execFileSync('openssl', [
      'ocsp', '-index', write('index.txt', opts.index), '-CA', write('ca.pem', f.issuer.pem),
      '-rsigner', write('rsigner.pem', opts.signer.pem), '-rkey', write('rkey.pem', opts.signer.keyPem),
      '-reqin', write('req.der', request.der), '-respout', respout,
      ...(opts.ndays === false ? [] : ['-ndays', '1']), ...(opts.byKey ? ['-resp_key_id'] : []),
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    return { der: readFileSync(respout), request };
  }

  for (const which of ['ec', 'rsa'] as const) {
    const f = () => ({ ec, rsa })[which];

    test(`${which}: good from the CA itself, with an echoed nonce`, () => {
      const { der, request } = opensslRespond(f(), { index: indexLine(f().leaf), signer: f().issuer, nonce: true });
      const r = parseAndVerifyOcspResponse(der, { certId: request.certId, issuer: f().issuer.cert, nonce: request.nonce, now: new Date(), clockSkewMs: SKEW });
      assert.equal(r.certStatus, 'good');
      assert.equal(r.signer, 'issuer');
      assert.ok(r.nextUpdate && r.nextUpdate.getTime() > Date.now() + 23 * 3_600_000);
      // OpenSSL echoes the nonce; a different expected nonce must then fail.
      rejects(der, { certId: request.certId, issuer: f().issuer.cert, nonce: Buffer.alloc(32), now: new Date(), clockSkewMs: SKEW }, 'NonceMismatch');
    });

    test(`${which}: revoked (keyCompromise) from a delegated responder, responderID byKey`, () => {
      const { der, request } = opensslRespond(f(), { index: indexLine(f().leaf, '260101000000Z,keyCompromise'), signer: f().responder, byKey: true });
      const r = parseAndVerifyOcspResponse(der, { certId: request.certId, issuer: f().issuer.cert, now: new Date(), clockSkewMs: SKEW });
      assert.equal(r.certStatus, 'revoked');
      assert.equal(r.revocationReason, 'keyCompromise');
      assert.deepEqual(r.revocationTime, new Date('2026-01-01T00:00:00Z'));
      assert.equal(r.signer, 'delegated');
    });

    test(`${which}: unknown serial, no nextUpdate`, () => {
      const { der, request } = opensslRespond(f(), { index: indexLine(other.leaf), signer: f().issuer, ndays: false });
      const r = parseAndVerifyOcspResponse(der, { certId: request.certId, issuer: f().issuer.cert, now: new Date(), clockSkewMs: SKEW });
      assert.equal(r.certStatus, 'unknown');
      assert.equal(r.nextUpdate, undefined);
    });
  }

  test('openssl signing with a responder that lacks the OCSP-signing EKU is refused', async () => {
    const noEku = await issueResponderCert(ec.issuer, { ocspSigning: false });
    const { der, request } = opensslRespond(ec, { index: indexLine(ec.leaf), signer: noEku });
    rejects(der, { certId: request.certId, issuer: ec.issuer.cert, now: new Date(), clockSkewMs: SKEW }, 'ResponderNotAuthorized');
  });

  test('openssl accepts the test helper responses (cross-check of signOcspResponse)', async () => {
    for (const f of [ec, rsa]) {
      for (const signer of [f.issuer, f.responder]) {
        const der = await signOcspResponse({ issuer: f.issuer, cert: f.leaf, signer, certStatus: 'revoked', revocationReason: 1 });
        const run = spawnSync('openssl', [
          'ocsp', '-respin', write('helper.der', der), '-issuer', write('issuer.pem', f.issuer.pem), '-cert', write('leaf.pem', f.leaf.pem),
          '-CAfile', write('chain.pem', f.chain.root.pem + f.issuer.pem), '-no_nonce',
        ], { encoding: 'utf8' });
        assert.match(run.stderr, /Response verify OK/, run.stderr);
        assert.match(run.stdout, /leaf\.pem: revoked/);
        assert.match(run.stdout, /Reason: keyCompromise/);
      }
    }
  });
});

describe('test responder behaviours end to end (HTTP → parseAndVerifyOcspResponse)', () => {
  let responder: TestResponder;
  before(async () => {
    responder = await startTestResponder(behaviours.good(ec.issuer));
  });
  after(() => responder.close());

  async function exchange(handler: TestResponderHandler, nonce?: Buffer): Promise<{ status: number; body: Buffer; request: ReturnType<typeof buildOcspRequest> }> {
    responder.setHandler(handler);
    const request = buildOcspRequest({ cert: ec.leaf.cert, issuer: ec.issuer.cert, ...(nonce ? { nonce } : {}) });
    const res = await fetch(responder.url, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: request.der, redirect: 'manual' });
    return { status: res.status, body: Buffer.from(await res.arrayBuffer()), request };
  }

  async function outcome(handler: TestResponderHandler, nonce?: Buffer): Promise<string> {
    const { status, body, request } = await exchange(handler, nonce);
    assert.equal(status, 200);
    try {
      const r = parseAndVerifyOcspResponse(body, { certId: request.certId, issuer: ec.issuer.cert, nonce: request.nonce, now: new Date(), clockSkewMs: SKEW });
      return [r.certStatus, r.revocationReason, r.signer, r.nextUpdate ? 'next' : 'no-next'].filter(Boolean).join(' ');
    } catch (err) {
      assert.ok(err instanceof OcspVerificationError, String(err));
      return err.type;
    }
  }

  test('signing behaviours give the expected verification results', async () => {
    const noEku = await issueResponderCert(ec.issuer, { ocspSigning: false });
    const expired = await issueResponderCert(ec.issuer, { notBefore: new Date(Date.now() - 9 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) });
    const foreign = await issueResponderCert(ec.issuer, { signedBy: other.issuer });
    const nonce = Buffer.alloc(32, 7);
    const table: [string, TestResponderHandler, string, Buffer?][] = [
      ['good', behaviours.good(ec.issuer), 'good issuer next'],
      ['good for a chain', behaviours.good([other.issuer, ec.chain.root, ec.issuer]), 'good issuer next'],
      ['revoked', behaviours.revoked(ec.issuer, { reason: 1 }), 'revoked keyCompromise issuer next'],
      ['revoked without reason', behaviours.revoked(ec.issuer, { reason: null }), 'revoked issuer next'],
      ['unknown', behaviours.unknown(ec.issuer), 'unknown issuer next'],
      ['bad signature', behaviours.badSignature(ec.issuer), 'SignatureInvalid'],
      ['unrelated key', behaviours.unrelatedKey(ec.issuer, other.key), 'SignatureInvalid'],
      ['delegated', behaviours.delegated(ec.issuer, ec.responder), 'good delegated next'],
      ['delegated byKey', behaviours.delegated(ec.issuer, ec.responder, { responderId: 'byKey' }), 'good delegated next'],
      ['delegated without EKU', behaviours.delegated(ec.issuer, noEku), 'ResponderNotAuthorized'],
      ['delegated expired', behaviours.delegated(ec.issuer, expired), 'ResponderNotAuthorized'],
      ['delegated by another CA', behaviours.delegated(ec.issuer, foreign), 'ResponderNotAuthorized'],
      ['other serial', behaviours.otherSerial(ec.issuer), 'CertIdMismatch'],
      ['other issuer', behaviours.otherIssuer(ec.issuer), 'CertIdMismatch'],
      ['expired', behaviours.expired(ec.issuer), 'Expired'],
      ['not yet valid', behaviours.notYetValid(ec.issuer), 'NotYetValid'],
      ['no nextUpdate', behaviours.noNextUpdate(ec.issuer), 'good issuer no-next'],
      ['nonce echoed', behaviours.good(ec.issuer), 'good issuer next', nonce],
      ['wrong nonce', behaviours.wrongNonce(ec.issuer), 'NonceMismatch', nonce],
      ['nonce not echoed', behaviours.noNonceEcho(ec.issuer), 'good issuer next', nonce],
      ['garbage', behaviours.garbage(), 'Malformed'],
      ['unknown issuer', behaviours.good(other.issuer), 'ResponderStatus:unauthorized'],
      ...NON_SUCCESSFUL_STATUSES.map((s) => [s, behaviours.responderStatus(s), `ResponderStatus:${s}`] as [string, TestResponderHandler, string]),
    ];
    for (const [name, handler, expected, n] of table) {
      assert.equal(await outcome(handler, n), expected, name);
    }
    assert.deepEqual(responder.requests.at(-1)!.certId, buildOcspRequest({ cert: ec.leaf.cert, issuer: ec.issuer.cert }).certId);
  });

  test('transport behaviours', async () => {
    const e500 = await exchange(behaviours.httpStatus(500));
    assert.equal(e500.status, 500);
    const redirect = await exchange(behaviours.redirect('http://127.0.0.1:1/elsewhere'));
    assert.equal(redirect.status, 302);
    const big = await exchange(behaviours.oversize());
    assert.equal(big.body.length, 200 * 1024);
    const seq = behaviours.sequence(behaviours.httpStatus(503), behaviours.good(ec.issuer));
    assert.equal((await exchange(seq)).status, 503);
    assert.equal((await exchange(seq)).status, 200);
    assert.equal((await exchange(behaviours.delay(20, behaviours.good(ec.issuer)))).status, 200);
    await assert.rejects(exchange(behaviours.destroy()));

    responder.setHandler(behaviours.hang(Buffer.from([0x30])));
    const res = await fetch(responder.url, { method: 'POST', body: Buffer.from('3000', 'hex'), signal: AbortSignal.timeout(200) });
    assert.equal(res.status, 200, 'headers arrive');
    await assert.rejects(res.arrayBuffer(), 'the body never finishes');

    responder.reset();
    const bad = await fetch(`${responder.url}/not%20base64!`);
    assert.equal(bad.status, 200);
    assert.equal(responder.requests[0]!.parseError?.includes('base64'), true);
    assert.deepEqual(responder.counts, { GET: 1, POST: 0, other: 0, total: 1 });
  });
});

test('an RSA issuer signing with SHA-1 (a real sha1WithRSAEncryption signature) is refused as weak', async () => {
  const der = await sign(rsa, { signatureHash: 'SHA-1' });
  // The helper must really write SHA-1 with an RSA key (WebCrypto binds the hash to RSA
  // keys; test/helpers/ocsp-responder.ts re-imports the key with the requested hash).
  const outer = new pkijs.OCSPResponse({ schema: asn1js.fromBER(der).result });
  const basic = new pkijs.BasicOCSPResponse({ schema: asn1js.fromBER(outer.responseBytes!.response.valueBlock.valueHexView).result });
  assert.equal(basic.signatureAlgorithm.algorithmId, '1.2.840.113549.1.1.5', 'sha1WithRSAEncryption');
  const { createVerify } = await import('node:crypto');
  const tbs = Buffer.from(basic.tbsResponseData.toSchema(true).toBER(false));
  assert.ok(createVerify('sha1').update(tbs).verify(rsa.issuer.cert.publicKeyObject, Buffer.from(basic.signature.valueBlock.valueHexView)),
    'the signature is a valid SHA-1 RSA signature by the issuing CA');
  rejects(der, ctx(rsa), 'SignatureInvalid', /too weak/);
});
