/**
 * Test OCSP responders: real, signed OCSPResponses built with pkijs, and an in-process
 * HTTP responder that can give every good and bad answer the gateway must handle.
 *
 * ## Building responses: {@link signOcspResponse}
 *
 * ```ts
 * const chain = await buildChain();
 * const issuer = chain.intermediates[0]!;
 * const req = buildOcspRequest({ cert: chain.leaf.cert, issuer: issuer.cert });
 * const der = await signOcspResponse({ issuer, certId: req.certId });                 // good, CA-signed
 * await signOcspResponse({ issuer, certId, certStatus: 'revoked', revocationReason: 1 }); // keyCompromise
 * await signOcspResponse({ issuer, certId, signer: responderCert });                    // delegated responder
 * await signOcspResponse({ responseStatus: 'tryLater' });                               // no responseBytes
 * ```
 *
 * Every field can be made wrong on purpose: status, times, signer, signing key,
 * responderID form, included certificates, CertID (serial / issuer hashes / hash
 * algorithm), nonce, a corrupted signature, extra SingleResponses and extensions.
 * Delegated responder certificates come from {@link issueResponderCert}.
 *
 * ## Serving them: {@link startTestResponder}
 *
 * ```ts
 * const responder = await startTestResponder(behaviours.good(issuer));
 * // responder.url → 'http://127.0.0.1:PORT' (put it in the certificate's AIA)
 * // ... run the client ...
 * responder.requests[0]   // { method: 'GET', der, certId, nonce, ... }
 * responder.counts        // { GET: 1, POST: 0, other: 0, total: 1 }
 * responder.setHandler(behaviours.httpStatus(500));
 * await responder.close();
 * ```
 *
 * The server listens on 127.0.0.1, port 0. GET requests are decoded from the path
 * (`{url}/{url-encoded base64 DER}`, RFC 6960 A.1 / RFC 5019 5), POST requests from
 * the body (any Content-Type is accepted and recorded; wrap with
 * {@link behaviours.requireOcspContentType} to refuse others with 415). Each request is
 * recorded in `requests` and counted in `counts` *before* the handler runs, then the
 * handler's {@link TestResponderReply} is sent. Handlers are plain functions; the
 * ready-made ones are in {@link behaviours}. A handler that throws gets an HTTP 500.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { OID, type ParsedCertificate } from '../../src/pki/index.js';
import type { CertId } from '../../src/revocation/ocsp/index.js';
import { issueCertificate, signingKeyFor, type IssueOptions, type KeyType, type TestCert, type TestKey } from './pki.js';

// ---------------------------------------------------------------------------------
// Building responses

/** OCSPResponseStatus names (RFC 6960 4.2.1) and their ENUMERATED values. */
export const RESPONSE_STATUS_VALUES = {
  successful: 0, malformedRequest: 1, internalError: 2, tryLater: 3, sigRequired: 5, unauthorized: 6,
} as const;
/** A responseStatus name. */
export type OcspResponseStatusName = keyof typeof RESPONSE_STATUS_VALUES;
/** The five non-successful statuses, for loops in tests. */
export const NON_SUCCESSFUL_STATUSES: readonly Exclude<OcspResponseStatusName, 'successful'>[] = [
  'malformedRequest', 'internalError', 'tryLater', 'sigRequired', 'unauthorized',
];

/** Hash names for CertIDs and signatures. */
export type HashName = 'SHA-1' | 'SHA-256' | 'SHA-384' | 'SHA-512';
const HASH_OIDS: Record<HashName, string> = { 'SHA-1': OID.sha1, 'SHA-256': OID.sha256, 'SHA-384': OID.sha384, 'SHA-512': OID.sha512 };
const NODE_HASH: Record<HashName, string> = { 'SHA-1': 'sha1', 'SHA-256': 'sha256', 'SHA-384': 'sha384', 'SHA-512': 'sha512' };

/** Status of one SingleResponse (RFC 6960 4.2.1 CertStatus). */
export interface SingleResponseSpec {
  /** Default `good`. */
  certStatus?: 'good' | 'revoked' | 'unknown';
  /** For `revoked`: default one day before thisUpdate. */
  revocationTime?: Date;
  /** For `revoked`: CRLReason code (RFC 5280 5.3.1, e.g. 1 = keyCompromise); omitted when undefined. */
  revocationReason?: number;
  /** Default: now − 60 s. */
  thisUpdate?: Date;
  /** Default: now + 1 h; `null` omits nextUpdate. */
  nextUpdate?: Date | null;
  /** singleExtensions, written as given. */
  singleExtensions?: pkijs.Extension[];
}

/** Options of {@link signOcspResponse}. Dates are truncated to whole seconds (GeneralizedTime without fractions). */
export interface SignOcspResponseOptions extends SingleResponseSpec {
  /** Default `successful`. Any other status produces an OCSPResponse without responseBytes (RFC 6960 4.2.1). */
  responseStatus?: OcspResponseStatusName | number;
  /** Issuing CA of the checked certificate: default signer, default CertID issuer. Required for `successful`. */
  issuer?: TestCert;
  /** CertID to answer for (usually the request's). Default: built from `cert` and `issuer`. */
  certId?: CertId;
  /** Certificate to answer for when `certId` is not given. */
  cert?: TestCert | ParsedCertificate;
  /** Recompute the CertID issuer hashes with this algorithm (default: keep the given CertID's). */
  certIdHash?: HashName;
  /** Replace parts of the CertID written (e.g. `{ serialNumber: Buffer.from('01', 'hex') }`). */
  certIdOverride?: Partial<CertId>;
  /** Reference time for the defaults (default: the real clock). */
  now?: Date;
  /** producedAt; default `now`. */
  producedAt?: Date;
  /** Certificate the responderID designates and whose key signs: default `issuer`. A different one is a delegated responder. */
  signer?: TestCert;
  /** Key that actually signs (default: `signer`'s). Pass an unrelated key to make the signature invalid. */
  signingKey?: TestKey;
  /** `certs` of the BasicOCSPResponse. Default: none when the issuer signs, `[signer]` for a delegated responder. */
  certs?: (TestCert | Buffer)[];
  /** responderID form (RFC 6960 4.2.2.3): default `byName`; or raw bytes (`byName`: Name DER, `byKey`: the 20-byte hash). */
  responderId?: 'byName' | 'byKey' | { byName: Buffer } | { byKey: Buffer };
  /**
   * Signature hash; default SHA-384 for P-384 keys, SHA-512 for P-521, SHA-256 otherwise.
   * Honoured for RSA keys too (the key is re-imported with this hash), so `SHA-1` with
   * an RSA key really writes sha1WithRSAEncryption.
   */
  signatureHash?: HashName;
  /** Flip one bit of the signature after signing. */
  corruptSignature?: boolean;
  /** Echo this nonce in responseExtensions (id-pkix-ocsp-nonce). */
  nonce?: Buffer;
  /** `rfc8954` (default): extnValue = DER OCTET STRING of the nonce; `bare`: extnValue = the nonce bytes. */
  nonceEncoding?: 'rfc8954' | 'bare';
  /** More responseExtensions, written after the nonce. */
  responseExtensions?: pkijs.Extension[];
  /** Extra SingleResponses written *before* the main one (each with its own CertID). */
  extraResponses?: (SingleResponseSpec & { certId: CertId })[];
  /** responseType OID (default id-pkix-ocsp-basic). */
  responseType?: string;
  /** ResponseData version number to write explicitly (v1 = 0 is the DEFAULT and normally omitted). */
  version?: number;
  /** Leave out the main SingleResponse (with no `extraResponses`: an empty `responses`). */
  omitMainResponse?: boolean;
}

function seconds(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

function sha(name: string, data: Uint8Array): Buffer {
  return createHash(name).update(data).digest();
}

function parsedOf(c: TestCert | ParsedCertificate): ParsedCertificate {
  return 'cert' in c && 'key' in c ? c.cert : c;
}

/** SHA-1 CertID of `cert` issued by `issuer` (RFC 6960 4.1.1), computed independently of src/. */
export function testCertId(cert: TestCert | ParsedCertificate, issuer: TestCert | ParsedCertificate, hash: HashName = 'SHA-1'): CertId {
  const c = parsedOf(cert), i = parsedOf(issuer);
  return {
    hashAlgorithm: HASH_OIDS[hash],
    issuerNameHash: sha(NODE_HASH[hash], i.subjectDer),
    issuerKeyHash: sha(NODE_HASH[hash], i.publicKeyBits),
    serialNumber: Buffer.from(c.serialNumberBytes),
  };
}

function certIdSchema(id: CertId): pkijs.CertID {
  return new pkijs.CertID({
    hashAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: id.hashAlgorithm, algorithmParams: new asn1js.Null() }),
    issuerNameHash: new asn1js.OctetString({ valueHex: id.issuerNameHash }),
    issuerKeyHash: new asn1js.OctetString({ valueHex: id.issuerKeyHash }),
    serialNumber: new asn1js.Integer({ valueHex: id.serialNumber }),
  });
}

function singleResponse(certId: CertId, spec: SingleResponseSpec, now: Date): pkijs.SingleResponse {
  const thisUpdate = seconds(spec.thisUpdate ?? new Date(now.getTime() - 60_000));
  let certStatus: asn1js.BaseBlock;
  switch (spec.certStatus ?? 'good') {
    case 'good':
      certStatus = new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 0 } });
      break;
    case 'unknown':
      certStatus = new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 2 } });
      break;
    case 'revoked': {
      const time = seconds(spec.revocationTime ?? new Date(thisUpdate.getTime() - 86_400_000));
      const value: asn1js.BaseBlock[] = [new asn1js.GeneralizedTime({ valueDate: time })];
      if (spec.revocationReason !== undefined) {
        value.push(new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: [new asn1js.Enumerated({ value: spec.revocationReason })] }));
      }
      certStatus = new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 1 }, value });
      break;
    }
  }
  const params: pkijs.SingleResponseParameters = { certID: certIdSchema(certId), certStatus, thisUpdate };
  const next = spec.nextUpdate === undefined ? new Date(now.getTime() + 3_600_000) : spec.nextUpdate;
  if (next !== null) params.nextUpdate = seconds(next);
  if (spec.singleExtensions) params.singleExtensions = spec.singleExtensions;
  return new pkijs.SingleResponse(params);
}

function defaultHash(key: TestKey): HashName {
  return key.type === 'ec-p384' ? 'SHA-384' : key.type === 'ec-p521' ? 'SHA-512' : 'SHA-256';
}

/**
 * Builds one DER OCSPResponse (RFC 6960 4.2.1) as a responder would, signed with
 * WebCrypto through pkijs (RSA PKCS#1 v1.5, RSA-PSS, ECDSA — by the key's type).
 * Defaults: successful, good, thisUpdate now − 60 s, nextUpdate now + 1 h, producedAt
 * now, signed by `issuer` with responderID byName and no certificates.
 * @throws Error when a successful response is asked for without `issuer` and CertID source.
 */
export async function signOcspResponse(opts: SignOcspResponseOptions): Promise<Buffer> {
  const status = typeof opts.responseStatus === 'number' ? opts.responseStatus : RESPONSE_STATUS_VALUES[opts.responseStatus ?? 'successful'];
  if (status !== 0) {
    return Buffer.from(new pkijs.OCSPResponse({ responseStatus: new asn1js.Enumerated({ value: status }) }).toSchema().toBER(false));
  }
  const issuer = opts.issuer;
  if (!issuer) throw new Error('signOcspResponse: `issuer` is required for a successful response');
  const now = opts.now ?? new Date();

  let certId: CertId;
  if (opts.certId) certId = { ...opts.certId };
  else if (opts.cert) certId = testCertId(opts.cert, issuer);
  else throw new Error('signOcspResponse: give `certId` or `cert`');
  if (opts.certIdHash) {
    const h = testCertId(issuer, issuer, opts.certIdHash);
    certId = { ...certId, hashAlgorithm: h.hashAlgorithm, issuerNameHash: h.issuerNameHash, issuerKeyHash: h.issuerKeyHash };
  }
  certId = { ...certId, ...opts.certIdOverride };

  const signer = opts.signer ?? issuer;
  const signingKey = opts.signingKey ?? signer.key;
  let responderID: pkijs.RelativeDistinguishedNames | asn1js.OctetString;
  const rid = opts.responderId ?? 'byName';
  if (rid === 'byName' || (typeof rid === 'object' && 'byName' in rid)) {
    const der = rid === 'byName' ? signer.cert.subjectDer : rid.byName;
    responderID = new pkijs.RelativeDistinguishedNames({ schema: asn1js.fromBER(der).result });
  } else {
    const hash = rid === 'byKey' ? sha('sha1', signer.cert.publicKeyBits) : rid.byKey;
    responderID = new asn1js.OctetString({ valueHex: hash });
  }

  const responseExtensions: pkijs.Extension[] = [];
  if (opts.nonce) {
    const value = opts.nonceEncoding === 'bare' ? opts.nonce : Buffer.from(new asn1js.OctetString({ valueHex: opts.nonce }).toBER(false));
    responseExtensions.push(new pkijs.Extension({ extnID: OID.ocspNonce, critical: false, extnValue: toArrayBuffer(value) }));
  }
  responseExtensions.push(...(opts.responseExtensions ?? []));

  const responses = [
    ...(opts.extraResponses ?? []).map((e) => singleResponse(e.certId, e, now)),
    ...(opts.omitMainResponse ? [] : [singleResponse(certId, opts, now)]),
  ];
  const dataParams: pkijs.ResponseDataParameters = { responderID, producedAt: seconds(opts.producedAt ?? now), responses };
  if (opts.version !== undefined) dataParams.version = opts.version;
  if (responseExtensions.length) dataParams.responseExtensions = responseExtensions;
  const data = new pkijs.ResponseData(dataParams);

  const certs = opts.certs ?? (signer === issuer ? [] : [signer]);
  const basicParams: pkijs.BasicOCSPResponseParameters = { tbsResponseData: data };
  if (certs.length) {
    basicParams.certs = certs.map((c) => new pkijs.Certificate({ schema: asn1js.fromBER(Buffer.isBuffer(c) ? c : c.der).result }));
  }
  const basic = new pkijs.BasicOCSPResponse(basicParams);
  const signatureHash = opts.signatureHash ?? defaultHash(signingKey);
  await basic.sign(await signingKeyFor(signingKey, signatureHash), signatureHash);
  if (opts.corruptSignature) {
    const sig = new Uint8Array(basic.signature.valueBlock.valueHexView);
    sig[sig.length - 1]! ^= 0x01;
    basic.signature = new asn1js.BitString({ valueHex: sig });
  }
  const ocsp = new pkijs.OCSPResponse({
    responseStatus: new asn1js.Enumerated({ value: 0 }),
    responseBytes: new pkijs.ResponseBytes({
      responseType: opts.responseType ?? OID.ocspBasic,
      response: new asn1js.OctetString({ valueHex: basic.toSchema().toBER(false) }),
    }),
  });
  return Buffer.from(ocsp.toSchema().toBER(false));
}

function toArrayBuffer(b: Buffer): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

/** Options of {@link issueResponderCert}. */
export interface ResponderCertOptions {
  /** Include id-kp-OCSPSigning (default true). */
  ocspSigning?: boolean;
  /** Other EKUs to list (e.g. `[OID.kpServerAuth]`). */
  extraEku?: string[];
  /** Certificate that signs the responder certificate (default: `issuer`). Another CA → not authorized. */
  signedBy?: TestCert;
  notBefore?: Date;
  notAfter?: Date;
  key?: KeyType | TestKey;
  name?: string;
  /** Anything else for {@link issueCertificate}. */
  extra?: Partial<IssueOptions>;
}

/**
 * Issues a delegated OCSP responder certificate for `issuer` (RFC 6960 4.2.2.2): by
 * default signed by `issuer`, id-kp-OCSPSigning EKU, id-pkix-ocsp-nocheck, valid
 * now−1 h … now+30 d. Options make each authorization condition fail on its own.
 */
export async function issueResponderCert(issuer: TestCert, opts: ResponderCertOptions = {}): Promise<TestCert> {
  const eku = [...(opts.ocspSigning === false ? [] : [OID.kpOcspSigning]), ...(opts.extraEku ?? [])];
  return issueCertificate({
    subject: `C=US,O=Portcullis Test,CN=${opts.name ?? 'OCSP Responder'}`,
    issuer: opts.signedBy ?? issuer,
    key: opts.key ?? issuer.key.type,
    eku: eku.length ? eku : null,
    ocspNoCheck: true,
    ...(opts.notBefore ? { notBefore: opts.notBefore } : {}),
    ...(opts.notAfter ? { notAfter: opts.notAfter } : {}),
    ...opts.extra,
  });
}

// ---------------------------------------------------------------------------------
// Parsing requests

/** What an OCSPRequest asked (RFC 6960 4.1.1). */
export interface ParsedOcspRequest {
  /** CertIDs of requestList, in order (usually one). */
  certIds: CertId[];
  /** Raw nonce bytes (RFC 8954 form unwrapped; a bare value is returned as is), or undefined. */
  nonce: Buffer | undefined;
  /** True when the request carries optionalSignature. */
  signed: boolean;
}

/**
 * Decodes an OCSPRequest DER with pkijs (independently of src/, so tests cross-check
 * the encoder). @throws Error when the bytes are not an OCSPRequest.
 */
export function parseOcspRequest(der: Uint8Array): ParsedOcspRequest {
  const asn = asn1js.fromBER(der);
  if (asn.offset === -1 || asn.offset !== der.length) throw new Error('not a single BER OCSPRequest');
  const req = new pkijs.OCSPRequest({ schema: asn.result });
  const certIds = req.tbsRequest.requestList.map((r) => ({
    hashAlgorithm: r.reqCert.hashAlgorithm.algorithmId,
    issuerNameHash: Buffer.from(r.reqCert.issuerNameHash.valueBlock.valueHexView),
    issuerKeyHash: Buffer.from(r.reqCert.issuerKeyHash.valueBlock.valueHexView),
    serialNumber: Buffer.from(r.reqCert.serialNumber.valueBlock.valueHexView),
  }));
  let nonce: Buffer | undefined;
  const ext = req.tbsRequest.requestExtensions?.find((e) => e.extnID === OID.ocspNonce);
  if (ext) {
    const raw = Buffer.from(ext.extnValue.valueBlock.valueHexView);
    const inner = asn1js.fromBER(raw);
    nonce = inner.offset === raw.length && inner.result instanceof asn1js.OctetString
      ? Buffer.from(inner.result.valueBlock.valueHexView) : raw;
  }
  return { certIds, nonce, signed: req.optionalSignature !== undefined };
}

// ---------------------------------------------------------------------------------
// The HTTP responder

/** One request as the test responder received it. */
export interface ReceivedOcspRequest {
  /** HTTP method (`GET`, `POST`, anything else as sent). */
  method: string;
  /** Request target (path and query) as sent. */
  url: string;
  /** Content-Type header, if any. */
  contentType: string | undefined;
  /** All request headers (lower-case names). */
  headers: IncomingMessage['headers'];
  /** The OCSPRequest DER: from the GET path (URL-decoded, base64-decoded) or the POST body. */
  der: Buffer | undefined;
  /** CertIDs asked for (empty when the request did not parse). */
  certIds: CertId[];
  /** The first CertID, or undefined when the request did not parse. */
  certId: CertId | undefined;
  /** Nonce sent by the client (RFC 8954 wrapping removed), or undefined. */
  nonce: Buffer | undefined;
  /** Why `der` could not be obtained or parsed, or undefined. */
  parseError: string | undefined;
}

/** What the responder sends back. */
export type TestResponderReply =
  /** An OCSP response: HTTP `status` (default 200), Content-Type application/ocsp-response, Content-Length. */
  | { kind: 'ocsp'; der: Buffer; status?: number; headers?: Record<string, string> }
  /** Any body. `chunked` omits Content-Length (the client must count bytes itself). */
  | { kind: 'body'; body: Buffer | string; status?: number; contentType?: string; chunked?: boolean; headers?: Record<string, string> }
  /** A redirect to `location` (default 302). */
  | { kind: 'redirect'; location: string; status?: number }
  /** Sends the status line and headers (chunked), then optionally `partialBody`, and never finishes. */
  | { kind: 'hang'; status?: number; partialBody?: Buffer }
  /** Closes the connection without any answer. */
  | { kind: 'destroy' }
  /** Waits `ms` milliseconds, then sends `then`. */
  | { kind: 'delay'; ms: number; then: TestResponderReply };

/** Decides the reply to one request. May be async; a throw becomes HTTP 500. */
export type TestResponderHandler = (request: ReceivedOcspRequest) => TestResponderReply | Promise<TestResponderReply>;

/** Requests received, by method. `total` counts every request. */
export interface TestResponderCounts {
  GET: number;
  POST: number;
  other: number;
  total: number;
}

/** A running test responder. */
export interface TestResponder {
  /** Responder URL for an AIA: `http://127.0.0.1:PORT` plus the `path` option (no trailing slash). */
  readonly url: string;
  readonly port: number;
  /** Every request received, in order (live array). */
  readonly requests: ReceivedOcspRequest[];
  /** Live counters by method. */
  readonly counts: TestResponderCounts;
  /** Replaces the handler for subsequent requests. */
  setHandler(handler: TestResponderHandler): void;
  /** Forgets recorded requests and zeroes the counters. */
  reset(): void;
  /** Stops listening, destroys open (and hanging) connections, cancels pending delays. */
  close(): Promise<void>;
}

/** Options of {@link startTestResponder}. */
export interface TestResponderOptions {
  /** Path prefix of the responder URL, e.g. `/ocsp` (default none). */
  path?: string;
  /** Largest POST body read (default 64 KiB); larger → 413 without calling the handler. */
  maxRequestBytes?: number;
}

/**
 * Starts an in-process OCSP responder on 127.0.0.1 (port 0) that hands each decoded
 * request to `handler`. See the file comment for the request decoding rules.
 */
export async function startTestResponder(handler: TestResponderHandler, options: TestResponderOptions = {}): Promise<TestResponder> {
  const prefix = (options.path ?? '').replace(/\/+$/, '');
  const maxRequestBytes = options.maxRequestBytes ?? 64 * 1024;
  let current = handler;
  const requests: ReceivedOcspRequest[] = [];
  const counts: TestResponderCounts = { GET: 0, POST: 0, other: 0, total: 0 };
  const timers = new Set<NodeJS.Timeout>();
  const sockets = new Set<Socket>();
  let closed = false;

  const send = (res: ServerResponse, reply: TestResponderReply): void => {
    if (closed || res.destroyed) return;
    switch (reply.kind) {
      case 'ocsp':
        res.writeHead(reply.status ?? 200, { 'content-type': 'application/ocsp-response', 'content-length': reply.der.length, ...reply.headers });
        res.end(reply.der);
        return;
      case 'body': {
        const body = typeof reply.body === 'string' ? Buffer.from(reply.body) : reply.body;
        const headers: Record<string, string | number> = { 'content-type': reply.contentType ?? 'application/ocsp-response', ...reply.headers };
        if (!reply.chunked) headers['content-length'] = body.length;
        res.writeHead(reply.status ?? 200, headers);
        if (reply.chunked) {
          for (let i = 0; i < body.length; i += 16 * 1024) res.write(body.subarray(i, i + 16 * 1024));
          res.end();
        } else {
          res.end(body);
        }
        return;
      }
      case 'redirect':
        res.writeHead(reply.status ?? 302, { location: reply.location, 'content-length': 0 });
        res.end();
        return;
      case 'hang':
        res.writeHead(reply.status ?? 200, { 'content-type': 'application/ocsp-response', 'transfer-encoding': 'chunked' });
        res.flushHeaders();
        if (reply.partialBody) res.write(reply.partialBody);
        return;
      case 'destroy':
        res.socket?.destroy();
        return;
      case 'delay': {
        const t = setTimeout(() => {
          timers.delete(t);
          send(res, reply.then);
        }, reply.ms);
        timers.add(t);
        return;
      }
    }
  };

  const server = createServer((req, res) => {
    void (async () => {
      const method = req.method ?? 'GET';
      const received: ReceivedOcspRequest = {
        method, url: req.url ?? '/', contentType: req.headers['content-type'], headers: req.headers,
        der: undefined, certIds: [], certId: undefined, nonce: undefined, parseError: undefined,
      };
      let tooLarge = false;
      if (method === 'POST') {
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const chunk of req as AsyncIterable<Buffer>) {
          size += chunk.length;
          if (size > maxRequestBytes) {
            tooLarge = true;
            break;
          }
          chunks.push(chunk);
        }
        if (tooLarge) received.parseError = `request body over ${maxRequestBytes} bytes`;
        else received.der = Buffer.concat(chunks);
      } else {
        req.resume();
        const path = (received.url.split('?')[0] ?? '');
        if (method === 'GET') {
          if (!path.startsWith(`${prefix}/`)) {
            received.parseError = `GET path ${path} is not under ${prefix || '/'}`;
          } else {
            const encoded = path.slice(prefix.length + 1);
            try {
              const b64 = decodeURIComponent(encoded);
              if (!b64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new Error('not base64');
              received.der = Buffer.from(b64, 'base64');
            } catch (err) {
              received.parseError = `GET path does not carry a URL-encoded base64 request (${(err as Error).message})`;
            }
          }
        }
      }
      if (received.der) {
        try {
          const parsed = parseOcspRequest(received.der);
          received.certIds = parsed.certIds;
          received.certId = parsed.certIds[0];
          received.nonce = parsed.nonce;
        } catch (err) {
          received.parseError = `not an OCSPRequest: ${(err as Error).message}`;
        }
      }
      requests.push(received);
      counts.total++;
      if (method === 'GET') counts.GET++;
      else if (method === 'POST') counts.POST++;
      else counts.other++;
      if (tooLarge) {
        res.setHeader('connection', 'close');
        send(res, { kind: 'body', status: 413, body: 'request too large', contentType: 'text/plain' });
        return;
      }
      let reply: TestResponderReply;
      try {
        reply = await current(received);
      } catch (err) {
        reply = { kind: 'body', status: 500, body: `test responder handler failed: ${(err as Error).message}`, contentType: 'text/plain' };
      }
      send(res, reply);
    })();
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}${prefix}`,
    port,
    requests,
    counts,
    setHandler(h) {
      current = h;
    },
    reset() {
      requests.length = 0;
      counts.GET = counts.POST = counts.other = counts.total = 0;
    },
    async close() {
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
      await done;
    },
  };
}

// ---------------------------------------------------------------------------------
// Ready-made behaviours

/** Options shared by the signing behaviours. */
export interface BehaviourOptions {
  /** Clock for thisUpdate/nextUpdate/producedAt (default: the real clock). */
  now?: () => Date;
  /** Echo the request's nonce (default true, as responders that support RFC 8954 do). */
  echoNonce?: boolean;
  /** Anything else for {@link signOcspResponse}, applied last. */
  extra?: Partial<SignOcspResponseOptions>;
}

/** One issuing CA or several (a responder serving a whole chain); the request's CertID picks the one. */
export type Issuers = TestCert | readonly TestCert[];

function findIssuer(issuers: Issuers, certId: CertId): TestCert | undefined {
  const list = Array.isArray(issuers) ? issuers : [issuers as TestCert];
  const hash = (Object.keys(HASH_OIDS) as HashName[]).find((h) => HASH_OIDS[h] === certId.hashAlgorithm);
  if (!hash) return undefined;
  return list.find((i) => {
    const id = testCertId(i, i, hash);
    return id.issuerNameHash.equals(certId.issuerNameHash) && id.issuerKeyHash.equals(certId.issuerKeyHash);
  });
}

/** Wraps a DER OCSP response as a 200 reply. */
export function ocspReply(der: Buffer): TestResponderReply {
  return { kind: 'ocsp', der };
}

/**
 * The generic signing behaviour: answers the request's CertID for the matching issuer,
 * with `fields(request)` merged into the {@link signOcspResponse} options. A request
 * that did not parse gets `malformedRequest`; a CertID of an unknown issuer gets
 * `unauthorized` (RFC 6960 2.3), as real responders do.
 */
export function respond(
  issuers: Issuers,
  fields: (request: ReceivedOcspRequest, issuer: TestCert) => Partial<SignOcspResponseOptions> | Promise<Partial<SignOcspResponseOptions>> = () => ({}),
  options: BehaviourOptions = {},
): TestResponderHandler {
  return async (request) => {
    if (!request.certId) return ocspReply(await signOcspResponse({ responseStatus: 'malformedRequest' }));
    const issuer = findIssuer(issuers, request.certId);
    if (!issuer) return ocspReply(await signOcspResponse({ responseStatus: 'unauthorized' }));
    const base: SignOcspResponseOptions = { issuer, certId: request.certId, now: options.now?.() ?? new Date() };
    if (options.echoNonce !== false && request.nonce) base.nonce = request.nonce;
    return ocspReply(await signOcspResponse({ ...base, ...(await fields(request, issuer)), ...options.extra }));
  };
}

const DAY = 86_400_000;

/**
 * Ready-made handlers. Signing ones take the issuing CA(s) and {@link BehaviourOptions};
 * transport ones need nothing. Compose with `getOnly`, `postOnly`, `sequence`, `delay`.
 */
export const behaviours = {
  /** Successful, good, CA-signed (byName), fresh. */
  good: (issuers: Issuers, o?: BehaviourOptions) => respond(issuers, () => ({}), o),
  /** Successful, revoked at `revocationTime` (default one day ago) with CRLReason `reason` (default 1 keyCompromise; `null` omits it). */
  revoked: (issuers: Issuers, r: { reason?: number | null; revocationTime?: Date } = {}, o?: BehaviourOptions) =>
    respond(issuers, () => ({
      certStatus: 'revoked',
      ...(r.reason === null ? {} : { revocationReason: r.reason ?? 1 }),
      revocationTime: r.revocationTime ?? new Date((o?.now?.() ?? new Date()).getTime() - DAY),
    }), o),
  /** Successful, unknown. */
  unknown: (issuers: Issuers, o?: BehaviourOptions) => respond(issuers, () => ({ certStatus: 'unknown' }), o),
  /** A non-successful responseStatus (no responseBytes). */
  responderStatus: (status: Exclude<OcspResponseStatusName, 'successful'>): TestResponderHandler =>
    async () => ocspReply(await signOcspResponse({ responseStatus: status })),
  /** Good, but one bit of the signature flipped → SignatureInvalid. */
  badSignature: (issuers: Issuers, o?: BehaviourOptions) => respond(issuers, () => ({ corruptSignature: true }), o),
  /** Good, responderID names the CA but an unrelated `key` signs → SignatureInvalid. */
  unrelatedKey: (issuers: Issuers, key: TestKey, o?: BehaviourOptions) => respond(issuers, () => ({ signingKey: key }), o),
  /**
   * Good, signed by the delegated responder certificate `responder` (included in
   * certs). Authorized or not depending on the certificate: make one with
   * {@link issueResponderCert} (`ocspSigning: false`, expired `notAfter`, `signedBy` another CA).
   */
  delegated: (issuers: Issuers, responder: TestCert, o?: BehaviourOptions & { responderId?: 'byName' | 'byKey' }) =>
    respond(issuers, () => ({ signer: responder, responderId: o?.responderId ?? 'byName' }), o),
  /** Good, for the same issuer but serial + 1 → CertIdMismatch. */
  otherSerial: (issuers: Issuers, o?: BehaviourOptions) =>
    respond(issuers, (req) => ({ certIdOverride: { serialNumber: bumpSerial(req.certId!.serialNumber) } }), o),
  /** Good, for the same serial under another issuer's hashes → CertIdMismatch. */
  otherIssuer: (issuers: Issuers, o?: BehaviourOptions) =>
    respond(issuers, () => ({ certIdOverride: { issuerNameHash: randomBytes(20), issuerKeyHash: randomBytes(20) } }), o),
  /** thisUpdate 2 h ago, nextUpdate `agoMs` ago (default 1 h) → Expired. */
  expired: (issuers: Issuers, agoMs = 3_600_000, o?: BehaviourOptions) =>
    respond(issuers, () => {
      const now = (o?.now?.() ?? new Date()).getTime();
      return { thisUpdate: new Date(now - agoMs - 3_600_000), nextUpdate: new Date(now - agoMs) };
    }, o),
  /** thisUpdate `aheadMs` in the future (default 1 h) → NotYetValid. */
  notYetValid: (issuers: Issuers, aheadMs = 3_600_000, o?: BehaviourOptions) =>
    respond(issuers, () => {
      const now = (o?.now?.() ?? new Date()).getTime();
      return { thisUpdate: new Date(now + aheadMs), nextUpdate: new Date(now + aheadMs + 3_600_000) };
    }, o),
  /** Good without nextUpdate (RFC 6960 4.2.2.1: newer information is always available). */
  noNextUpdate: (issuers: Issuers, o?: BehaviourOptions) => respond(issuers, () => ({ nextUpdate: null }), o),
  /** Echoes 32 random bytes instead of the request's nonce → NonceMismatch when one was sent. */
  wrongNonce: (issuers: Issuers, o?: BehaviourOptions) => respond(issuers, () => ({ nonce: randomBytes(32) }), { ...o, echoNonce: false }),
  /** Never echoes the nonce (accepted: SPEC 3 verifies a nonce only when echoed). */
  noNonceEcho: (issuers: Issuers, o?: BehaviourOptions) => respond(issuers, () => ({}), { ...o, echoNonce: false }),
  /** `bytes` (default 512) random bytes as application/ocsp-response, HTTP 200 → Malformed. */
  garbage: (bytes = 512): TestResponderHandler => () => ({ kind: 'body', body: randomBytes(bytes) }),
  /** A 200 body of `bytes` (default 200 KiB); `chunked` (default true) hides the size until it is read. */
  oversize: (bytes = 200 * 1024, chunked = true): TestResponderHandler => () => ({ kind: 'body', body: Buffer.alloc(bytes, 0x30), chunked }),
  /** Headers, then nothing: the exchange never finishes (the client's timeout must fire). */
  hang: (partialBody?: Buffer): TestResponderHandler => () => ({ kind: 'hang', ...(partialBody ? { partialBody } : {}) }),
  /** Closes the connection without answering. */
  destroy: (): TestResponderHandler => () => ({ kind: 'destroy' }),
  /** A bare HTTP status (e.g. 500, 400, 415) with a short text body. */
  httpStatus: (status: number, body = `HTTP ${status}`): TestResponderHandler => () => ({ kind: 'body', status, body, contentType: 'text/plain' }),
  /** A redirect (default 302) to `location`. */
  redirect: (location: string, status = 302): TestResponderHandler => () => ({ kind: 'redirect', location, status }),
  /** `inner` for GET; 405 (Allow: GET) for anything else. */
  getOnly: (inner: TestResponderHandler): TestResponderHandler => (req) =>
    req.method === 'GET' ? inner(req) : { kind: 'body', status: 405, body: 'method not allowed', contentType: 'text/plain', headers: { allow: 'GET' } },
  /** `inner` for POST; 405 (Allow: POST) for anything else. */
  postOnly: (inner: TestResponderHandler): TestResponderHandler => (req) =>
    req.method === 'POST' ? inner(req) : { kind: 'body', status: 405, body: 'method not allowed', contentType: 'text/plain', headers: { allow: 'POST' } },
  /** `inner` for POSTs with Content-Type application/ocsp-request (and GETs); 415 for other POSTs. */
  requireOcspContentType: (inner: TestResponderHandler): TestResponderHandler => (req) =>
    req.method !== 'POST' || req.contentType === 'application/ocsp-request'
      ? inner(req) : { kind: 'body', status: 415, body: 'unsupported media type', contentType: 'text/plain' },
  /** The n-th request gets the n-th handler; the last one repeats. */
  sequence: (...handlers: TestResponderHandler[]): TestResponderHandler => {
    let n = 0;
    return (req) => handlers[Math.min(n++, handlers.length - 1)]!(req);
  },
  /** `inner`'s reply, sent after `ms` milliseconds. */
  delay: (ms: number, inner: TestResponderHandler): TestResponderHandler => async (req) => ({ kind: 'delay', ms, then: await inner(req) }),
} as const;

function bumpSerial(serial: Buffer): Buffer {
  const out = Buffer.from(serial);
  for (let i = out.length - 1; i >= 0; i--) {
    out[i] = (out[i]! + 1) & 0xff;
    if (out[i] !== 0) break;
  }
  return out;
}
