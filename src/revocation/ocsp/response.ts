/**
 * OCSP response side (RFC 6960 4.2, 3.2; RFC 5019 2.2, 4; RFC 8954): decodes an
 * OCSPResponse and verifies it for one request, turning every failure into a distinct
 * SPEC section 3 `{Type}`.
 *
 * pkijs decodes the structures; everything that decides trust is done here with
 * node:crypto, because pkijs' `BasicOCSPResponse.verify()` throws when the response
 * carries no certificates (legal when the issuing CA signs itself) and checks neither
 * the delegated responder's EKU and validity nor freshness.
 */
import { createHash, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { OcspVerificationError } from '../../errors.js';
import {
  OID, ParsedCertificate, SUPPORTED_SIGNATURE_ALGORITHMS, formatDnRfc4514, signatureAlgorithmName, signatureScheme, verifySignature,
} from '../../pki/index.js';
import { issuerHashes } from './request.js';
import { CRL_REASONS, type CertId, type OcspCertStatus, type OcspVerificationFailure, type VerifiedOcspResponse } from './types.js';

/** OCSPResponseStatus values (RFC 6960 4.2.1) → their RFC names. 4 is "not used". */
export const OCSP_RESPONSE_STATUS: Readonly<Record<number, string>> = Object.freeze({
  0: 'successful',
  1: 'malformedRequest',
  2: 'internalError',
  3: 'tryLater',
  5: 'sigRequired',
  6: 'unauthorized',
});

/** What {@link parseAndVerifyOcspResponse} checks a response against. */
export interface OcspVerifyContext {
  /** The CertID that was sent (normally `OcspRequest.certId`, built from `issuer`). */
  certId: CertId;
  /** The issuing CA of the checked certificate: the trust root of this response. */
  issuer: ParsedCertificate;
  /** The raw nonce bytes sent (`OcspRequest.nonce`), or undefined when none was sent. */
  nonce?: Buffer | undefined;
  /** The current time (injected; the cache and tests move it). */
  now: Date;
  /** Tolerated clock difference for thisUpdate/nextUpdate, in milliseconds (SPEC 3: default 300 000). */
  clockSkewMs: number;
  /**
   * Oldest acceptable thisUpdate when a SingleResponse has no nextUpdate, in
   * milliseconds before `now` (default {@link DEFAULT_MAX_AGE_WITHOUT_NEXT_UPDATE_MS}).
   * Without it a captured response without nextUpdate could be replayed forever.
   */
  maxAgeWithoutNextUpdateMs?: number;
}

/** Default of {@link OcspVerifyContext.maxAgeWithoutNextUpdateMs}: 24 hours. */
export const DEFAULT_MAX_AGE_WITHOUT_NEXT_UPDATE_MS = 24 * 3600_000;

/**
 * Decodes and verifies one DER OCSPResponse for the request described by `ctx`
 * (RFC 6960 3.2 and 4.2, RFC 5019 4, SPEC section 3).
 *
 * Checks, in this order; the first failure is thrown as an {@link OcspVerificationError}
 * whose `type` is:
 *
 * 1. `Malformed` — the bytes are not one DER/BER OCSPResponse (trailing bytes too), or
 *    the responseStatus is not a value RFC 6960 defines.
 * 2. `ResponderStatus:<status>` — responseStatus is not `successful`; `<status>` is the
 *    RFC name: `malformedRequest`, `internalError`, `tryLater`, `sigRequired`,
 *    `unauthorized`. Nothing else of such a response is looked at.
 * 3. `Malformed` — no responseBytes, a responseType other than id-pkix-ocsp-basic, an
 *    undecodable BasicOCSPResponse, ResponseData version other than v1, no
 *    SingleResponse, a certificate in `certs` that does not parse, a non-zero count of
 *    unused bits in the signature, a nextUpdate before its thisUpdate, a revocation
 *    without revocationTime, or an extension that is critical and not understood or
 *    appears twice (RFC 6960 4.4, RFC 5280 4.2). Nothing is trusted yet.
 * 4. `ResponderNotAuthorized` — the responderID (byName: the Name DER, byte-equal;
 *    byKey: SHA-1 of the public key bits) designates neither the issuing CA itself
 *    (`ctx.issuer`, or any included certificate carrying the issuer's public key) nor
 *    a certificate in `certs` that is a proper delegated responder (RFC 6960 4.2.2.2):
 *    issued by `ctx.issuer` directly (issuer Name equal to the CA's subject and the
 *    certificate's signature verifying with the CA's key), with id-kp-OCSPSigning in
 *    its extKeyUsage (anyExtendedKeyUsage does not count), within notBefore..notAfter
 *    at `ctx.now` (strictly: no clock-skew allowance, like path validation), with no
 *    unhandled critical extension, and held to the SPEC section 2 key and signature
 *    rules (RSA 2048/3072/4096 or ECDSA P-256/P-384 key; SHA-256/384/512 signature). A responder certificate signed by another CA, even
 *    one that chains to the same root, is not authorized.
 * 5. `SignatureInvalid` — the signature over the tbsResponseData bytes exactly as
 *    received does not verify with the authorized signer's key. Accepted algorithms:
 *    sha256/384/512WithRSAEncryption (PKCS#1 v1.5), RSASSA-PSS with SHA-256/384/512
 *    and MGF1 over the same hash, ecdsa-with-SHA256/384/512 (DER signatures). SHA-1
 *    and MD5 signatures are rejected as weak (SPEC section 2 signature set), also
 *    with `SignatureInvalid`.
 * 6. `CertIdMismatch` — no SingleResponse has a CertID equal to `ctx.certId`: same
 *    hash algorithm, issuerNameHash, issuerKeyHash and serial number (compared as
 *    INTEGER values, so a responder that re-encodes a non-minimal serial still
 *    matches). When a SingleResponse uses another hash algorithm (SHA-256/384/512),
 *    the issuer hashes are recomputed from `ctx.issuer` with that algorithm; other
 *    algorithms never match. When several SingleResponses match, the most severe
 *    status wins (revoked > unknown > good): contradictory answers never read as good.
 * 7. `NotYetValid` — thisUpdate or producedAt > now + clockSkewMs. `Expired` —
 *    nextUpdate (when present) < now − clockSkewMs, or, without nextUpdate, thisUpdate
 *    older than `maxAgeWithoutNextUpdateMs` (+ skew) so a response cannot be replayed
 *    forever. Bounds are inclusive-accepting: a value exactly at the bound passes.
 * 8. `NonceMismatch` — a nonce was sent and the response carries an id-pkix-ocsp-nonce
 *    extension whose value is neither the RFC 8954 form (OCTET STRING wrapping our
 *    bytes) nor our bare bytes. A nonce sent but not echoed is accepted (SPEC
 *    section 3: "verified when the responder echoes one"); a nonce echoed when none was
 *    sent is ignored.
 *
 * Authorization is checked before the signature so that no signature work is done for
 * a signer that could not be trusted anyway, and so that a response signed by an
 * unrelated key that *claims* to be the CA reads as `SignatureInvalid`, while one
 * naming a responder the CA never delegated to reads as `ResponderNotAuthorized`.
 *
 * @param der the body the responder sent (copied into the result as `der`).
 * @returns the verified status of the one certificate: `good`, `revoked` (with
 *   revocationTime and, when given, the CRLReason name of {@link CRL_REASONS}; an
 *   unknown reason code is reported as its number) or `unknown`.
 * @throws OcspVerificationError with one of the types above; never anything else.
 */
export function parseAndVerifyOcspResponse(der: Uint8Array, ctx: OcspVerifyContext): VerifiedOcspResponse {
  const bytes = Buffer.from(der);
  const { status, responseBytes } = decodeOuter(bytes);
  if (status !== 0) {
    fail(`ResponderStatus:${OCSP_RESPONSE_STATUS[status] as string}`, `the responder answered responseStatus ${OCSP_RESPONSE_STATUS[status] as string} (${status})`);
  }
  const basic = decodeBasic(responseBytes);

  const signers = authorizedSigners(basic, ctx);
  const signer = signers.find((s) => verifyResponseSignature(basic, () => (s.cert ?? ctx.issuer).publicKeyObject));
  if (!signer) {
    const alg = basic.signatureAlgorithm;
    const unsupported = signatureScheme(alg.algorithmId, alg.params);
    fail('SignatureInvalid', typeof unsupported === 'string'
      ? `the response signature cannot be verified: ${unsupported}`
      : `the response signature does not verify with the key of ${signers.map((s) => s.describe).join(' or ')}`);
  }

  const matching = basic.responses.filter((r) => certIdMatches(r.certId, ctx));
  if (matching.length === 0) {
    fail('CertIdMismatch', `none of the ${basic.responses.length} SingleResponse(s) is for the requested certificate (serial ${ctx.certId.serialNumber.toString('hex')})`);
  }
  // Several SingleResponses for our CertID: the most severe one wins (revoked, then
  // unknown, then good), so contradictory answers can never read as good.
  const single = matching.reduce((a, b) => (SEVERITY[b.certStatus] > SEVERITY[a.certStatus] ? b : a));

  const now = ctx.now.getTime();
  if (single.thisUpdate.getTime() > now + ctx.clockSkewMs) {
    fail('NotYetValid', `thisUpdate ${single.thisUpdate.toISOString()} is in the future (now ${ctx.now.toISOString()}, clock skew ${ctx.clockSkewMs} ms)`);
  }
  if (basic.producedAt.getTime() > now + ctx.clockSkewMs) {
    fail('NotYetValid', `producedAt ${basic.producedAt.toISOString()} is in the future (now ${ctx.now.toISOString()}, clock skew ${ctx.clockSkewMs} ms)`);
  }
  if (single.nextUpdate && single.nextUpdate.getTime() < now - ctx.clockSkewMs) {
    fail('Expired', `nextUpdate ${single.nextUpdate.toISOString()} has passed (now ${ctx.now.toISOString()}, clock skew ${ctx.clockSkewMs} ms)`);
  }
  const maxAge = ctx.maxAgeWithoutNextUpdateMs ?? DEFAULT_MAX_AGE_WITHOUT_NEXT_UPDATE_MS;
  if (!single.nextUpdate && single.thisUpdate.getTime() < now - maxAge - ctx.clockSkewMs) {
    fail('Expired', `the response has no nextUpdate and its thisUpdate ${single.thisUpdate.toISOString()} is older than ${Math.round(maxAge / 1000)} s (now ${ctx.now.toISOString()})`);
  }

  if (ctx.nonce && basic.nonce && !nonceMatches(basic.nonce, ctx.nonce)) {
    fail('NonceMismatch', `the response echoes nonce ${nonceForDisplay(basic.nonce)}, not the ${ctx.nonce.toString('hex')} that was sent`);
  }

  return {
    certStatus: single.certStatus,
    revocationTime: single.revocationTime,
    revocationReason: single.revocationReason,
    thisUpdate: single.thisUpdate,
    nextUpdate: single.nextUpdate,
    producedAt: basic.producedAt,
    signer: signer.cert ? 'delegated' : 'issuer',
    signerSubject: subjectString(signer.cert ?? ctx.issuer),
    der: bytes,
  };
}

// ---------------------------------------------------------------------------------
// Decoding (all failures are `Malformed`)

function fail(type: OcspVerificationFailure, message: string, cause?: unknown): never {
  throw new OcspVerificationError(type, message, cause === undefined ? undefined : { cause });
}

/** Runs a decoding step; any error that is not already an OcspVerificationError becomes `Malformed`. */
function malformed<T>(what: string, step: () => T): T {
  try {
    return step();
  } catch (err) {
    if (err instanceof OcspVerificationError) throw err;
    return fail('Malformed', `${what}: ${(err as Error).message || String(err)}`, err);
  }
}

function decodeExact(bytes: Uint8Array, what: string): asn1js.AsnType {
  if (bytes.length === 0) throw new Error(`${what} is empty`);
  const asn = asn1js.fromBER(bytes);
  if (asn.offset === -1) throw new Error(asn.result.error || `${what} is not valid BER`);
  if (asn.offset !== bytes.length) throw new Error(`${bytes.length - asn.offset} trailing byte(s) after the ${what}`);
  return asn.result;
}

function decodeOuter(bytes: Buffer): { status: number; responseBytes: pkijs.ResponseBytes | undefined } {
  return malformed('not an OCSPResponse (RFC 6960 4.2.1)', () => {
    const ocsp = new pkijs.OCSPResponse({ schema: decodeExact(bytes, 'OCSPResponse') });
    const status = ocsp.responseStatus.valueBlock.valueDec;
    if (!Number.isInteger(status) || OCSP_RESPONSE_STATUS[status] === undefined) {
      throw new Error(`responseStatus ${status} is not defined by RFC 6960`);
    }
    return { status, responseBytes: ocsp.responseBytes };
  });
}

interface DecodedCertId {
  hashAlgorithm: string;
  issuerNameHash: Buffer;
  issuerKeyHash: Buffer;
  serialNumber: Buffer;
}

interface DecodedSingleResponse {
  certId: DecodedCertId;
  certStatus: OcspCertStatus;
  revocationTime: Date | undefined;
  revocationReason: string | undefined;
  thisUpdate: Date;
  nextUpdate: Date | undefined;
}

interface DecodedBasic {
  /** DER of tbsResponseData exactly as received: the signed bytes. */
  tbs: Buffer;
  responderId: { byName: Buffer } | { byKey: Buffer };
  producedAt: Date;
  responses: DecodedSingleResponse[];
  nonce: Buffer | undefined;
  signatureAlgorithm: { algorithmId: string; params: unknown };
  signature: Buffer;
  certs: ParsedCertificate[];
}

function decodeBasic(responseBytes: pkijs.ResponseBytes | undefined): DecodedBasic {
  return malformed('malformed BasicOCSPResponse (RFC 6960 4.2.1)', () => {
    if (!responseBytes) throw new Error('a successful response carries no responseBytes');
    if (responseBytes.responseType !== OID.ocspBasic) {
      throw new Error(`responseType ${responseBytes.responseType} is not id-pkix-ocsp-basic`);
    }
    if (responseBytes.response.valueBlock.isConstructed) throw new Error('responseBytes.response is a constructed OCTET STRING');
    const root = decodeExact(responseBytes.response.valueBlock.valueHexView, 'BasicOCSPResponse');
    // pkijs reports an empty `responses` SEQUENCE obscurely; say it plainly.
    const rawTbs = (root as asn1js.Sequence).valueBlock?.value?.[0] as asn1js.Sequence | undefined;
    const rawResponses = rawTbs?.valueBlock?.value?.find((b) => b.idBlock.tagClass === 1 && b.idBlock.tagNumber === 16) as asn1js.Sequence | undefined;
    if (rawResponses && rawResponses.valueBlock.value.length === 0) throw new Error('no SingleResponse');
    const basic = new pkijs.BasicOCSPResponse({ schema: root });
    const data = basic.tbsResponseData;
    if (data.version !== undefined && data.version !== 0) throw new Error(`ResponseData version ${data.version + 1} is not v1`);

    // Raw pieces from the decoded tree (pkijs keeps the parsed objects, not the bytes).
    const elements = (root as asn1js.Sequence).valueBlock.value;
    const tbsBlock = elements[0] as asn1js.Sequence;
    const tbs = Buffer.from(tbsBlock.valueBeforeDecodeView);
    const tbsItems = tbsBlock.valueBlock.value;
    const ridBlock = tbsItems.find((b) => b.idBlock.tagClass === 3 && (b.idBlock.tagNumber === 1 || b.idBlock.tagNumber === 2)) as asn1js.Constructed | undefined;
    const ridInner = ridBlock?.valueBlock.value[0];
    if (!ridBlock || !ridInner) throw new Error('no responderID');
    let responderId: DecodedBasic['responderId'];
    if (ridBlock.idBlock.tagNumber === 1) {
      responderId = { byName: Buffer.from(ridInner.valueBeforeDecodeView) };
    } else {
      const byKey = Buffer.from((ridInner as asn1js.OctetString).valueBlock.valueHexView);
      if (byKey.length !== 20) throw new Error(`responderID byKey is ${byKey.length} bytes, not a SHA-1 hash`);
      responderId = { byKey };
    }

    const certsBlock = elements.find((b) => b.idBlock.tagClass === 3 && b.idBlock.tagNumber === 0) as asn1js.Constructed | undefined;
    const certSeq = certsBlock?.valueBlock.value[0] as asn1js.Sequence | undefined;
    const certs = (certSeq?.valueBlock.value ?? []).map((c, i) =>
      malformed(`certificate #${i + 1} in the response`, () => ParsedCertificate.fromDer(c.valueBeforeDecodeView)));

    if (data.responses.length === 0) throw new Error('no SingleResponse');
    const responses = data.responses.map(decodeSingle);

    const nonce = checkExtensions(data.responseExtensions, new Set([OID.ocspNonce]), 'responseExtensions').get(OID.ocspNonce);

    if (basic.signature.valueBlock.unusedBits !== 0) throw new Error('the signature BIT STRING has unused bits');
    const producedAt = validDate(data.producedAt, 'producedAt');
    return {
      tbs, responderId, producedAt, responses, nonce, certs,
      signatureAlgorithm: { algorithmId: basic.signatureAlgorithm.algorithmId, params: basic.signatureAlgorithm.algorithmParams },
      signature: Buffer.from(basic.signature.valueBlock.valueHexView),
    };
  });
}

function validDate(d: Date | undefined, what: string): Date {
  if (!(d instanceof Date) || Number.isNaN(d.getTime())) throw new Error(`${what} is not a valid GeneralizedTime`);
  return d;
}

/**
 * Checks an extension list (RFC 6960 4.4): no duplicates, no critical extension outside
 * `understood`. Returns the extnValue bytes of the understood ones.
 */
function checkExtensions(exts: pkijs.Extension[] | undefined, understood: ReadonlySet<string>, where: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const seen = new Set<string>();
  for (const ext of exts ?? []) {
    if (seen.has(ext.extnID)) throw new Error(`${where}: extension ${ext.extnID} appears twice`);
    seen.add(ext.extnID);
    if (understood.has(ext.extnID)) out.set(ext.extnID, Buffer.from(ext.extnValue.valueBlock.valueHexView));
    else if (ext.critical) throw new Error(`${where}: critical extension ${ext.extnID} is not understood`);
  }
  return out;
}

function decodeSingle(sr: pkijs.SingleResponse, index: number): DecodedSingleResponse {
  const where = `SingleResponse #${index + 1}`;
  const certId: DecodedCertId = {
    hashAlgorithm: sr.certID.hashAlgorithm.algorithmId,
    issuerNameHash: Buffer.from(sr.certID.issuerNameHash.valueBlock.valueHexView),
    issuerKeyHash: Buffer.from(sr.certID.issuerKeyHash.valueBlock.valueHexView),
    serialNumber: Buffer.from(sr.certID.serialNumber.valueBlock.valueHexView),
  };
  const thisUpdate = validDate(sr.thisUpdate, `${where} thisUpdate`);
  const nextUpdate = sr.nextUpdate === undefined ? undefined : validDate(sr.nextUpdate, `${where} nextUpdate`);
  if (nextUpdate && nextUpdate.getTime() < thisUpdate.getTime()) {
    throw new Error(`${where}: nextUpdate ${nextUpdate.toISOString()} is before thisUpdate ${thisUpdate.toISOString()}`);
  }
  checkExtensions(sr.singleExtensions, new Set(), `${where} singleExtensions`);

  const status = sr.certStatus as asn1js.BaseBlock;
  if (!status?.idBlock || status.idBlock.tagClass !== 3) throw new Error(`${where}: certStatus is missing`);
  let certStatus: OcspCertStatus;
  let revocationTime: Date | undefined;
  let revocationReason: string | undefined;
  switch (status.idBlock.tagNumber) {
    case 0:
      certStatus = 'good';
      break;
    case 2:
      certStatus = 'unknown';
      break;
    case 1: {
      certStatus = 'revoked';
      const parts = (status as asn1js.Constructed).valueBlock.value ?? [];
      const time = parts[0];
      if (!(time instanceof asn1js.GeneralizedTime)) throw new Error(`${where}: revoked without revocationTime`);
      revocationTime = validDate(time.toDate(), `${where} revocationTime`);
      const reasonWrapper = parts[1] as asn1js.Constructed | undefined;
      if (reasonWrapper) {
        const reason = reasonWrapper.valueBlock.value?.[0];
        if (!(reason instanceof asn1js.Enumerated)) throw new Error(`${where}: revocationReason is not a CRLReason`);
        const code = reason.valueBlock.valueDec;
        revocationReason = CRL_REASONS[code] ?? String(code);
      }
      break;
    }
    default:
      throw new Error(`${where}: certStatus [${status.idBlock.tagNumber}] is not good, revoked or unknown`);
  }
  return { certId, certStatus, revocationTime, revocationReason, thisUpdate, nextUpdate };
}

// ---------------------------------------------------------------------------------
// Signer authorization (RFC 6960 4.2.2.2)

interface SignerCandidate {
  /** Undefined: the issuing CA (`ctx.issuer`) itself. Otherwise the delegated responder certificate. */
  cert: ParsedCertificate | undefined;
  describe: string;
}

function sha1(data: Uint8Array): Buffer {
  return createHash('sha1').update(data).digest();
}

function responderIdDesignates(rid: DecodedBasic['responderId'], subjectDer: Buffer, publicKeyBits: Buffer): boolean {
  return 'byName' in rid ? rid.byName.equals(subjectDer) : rid.byKey.equals(sha1(publicKeyBits));
}

function authorizedSigners(basic: DecodedBasic, ctx: OcspVerifyContext): SignerCandidate[] {
  const { issuer, now } = ctx;
  const rid = basic.responderId;
  const authorized: SignerCandidate[] = [];
  if (responderIdDesignates(rid, issuer.subjectDer, issuer.publicKeyBits)) {
    authorized.push({ cert: undefined, describe: `the issuing CA (${subjectString(issuer)})` });
  }
  const refusals: string[] = [];
  for (const cert of basic.certs) {
    if (!responderIdDesignates(rid, cert.subjectDer, cert.publicKeyBits)) continue;
    if (cert.publicKeyBits.equals(issuer.publicKeyBits)) {
      // A certificate for the CA's own key: a signature with it is the CA's own.
      if (authorized.every((a) => a.cert !== undefined)) authorized.unshift({ cert: undefined, describe: `the issuing CA (${subjectString(issuer)})` });
      continue;
    }
    const name = subjectString(cert);
    if (!cert.issuerDer.equals(issuer.subjectDer) || !cert.isSignedBy(issuer)) {
      refusals.push(`${name} was not issued by the issuing CA ${subjectString(issuer)}`);
    } else if (!cert.extKeyUsage?.includes(OID.kpOcspSigning)) {
      refusals.push(`${name} lacks the id-kp-OCSPSigning extended key usage`);
    } else if (now.getTime() < cert.notBefore.getTime() || now.getTime() > cert.notAfter.getTime()) {
      refusals.push(`${name} is outside its validity period (${cert.notBefore.toISOString()} .. ${cert.notAfter.toISOString()})`);
    } else if (cert.unhandledCriticalExtensions.length > 0) {
      refusals.push(`${name} has unhandled critical extension(s) ${cert.unhandledCriticalExtensions.join(', ')}`);
    } else if (!cert.publicKey.supported) {
      refusals.push(`${name} has an unsupported key (${cert.publicKey.description}; RSA 2048/3072/4096 or ECDSA P-256/P-384 are accepted)`);
    } else if (!SUPPORTED_SIGNATURE_ALGORITHMS.has(cert.signatureAlgorithmOid)) {
      refusals.push(`${name} is signed with ${signatureAlgorithmName(cert.signatureAlgorithmOid)} (SHA-256/384/512 with RSA, RSA-PSS or ECDSA are accepted)`);
    } else {
      authorized.push({ cert, describe: `delegated responder ${name}` });
    }
  }
  if (authorized.length === 0) {
    const who = 'byName' in rid ? `byName ${describeName(rid.byName)}` : `byKey ${rid.byKey.toString('hex')}`;
    fail('ResponderNotAuthorized', refusals.length > 0
      ? `the response signer is not authorized for ${subjectString(issuer)}: ${refusals.join('; ')}`
      : `responderID ${who} is neither the issuing CA ${subjectString(issuer)} nor a certificate included in the response`);
  }
  return authorized;
}

// ---------------------------------------------------------------------------------
// Signature (RFC 6960 4.2.1: signature over the DER of tbsResponseData)

/** Verifies the response signature with the key `getKey` returns; false on any failure (never throws). */
function verifyResponseSignature(basic: DecodedBasic, getKey: () => KeyObject): boolean {
  const scheme = signatureScheme(basic.signatureAlgorithm.algorithmId, basic.signatureAlgorithm.params);
  if (typeof scheme === 'string') return false;
  try {
    return verifySignature(scheme, basic.tbs, basic.signature, getKey());
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------
// CertID match, nonce

/** INTEGER content octets without redundant leading 00/FF octets (X.690 8.3.2), for value comparison. */
function minimalInteger(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && ((b[i] === 0x00 && (b[i + 1]! & 0x80) === 0) || (b[i] === 0xff && (b[i + 1]! & 0x80) !== 0))) i++;
  return b.subarray(i);
}

function certIdMatches(got: DecodedCertId, ctx: OcspVerifyContext): boolean {
  if (!minimalInteger(got.serialNumber).equals(minimalInteger(ctx.certId.serialNumber))) return false;
  const expected = got.hashAlgorithm === ctx.certId.hashAlgorithm ? ctx.certId : issuerHashes(ctx.issuer, got.hashAlgorithm);
  if (!expected) return false;
  return got.issuerNameHash.equals(expected.issuerNameHash) && got.issuerKeyHash.equals(expected.issuerKeyHash);
}

/** The echoed nonce bytes in hex, unwrapped from the RFC 8954 OCTET STRING when they are wrapped. */
function nonceForDisplay(extnValue: Buffer): string {
  const asn = asn1js.fromBER(extnValue);
  if (asn.offset === extnValue.length && asn.result instanceof asn1js.OctetString && !asn.result.valueBlock.isConstructed) {
    return Buffer.from(asn.result.valueBlock.valueHexView).toString('hex');
  }
  return extnValue.toString('hex');
}

const SEVERITY: Readonly<Record<'good' | 'unknown' | 'revoked', number>> = { good: 0, unknown: 1, revoked: 2 };

/** RFC 8954: extnValue is the DER of `Nonce ::= OCTET STRING`; pre-RFC 8954 responders may put the bare bytes. */
function nonceMatches(extnValue: Buffer, sent: Buffer): boolean {
  if (extnValue.equals(sent)) return true;
  const asn = asn1js.fromBER(extnValue);
  return asn.offset === extnValue.length
    && asn.result instanceof asn1js.OctetString
    && !asn.result.valueBlock.isConstructed
    && Buffer.from(asn.result.valueBlock.valueHexView).equals(sent);
}

// ---------------------------------------------------------------------------------

/** Subject DN for logs and messages: RFC 4514, most specific RDN first (`CN=…, O=…, C=…`). */
function subjectString(cert: ParsedCertificate): string {
  return describeName(cert.subjectDer);
}

/** A Name DER in the RFC 4514 form of pki/; hex when it does not decode. */
function describeName(der: Buffer): string {
  try {
    return formatDnRfc4514(der);
  } catch {
    return `Name ${der.toString('hex')}`;
  }
}
