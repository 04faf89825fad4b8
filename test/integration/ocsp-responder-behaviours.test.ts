/**
 * Integration: every answer a responder can give, through the real RevocationChecker
 * and the real OcspHttpClient (undici) against in-process HTTP responders on
 * 127.0.0.1 (SPEC section 3). Each case uses a fresh checker (so a fresh cache).
 *
 * Layout: root → intermediate → leaf. The intermediate's AIA points at `rootResponder`
 * (always Good unless a test says otherwise); the leaf's at `leafResponder`, whose
 * handler each test sets. Leaves with other AIA URLs are issued under the same
 * intermediate when a test needs another responder.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { OID, formatSerialNumber, parseTrustStoreBundle, validateClientChain, type ParsedCertificate, type TrustAnchorSet } from '../../src/pki/index.js';
import {
  RevocationChecker, revocationDecision, type CertificateRevocationStatus, type RevocationCheckerOptions,
  type RevocationCheckResult, type RevocationStatus,
} from '../../src/revocation/index.js';
import { buildChain, issueCertificate, type TestCert, type TestChain } from '../helpers/pki.js';
import {
  NON_SUCCESSFUL_STATUSES, behaviours, issueResponderCert, respond, startTestResponder,
  type TestResponder, type TestResponderHandler,
} from '../helpers/ocsp-responder.js';

const VERIFICATION_FAILED = 'OCSP response verification failed: ';
/** Budget for the hanging cases: small, so the suite stays fast. */
const SHORT_BUDGET_MS = 300;

let chain: TestChain;
let root: TestCert;
let intermediate: TestCert;
let anchors: TrustAnchorSet;
let rootResponder: TestResponder;
let leafResponder: TestResponder;
const placeholder: TestResponderHandler = behaviours.httpStatus(503, 'not configured yet');

/** A closed TCP port on 127.0.0.1 (bound by us, then released). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', () => resolve()));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** A new client leaf under `issuer` whose AIA lists `ocspUrls` (none → no AIA extension). */
async function issueLeaf(issuer: TestCert, ocspUrls: string[], name = 'Integration Leaf'): Promise<TestCert> {
  return issueCertificate({
    subject: `C=US,O=Portcullis Test,CN=${name}`, issuer, eku: [OID.kpClientAuth], ocspUrls,
    san: { dns: ['client.example.com'] },
  });
}

/** Path validation as the gate does it: the checker receives the validated path. */
function validatedPath(presented: TestCert[], trust: TrustAnchorSet = anchors): readonly ParsedCertificate[] {
  const v = validateClientChain(presented.map((c) => c.cert), trust, { now: new Date() });
  assert.ok(v.ok, `test chain must validate: ${v.ok ? '' : `${v.code} ${v.reason}`}`);
  return v.path;
}

/** Runs one check with a fresh checker (fresh cache) and closes it. */
async function checkOnce(path: readonly ParsedCertificate[], options: Partial<RevocationCheckerOptions> = {}): Promise<RevocationCheckResult> {
  const checker = new RevocationChecker(options);
  try {
    return await checker.check(path);
  } finally {
    await checker.close();
  }
}

/** `check` on the default leaf with `handler` on the leaf responder; asserts the result is ok. */
async function checkLeafWith(handler: TestResponderHandler, options: Partial<RevocationCheckerOptions> = {}): Promise<RevocationStatus> {
  leafResponder.setHandler(handler);
  leafResponder.reset();
  rootResponder.reset();
  const result = await checkOnce(validatedPath(chain.presented), options);
  assert.ok(result.ok, 'the check must produce a revocationStatus');
  assert.equal(leafResponder.counts.total >= 1, true, 'the leaf responder must have been asked');
  return result.revocationStatus;
}

function assertGoodIntermediate(status: RevocationStatus): void {
  assert.equal(status.certificates.intermediates.length, 1);
  const i = status.certificates.intermediates[0]!;
  assert.equal(i.status, 'Good', `intermediate: ${i.errorType ?? ''} ${i.errorDetail ?? ''}`);
  assert.equal(i.responder, rootResponder.url);
}

/** Error with errorType `type`, an errorDetail sentence, chainValidity Unknown, decision ClientCertRevocationUnknown. */
function assertLeafError(status: RevocationStatus, type: string, detail?: RegExp): CertificateRevocationStatus {
  const leaf = status.certificates.leaf;
  assert.equal(leaf.status, 'Error', `leaf should be Error, got ${leaf.status}`);
  assert.equal(leaf.errorType, type, `errorDetail: ${leaf.errorDetail ?? '(none)'}`);
  assert.equal(typeof leaf.errorDetail, 'string');
  assert.ok(leaf.errorDetail!.length > 0, 'errorDetail must be a sentence');
  if (detail) assert.match(leaf.errorDetail!, detail);
  assert.equal(leaf.revocationTime, undefined);
  assert.equal(leaf.responder, leafResponder.url);
  assert.equal(status.chainValidity, 'Unknown');
  assert.deepEqual(revocationDecision(status), { allow: false, code: 'ClientCertRevocationUnknown' });
  assertGoodIntermediate(status);
  return leaf;
}

function assertLeafGood(status: RevocationStatus): CertificateRevocationStatus {
  const leaf = status.certificates.leaf;
  assert.equal(leaf.status, 'Good', `leaf: ${leaf.errorType ?? ''} ${leaf.errorDetail ?? ''}`);
  assert.equal(leaf.errorType, undefined);
  assert.equal(leaf.errorDetail, undefined);
  assert.equal(leaf.source, 'network');
  assert.equal(status.chainValidity, 'Valid');
  assert.deepEqual(revocationDecision(status), { allow: true });
  assertGoodIntermediate(status);
  return leaf;
}

before(async () => {
  rootResponder = await startTestResponder(placeholder);
  leafResponder = await startTestResponder(placeholder);
  chain = await buildChain({
    name: 'Behaviours', intermediates: 1,
    ocspUrl: (depth) => (depth === 0 ? leafResponder.url : rootResponder.url),
  });
  root = chain.root;
  intermediate = chain.intermediates[0]!;
  anchors = parseTrustStoreBundle(root.pem);
  rootResponder.setHandler(behaviours.good(root));
});

after(async () => {
  await Promise.all([rootResponder?.close(), leafResponder?.close()]);
});

describe('certificate statuses', () => {
  test('good → Good, chainValidity Valid, allowed', async () => {
    const status = await checkLeafWith(behaviours.good(intermediate));
    const leaf = assertLeafGood(status);
    assert.equal(leaf.serialNumber, formatSerialNumber(chain.leaf.cert.serialNumberBytes));
    assert.equal(leaf.responder, leafResponder.url);
    assert.match(leaf.thisUpdate ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.match(leaf.nextUpdate ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(leafResponder.counts.total, 1);
    assert.equal(rootResponder.counts.total, 1);
    // The responder received the CertID of the leaf, issued by the intermediate.
    const asked = leafResponder.requests[0]!;
    assert.equal(asked.parseError, undefined);
    assert.equal(asked.certId?.hashAlgorithm, OID.sha1);
    assert.deepEqual(asked.certId?.serialNumber, Buffer.from(chain.leaf.cert.serialNumberBytes));
    assert.deepEqual(asked.certId?.issuerNameHash, intermediate.cert.subjectNameHashSha1);
    assert.equal(asked.nonce, undefined, 'no nonce by default (SPEC 3)');
  });

  test('revoked with reason → Revoked with revocationTime and revocationReason, chainValidity Invalid', async () => {
    const revokedAt = new Date('2026-01-02T03:04:05Z');
    const status = await checkLeafWith(behaviours.revoked(intermediate, { reason: 1, revocationTime: revokedAt }));
    const leaf = status.certificates.leaf;
    assert.equal(leaf.status, 'Revoked');
    assert.equal(leaf.revocationTime, '2026-01-02T03:04:05Z');
    assert.equal(leaf.revocationReason, 'keyCompromise');
    assert.equal(leaf.errorType, undefined);
    assert.equal(status.chainValidity, 'Invalid');
    assert.deepEqual(revocationDecision(status), { allow: false, code: 'ClientCertRevoked' });
    assertGoodIntermediate(status);
  });

  test('revoked with another reason (cessationOfOperation) and revoked without reason', async () => {
    const withReason = await checkLeafWith(behaviours.revoked(intermediate, { reason: 5 }));
    assert.equal(withReason.certificates.leaf.status, 'Revoked');
    assert.equal(withReason.certificates.leaf.revocationReason, 'cessationOfOperation');
    const noReason = await checkLeafWith(behaviours.revoked(intermediate, { reason: null }));
    assert.equal(noReason.certificates.leaf.status, 'Revoked');
    assert.equal(noReason.certificates.leaf.revocationReason, undefined);
    assert.equal(typeof noReason.certificates.leaf.revocationTime, 'string');
    assert.equal(noReason.chainValidity, 'Invalid');
  });

  test('unknown → Unknown, chainValidity Unknown, ClientCertRevocationUnknown', async () => {
    const status = await checkLeafWith(behaviours.unknown(intermediate));
    assert.equal(status.certificates.leaf.status, 'Unknown');
    assert.equal(status.certificates.leaf.errorType, undefined);
    assert.equal(status.chainValidity, 'Unknown');
    assert.deepEqual(revocationDecision(status), { allow: false, code: 'ClientCertRevocationUnknown' });
    assertGoodIntermediate(status);
  });

  test('no nextUpdate → Good without nextUpdate', async () => {
    const status = await checkLeafWith(behaviours.noNextUpdate(intermediate));
    const leaf = assertLeafGood(status);
    assert.equal(leaf.nextUpdate, undefined);
    assert.equal(typeof leaf.thisUpdate, 'string');
  });
});

describe('non-successful responseStatus', () => {
  for (const name of NON_SUCCESSFUL_STATUSES) {
    test(`${name} → Error, ResponderStatus:${name}`, async () => {
      const status = await checkLeafWith(behaviours.responderStatus(name));
      assertLeafError(status, `${VERIFICATION_FAILED}ResponderStatus:${name}`, new RegExp(name));
    });
  }
});

describe('signature and signer authorization', () => {
  test('bad signature → SignatureInvalid', async () => {
    const status = await checkLeafWith(behaviours.badSignature(intermediate));
    assertLeafError(status, `${VERIFICATION_FAILED}SignatureInvalid`);
  });

  test('responderID names the CA but an unrelated key signs → SignatureInvalid', async () => {
    const other = await buildChain({ name: 'Unrelated Key' });
    const status = await checkLeafWith(behaviours.unrelatedKey(intermediate, other.intermediates[0]!.key));
    assertLeafError(status, `${VERIFICATION_FAILED}SignatureInvalid`);
  });

  test('proper delegated responder (signed by the issuing CA, OCSP-signing EKU, valid) → Good', async () => {
    const responderCert = await issueResponderCert(intermediate, { name: 'Delegated OK' });
    const status = await checkLeafWith(behaviours.delegated(intermediate, responderCert));
    assertLeafGood(status);
  });

  test('proper delegated responder with responderID byKey → Good', async () => {
    const responderCert = await issueResponderCert(intermediate, { name: 'Delegated ByKey' });
    const status = await checkLeafWith(behaviours.delegated(intermediate, responderCert, { responderId: 'byKey' }));
    assertLeafGood(status);
  });

  test('delegated certificate without the OCSP-signing EKU → ResponderNotAuthorized', async () => {
    const responderCert = await issueResponderCert(intermediate, { name: 'Delegated No EKU', ocspSigning: false, extraEku: [OID.kpServerAuth] });
    const status = await checkLeafWith(behaviours.delegated(intermediate, responderCert));
    assertLeafError(status, `${VERIFICATION_FAILED}ResponderNotAuthorized`, /OCSPSigning/);
  });

  test('expired delegated certificate → ResponderNotAuthorized', async () => {
    const responderCert = await issueResponderCert(intermediate, {
      name: 'Delegated Expired', notBefore: new Date(Date.now() - 10 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000),
    });
    const status = await checkLeafWith(behaviours.delegated(intermediate, responderCert));
    assertLeafError(status, `${VERIFICATION_FAILED}ResponderNotAuthorized`, /validity/);
  });

  test('delegated certificate signed by a different CA → ResponderNotAuthorized', async () => {
    const other = await buildChain({ name: 'Other CA' });
    // Same subject name as the issuing CA would be too easy to get wrong; a real other CA.
    const responderCert = await issueResponderCert(intermediate, { name: 'Delegated Wrong CA', signedBy: other.intermediates[0]! });
    const status = await checkLeafWith(behaviours.delegated(intermediate, responderCert));
    assertLeafError(status, `${VERIFICATION_FAILED}ResponderNotAuthorized`);
  });

  test('delegated certificate signed by the root (a CA of the same chain, not the issuer) → ResponderNotAuthorized', async () => {
    const responderCert = await issueResponderCert(intermediate, { name: 'Delegated By Root', signedBy: root });
    const status = await checkLeafWith(behaviours.delegated(intermediate, responderCert));
    assertLeafError(status, `${VERIFICATION_FAILED}ResponderNotAuthorized`);
  });
});

describe('CertID, freshness and nonce', () => {
  test('CertID for another serial → CertIdMismatch', async () => {
    const status = await checkLeafWith(behaviours.otherSerial(intermediate));
    assertLeafError(status, `${VERIFICATION_FAILED}CertIdMismatch`);
  });

  test('CertID for another issuer → CertIdMismatch', async () => {
    const status = await checkLeafWith(behaviours.otherIssuer(intermediate));
    assertLeafError(status, `${VERIFICATION_FAILED}CertIdMismatch`);
  });

  test('nextUpdate in the past (beyond the clock skew) → Expired', async () => {
    const status = await checkLeafWith(behaviours.expired(intermediate));
    assertLeafError(status, `${VERIFICATION_FAILED}Expired`, /nextUpdate/);
  });

  test('nextUpdate 1 min in the past, within the 5 min clock skew → Good', async () => {
    const status = await checkLeafWith(behaviours.expired(intermediate, 60_000));
    assertLeafGood(status);
  });

  test('thisUpdate in the future (beyond the clock skew) → NotYetValid', async () => {
    const status = await checkLeafWith(behaviours.notYetValid(intermediate));
    assertLeafError(status, `${VERIFICATION_FAILED}NotYetValid`, /thisUpdate/);
  });

  test('nonce enabled: echoed correctly → Good; the request carried a nonce', async () => {
    const status = await checkLeafWith(behaviours.good(intermediate), { nonce: true });
    assertLeafGood(status);
    const sent = leafResponder.requests[0]!.nonce;
    assert.ok(sent && sent.length > 0, 'a nonce was sent');
  });

  test('nonce enabled: wrong nonce echoed → NonceMismatch', async () => {
    const status = await checkLeafWith(behaviours.wrongNonce(intermediate), { nonce: true });
    assertLeafError(status, `${VERIFICATION_FAILED}NonceMismatch`);
  });

  test('nonce enabled: not echoed → Good (SPEC 3 verifies only an echoed nonce)', async () => {
    const status = await checkLeafWith(behaviours.noNonceEcho(intermediate), { nonce: true });
    assertLeafGood(status);
  });
});

describe('transport failures', () => {
  test('garbage bytes → Malformed', async () => {
    const status = await checkLeafWith(behaviours.garbage());
    assertLeafError(status, `${VERIFICATION_FAILED}Malformed`);
  });

  test('oversize chunked body → InternalError naming the limit', async () => {
    const status = await checkLeafWith(behaviours.oversize(200 * 1024, true));
    assertLeafError(status, 'InternalError', /65536/);
  });

  test('oversize body with Content-Length → InternalError naming the limit', async () => {
    const status = await checkLeafWith(behaviours.oversize(200 * 1024, false));
    assertLeafError(status, 'InternalError', /65536/);
  });

  test('maxResponseBytes option is the limit applied', async () => {
    const status = await checkLeafWith(behaviours.oversize(4096, true), { maxResponseBytes: 1000 });
    assertLeafError(status, 'InternalError', /1000/);
  });

  test('headers then nothing (never finishes) → InternalError within the budget', { timeout: 15_000 }, async () => {
    const status = await checkLeafWith(behaviours.hang(), { timeoutMs: SHORT_BUDGET_MS });
    assertLeafError(status, 'InternalError', /300 ms|timeout/);
  });

  test('partial body then nothing → InternalError within the budget', { timeout: 15_000 }, async () => {
    const status = await checkLeafWith(behaviours.hang(Buffer.from([0x30, 0x82])), { timeoutMs: SHORT_BUDGET_MS });
    assertLeafError(status, 'InternalError', /300 ms|timeout/);
  });

  test('connection closed without an answer → InternalError', async () => {
    const status = await checkLeafWith(behaviours.destroy());
    assertLeafError(status, 'InternalError');
  });

  test('HTTP 500 → InternalError', async () => {
    const status = await checkLeafWith(behaviours.httpStatus(500));
    assertLeafError(status, 'InternalError', /500/);
  });

  test('redirect → InternalError; the redirect target receives no request', async () => {
    const target = await startTestResponder(behaviours.good(intermediate));
    try {
      for (const code of [301, 302, 307, 308]) {
        const status = await checkLeafWith(behaviours.redirect(`${target.url}/elsewhere`, code));
        assertLeafError(status, 'InternalError', /redirect/);
        assert.ok(status.certificates.leaf.errorDetail!.includes(target.url), 'the detail names the Location');
      }
      assert.equal(target.counts.total, 0, 'the redirect must not be followed');
    } finally {
      await target.close();
    }
  });

  test('POST-only responder: GET first (405), then POST → Good; GET=1 POST=1', async () => {
    const status = await checkLeafWith(behaviours.postOnly(behaviours.good(intermediate)));
    assertLeafGood(status);
    assert.equal(leafResponder.counts.GET, 1);
    assert.equal(leafResponder.counts.POST, 1);
    assert.equal(leafResponder.requests[0]!.method, 'GET', 'a short request goes GET first (RFC 5019)');
    assert.equal(leafResponder.requests[1]!.contentType, 'application/ocsp-request');
  });

  test('HTTP 400 on GET → falls back to POST → Good', async () => {
    const status = await checkLeafWith(behaviours.sequence(behaviours.httpStatus(400), behaviours.good(intermediate)));
    assertLeafGood(status);
    assert.deepEqual([leafResponder.counts.GET, leafResponder.counts.POST], [1, 1]);
  });

  test('HTTP 415 on GET → falls back to POST → Good', async () => {
    const status = await checkLeafWith(behaviours.sequence(behaviours.httpStatus(415), behaviours.good(intermediate)));
    assertLeafGood(status);
    assert.deepEqual([leafResponder.counts.GET, leafResponder.counts.POST], [1, 1]);
  });

  test('both methods refused (405) → InternalError after exactly one fallback', async () => {
    const status = await checkLeafWith(behaviours.httpStatus(405));
    assertLeafError(status, 'InternalError', /405/);
    assert.deepEqual([leafResponder.counts.GET, leafResponder.counts.POST], [1, 1]);
  });

  test('GET-only responder with a long URL: POST first (405), then GET → Good; POST=1 GET=1', async () => {
    const longPath = `/ocsp/${'a'.repeat(220)}`;
    const getOnly = await startTestResponder(placeholder, { path: longPath });
    try {
      getOnly.setHandler(behaviours.getOnly(behaviours.good(intermediate)));
      const leaf = await issueLeaf(intermediate, [getOnly.url], 'Long URL Leaf');
      const result = await checkOnce(validatedPath([leaf, intermediate]));
      assert.ok(result.ok);
      const status = result.revocationStatus;
      assert.equal(status.certificates.leaf.status, 'Good', status.certificates.leaf.errorDetail);
      assert.equal(status.chainValidity, 'Valid');
      assert.deepEqual(revocationDecision(status), { allow: true });
      assert.deepEqual([getOnly.counts.POST, getOnly.counts.GET], [1, 1]);
      assert.equal(getOnly.requests[0]!.method, 'POST', 'a request whose GET URL exceeds 255 bytes goes POST first');
      assert.ok(Buffer.byteLength(`http://127.0.0.1:${getOnly.port}${getOnly.requests[1]!.url}`) > 255, 'the GET fallback uses the long URL');
      assert.equal(getOnly.requests[1]!.parseError, undefined, 'the GET fallback carries the whole request');
    } finally {
      await getOnly.close();
    }
  });

  test('unreachable responder (closed port) → InternalError', async () => {
    const port = await closedPort();
    const leaf = await issueLeaf(intermediate, [`http://127.0.0.1:${port}/ocsp`], 'Unreachable Leaf');
    rootResponder.reset();
    const result = await checkOnce(validatedPath([leaf, intermediate]));
    assert.ok(result.ok);
    const status = result.revocationStatus;
    const l = status.certificates.leaf;
    assert.equal(l.status, 'Error');
    assert.equal(l.errorType, 'InternalError');
    assert.ok(l.errorDetail && l.errorDetail.length > 0);
    assert.equal(l.responder, `http://127.0.0.1:${port}/ocsp`);
    assert.equal(status.chainValidity, 'Unknown');
    assert.deepEqual(revocationDecision(status), { allow: false, code: 'ClientCertRevocationUnknown' });
    assertGoodIntermediate(status);
  });
});

describe('chains', () => {
  let deep: TestChain;
  let deepResponder: TestResponder;
  let deepAnchors: TrustAnchorSet;
  const serialHex = (c: TestCert) => Buffer.from(c.cert.serialNumberBytes).toString('hex');

  before(async () => {
    deepResponder = await startTestResponder(placeholder);
    deep = await buildChain({ name: 'Deep', intermediates: 2, ocspUrl: () => deepResponder.url });
    deepAnchors = parseTrustStoreBundle(deep.root.pem);
  });
  after(async () => {
    await deepResponder?.close();
  });

  /** Answers each CertID for its issuer; `special` overrides the answer for one certificate. */
  function perCertificate(special: TestCert, handler: TestResponderHandler): TestResponderHandler {
    const normal = behaviours.good([deep.intermediates[1]!, deep.intermediates[0]!, deep.root]);
    return (req) => (req.certId && req.certId.serialNumber.toString('hex') === serialHex(special) ? handler(req) : normal(req));
  }

  async function checkDeep(handler: TestResponderHandler): Promise<RevocationStatus> {
    deepResponder.setHandler(handler);
    deepResponder.reset();
    const result = await checkOnce(validatedPath(deep.presented, deepAnchors));
    assert.ok(result.ok);
    assert.equal(deepResponder.counts.total, 3, 'leaf and both intermediates are checked; the anchor never');
    return result.revocationStatus;
  }

  test('2 intermediates, all good → Valid; intermediates listed from the leaf issuer upwards', async () => {
    const status = await checkDeep(behaviours.good([deep.intermediates[1]!, deep.intermediates[0]!, deep.root]));
    assert.equal(status.chainValidity, 'Valid');
    assert.equal(status.certificates.intermediates.length, 2);
    assert.equal(status.certificates.intermediates[0]!.serialNumber, formatSerialNumber(deep.intermediates[1]!.cert.serialNumberBytes));
    assert.equal(status.certificates.intermediates[1]!.serialNumber, formatSerialNumber(deep.intermediates[0]!.cert.serialNumberBytes));
    const asked = new Set(deepResponder.requests.map((r) => r.certId!.serialNumber.toString('hex')));
    assert.ok(!asked.has(serialHex(deep.root)), 'the trust anchor is never checked');
  });

  test('2 intermediates, the upper intermediate revoked → Invalid, ClientCertRevoked', async () => {
    const upper = deep.intermediates[0]!; // issued by the root
    const status = await checkDeep(perCertificate(upper, respond(deep.root, () => ({ certStatus: 'revoked', revocationReason: 2 }))));
    assert.equal(status.certificates.leaf.status, 'Good');
    assert.equal(status.certificates.intermediates[0]!.status, 'Good');
    assert.equal(status.certificates.intermediates[1]!.status, 'Revoked');
    assert.equal(status.certificates.intermediates[1]!.revocationReason, 'cACompromise');
    assert.equal(status.chainValidity, 'Invalid');
    assert.deepEqual(revocationDecision(status), { allow: false, code: 'ClientCertRevoked' });
  });

  test('2 intermediates, the leaf issuer revoked → Invalid', async () => {
    const lower = deep.intermediates[1]!;
    const status = await checkDeep(perCertificate(lower, respond(deep.intermediates[0]!, () => ({ certStatus: 'revoked' }))));
    assert.equal(status.certificates.intermediates[0]!.status, 'Revoked');
    assert.equal(status.chainValidity, 'Invalid');
  });

  test('leaf Good + intermediate Error → Unknown, ClientCertRevocationUnknown', async () => {
    const status = await checkDeep(perCertificate(deep.intermediates[1]!, behaviours.httpStatus(500)));
    assert.equal(status.certificates.leaf.status, 'Good');
    assert.equal(status.certificates.intermediates[0]!.status, 'Error');
    assert.equal(status.certificates.intermediates[0]!.errorType, 'InternalError');
    assert.equal(status.certificates.intermediates[1]!.status, 'Good');
    assert.equal(status.chainValidity, 'Unknown');
    assert.deepEqual(revocationDecision(status), { allow: false, code: 'ClientCertRevocationUnknown' });
  });

  test('intermediate Revoked + leaf Error → Invalid (Revoked wins)', async () => {
    const revokedUpper = perCertificate(deep.intermediates[0]!, respond(deep.root, () => ({ certStatus: 'revoked' })));
    const leafSerial = serialHex(deep.leaf);
    const status = await checkDeep((req) => (req.certId?.serialNumber.toString('hex') === leafSerial ? behaviours.garbage()(req) : revokedUpper(req)));
    assert.equal(status.certificates.leaf.status, 'Error');
    assert.equal(status.certificates.leaf.errorType, `${VERIFICATION_FAILED}Malformed`);
    assert.equal(status.chainValidity, 'Invalid');
    assert.deepEqual(revocationDecision(status), { allow: false, code: 'ClientCertRevoked' });
  });
});

describe('certificates without an OCSP URL', () => {
  test('leaf without AIA → ClientCertOcspEndpointMissing, no request sent', async () => {
    const leaf = await issueLeaf(intermediate, [], 'No AIA Leaf');
    leafResponder.reset();
    rootResponder.reset();
    const result = await checkOnce(validatedPath([leaf, intermediate]));
    assert.equal(result.ok, false);
    assert.ok(!result.ok);
    assert.equal(result.code, 'ClientCertOcspEndpointMissing');
    assert.equal(result.certificateIndex, 0);
    assert.match(result.reason, /leaf/);
    assert.equal(leafResponder.counts.total + rootResponder.counts.total, 0, 'no responder is contacted');
  });

  test('intermediate without AIA → ClientCertOcspEndpointMissing (index 1), no request sent — not even for the leaf', async () => {
    const noAia = await buildChain({ name: 'No AIA Intermediate', intermediates: 1, ocspUrl: (d) => (d === 0 ? leafResponder.url : undefined) });
    leafResponder.reset();
    const result = await checkOnce(validatedPath(noAia.presented, parseTrustStoreBundle(noAia.root.pem)));
    assert.ok(!result.ok);
    assert.equal(result.code, 'ClientCertOcspEndpointMissing');
    assert.equal(result.certificateIndex, 1);
    assert.equal(leafResponder.counts.total, 0);
  });
});
