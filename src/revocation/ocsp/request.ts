/**
 * OCSP request side (RFC 6960 4.1, RFC 5019 2.1, RFC 8954): the CertID of a
 * certificate, the DER of an unsigned one-certificate OCSPRequest and the RFC 5019 GET
 * URL form. The DER is written by hand (a handful of TLVs) so that every byte is under
 * our control: in particular the serial number is copied exactly as the certificate
 * encodes it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { InvalidArgumentError } from '../../errors.js';
import { OID, type ParsedCertificate } from '../../pki/index.js';
import type { CertId, OcspRequest } from './types.js';

// ---------------------------------------------------------------------------------
// Minimal DER writer (X.690 8.1): definite lengths, short form below 128.

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

const SEQUENCE = 0x30;
const OCTET_STRING = 0x04;
const INTEGER = 0x02;
const NULL = 0x05;
const OBJECT_IDENTIFIER = 0x06;
/** [2] EXPLICIT, constructed, context-specific (TBSRequest.requestExtensions). */
const CONTEXT_2_CONSTRUCTED = 0xa2;

function encodeOid(dotted: string): Buffer {
  const arcs = dotted.split('.').map((a) => BigInt(a));
  const [a, b, ...rest] = arcs as [bigint, bigint, ...bigint[]];
  const out: number[] = [];
  for (const arc of [a * 40n + b, ...rest]) {
    const chunk: number[] = [Number(arc & 0x7fn)];
    for (let v = arc >> 7n; v > 0n; v >>= 7n) chunk.unshift(Number(v & 0x7fn) | 0x80);
    out.push(...chunk);
  }
  return tlv(OBJECT_IDENTIFIER, Buffer.from(out));
}

/** AlgorithmIdentifier for SHA-1 with NULL parameters, as OpenSSL and Go write it. */
const SHA1_ALGORITHM_IDENTIFIER = tlv(SEQUENCE, encodeOid(OID.sha1), tlv(NULL));

// ---------------------------------------------------------------------------------

/**
 * Builds the CertID of `cert` (RFC 6960 4.1.1) with SHA-1, the RFC 5019 2.1.1 profile:
 * - `issuerNameHash` = SHA-1 over the DER of the issuer's subject Name. In any chain
 *   that path validation accepts this is the same byte string as `cert`'s issuer field
 *   (the input RFC 6960 names); the issuer's subject is used because that is what
 *   responders (OpenSSL, Go x/crypto/ocsp, EJBCA) hash when they match a request.
 * - `issuerKeyHash` = SHA-1 over the value of the issuer's subjectPublicKey BIT STRING
 *   (without tag, length and unused-bits octet).
 * - `serialNumber` = the content octets of `cert`'s serialNumber INTEGER exactly as the
 *   certificate encodes them (a leading 00 or a non-minimal encoding is kept).
 *
 * `issuer` must be the certificate whose key signed `cert`; this is not checked here.
 * Never throws.
 */
export function buildCertId(cert: ParsedCertificate, issuer: ParsedCertificate): CertId {
  return {
    hashAlgorithm: OID.sha1,
    issuerNameHash: issuer.subjectNameHashSha1,
    issuerKeyHash: issuer.keyHashSha1,
    serialNumber: Buffer.from(cert.serialNumberBytes),
  };
}

/** Input of {@link buildOcspRequest}. */
export interface BuildOcspRequestOptions {
  /** The certificate whose status is asked. */
  cert: ParsedCertificate;
  /** Its issuing CA (the certificate whose key signed `cert`). */
  issuer: ParsedCertificate;
  /**
   * Nonce (RFC 8954): `true` sends 32 fresh random bytes; a Buffer (1–32 bytes) sends
   * exactly those bytes (tests, or a caller with its own randomness); `false` or
   * absent sends none (the SPEC section 3 default, which keeps responses cacheable).
   */
  nonce?: Buffer | boolean;
}

/** RFC 8954 2.1: `Nonce ::= OCTET STRING(SIZE(1..32))`. */
const MAX_NONCE_LENGTH = 32;

/**
 * Encodes an unsigned OCSPRequest (RFC 6960 4.1.1) for one certificate:
 *
 * ```
 * OCSPRequest ::= SEQUENCE { tbsRequest TBSRequest }            -- no optionalSignature
 * TBSRequest  ::= SEQUENCE {                                    -- version v1 (DEFAULT, omitted),
 *     requestList SEQUENCE OF Request,                          -- no requestorName
 *     requestExtensions [2] EXPLICIT Extensions OPTIONAL }      -- only when a nonce is sent
 * Request     ::= SEQUENCE { reqCert CertID }                   -- no singleRequestExtensions
 * ```
 *
 * The nonce extension (id-pkix-ocsp-nonce, not critical) carries, per RFC 8954 2.1, the
 * DER of `Nonce ::= OCTET STRING` inside the extension's extnValue OCTET STRING, i.e.
 * `04 22 04 20 <32 bytes>` for a 32-byte nonce.
 *
 * @returns the DER, the CertID (SHA-1, see {@link buildCertId}) and the raw nonce bytes
 *   sent (without the OCTET STRING wrapping), or `undefined` when none was sent.
 * @throws InvalidArgumentError when a given nonce Buffer is empty or longer than 32 bytes.
 */
export function buildOcspRequest(options: BuildOcspRequestOptions): OcspRequest {
  const certId = buildCertId(options.cert, options.issuer);
  let nonce: Buffer | undefined;
  if (options.nonce === true) {
    nonce = randomBytes(MAX_NONCE_LENGTH);
  } else if (Buffer.isBuffer(options.nonce)) {
    if (options.nonce.length < 1 || options.nonce.length > MAX_NONCE_LENGTH) {
      throw new InvalidArgumentError(`an OCSP nonce must be 1 to ${MAX_NONCE_LENGTH} bytes (RFC 8954 2.1), got ${options.nonce.length}`);
    }
    nonce = Buffer.from(options.nonce);
  }
  const request = tlv(SEQUENCE, encodeCertId(certId));
  const tbsParts = [tlv(SEQUENCE, request)];
  if (nonce) {
    const extension = tlv(SEQUENCE, encodeOid(OID.ocspNonce), tlv(OCTET_STRING, tlv(OCTET_STRING, nonce)));
    tbsParts.push(tlv(CONTEXT_2_CONSTRUCTED, tlv(SEQUENCE, extension)));
  }
  const der = tlv(SEQUENCE, tlv(SEQUENCE, ...tbsParts));
  return { der, certId, nonce };
}

/**
 * DER of a CertID (RFC 6960 4.1.1) with SHA-1 and the serial's content octets copied
 * verbatim. Exposed for tests and tools that need the exact bytes.
 * @throws InvalidArgumentError when `certId` is not a SHA-1 CertID or its serial is empty.
 */
export function encodeCertId(certId: CertId): Buffer {
  if (certId.hashAlgorithm !== OID.sha1) {
    throw new InvalidArgumentError(`only SHA-1 CertIDs are encoded (RFC 5019 2.1.1), got ${certId.hashAlgorithm}`);
  }
  if (certId.serialNumber.length === 0) throw new InvalidArgumentError('a CertID serial number cannot be empty');
  return tlv(
    SEQUENCE,
    SHA1_ALGORITHM_IDENTIFIER,
    tlv(OCTET_STRING, certId.issuerNameHash),
    tlv(OCTET_STRING, certId.issuerKeyHash),
    tlv(INTEGER, certId.serialNumber),
  );
}

/** RFC 5019 5: the GET form is used when the whole URL is at most this many bytes. */
export const OCSP_GET_MAX_URL_BYTES = 255;

/**
 * The RFC 6960 A.1 / RFC 5019 5 GET URL of an OCSP request:
 * `{responderUrl}/{url-encoding of the base64 (RFC 4648 section 4, padded, no
 * whitespace) of the DER}`. The request is appended after exactly one `/` (a trailing
 * `/` of `responderUrl` is reused, not doubled); `+`, `/` and `=` are percent-encoded.
 * `responderUrl` is otherwise used verbatim (from the certificate's AIA).
 *
 * RFC 5019 5 counts the *whole* URL — "including the scheme and delimiters (http://),
 * server name and base64-encoded OCSPRequest structure" — against 255 bytes: clients
 * MUST use GET up to that size and SHOULD use POST above it.
 *
 * No GET form exists for a responder URL with a query (`?`) or a fragment (`#`): the
 * request would land inside the query (`/ocsp?x=1/MFEw…`) or be cut off as a fragment,
 * and responders reject both; RFC 6960 A.1 defines GET only as a path suffix. Such a
 * responder is asked with POST (to the URL as given).
 *
 * @param maxBytes largest acceptable URL length in bytes (default 255, RFC 5019 5);
 *   pass `Infinity` to always get the GET form when there is one (e.g. to retry with
 *   GET after a 405 on POST).
 * @returns the URL, or `undefined` when it would be longer than `maxBytes` or the
 *   responder URL has a query or fragment (use POST).
 */
export function ocspGetUrl(responderUrl: string, der: Uint8Array, maxBytes: number = OCSP_GET_MAX_URL_BYTES): string | undefined {
  if (responderUrl.includes('?') || responderUrl.includes('#')) return undefined;
  const encoded = encodeURIComponent(Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64'));
  const url = `${responderUrl.endsWith('/') ? responderUrl : `${responderUrl}/`}${encoded}`;
  return Buffer.byteLength(url, 'utf8') <= maxBytes ? url : undefined;
}

/** SHA-1/-256/-384/-512 OIDs → node:crypto hash names (CertID hash algorithms a responder may use). */
export const CERT_ID_HASHES: Readonly<Record<string, string>> = Object.freeze({
  [OID.sha1]: 'sha1',
  [OID.sha256]: 'sha256',
  [OID.sha384]: 'sha384',
  [OID.sha512]: 'sha512',
});

/**
 * Recomputes the issuer hashes of a CertID with another hash algorithm (RFC 6960 4.1.1),
 * for matching a SingleResponse whose responder answered with, say, SHA-256.
 * @returns `undefined` when the algorithm OID is not one of {@link CERT_ID_HASHES}.
 */
export function issuerHashes(issuer: ParsedCertificate, hashAlgorithmOid: string): { issuerNameHash: Buffer; issuerKeyHash: Buffer } | undefined {
  const name = CERT_ID_HASHES[hashAlgorithmOid];
  if (!name) return undefined;
  return {
    issuerNameHash: createHash(name).update(issuer.subjectDer).digest(),
    issuerKeyHash: createHash(name).update(issuer.publicKeyBits).digest(),
  };
}
