/**
 * CRL decoding (RFC 5280 section 5): PEM (RFC 7468 `X509 CRL`) or DER in, a
 * {@link ParsedCrl} out. Decoding only: nothing here decides trust (see verify.ts).
 *
 * Speed and memory. asn1js 4 refuses inputs of more than 10 000 ASN.1 nodes by
 * default, so `pkijs.CertificateRevocationList.fromBER` fails on any CRL of more than
 * ~1 300 entries (about 7 nodes each); with the limit raised, decoding the whole tree
 * at once and then running pkijs' schema pass took ~1 s for 10 000 entries and 11–14 s
 * for 100 000 (openssl-made CRLs with reason codes, 0.5 MB and 4.9 MB, on a busy
 * 2-core machine), holding the whole tree (hundreds of MB) in the heap. So the CRL is
 * walked element by element instead: asn1js' own identifier/length block decoders read
 * the headers of the three enclosing SEQUENCEs (CertificateList, TBSCertList,
 * revokedCertificates), and `asn1js.fromBER` decodes every other element — each
 * revoked entry separately, so the heap holds one entry's tree at a time. No tag or
 * length octet is decoded here by hand. Same machine: ~0.28 s for 10 000 entries and
 * ~2.8 s for 100 000, and only the result stays in memory (~450 bytes per entry: 43 MB
 * for 100 000); most of the remaining time is spent inside asn1js.
 */
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CrlError, InvalidArgumentError } from '../../errors.js';
import { formatDnRfc4514, formatIsoSeconds, formatSerialNumber, OID } from '../../pki/index.js';
import { CRL_REASONS } from '../ocsp/index.js';

/** CRL and CRL entry extension OIDs (RFC 5280 5.2 and 5.3). */
export const CRL_OID = {
  authorityKeyIdentifier: OID.authorityKeyIdentifier,
  issuerAltName: '2.5.29.18',
  cRLNumber: '2.5.29.20',
  deltaCRLIndicator: '2.5.29.27',
  issuingDistributionPoint: '2.5.29.28',
  freshestCRL: '2.5.29.46',
  authorityInfoAccess: OID.authorityInfoAccess,
  reasonCode: '2.5.29.21',
  holdInstructionCode: '2.5.29.23',
  invalidityDate: '2.5.29.24',
  certificateIssuer: '2.5.29.29',
} as const;

/**
 * CRL extensions this module understands (RFC 5280 5.2). deltaCRLIndicator and
 * issuingDistributionPoint are decoded into {@link ParsedCrl.isDelta},
 * {@link ParsedCrl.isIndirect} and {@link ParsedCrl.issuingDistributionPoint}; the
 * others carry nothing that changes which serials are revoked.
 */
const UNDERSTOOD_CRL_EXTENSIONS: ReadonlySet<string> = new Set([
  CRL_OID.authorityKeyIdentifier, CRL_OID.issuerAltName, CRL_OID.cRLNumber, CRL_OID.deltaCRLIndicator,
  CRL_OID.issuingDistributionPoint, CRL_OID.freshestCRL, CRL_OID.authorityInfoAccess,
]);

/** CRL entry extensions this module understands (RFC 5280 5.3); certificateIssuer is recorded, not followed. */
const UNDERSTOOD_ENTRY_EXTENSIONS: ReadonlySet<string> = new Set([
  CRL_OID.reasonCode, CRL_OID.holdInstructionCode, CRL_OID.invalidityDate, CRL_OID.certificateIssuer,
]);

/** Default {@link ParseCrlOptions.maxBytes}: 32 MiB (about 650 000 entries of a typical CRL). */
export const DEFAULT_CRL_MAX_BYTES = 32 * 1024 * 1024;

/** Options of {@link parseCrl}. */
export interface ParseCrlOptions {
  /**
   * Largest accepted CRL, in bytes of DER (after PEM decoding) and of PEM text.
   * Default {@link DEFAULT_CRL_MAX_BYTES}. A bound on the memory a hostile upload can
   * make the parser use (the revoked list is held in memory, ~450 bytes per entry
   * against ~49 bytes of DER).
   */
  maxBytes?: number;
}

/**
 * One revokedCertificates entry (RFC 5280 5.1.2.6, 5.3). Only the fields that matter
 * for a revoked-serial list are kept.
 */
export interface RevokedCertificateEntry {
  /**
   * Content octets of the userCertificate INTEGER exactly as encoded in the CRL: a
   * positive serial whose high bit is set keeps its `00` sign octet. This is the same
   * byte string `ParsedCertificate.serialNumberBytes` gives for the certificate.
   */
  readonly serialNumberBytes: Buffer;
  /** revocationDate (RFC 5280 5.1.2.6). */
  readonly revocationDate: Date;
  /**
   * CRLReason name of the reasonCode entry extension (RFC 5280 5.3.1), as spelled in
   * `CRL_REASONS` (`keyCompromise`, `certificateHold`, …); a code RFC 5280 does not
   * define is given as its decimal number. Absent when the entry has no reasonCode.
   */
  readonly reason?: string;
  /**
   * True when the entry carries a certificateIssuer extension (RFC 5280 5.3.3): the
   * certificate was issued by another CA, which only an indirect CRL may say.
   * Absent (not false) otherwise.
   */
  readonly hasCertificateIssuer?: true;
  /**
   * OIDs of critical entry extensions this module does not process (RFC 5280 5.3:
   * such a CRL must not be used). Absent when there are none.
   */
  readonly unhandledCriticalExtensions?: readonly string[];
}

/**
 * The issuingDistributionPoint CRL extension (RFC 5280 5.2.5), which sets the scope
 * of the CRL. The flags are the DER BOOLEANs (absent = false).
 */
export interface IssuingDistributionPointInfo {
  /** A distributionPoint name is present (the CRL covers one distribution point only). */
  readonly hasDistributionPoint: boolean;
  readonly onlyContainsUserCerts: boolean;
  readonly onlyContainsCACerts: boolean;
  /** onlySomeReasons is present: the CRL lists only revocations for some reasons. */
  readonly onlySomeReasons: boolean;
  readonly indirectCRL: boolean;
  /** RFC 5280 5.2.5: conforming CRL issuers MUST set this to false. */
  readonly onlyContainsAttributeCerts: boolean;
}

/**
 * A decoded X.509 v1 or v2 CRL (RFC 5280 5.1). Immutable. Produced by
 * {@link parseCrl}; verify it with `verifyCrl` before trusting any field.
 */
export interface ParsedCrl {
  /** DER of the whole CertificateList. */
  readonly der: Buffer;
  /** DER of tbsCertList exactly as received: the signed bytes (a view into {@link der}). */
  readonly tbsDer: Buffer;
  /** 1 for a v1 CRL (no version field), 2 for v2 (RFC 5280 5.1.2.1). */
  readonly version: 1 | 2;
  /** DER of the issuer Name SEQUENCE (RFC 5280 5.1.2.3). */
  readonly issuerDer: Buffer;
  /** The issuer Name in RFC 4514 form, e.g. `CN=Example CA, O=Example, C=US`. */
  readonly issuer: string;
  /** thisUpdate (RFC 5280 5.1.2.4). */
  readonly thisUpdate: Date;
  /** nextUpdate (RFC 5280 5.1.2.5); undefined when the CRL has none. */
  readonly nextUpdate: Date | undefined;
  /** cRLNumber extension (RFC 5280 5.2.3), a non-negative INTEGER; undefined when absent. */
  readonly crlNumber: bigint | undefined;
  /** keyIdentifier of the authorityKeyIdentifier extension (RFC 5280 5.2.1), or undefined. */
  readonly authorityKeyIdentifier: Buffer | undefined;
  /** OID of the signatureAlgorithm (equal to tbsCertList.signature, checked). */
  readonly signatureAlgorithmOid: string;
  /** DER of the signatureAlgorithm AlgorithmIdentifier (its parameters matter for RSASSA-PSS). */
  readonly signatureAlgorithmDer: Buffer;
  /** The signature: signatureValue BIT STRING content without the unused-bits octet. */
  readonly signature: Buffer;
  /** deltaCRLIndicator present (RFC 5280 5.2.4): a delta CRL. */
  readonly isDelta: boolean;
  /** BaseCRLNumber of a delta CRL, undefined otherwise. */
  readonly baseCrlNumber: bigint | undefined;
  /**
   * An indirect CRL (RFC 5280 5.2.5, 5.3.3): issuingDistributionPoint asserts
   * indirectCRL, or some entry carries a certificateIssuer extension (only indirect
   * CRLs may).
   */
  readonly isIndirect: boolean;
  /** The issuingDistributionPoint extension, or undefined when absent. */
  readonly issuingDistributionPoint: IssuingDistributionPointInfo | undefined;
  /** OIDs of critical CRL extensions this module does not process (RFC 5280 5.2). */
  readonly unhandledCriticalExtensions: readonly string[];
  /** revokedCertificates in CRL order (empty when the CRL lists none). Duplicates are kept here. */
  readonly revoked: readonly RevokedCertificateEntry[];
}

// ---------------------------------------------------------------------------------
// PEM

const BEGIN = /^-----BEGIN ([A-Z0-9 ]+)-----$/;
const END = /^-----END ([A-Z0-9 ]+)-----$/;
const CRL_LABEL = 'X509 CRL';

/** Decodes the one `X509 CRL` block of PEM text (RFC 7468 section 6); `#` comment and blank lines may surround it. */
function pemToDer(text: string): Buffer {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const lines = text.split(/\r?\n/);
  let der: Buffer | undefined;
  let block: { line: number; body: string[] } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    const at = `line ${i + 1}`;
    if (block) {
      const end = END.exec(line);
      if (end) {
        if (end[1] !== CRL_LABEL) throw new CrlError(`${at}: END marker "${end[1]}" does not match BEGIN "${CRL_LABEL}"`);
        const b64 = block.body.join('');
        if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) {
          throw new CrlError(`invalid base64 in the PEM block starting at line ${block.line}`);
        }
        der = Buffer.from(b64, 'base64');
        if (der.length === 0) throw new CrlError(`the PEM block starting at line ${block.line} is empty`);
        block = undefined;
        continue;
      }
      if (line.startsWith('-----')) throw new CrlError(`${at}: unexpected "${line.slice(0, 40)}" inside the PEM block starting at line ${block.line} (missing END marker?)`);
      if (line.includes(':')) throw new CrlError(`${at}: unexpected header line in the PEM body (RFC 7468 CRL blocks have no headers)`);
      block.body.push(line);
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const begin = BEGIN.exec(line);
    if (begin) {
      if (begin[1] !== CRL_LABEL) {
        throw new CrlError(`${at}: PEM block "${begin[1]}" is not a CRL (expected -----BEGIN ${CRL_LABEL}-----)`);
      }
      if (der) throw new CrlError(`${at}: a second ${CRL_LABEL} block; give one CRL at a time`);
      block = { line: i + 1, body: [] };
      continue;
    }
    throw new CrlError(`${at}: unexpected text outside the PEM block: "${line.slice(0, 40)}" (only # comment lines and blank lines may surround -----BEGIN ${CRL_LABEL}-----)`);
  }
  if (block) throw new CrlError(`the PEM block starting at line ${block.line} has no -----END ${CRL_LABEL}----- marker`);
  if (!der) throw new CrlError(`no CRL found (expected a -----BEGIN ${CRL_LABEL}----- block)`);
  return der;
}

// ---------------------------------------------------------------------------------
// DER walking helpers (asn1js does all decoding)

interface Header {
  tagClass: number;
  tagNumber: number;
  constructed: boolean;
  /** Offset of the first content octet. */
  contentStart: number;
  /** Offset just past the element. */
  end: number;
}

/** Decodes one identifier+length header at `offset` with asn1js' block decoders; the element must end by `limit`. */
function readHeader(der: Buffer, offset: number, limit: number, what: string): Header {
  const block = new asn1js.BaseBlock();
  const afterId = block.idBlock.fromBER(der, offset, limit - offset);
  if (afterId === -1 || afterId > limit) throw malformed(`${what}: ${block.idBlock.error || 'bad identifier octets'}`);
  const afterLen = block.lenBlock.fromBER(der, afterId, limit - afterId);
  if (afterLen === -1 || afterLen > limit) throw malformed(`${what}: ${block.lenBlock.error || 'bad length octets'}`);
  if (block.lenBlock.isIndefiniteForm) throw malformed(`${what} uses the indefinite length form (BER, not DER)`);
  const end = afterLen + block.lenBlock.length;
  if (end > limit) throw malformed(`${what} is truncated (its length runs ${end - limit} bytes past the end of the enclosing data)`);
  return {
    tagClass: block.idBlock.tagClass, tagNumber: block.idBlock.tagNumber, constructed: block.idBlock.isConstructed,
    contentStart: afterLen, end,
  };
}

function isSequence(h: Header): boolean {
  return h.tagClass === 1 && h.tagNumber === 16 && h.constructed;
}

/** Decodes exactly one element spanning `der[start, end)`. */
function decodeElement(der: Buffer, start: number, end: number, what: string): asn1js.AsnType {
  // A plain Uint8Array view (not a Buffer): asn1js only takes its fast path for those.
  const view = new Uint8Array(der.buffer, der.byteOffset + start, end - start);
  const asn = asn1js.fromBER(view, { copyInput: false, parseEmbedded: false });
  if (asn.offset === -1) throw malformed(`${what}: ${asn.result.error || 'invalid DER'}`);
  if (asn.offset !== end - start) throw malformed(`${what}: ${end - start - asn.offset} unexpected bytes after it`);
  return asn.result;
}

function malformed(detail: string): CrlError {
  return new CrlError(`not a valid X.509 CRL (${detail})`);
}

function readTime(el: asn1js.AsnType | undefined, what: string): Date {
  if (!(el instanceof asn1js.UTCTime) && !(el instanceof asn1js.GeneralizedTime)) {
    throw malformed(`${what} is not a UTCTime or GeneralizedTime`);
  }
  let d: Date;
  try {
    d = el.toDate();
  } catch (err) {
    throw malformed(`${what} is not a valid time (${(err as Error).message})`);
  }
  if (Number.isNaN(d.getTime())) throw malformed(`${what} is not a valid time`);
  return d;
}

interface RawExtension {
  oid: string;
  critical: boolean;
  value: Uint8Array;
}

/** Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension (RFC 5280 4.1); each OID at most once. */
function readExtensions(seq: asn1js.AsnType, what: string): RawExtension[] {
  if (!(seq instanceof asn1js.Sequence)) throw malformed(`${what} is not a SEQUENCE`);
  const out: RawExtension[] = [];
  for (const ext of seq.valueBlock.value) {
    const parts = ext instanceof asn1js.Sequence ? ext.valueBlock.value : undefined;
    const oidEl = parts?.[0];
    const last = parts?.[parts.length - 1];
    if (!parts || (parts.length !== 2 && parts.length !== 3) || !(oidEl instanceof asn1js.ObjectIdentifier)
      || !(last instanceof asn1js.OctetString) || last.idBlock.isConstructed
      || (parts.length === 3 && !(parts[1] instanceof asn1js.Boolean))) {
      throw malformed(`${what}: an extension is not SEQUENCE { extnID, critical BOOLEAN OPTIONAL, extnValue OCTET STRING }`);
    }
    const oid = oidEl.valueBlock.toString();
    if (out.some((e) => e.oid === oid)) throw malformed(`${what}: extension ${oid} appears twice`);
    const critical = parts.length === 3 && (parts[1] as asn1js.Boolean).valueBlock.value;
    out.push({ oid, critical, value: last.valueBlock.valueHexView });
  }
  return out;
}

/** Decodes an extension value that must be exactly one element. */
function decodeValue(value: Uint8Array, what: string): asn1js.AsnType {
  const asn = asn1js.fromBER(value);
  if (asn.offset === -1) throw malformed(`${what} value: ${asn.result.error || 'invalid DER'}`);
  if (asn.offset !== value.byteLength) throw malformed(`${what} value has trailing bytes`);
  return asn.result;
}

function readCrlNumber(value: Uint8Array, what: string): bigint {
  const el = decodeValue(value, what);
  if (!(el instanceof asn1js.Integer) || el.valueBlock.valueHexView.byteLength === 0) throw malformed(`${what} is not an INTEGER`);
  const n = el.toBigInt();
  if (n < 0n) throw malformed(`${what} is negative`);
  return n;
}

// ---------------------------------------------------------------------------------
// parseCrl

/**
 * Decodes an X.509 CRL (RFC 5280 5.1): PEM (RFC 7468 section 6, one
 * `-----BEGIN X509 CRL-----` block; lines starting with `#` and blank lines around it
 * are allowed, a leading UTF-8 BOM is ignored) or DER bytes. A string is always read as
 * PEM; bytes are PEM when they contain a `-----BEGIN ` marker, else DER.
 *
 * Structure checked: CertificateList is exactly `SEQUENCE { tbsCertList,
 * signatureAlgorithm, signatureValue }` with no byte after it; tbsCertList fields in
 * RFC 5280 order (version present only as v2, AlgorithmIdentifier, Name, Time, optional
 * Time, optional revokedCertificates, optional `[0]` crlExtensions); the outer
 * signatureAlgorithm equals tbsCertList.signature byte for byte (5.1.1.2); nextUpdate
 * not before thisUpdate; extensions only in v2 CRLs, each OID at most once; every entry
 * is `SEQUENCE { INTEGER (non-empty), Time, Extensions OPTIONAL }`; cRLNumber and
 * BaseCRLNumber are non-negative INTEGERs; reasonCode is an ENUMERATED.
 *
 * Not decided here (see `verifyCrl`): trust, signature, freshness, and whether a delta
 * CRL, an indirect CRL or an unknown critical extension is acceptable — those are only
 * reported ({@link ParsedCrl.isDelta}, {@link ParsedCrl.isIndirect},
 * {@link ParsedCrl.unhandledCriticalExtensions}, per-entry flags).
 *
 * Cost: linear in the number of entries; see the module comment for why entries are
 * decoded one at a time.
 *
 * @param input PEM text or bytes, or DER bytes.
 * @param options {@link ParseCrlOptions}.
 * @throws CrlError (code `InvalidCrl`) naming what is wrong: empty input, neither PEM
 *   nor DER, bad PEM armour or base64, a PEM block of another type, more than one CRL,
 *   over `maxBytes`, trailing bytes, or the first structural problem found, e.g.
 *   `not a valid X.509 CRL (revoked entry #3: userCertificate is not an INTEGER)`.
 * @throws InvalidArgumentError when `maxBytes` is not a positive integer.
 */
export function parseCrl(input: Uint8Array | string, options: ParseCrlOptions = {}): ParsedCrl {
  const maxBytes = options.maxBytes ?? DEFAULT_CRL_MAX_BYTES;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
    throw new InvalidArgumentError(`CRL maxBytes must be a positive integer, got ${String(maxBytes)}`);
  }
  const size = typeof input === 'string' ? Buffer.byteLength(input, 'utf8') : input.byteLength;
  if (size === 0) throw new CrlError('input is empty; expected a PEM (-----BEGIN X509 CRL-----) or DER CRL');
  if (size > maxBytes) throw new CrlError(`the CRL is ${size} bytes; the limit is ${maxBytes} bytes`);

  let der: Buffer;
  if (typeof input === 'string') {
    der = pemToDer(input);
  } else {
    const bytes = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    if (bytes.subarray(0, 4096).toString('latin1').includes('-----BEGIN ')) {
      der = pemToDer(bytes.toString('utf8'));
    } else if (bytes[0] === 0x30) {
      der = Buffer.from(bytes); // own copy: the result must not change if the caller reuses its buffer
    } else {
      const text = bytes.length <= 1 << 20 ? bytes.toString('utf8') : '';
      if (text && text.split(/\r?\n/).every((l) => l.trim() === '' || l.trim().startsWith('#'))) {
        throw new CrlError(`no CRL found (only comment or blank lines; expected a -----BEGIN ${CRL_LABEL}----- block)`);
      }
      throw new CrlError('input is neither PEM (no -----BEGIN marker) nor DER (does not start with a SEQUENCE)');
    }
  }
  return decodeCrl(der);
}

function decodeCrl(der: Buffer): ParsedCrl {
  // CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue }
  const outer = readHeader(der, 0, der.length, 'CertificateList');
  if (!isSequence(outer)) throw malformed('CertificateList is not a SEQUENCE');
  if (outer.end !== der.length) throw malformed(`${der.length - outer.end} trailing bytes after the CertificateList`);

  const tbs = readHeader(der, outer.contentStart, outer.end, 'tbsCertList');
  if (!isSequence(tbs)) throw malformed('tbsCertList is not a SEQUENCE');
  const sigAlgHeader = tbs.end < outer.end ? readHeader(der, tbs.end, outer.end, 'signatureAlgorithm') : undefined;
  if (!sigAlgHeader) throw malformed('signatureAlgorithm is missing');
  const sigValHeader = sigAlgHeader.end < outer.end ? readHeader(der, sigAlgHeader.end, outer.end, 'signatureValue') : undefined;
  if (!sigValHeader) throw malformed('signatureValue is missing');
  if (sigValHeader.end !== outer.end) throw malformed('CertificateList has more than three elements');

  const signatureAlgorithmDer = der.subarray(tbs.end, sigAlgHeader.end);
  const signatureAlgorithmOid = readAlgorithmOid(decodeElement(der, tbs.end, sigAlgHeader.end, 'signatureAlgorithm'), 'signatureAlgorithm');
  const sigEl = decodeElement(der, sigAlgHeader.end, sigValHeader.end, 'signatureValue');
  if (!(sigEl instanceof asn1js.BitString) || sigEl.idBlock.isConstructed) throw malformed('signatureValue is not a BIT STRING');
  if (sigEl.valueBlock.unusedBits !== 0) throw malformed('signatureValue has unused bits');
  const signature = Buffer.from(sigEl.valueBlock.valueHexView);

  // TBSCertList fields, in order.
  let off = tbs.contentStart;
  const next = (what: string): Header | undefined => (off < tbs.end ? readHeader(der, off, tbs.end, what) : undefined);

  let version: 1 | 2 = 1;
  let h = next('tbsCertList.version');
  if (h && h.tagClass === 1 && h.tagNumber === 2) {
    const v = decodeElement(der, off, h.end, 'version') as asn1js.Integer;
    if (v.valueBlock.valueDec !== 1) throw malformed(`version is ${v.valueBlock.valueDec}; only v2 (1) may be written (RFC 5280 5.1.2.1)`);
    version = 2;
    off = h.end;
    h = next('tbsCertList.signature');
  }
  if (!h || !isSequence(h)) throw malformed('tbsCertList.signature AlgorithmIdentifier is missing');
  if (!der.subarray(off, h.end).equals(signatureAlgorithmDer)) {
    throw malformed('signatureAlgorithm differs from tbsCertList.signature (RFC 5280 5.1.1.2)');
  }
  off = h.end;

  h = next('issuer');
  if (!h || !isSequence(h)) throw malformed('issuer Name is missing');
  const issuerDer = Buffer.from(der.subarray(off, h.end));
  let issuer: string;
  try {
    issuer = formatDnRfc4514(issuerDer);
  } catch (err) {
    throw malformed(`issuer is not a valid Name: ${(err as Error).message}`);
  }
  off = h.end;

  h = next('thisUpdate');
  if (!h) throw malformed('thisUpdate is missing');
  const thisUpdate = readTime(decodeElement(der, off, h.end, 'thisUpdate'), 'thisUpdate');
  off = h.end;

  let nextUpdate: Date | undefined;
  h = next('nextUpdate');
  if (h && h.tagClass === 1 && (h.tagNumber === 23 || h.tagNumber === 24)) {
    nextUpdate = readTime(decodeElement(der, off, h.end, 'nextUpdate'), 'nextUpdate');
    if (nextUpdate.getTime() < thisUpdate.getTime()) {
      throw malformed(`nextUpdate ${formatIsoSeconds(nextUpdate)} is before thisUpdate ${formatIsoSeconds(thisUpdate)}`);
    }
    off = h.end;
    h = next('revokedCertificates');
  }

  const revoked: RevokedCertificateEntry[] = [];
  let entryWithCertificateIssuer = false;
  if (h && isSequence(h)) {
    let p = h.contentStart;
    const listEnd = h.end;
    for (let index = 1; p < listEnd; index++) {
      const entryHeader = readHeader(der, p, listEnd, `revoked entry #${index}`);
      const entry = decodeEntry(decodeElement(der, p, entryHeader.end, `revoked entry #${index}`), index, version);
      if (entry.hasCertificateIssuer) entryWithCertificateIssuer = true;
      revoked.push(entry);
      p = entryHeader.end;
    }
    off = h.end;
    h = next('crlExtensions');
  }

  let crlNumber: bigint | undefined;
  let baseCrlNumber: bigint | undefined;
  let authorityKeyIdentifier: Buffer | undefined;
  let idp: IssuingDistributionPointInfo | undefined;
  const unhandled: string[] = [];
  if (h && h.tagClass === 3 && h.tagNumber === 0 && h.constructed) {
    if (version !== 2) throw malformed('a v1 CRL (no version field) has crlExtensions; extensions need v2 (RFC 5280 5.1.2.1)');
    const wrapper = decodeElement(der, off, h.end, 'crlExtensions');
    const inner = (wrapper as asn1js.Constructed).valueBlock.value;
    if (inner.length !== 1) throw malformed('crlExtensions [0] must hold exactly one Extensions SEQUENCE');
    for (const ext of readExtensions(inner[0] as asn1js.AsnType, 'crlExtensions')) {
      switch (ext.oid) {
        case CRL_OID.cRLNumber:
          crlNumber = readCrlNumber(ext.value, 'cRLNumber');
          break;
        case CRL_OID.deltaCRLIndicator:
          baseCrlNumber = readCrlNumber(ext.value, 'deltaCRLIndicator BaseCRLNumber');
          break;
        case CRL_OID.authorityKeyIdentifier: {
          let aki: pkijs.AuthorityKeyIdentifier;
          try {
            aki = new pkijs.AuthorityKeyIdentifier({ schema: decodeValue(ext.value, 'authorityKeyIdentifier') });
          } catch (err) {
            if (err instanceof CrlError) throw err;
            throw malformed('authorityKeyIdentifier extension is not an AuthorityKeyIdentifier');
          }
          if (aki.keyIdentifier) authorityKeyIdentifier = Buffer.from(aki.keyIdentifier.valueBlock.valueHexView);
          break;
        }
        case CRL_OID.issuingDistributionPoint: {
          let p: pkijs.IssuingDistributionPoint;
          try {
            p = new pkijs.IssuingDistributionPoint({ schema: decodeValue(ext.value, 'issuingDistributionPoint') });
          } catch (err) {
            if (err instanceof CrlError) throw err;
            throw malformed('issuingDistributionPoint extension is not an IssuingDistributionPoint');
          }
          idp = Object.freeze({
            hasDistributionPoint: p.distributionPoint !== undefined,
            onlyContainsUserCerts: p.onlyContainsUserCerts === true,
            onlyContainsCACerts: p.onlyContainsCACerts === true,
            onlySomeReasons: p.onlySomeReasons !== undefined,
            indirectCRL: p.indirectCRL === true,
            onlyContainsAttributeCerts: p.onlyContainsAttributeCerts === true,
          });
          break;
        }
        default:
          if (ext.critical && !UNDERSTOOD_CRL_EXTENSIONS.has(ext.oid)) unhandled.push(ext.oid);
      }
    }
    off = h.end;
    h = next('after crlExtensions');
  }
  if (h) {
    throw malformed(`unexpected element (tag class ${h.tagClass}, number ${h.tagNumber}) in tbsCertList where ${nextExpected(nextUpdate, revoked)} was expected`);
  }

  return Object.freeze({
    der,
    tbsDer: der.subarray(outer.contentStart, tbs.end),
    version,
    issuerDer,
    issuer,
    thisUpdate,
    nextUpdate,
    crlNumber,
    authorityKeyIdentifier,
    signatureAlgorithmOid,
    signatureAlgorithmDer: Buffer.from(signatureAlgorithmDer),
    signature,
    isDelta: baseCrlNumber !== undefined,
    baseCrlNumber,
    isIndirect: idp?.indirectCRL === true || entryWithCertificateIssuer,
    issuingDistributionPoint: idp,
    unhandledCriticalExtensions: Object.freeze(unhandled),
    revoked: Object.freeze(revoked),
  });
}

function nextExpected(nextUpdate: Date | undefined, revoked: readonly RevokedCertificateEntry[]): string {
  if (revoked.length) return 'crlExtensions [0] or the end';
  return nextUpdate ? 'revokedCertificates, crlExtensions [0] or the end' : 'nextUpdate, revokedCertificates, crlExtensions [0] or the end';
}

function readAlgorithmOid(el: asn1js.AsnType, what: string): string {
  const first = el instanceof asn1js.Sequence ? el.valueBlock.value[0] : undefined;
  if (!(first instanceof asn1js.ObjectIdentifier)) throw malformed(`${what} is not an AlgorithmIdentifier`);
  return first.valueBlock.toString();
}

/** revokedCertificates entry (RFC 5280 5.1.2.6): SEQUENCE { userCertificate, revocationDate, crlEntryExtensions OPTIONAL }. */
function decodeEntry(el: asn1js.AsnType, index: number, version: 1 | 2): RevokedCertificateEntry {
  const what = `revoked entry #${index}`;
  if (!(el instanceof asn1js.Sequence)) throw malformed(`${what} is not a SEQUENCE`);
  const parts = el.valueBlock.value;
  if (parts.length !== 2 && parts.length !== 3) throw malformed(`${what} has ${parts.length} fields; expected userCertificate, revocationDate and optional crlEntryExtensions`);
  const serial = parts[0];
  if (!(serial instanceof asn1js.Integer) || serial.valueBlock.valueHexView.byteLength === 0) {
    throw malformed(`${what}: userCertificate is not an INTEGER`);
  }
  const serialNumberBytes = Buffer.from(serial.valueBlock.valueHexView);
  const revocationDate = readTime(parts[1], `${what} (serial ${formatSerialNumber(serialNumberBytes)}) revocationDate`);
  if (parts.length === 2) return { serialNumberBytes, revocationDate };

  if (version !== 2) throw malformed(`${what} has crlEntryExtensions in a v1 CRL; extensions need v2 (RFC 5280 5.1.2.1)`);
  const entryWhat = `${what} (serial ${formatSerialNumber(serialNumberBytes)})`;
  let reason: string | undefined;
  let hasCertificateIssuer = false;
  let unhandled: string[] | undefined;
  for (const ext of readExtensions(parts[2] as asn1js.AsnType, `${entryWhat} crlEntryExtensions`)) {
    if (ext.oid === CRL_OID.reasonCode) {
      const v = decodeValue(ext.value, `${entryWhat} reasonCode`);
      if (!(v instanceof asn1js.Enumerated)) throw malformed(`${entryWhat}: reasonCode is not an ENUMERATED`);
      const code = v.valueBlock.valueDec;
      reason = CRL_REASONS[code] ?? String(code);
    } else if (ext.oid === CRL_OID.certificateIssuer) {
      hasCertificateIssuer = true;
    } else if (ext.critical && !UNDERSTOOD_ENTRY_EXTENSIONS.has(ext.oid)) {
      (unhandled ??= []).push(ext.oid);
    }
  }
  // Optional members are left off (not set to undefined): 100 000 entries add up.
  const entry: { -readonly [K in keyof RevokedCertificateEntry]: RevokedCertificateEntry[K] } = { serialNumberBytes, revocationDate };
  if (reason !== undefined) entry.reason = reason;
  if (hasCertificateIssuer) entry.hasCertificateIssuer = true;
  if (unhandled) entry.unhandledCriticalExtensions = Object.freeze(unhandled);
  return entry;
}
