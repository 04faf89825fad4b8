/**
 * Distinguished Name formatting (RFC 4514, RFC 2253) from the DER of an X.509 Name
 * (RFC 5280 4.1.2.4).
 *
 * The Name is decoded with asn1js directly (pkijs flattens multi-valued RDNs, which
 * would lose the `+` grouping). Two renderings share one decoder:
 *
 * - {@link formatDnRfc4514}: the connection-function form (SPEC section 4, CloudFront's
 *   `subject`/`issuer`): `", "` between RDNs, non-ASCII kept as UTF-8 characters.
 * - {@link formatDnRfc2253}: the header form (SPEC section 6,
 *   `CloudFront-Viewer-Cert-Subject`/`-Issuer`): `","` between RDNs and pure ASCII
 *   (non-ASCII escaped as `\XX` UTF-8 byte pairs), byte-identical to
 *   `openssl x509 -nameopt RFC2253` for the attribute types OpenSSL names the same way.
 *
 * Rules common to both (decisions recorded here, RFC section in brackets):
 * - RDNs are written in reverse order of the DER SEQUENCE [RFC 4514 2.1], so the usual
 *   `C, O, CN` encoding prints `CN=…,O=…,C=…`.
 * - Attributes of a multi-valued RDN are joined with `+`. RFC 4514 2.2 allows any
 *   order; we write them in reverse DER order too, as OpenSSL's `XN_FLAG_RFC2253` (and
 *   so nginx's `$ssl_client_s_dn`) does, so both tools agree with us.
 * - Attribute types: the short names of {@link DN_ATTRIBUTE_NAMES} (RFC 4514 3 plus the
 *   names OpenSSL prints for common extras, e.g. `emailAddress`, `serialNumber`). One
 *   deliberate difference from OpenSSL: 2.5.4.9 prints as RFC 4514's `STREET`, OpenSSL
 *   prints `street`. Any other type is written as a dotted OID and its value as `#`
 *   followed by the hex of the value's DER [RFC 4514 2.3, 2.4].
 * - Values: UTF8String, PrintableString, IA5String, NumericString, VisibleString and
 *   TeletexString (decoded as Latin-1, as OpenSSL does), BMPString (UTF-16BE) and
 *   UniversalString (UTF-32BE) are decoded to text; any other ASN.1 type, a constructed
 *   or indefinite-length encoding, or undecodable bytes (bad UTF-8, lone surrogates)
 *   are written as `#` + hex of the value's DER [RFC 4514 2.4].
 * - Escaping [RFC 4514 2.4]: `"` `+` `,` `;` `<` `>` `\` get a backslash; a leading `#`
 *   or space and a trailing space get a backslash; control characters U+0000–U+001F and
 *   U+007F are written as `\XX` (so NUL is `\00`, newline `\0A`; no raw CR/LF ever
 *   reaches a log line or header). All hex in DN strings is uppercase, as OpenSSL writes it.
 */
import * as asn1js from 'asn1js';
import { CertificateParseError } from '../errors.js';

/**
 * Short names of attribute types, keyed by OID. RFC 4514 section 3 (CN, L, ST, O, OU,
 * C, STREET, DC, UID) plus the names OpenSSL's RFC 2253 output uses for common extras
 * (RFC 5280 appendix A, RFC 4519, PKCS #9, CA/B Forum EV). Types not listed here are
 * printed as dotted OIDs with a `#hex` value.
 */
export const DN_ATTRIBUTE_NAMES: Readonly<Record<string, string>> = Object.freeze({
  '2.5.4.3': 'CN',
  '2.5.4.4': 'SN',
  '2.5.4.5': 'serialNumber',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.9': 'STREET',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.12': 'title',
  '2.5.4.13': 'description',
  '2.5.4.15': 'businessCategory',
  '2.5.4.17': 'postalCode',
  '2.5.4.41': 'name',
  '2.5.4.42': 'GN',
  '2.5.4.43': 'initials',
  '2.5.4.44': 'generationQualifier',
  '2.5.4.46': 'dnQualifier',
  '2.5.4.65': 'pseudonym',
  '2.5.4.97': 'organizationIdentifier',
  '0.9.2342.19200300.100.1.1': 'UID',
  '0.9.2342.19200300.100.1.25': 'DC',
  '1.2.840.113549.1.9.1': 'emailAddress',
  '1.3.6.1.4.1.311.60.2.1.1': 'jurisdictionL',
  '1.3.6.1.4.1.311.60.2.1.2': 'jurisdictionST',
  '1.3.6.1.4.1.311.60.2.1.3': 'jurisdictionC',
});

/**
 * One AttributeTypeAndValue of a Name (RFC 5280 4.1.2.4).
 * `value` is the decoded text, or undefined when the value must be written in the
 * `#hex` form (unknown type, non-string ASN.1 type, or undecodable bytes).
 */
export interface DnAttribute {
  /** Dotted OID of the attribute type. */
  oid: string;
  /** Short name from {@link DN_ATTRIBUTE_NAMES}, or undefined for other types. */
  name: string | undefined;
  /** Decoded text of a string value (unescaped), or undefined. */
  value: string | undefined;
  /** DER of the AttributeValue (the whole TLV), as encoded in the certificate. */
  valueDer: Uint8Array;
}

/** A parsed Name: RDNs in DER order; each RDN lists its attributes in DER order. */
export type ParsedDn = DnAttribute[][];

/** Rendering options of {@link formatDn}. */
export interface DnFormatOptions {
  /** Text between RDNs: `", "` (CloudFront connection object, default) or `","` (RFC 2253). */
  separator?: string;
  /**
   * Escape every non-ASCII character as `\XX` pairs of its UTF-8 bytes (RFC 4514 2.4
   * hexpair escaping, OpenSSL `ESC_MSB`). Default false: non-ASCII is kept as UTF-8 text.
   */
  escapeNonAscii?: boolean;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });
/** ASN.1 universal tags of string types decoded one byte per character (Latin-1). */
const LATIN1_TAGS = new Set([18 /* Numeric */, 19 /* Printable */, 20 /* Teletex */, 22 /* IA5 */, 26 /* Visible */]);

/** Content octets of a definite-length primitive block, or undefined. @internal */
export function primitiveContent(block: asn1js.AsnType): Uint8Array | undefined {
  const b = block as asn1js.BaseBlock;
  if (b.idBlock.isConstructed || b.lenBlock.isIndefiniteForm) return undefined;
  return b.valueBeforeDecodeView.subarray(b.idBlock.blockLength + b.lenBlock.blockLength);
}

/**
 * Decodes the text of a string-typed ASN.1 value (RFC 5280 DirectoryString and friends),
 * or returns undefined when the type is not a string type or the bytes do not decode.
 * @internal shared with the SAN formatter.
 */
export function decodeAsn1String(block: asn1js.AsnType): string | undefined {
  const b = block as asn1js.BaseBlock;
  if (b.idBlock.tagClass !== 1) return undefined;
  const bytes = primitiveContent(b);
  if (!bytes) return undefined;
  const tag = b.idBlock.tagNumber;
  if (tag === 12) {
    try {
      return UTF8.decode(bytes);
    } catch {
      return undefined;
    }
  }
  if (LATIN1_TAGS.has(tag)) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  if (tag === 30) return decodeUtf16Be(bytes);
  if (tag === 28) return decodeUtf32Be(bytes);
  return undefined;
}

function decodeUtf16Be(bytes: Uint8Array): string | undefined {
  if (bytes.length % 2 !== 0) return undefined;
  const units: number[] = [];
  for (let i = 0; i < bytes.length; i += 2) units.push((bytes[i]! << 8) | bytes[i + 1]!);
  // Reject lone surrogates: they have no UTF-8 form.
  for (let i = 0; i < units.length; i++) {
    const u = units[i]!;
    if (u >= 0xd800 && u <= 0xdbff) {
      const next = units[i + 1];
      if (next === undefined || next < 0xdc00 || next > 0xdfff) return undefined;
      i++;
    } else if (u >= 0xdc00 && u <= 0xdfff) {
      return undefined;
    }
  }
  let out = '';
  for (let i = 0; i < units.length; i += 4096) out += String.fromCharCode(...units.slice(i, i + 4096));
  return out;
}

function decodeUtf32Be(bytes: Uint8Array): string | undefined {
  if (bytes.length % 4 !== 0) return undefined;
  let out = '';
  for (let i = 0; i < bytes.length; i += 4) {
    const cp = ((bytes[i]! << 24) | (bytes[i + 1]! << 16) | (bytes[i + 2]! << 8) | bytes[i + 3]!) >>> 0;
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return undefined;
    out += String.fromCodePoint(cp);
  }
  return out;
}

function malformed(what: string): never {
  throw new CertificateParseError(`malformed Name: ${what} (RFC 5280 4.1.2.4)`);
}

/**
 * Decodes the DER of an X.509 Name (the whole `SEQUENCE OF RelativeDistinguishedName`,
 * RFC 5280 4.1.2.4) into its RDNs, keeping multi-valued RDNs grouped.
 * @param der DER of the Name, e.g. `ParsedCertificate.subjectDer`.
 * @returns RDNs in DER order (not reversed); an empty Name gives `[]`.
 * @throws CertificateParseError when the bytes are not a Name (bad DER, trailing
 *   bytes, an RDN that is not a non-empty SET of `SEQUENCE { OID, ANY }`).
 */
export function parseDn(der: Uint8Array): ParsedDn {
  const asn = asn1js.fromBER(der);
  if (asn.offset === -1) malformed(asn.result.error || 'invalid DER');
  if (asn.offset !== der.byteLength) malformed('trailing bytes');
  const seq = asn.result;
  if (!(seq instanceof asn1js.Sequence)) malformed('not a SEQUENCE');
  return seq.valueBlock.value.map((set) => {
    if (!(set instanceof asn1js.Set) || set.valueBlock.value.length === 0) malformed('RDN is not a non-empty SET');
    return set.valueBlock.value.map((atv): DnAttribute => {
      if (!(atv instanceof asn1js.Sequence) || atv.valueBlock.value.length !== 2) malformed('attribute is not SEQUENCE { type, value }');
      const [type, value] = atv.valueBlock.value as [asn1js.AsnType, asn1js.AsnType];
      if (!(type instanceof asn1js.ObjectIdentifier)) malformed('attribute type is not an OBJECT IDENTIFIER');
      const oid = type.valueBlock.toString();
      const name = DN_ATTRIBUTE_NAMES[oid];
      return {
        oid,
        name,
        // RFC 4514 2.4: a type in dotted form always takes the #hex value form.
        value: name === undefined ? undefined : decodeAsn1String(value),
        valueDer: (value as asn1js.BaseBlock).valueBeforeDecodeView,
      };
    });
  });
}

const HEX_UPPER = '0123456789ABCDEF';

function hexPair(byte: number): string {
  return '\\' + HEX_UPPER[byte >> 4]! + HEX_UPPER[byte & 15]!;
}

/**
 * Escapes one attribute value for an RFC 4514 string (section 2.4): backslash before
 * `"` `+` `,` `;` `<` `>` `\`, before a leading `#` or space and a trailing space;
 * `\XX` for control characters U+0000–U+001F and U+007F; with `escapeNonAscii`, `\XX`
 * for each UTF-8 byte of every non-ASCII character (else those stay as they are).
 * @param value the decoded (unescaped) attribute value.
 */
export function escapeDnValue(value: string, escapeNonAscii = false): string {
  let out = '';
  const last = value.length - 1;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    const ch = value[i]!;
    if (c < 0x20 || c === 0x7f) out += hexPair(c);
    else if (ch === '"' || ch === '+' || ch === ',' || ch === ';' || ch === '<' || ch === '>' || ch === '\\') out += '\\' + ch;
    else if ((i === 0 && (ch === '#' || ch === ' ')) || (i === last && ch === ' ')) out += '\\' + ch;
    else if (c >= 0x80 && escapeNonAscii) {
      // A surrogate pair is one character: take the whole code point.
      const cp = value.codePointAt(i)!;
      const s = String.fromCodePoint(cp);
      for (const b of Buffer.from(s, 'utf8')) out += hexPair(b);
      i += s.length - 1;
    } else out += ch;
  }
  return out;
}

function formatAttribute(a: DnAttribute, escapeNonAscii: boolean): string {
  if (a.name !== undefined && a.value !== undefined) return `${a.name}=${escapeDnValue(a.value, escapeNonAscii)}`;
  let hex = '';
  for (const b of a.valueDer) hex += HEX_UPPER[b >> 4]! + HEX_UPPER[b & 15]!;
  return `${a.name ?? a.oid}=#${hex}`;
}

/**
 * Renders a Name as an RFC 4514 string: RDNs in reverse DER order separated by
 * `options.separator` (default `", "`), attributes of a multi-valued RDN joined with
 * `+` (also in reverse DER order), values escaped by {@link escapeDnValue}. See the
 * module comment for the attribute names and value decoding rules.
 * @param name DER of the Name, or a Name already decoded by {@link parseDn}.
 * @throws CertificateParseError when `name` is DER that is not a Name.
 */
export function formatDn(name: Uint8Array | ParsedDn, options: DnFormatOptions = {}): string {
  const rdns = name instanceof Uint8Array ? parseDn(name) : name;
  const sep = options.separator ?? ', ';
  const escapeNonAscii = options.escapeNonAscii ?? false;
  const parts: string[] = [];
  for (let i = rdns.length - 1; i >= 0; i--) {
    const rdn = rdns[i]!;
    const attrs: string[] = [];
    for (let j = rdn.length - 1; j >= 0; j--) attrs.push(formatAttribute(rdn[j]!, escapeNonAscii));
    parts.push(attrs.join('+'));
  }
  return parts.join(sep);
}

/**
 * The connection-object form of a Name (SPEC section 4, CloudFront `subject`/`issuer`):
 * RFC 4514 with `", "` between RDNs, non-ASCII kept as UTF-8 characters.
 * Example: `CN=Client, O=Example, C=US`.
 * @throws CertificateParseError when `name` is DER that is not a Name.
 */
export function formatDnRfc4514(name: Uint8Array | ParsedDn): string {
  return name instanceof Uint8Array ? cachedFormat(rfc4514ByDer, name, ', ', false) : formatDn(name, { separator: ', ', escapeNonAscii: false });
}

/**
 * The header form of a Name (SPEC section 6, `CloudFront-Viewer-Cert-Subject`/`-Issuer`):
 * RFC 2253 with `","` between RDNs and only printable ASCII — non-ASCII characters are
 * escaped as `\XX` UTF-8 byte pairs, because an HTTP header value cannot carry UTF-8
 * reliably (Node sends it as Latin-1 or rejects it). Equal to
 * `openssl x509 -noout -subject -nameopt RFC2253` output (after `subject=`), except
 * that 2.5.4.9 is `STREET` and types unknown to {@link DN_ATTRIBUTE_NAMES} are dotted OIDs.
 * Example: `CN=Client,O=Example,C=US`.
 * @throws CertificateParseError when `name` is DER that is not a Name.
 */
export function formatDnRfc2253(name: Uint8Array | ParsedDn): string {
  return name instanceof Uint8Array ? cachedFormat(rfc2253ByDer, name, ',', true) : formatDn(name, { separator: ',', escapeNonAscii: true });
}

/**
 * Formatted Names by DER (bounded, oldest first out): the same issuer and subject names
 * come back on nearly every handshake and in every log line, and asn1js decoding costs
 * tens of µs per Name. Strings are immutable, so sharing them is safe.
 */
const FORMAT_CACHE_MAX = 4096;
const rfc4514ByDer = new Map<string, string>();
const rfc2253ByDer = new Map<string, string>();

function cachedFormat(cache: Map<string, string>, der: Uint8Array, separator: string, escapeNonAscii: boolean): string {
  const key = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('latin1');
  let text = cache.get(key);
  if (text === undefined) {
    text = formatDn(parseDn(der), { separator, escapeNonAscii });
    if (cache.size >= FORMAT_CACHE_MAX) cache.delete(cache.keys().next().value!);
    cache.set(key, text);
  }
  return text;
}
