/**
 * The CloudFront-shaped certificate view: the per-certificate fields of a connection
 * function's `connection.clientCertificate.certificates` (SPEC section 4) and the
 * `CloudFront-Viewer-Cert-*` headers sent to the origin (SPEC section 6).
 *
 * Runs on every handshake: everything is derived from the raw DER pieces that
 * {@link ParsedCertificate} already holds (no pkijs re-parsing), computed once per
 * certificate object and cached (WeakMap), and returned frozen — spread a view into a
 * new object to extend it.
 */
import * as asn1js from 'asn1js';
import { CertificateParseError, InvalidArgumentError } from '../errors.js';
import type { ParsedCertificate } from './certificate.js';
import { decodeAsn1String, formatDn, formatDnRfc2253, formatDnRfc4514, parseDn, primitiveContent } from './dn.js';
import type { ParsedDn } from './dn.js';
import { toPem } from './pem.js';
import { formatSerialNumber } from './serial.js';

/** Validity period of a certificate view: ISO 8601 UTC, `Z`, whole seconds (`2025-01-31T12:00:00Z`). */
export interface CertificateValidity {
  notBefore: string;
  notAfter: string;
}

/**
 * One certificate as a connection function sees it (SPEC section 4, CloudFront's
 * `certificates.leaf` / `certificates.intermediates[i]`). Exactly these fields.
 */
export interface CertificateView {
  /** Subject Name, RFC 4514 with `", "` between RDNs, CN first for the usual encoding (see dn.ts). */
  subject: string;
  /** Issuer Name, same form as `subject`. */
  issuer: string;
  /** Lowercase hex bytes of the serialNumber INTEGER content, `:`-separated, leading `00` kept. */
  serialNumber: string;
  validity: CertificateValidity;
  /** SHA-256 of the certificate DER: uppercase hex bytes separated by `:` (95 characters). */
  sha256Fingerprint: string;
  /** First id-ad-ocsp URI of the AIA extension (RFC 5280 4.2.2.1); the property is absent when there is none. */
  ocspEndpoint?: string;
  /**
   * Subject alternative names, `,`-separated in DER order, e.g.
   * `DNS:a.example.com,IP:10.0.0.1` (format in {@link formatSubjectAltName}); `''`
   * when the certificate has no subjectAltName extension.
   */
  san: string;
  /** Lowercase hex of the SubjectPublicKeyInfo DER. */
  spki: string;
  /** Lowercase hex of the subjectAltName extension value (the GeneralNames DER); `''` when absent. */
  sanHex: string;
}

/** `connection.clientCertificate.certificates` (SPEC section 4): the leaf and the intermediates the client sent. */
export interface ChainView {
  leaf: CertificateView;
  /** In the order the client sent them (leaf's issuer first). */
  intermediates: CertificateView[];
}

/**
 * Names of the headers Portcullis sets on requests to the origin for the client
 * certificate (SPEC section 6, CloudFront viewer mTLS headers). The edge removes any
 * copies the client sent before adding its own.
 */
export const VIEWER_CERT_HEADER_NAMES = Object.freeze([
  'CloudFront-Viewer-Cert-Present',
  'CloudFront-Viewer-Cert-Serial-Number',
  'CloudFront-Viewer-Cert-Issuer',
  'CloudFront-Viewer-Cert-Subject',
  'CloudFront-Viewer-Cert-Sha256',
  'CloudFront-Viewer-Cert-Validity',
  'CloudFront-Viewer-Cert-Pem',
] as const);

/**
 * The CloudFront viewer-certificate headers for a presented leaf (SPEC section 6). All
 * values are printable ASCII and safe as HTTP header values.
 */
export interface ViewerCertHeaders {
  'CloudFront-Viewer-Cert-Present': '1';
  /** Lowercase colon hex, as {@link CertificateView.serialNumber}. */
  'CloudFront-Viewer-Cert-Serial-Number': string;
  /** Issuer Name, RFC 2253 (`,` separator, non-ASCII as `\XX`), see {@link formatDnRfc2253}. */
  'CloudFront-Viewer-Cert-Issuer': string;
  /** Subject Name, RFC 2253. */
  'CloudFront-Viewer-Cert-Subject': string;
  /** SHA-256 of the certificate DER: 64 lowercase hex digits, no colons. */
  'CloudFront-Viewer-Cert-Sha256': string;
  /** `NotBefore=2025-01-01T00:00:00Z;NotAfter=2026-01-01T00:00:00Z`. */
  'CloudFront-Viewer-Cert-Validity': string;
  /** `encodeURIComponent` of the leaf's PEM (64-column base64, `\n` line ends, trailing newline). */
  'CloudFront-Viewer-Cert-Pem': string;
}

/**
 * Formats a time as ISO 8601 UTC with a `Z` suffix and no fractional seconds
 * (`2025-01-31T12:00:00Z`), the form of CloudFront's `validity` fields. Fractions are
 * truncated (DER times have none, RFC 5280 4.1.2.5).
 */
export function formatIsoSeconds(date: Date): string {
  const iso = date.toISOString();
  const dot = iso.lastIndexOf('.');
  return dot === -1 ? iso : `${iso.slice(0, dot)}Z`;
}

/** Uppercase hex bytes separated by `:` (`AB:01:…`), the form of CloudFront's `sha256Fingerprint`. */
export function formatFingerprint(digest: Uint8Array): string {
  const hex = Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).toString('hex').toUpperCase();
  let out = '';
  for (let i = 0; i < hex.length; i += 2) out += (i ? ':' : '') + hex.slice(i, i + 2);
  return out;
}

const HEX_UPPER = '0123456789ABCDEF';
function hexUpper(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += HEX_UPPER[b >> 4]! + HEX_UPPER[b & 15]!;
  return s;
}

/** Backslash-escapes `\`, `,` and control characters (`\XX`) inside one SAN entry. */
function escapeSanValue(value: string): string {
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) out += '\\' + HEX_UPPER[c >> 4]! + HEX_UPPER[c & 15]!;
    else if (c === 0x5c || c === 0x2c) out += '\\' + value[i]!;
    else out += value[i]!;
  }
  return out;
}

/** Decodes OBJECT IDENTIFIER content octets (X.690 8.19) to dotted form; undefined if malformed. */
function decodeOidContent(bytes: Uint8Array): string | undefined {
  const arcs: bigint[] = [];
  let v = 0n;
  let inArc = false;
  for (const b of bytes) {
    if (!inArc && b === 0x80) return undefined; // non-minimal
    v = (v << 7n) | BigInt(b & 0x7f);
    inArc = (b & 0x80) !== 0;
    if (!inArc) {
      arcs.push(v);
      v = 0n;
    }
  }
  if (inArc || arcs.length === 0) return undefined;
  const first = arcs[0]!;
  const head = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n];
  return [...head, ...arcs.slice(1)].join('.');
}

function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length === 16) {
    // OpenSSL style: eight groups, uppercase hex without leading zeros, no "::" compression.
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16).toUpperCase());
    return groups.join(':');
  }
  return `#${hexUpper(bytes)}`;
}

function malformedSan(what: string): never {
  throw new CertificateParseError(`malformed subjectAltName extension: ${what} (RFC 5280 4.2.1.6)`);
}

function formatGeneralName(gn: asn1js.AsnType): string {
  const block = gn as asn1js.BaseBlock;
  if (block.idBlock.tagClass !== 3) malformedSan('GeneralName is not context-tagged');
  const tag = block.idBlock.tagNumber;
  const dump = () => `#${hexUpper(block.valueBeforeDecodeView)}`;
  const ia5 = (): string => {
    const bytes = primitiveContent(block);
    if (!bytes) malformedSan(`GeneralName [${tag}] is not a primitive string`);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  };
  switch (tag) {
    case 0: { // otherName: SEQUENCE { type-id OID, value [0] EXPLICIT ANY }
      const parts = block instanceof asn1js.Constructed ? block.valueBlock.value : [];
      const [typeId, wrapped] = parts as [asn1js.AsnType | undefined, asn1js.AsnType | undefined];
      if (!(typeId instanceof asn1js.ObjectIdentifier) || !(wrapped instanceof asn1js.Constructed) || wrapped.valueBlock.value.length !== 1) {
        malformedSan('otherName is not SEQUENCE { type-id, [0] value }');
      }
      const oid = typeId.valueBlock.toString();
      const inner = wrapped.valueBlock.value[0]! as asn1js.BaseBlock;
      const text = decodeAsn1String(inner);
      const t = inner.idBlock.tagNumber;
      if (text !== undefined && inner.idBlock.tagClass === 1 && (t === 12 || t === 22)) {
        return `otherName:${escapeSanValue(`${oid};${t === 12 ? 'UTF8' : 'IA5'}:${text}`)}`;
      }
      return `otherName:${oid};#${hexUpper(inner.valueBeforeDecodeView)}`;
    }
    case 1: return `email:${escapeSanValue(ia5())}`;
    case 2: return `DNS:${escapeSanValue(ia5())}`;
    case 3: return `x400Address:${dump()}`;
    case 4: { // directoryName: [4] EXPLICIT Name
      const inner = block instanceof asn1js.Constructed ? block.valueBlock.value : [];
      if (inner.length !== 1) malformedSan('directoryName does not hold one Name');
      const name: ParsedDn = parseDn((inner[0] as asn1js.BaseBlock).valueBeforeDecodeView);
      return `dirName:${escapeSanValue(formatDn(name, { separator: ',' }))}`;
    }
    case 5: return `ediPartyName:${dump()}`;
    case 6: return `URI:${escapeSanValue(ia5())}`;
    case 7: {
      const bytes = primitiveContent(block);
      if (!bytes) malformedSan('iPAddress is not a primitive OCTET STRING');
      return `IP:${formatIp(bytes)}`;
    }
    case 8: {
      const bytes = primitiveContent(block);
      const oid = bytes && decodeOidContent(bytes);
      return oid ? `RID:${oid}` : `RID:${dump()}`;
    }
    default:
      return `[${tag}]:${dump()}`;
  }
}

/**
 * Formats a subjectAltName extension value (GeneralNames DER, RFC 5280 4.2.1.6) as
 * CloudFront's `san` string: entries in DER order joined with `,` (no space), each
 * `TYPE:value` with OpenSSL's configuration-file type names (x509v3_config), which is
 * what CloudFront's `DNS:a.example.com,IP:10.0.0.1` uses:
 *
 * - dNSName `DNS:host`, rfc822Name `email:a@b`, uniformResourceIdentifier `URI:…`;
 * - iPAddress `IP:10.0.0.1`; IPv6 in OpenSSL's style, eight uppercase groups without
 *   `::` compression (`IP:2001:DB8:0:0:0:0:0:1`); any other length `IP:#hex`;
 * - directoryName `dirName:` + the Name in RFC 4514 form with `,` separators (UTF-8 kept);
 * - otherName `otherName:<oid>;UTF8:<text>` or `…;IA5:<text>` for string values (e.g.
 *   Microsoft UPN 1.3.6.1.4.1.311.20.2.3), else `otherName:<oid>;#<hex of value DER>`;
 * - registeredID `RID:<oid>`; x400Address / ediPartyName `x400Address:#hex` /
 *   `ediPartyName:#hex` (hex of the whole GeneralName DER).
 *
 * Values are printed as encoded, except that `\`, `,` and control characters are
 * backslash-escaped (`\\`, `\,`, `\XX`) so splitting on unescaped commas always yields
 * whole entries: a name like `evil.example,DNS:good.example` cannot pose as two
 * entries. Ordinary host names, addresses and URIs contain none of these. `#` dumps use
 * uppercase hex. An empty GeneralNames gives `''`.
 * @throws CertificateParseError when the DER is not a GeneralNames SEQUENCE.
 */
export function formatSubjectAltName(der: Uint8Array): string {
  const asn = asn1js.fromBER(der);
  if (asn.offset === -1) malformedSan(asn.result.error || 'invalid DER');
  if (asn.offset !== der.byteLength) malformedSan('trailing bytes');
  if (!(asn.result instanceof asn1js.Sequence)) malformedSan('not a SEQUENCE');
  return asn.result.valueBlock.value.map(formatGeneralName).join(',');
}

interface CertNames {
  subject: ParsedDn;
  issuer: ParsedDn;
}

const namesCache = new WeakMap<ParsedCertificate, CertNames>();
const viewCache = new WeakMap<ParsedCertificate, CertificateView>();
const headersCache = new WeakMap<ParsedCertificate, ViewerCertHeaders>();

/**
 * Decoded Names by DER, shared across certificates: issuer and intermediate names
 * repeat on nearly every handshake, and asn1js decoding costs ~45 µs per Name (more
 * than everything else in a view). Bounded; the oldest entry goes first. The entries
 * are never handed out, so sharing them is safe.
 */
const DN_CACHE_MAX = 1024;
const dnByDer = new Map<string, ParsedDn>();

function cachedParseDn(der: Buffer): ParsedDn {
  const key = der.toString('latin1');
  let dn = dnByDer.get(key);
  if (!dn) {
    dn = parseDn(der);
    if (dnByDer.size >= DN_CACHE_MAX) dnByDer.delete(dnByDer.keys().next().value!);
    dnByDer.set(key, dn);
  }
  return dn;
}

function namesOf(cert: ParsedCertificate): CertNames {
  let n = namesCache.get(cert);
  if (!n) {
    n = { subject: cachedParseDn(cert.subjectDer), issuer: cachedParseDn(cert.issuerDer) };
    namesCache.set(cert, n);
  }
  return n;
}

/**
 * The connection-function view of one certificate (SPEC section 4): subject, issuer,
 * serialNumber, validity, sha256Fingerprint, ocspEndpoint (absent when the AIA has no
 * OCSP URI), san and sanHex (`''` when there is no subjectAltName — an empty string
 * rather than an absent property, so `leaf.san.split(',')` in function code never
 * throws), spki. Computed once per certificate object; the result is frozen.
 * @throws CertificateParseError when the subject/issuer Name or the subjectAltName
 *   extension is malformed in a way the certificate parser let through.
 */
export function certificateView(cert: ParsedCertificate): CertificateView {
  const cached = viewCache.get(cert);
  if (cached) return cached;
  const names = namesOf(cert);
  const sanDer = cert.subjectAltNameDer;
  const view: CertificateView = {
    subject: formatDnRfc4514(names.subject),
    issuer: formatDnRfc4514(names.issuer),
    serialNumber: formatSerialNumber(cert.serialNumberBytes),
    validity: Object.freeze({ notBefore: formatIsoSeconds(cert.notBefore), notAfter: formatIsoSeconds(cert.notAfter) }),
    sha256Fingerprint: formatFingerprint(cert.sha256),
    ...(cert.ocspUrls.length > 0 ? { ocspEndpoint: cert.ocspUrls[0] } : {}),
    san: sanDer ? formatSubjectAltName(sanDer) : '',
    spki: cert.spkiDer.toString('hex'),
    sanHex: sanDer ? sanDer.toString('hex') : '',
  };
  Object.freeze(view);
  viewCache.set(cert, view);
  return view;
}

/**
 * `connection.clientCertificate.certificates` for a presented chain (SPEC section 4):
 * the first certificate is the leaf, the rest are intermediates in the order given.
 * @param certs the chain as the client sent it, leaf first.
 * @throws InvalidArgumentError when `certs` is empty.
 * @throws CertificateParseError as {@link certificateView}.
 */
export function chainView(certs: readonly ParsedCertificate[]): ChainView {
  const [leaf, ...intermediates] = certs;
  if (!leaf) throw new InvalidArgumentError('chainView needs at least the leaf certificate');
  return { leaf: certificateView(leaf), intermediates: intermediates.map(certificateView) };
}

/**
 * The `CloudFront-Viewer-Cert-*` headers for the leaf (SPEC section 6, CloudFront
 * "viewer mTLS headers"): Present `1`, Serial-Number (lowercase colon hex), Issuer
 * and Subject (RFC 2253), Sha256 (64 lowercase hex), Validity
 * (`NotBefore=…Z;NotAfter=…Z`), Pem (`encodeURIComponent` of the PEM). Computed once
 * per certificate object; the result is frozen.
 * @throws CertificateParseError when a Name is malformed in a way the certificate parser let through.
 */
export function viewerCertHeaders(cert: ParsedCertificate): ViewerCertHeaders {
  const cached = headersCache.get(cert);
  if (cached) return cached;
  const names = namesOf(cert);
  const headers: ViewerCertHeaders = Object.freeze({
    'CloudFront-Viewer-Cert-Present': '1',
    'CloudFront-Viewer-Cert-Serial-Number': formatSerialNumber(cert.serialNumberBytes),
    'CloudFront-Viewer-Cert-Issuer': formatDnRfc2253(names.issuer),
    'CloudFront-Viewer-Cert-Subject': formatDnRfc2253(names.subject),
    'CloudFront-Viewer-Cert-Sha256': cert.sha256.toString('hex'),
    'CloudFront-Viewer-Cert-Validity': `NotBefore=${formatIsoSeconds(cert.notBefore)};NotAfter=${formatIsoSeconds(cert.notAfter)}`,
    'CloudFront-Viewer-Cert-Pem': encodeURIComponent(toPem(cert.der)),
  } as const);
  headersCache.set(cert, headers);
  return headers;
}

/** The viewer-certificate header set when no client certificate was presented (`optional` mode): Present `0` only. */
export function viewerCertAbsentHeaders(): { 'CloudFront-Viewer-Cert-Present': '0' } {
  return { 'CloudFront-Viewer-Cert-Present': '0' };
}
