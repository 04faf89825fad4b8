import { X509Certificate, createHash, createPublicKey, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CertificateParseError } from '../errors.js';
import { OID } from './oids.js';

/**
 * The public key of a certificate, classified against SPEC section 2's supported set
 * (RSA 2048/3072/4096, ECDSA P-256/P-384). `supported` is false for anything else,
 * with `description` naming what was found (e.g. `RSA 1024`, `Ed25519`).
 */
export interface PublicKeyDescription {
  type: 'RSA' | 'RSA-PSS' | 'EC' | 'other';
  /** Modulus length in bits for RSA, curve size for EC. */
  bits: number | undefined;
  /** NIST curve name for EC (`P-256`, `P-384`, …). */
  curve: string | undefined;
  supported: boolean;
  description: string;
}

/** KeyUsage bits of RFC 5280 4.2.1.3, by name. */
export type KeyUsageName =
  | 'digitalSignature' | 'nonRepudiation' | 'keyEncipherment' | 'dataEncipherment'
  | 'keyAgreement' | 'keyCertSign' | 'cRLSign' | 'encipherOnly' | 'decipherOnly';

const KEY_USAGE_BITS: KeyUsageName[] = [
  'digitalSignature', 'nonRepudiation', 'keyEncipherment', 'dataEncipherment',
  'keyAgreement', 'keyCertSign', 'cRLSign', 'encipherOnly', 'decipherOnly',
];

/** Extensions that Portcullis understands; any other critical extension makes a certificate invalid (RFC 5280 4.2). */
const UNDERSTOOD_EXTENSIONS = new Set<string>([
  OID.subjectKeyIdentifier, OID.keyUsage, OID.subjectAltName, OID.basicConstraints,
  OID.authorityKeyIdentifier, OID.extKeyUsage, OID.authorityInfoAccess, OID.ocspNoCheck,
  OID.certificatePolicies,
]);

/**
 * One parsed X.509 certificate (RFC 5280 section 4.1), decoded once and kept with
 * the raw DER pieces that formatting, path validation and OCSP need. Everything is
 * computed at parse time except the public `KeyObject`, which is built on first use.
 *
 * The bytes are decoded twice at parse time: by pkijs (lenient BER, for the fields) and
 * by OpenSSL through node's `X509Certificate` (strict DER, for signature checks). When
 * OpenSSL refuses bytes that pkijs read, the certificate is still returned, with
 * {@link encodingProblem} saying why, so that callers can name it: path validation
 * reports `ClientCertInvalid`, trust-store bundles reject it, `cert inspect` names the
 * block. (Its signature can never be verified: {@link isSignedBy} is false.)
 */
export class ParsedCertificate {
  /** The certificate's DER encoding. */
  readonly der: Buffer;
  /** pkijs object (for callers that need a structure not exposed here). */
  readonly asn1: pkijs.Certificate;
  /** Content octets of the serialNumber DER INTEGER exactly as encoded (leading 00 kept). */
  readonly serialNumberBytes: Buffer;
  /** DER of the subject Name (the whole SEQUENCE TLV). */
  readonly subjectDer: Buffer;
  /** DER of the issuer Name (the whole SEQUENCE TLV). */
  readonly issuerDer: Buffer;
  /** DER of the SubjectPublicKeyInfo (the whole SEQUENCE TLV). */
  readonly spkiDer: Buffer;
  /** Value of the subjectPublicKey BIT STRING without the unused-bits octet (RFC 6960 4.1.1 issuerKeyHash input). */
  readonly publicKeyBits: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** X.509 version number (1, 2 or 3). */
  readonly version: number;
  /** basicConstraints present. */
  readonly hasBasicConstraints: boolean;
  /** basicConstraints cA flag (false when the extension is absent). */
  readonly isCA: boolean;
  readonly pathLenConstraint: number | undefined;
  /** keyUsage bits, or undefined when the extension is absent. */
  readonly keyUsage: ReadonlySet<KeyUsageName> | undefined;
  /** extKeyUsage OIDs, or undefined when the extension is absent. */
  readonly extKeyUsage: readonly string[] | undefined;
  /** AIA id-ad-ocsp URIs in order (RFC 5280 4.2.2.1). */
  readonly ocspUrls: readonly string[];
  /** AIA id-ad-caIssuers URIs in order. */
  readonly caIssuersUrls: readonly string[];
  /** DER of the subjectAltName extension value (GeneralNames SEQUENCE), or undefined. */
  readonly subjectAltNameDer: Buffer | undefined;
  readonly subjectKeyIdentifier: Buffer | undefined;
  readonly authorityKeyIdentifier: Buffer | undefined;
  /** OIDs of critical extensions this implementation does not process. */
  readonly unhandledCriticalExtensions: readonly string[];
  /** id-pkix-ocsp-nocheck present (RFC 6960 4.2.2.2.1). */
  readonly ocspNoCheck: boolean;
  /** OID of the signatureAlgorithm of this certificate. */
  readonly signatureAlgorithmOid: string;
  readonly publicKey: PublicKeyDescription;
  /**
   * Why this certificate is not a valid DER X.509 certificate although it decoded, e.g.
   * `its serialNumber INTEGER is not minimally encoded (it starts 00 01; X.690 8.3.2 …)`; undefined
   * for a valid certificate. Set when OpenSSL (node's `X509Certificate`) refuses the
   * bytes; the reason is Portcullis's own diagnosis of the DER when it finds one (an
   * empty or non-minimal INTEGER such as the serial, a padded OBJECT IDENTIFIER), else
   * a general statement. (OpenSSL, and so Portcullis, tolerates some BER, e.g.
   * non-minimal or indefinite lengths, in certificates whose signature still verifies.)
   * Negative, zero and over-20-octet serials are accepted when minimally encoded: RFC
   * 5280 4.1.2.2 makes "positive, at most 20 octets" a CA obligation and asks relying
   * parties to handle such certificates gracefully, and OpenSSL accepts them.
   */
  readonly encodingProblem: string | undefined;

  #x509: X509Certificate | undefined;
  #keyObject: KeyObject | undefined;
  #sha256: Buffer | undefined;
  #issuerNameHashSha1: Buffer | undefined;
  #keyHashSha1: Buffer | undefined;
  /** Memo of signature checks against issuers (same bytes + same key → same answer). */
  readonly #signedBy = new WeakMap<ParsedCertificate, boolean>();

  private constructor(der: Buffer, cert: pkijs.Certificate, spkiDer: Buffer) {
    this.der = der;
    this.asn1 = cert;
    this.serialNumberBytes = Buffer.from(cert.serialNumber.valueBlock.valueHexView);
    this.subjectDer = Buffer.from(cert.subject.valueBeforeDecode);
    this.issuerDer = Buffer.from(cert.issuer.valueBeforeDecode);
    this.spkiDer = spkiDer;
    this.publicKeyBits = Buffer.from(cert.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView);
    this.notBefore = cert.notBefore.value;
    this.notAfter = cert.notAfter.value;
    this.version = cert.version + 1;
    this.signatureAlgorithmOid = cert.signatureAlgorithm.algorithmId;

    let hasBC = false, isCA = false, pathLen: number | undefined;
    let keyUsage: Set<KeyUsageName> | undefined;
    let eku: string[] | undefined;
    const ocsp: string[] = [], caIssuers: string[] = [];
    let san: Buffer | undefined, ski: Buffer | undefined, aki: Buffer | undefined;
    let noCheck = false;
    const unhandled: string[] = [];
    const seen = new Set<string>();
    for (const ext of cert.extensions ?? []) {
      if (seen.has(ext.extnID)) throw new CertificateParseError(`extension ${ext.extnID} appears twice (RFC 5280 4.2)`);
      seen.add(ext.extnID);
      const value = ext.extnValue.valueBlock.valueHexView;
      const parsed = ext.parsedValue as unknown;
      switch (ext.extnID) {
        case OID.basicConstraints: {
          hasBC = true;
          const bc = parsed as pkijs.BasicConstraints | undefined;
          if (!(bc instanceof pkijs.BasicConstraints)) throw new CertificateParseError('basicConstraints extension is malformed');
          isCA = bc.cA === true;
          if (bc.pathLenConstraint !== undefined) {
            pathLen = typeof bc.pathLenConstraint === 'number' ? bc.pathLenConstraint : bc.pathLenConstraint.valueBlock.valueDec;
          }
          break;
        }
        case OID.keyUsage: {
          const bits = asn1js.fromBER(value);
          if (bits.offset === -1 || !(bits.result instanceof asn1js.BitString)) throw new CertificateParseError('keyUsage extension is malformed');
          const bytes = bits.result.valueBlock.valueHexView;
          keyUsage = new Set();
          KEY_USAGE_BITS.forEach((name, i) => {
            const byte = bytes[i >> 3] ?? 0;
            if (byte & (0x80 >> (i & 7))) keyUsage!.add(name);
          });
          break;
        }
        case OID.extKeyUsage: {
          const e = parsed as pkijs.ExtKeyUsage | undefined;
          if (!(e instanceof pkijs.ExtKeyUsage)) throw new CertificateParseError('extKeyUsage extension is malformed');
          eku = e.keyPurposes.slice();
          break;
        }
        case OID.authorityInfoAccess: {
          const aia = parsed as pkijs.InfoAccess | undefined;
          if (!(aia instanceof pkijs.InfoAccess)) throw new CertificateParseError('authorityInfoAccess extension is malformed');
          for (const d of aia.accessDescriptions) {
            // uniformResourceIdentifier is GeneralName [6]
            if (d.accessLocation.type !== 6 || typeof d.accessLocation.value !== 'string') continue;
            if (d.accessMethod === OID.adOcsp) ocsp.push(d.accessLocation.value);
            else if (d.accessMethod === OID.adCaIssuers) caIssuers.push(d.accessLocation.value);
          }
          break;
        }
        case OID.subjectAltName:
          san = Buffer.from(value);
          break;
        case OID.subjectKeyIdentifier: {
          const r = asn1js.fromBER(value);
          if (r.offset === -1 || !(r.result instanceof asn1js.OctetString)) throw new CertificateParseError('subjectKeyIdentifier extension is malformed');
          ski = Buffer.from(r.result.valueBlock.valueHexView);
          break;
        }
        case OID.authorityKeyIdentifier: {
          const a = parsed as pkijs.AuthorityKeyIdentifier | undefined;
          if (!(a instanceof pkijs.AuthorityKeyIdentifier)) throw new CertificateParseError('authorityKeyIdentifier extension is malformed');
          if (a.keyIdentifier) aki = Buffer.from(a.keyIdentifier.valueBlock.valueHexView);
          break;
        }
        case OID.ocspNoCheck:
          noCheck = true;
          break;
        default:
          if (ext.critical && !UNDERSTOOD_EXTENSIONS.has(ext.extnID)) unhandled.push(ext.extnID);
      }
    }
    this.hasBasicConstraints = hasBC;
    this.isCA = isCA;
    this.pathLenConstraint = pathLen;
    this.keyUsage = keyUsage;
    this.extKeyUsage = eku;
    this.ocspUrls = ocsp;
    this.caIssuersUrls = caIssuers;
    this.subjectAltNameDer = san;
    this.subjectKeyIdentifier = ski;
    this.authorityKeyIdentifier = aki;
    this.ocspNoCheck = noCheck;
    this.unhandledCriticalExtensions = unhandled;
    this.publicKey = describePublicKey(this.spkiDer, cert);
    // Built now (not on first use) so that a certificate OpenSSL refuses is known as
    // such from the start instead of failing later as a signature that "does not verify".
    try {
      this.#x509 = new X509Certificate(der);
      this.encodingProblem = undefined;
    } catch {
      this.encodingProblem = derEncodingProblem(der, this.serialNumberBytes)
        ?? 'OpenSSL refuses to decode it as an X.509 certificate (it is not valid DER, X.690 section 10, although it decodes as BER)';
    }
  }

  /**
   * Parses one DER-encoded certificate.
   *
   * Parsed certificates are immutable and are kept in a process-wide LRU keyed by the
   * exact DER bytes (at most {@link PARSE_CACHE_MAX} entries): clients reconnect with
   * the same chains and share intermediates, and a pkijs parse costs hundreds of µs.
   * Identical bytes always give an identical parse, so the cache cannot change a result.
   * @param der DER bytes of an X.509 Certificate (copied; the caller may reuse its buffer).
   * @param where names the block in error messages (e.g. `certificate #2 (line 14)`).
   * @throws CertificateParseError when the bytes are not a well-formed certificate.
   */
  static fromDer(der: Uint8Array, where?: string): ParsedCertificate {
    const buf = Buffer.from(der.buffer, der.byteOffset, der.byteLength);
    const cacheKey = buf.toString('latin1');
    const cached = parseCache.get(cacheKey);
    if (cached) {
      // Refresh recency: Map order is our LRU order.
      parseCache.delete(cacheKey);
      parseCache.set(cacheKey, cached);
      return cached;
    }
    let cert: pkijs.Certificate;
    let spkiDer: Buffer;
    try {
      const asn = asn1js.fromBER(buf);
      if (asn.offset === -1) throw new Error(asn.result.error || 'invalid BER');
      if (asn.offset !== buf.length) throw new Error(`${buf.length - asn.offset} trailing bytes after the certificate`);
      cert = new pkijs.Certificate({ schema: asn.result });
      // The SubjectPublicKeyInfo exactly as received: TBSCertificate field 6 (7 with the [0] version).
      const tbs = (asn.result as asn1js.Sequence).valueBlock.value[0] as asn1js.Sequence;
      const fields = tbs.valueBlock.value;
      const spki = fields[fields[0]?.idBlock.tagClass === 3 ? 6 : 5];
      if (!spki) throw new Error('TBSCertificate has no subjectPublicKeyInfo');
      spkiDer = Buffer.from(spki.valueBeforeDecodeView);
    } catch (err) {
      throw new CertificateParseError(`not a valid X.509 certificate (${(err as Error).message})`, where, { cause: err });
    }
    let parsed: ParsedCertificate;
    try {
      parsed = new ParsedCertificate(Buffer.from(buf), cert, spkiDer);
    } catch (err) {
      if (err instanceof CertificateParseError && where) throw new CertificateParseError(err.message, where, { cause: err });
      throw err;
    }
    parseCache.set(cacheKey, parsed);
    if (parseCache.size > PARSE_CACHE_MAX) parseCache.delete(parseCache.keys().next().value as string);
    return parsed;
  }

  /**
   * Node's X509Certificate for this DER (built at parse time).
   * @throws Error when OpenSSL refuses the bytes (see {@link encodingProblem}).
   */
  get x509(): X509Certificate {
    return (this.#x509 ??= new X509Certificate(this.der));
  }

  /** The public key as a node KeyObject (built on first use). */
  get publicKeyObject(): KeyObject {
    return (this.#keyObject ??= createPublicKey({ key: this.spkiDer, format: 'der', type: 'spki' }));
  }

  /** SHA-256 of the DER (32 bytes). */
  get sha256(): Buffer {
    return (this.#sha256 ??= createHash('sha256').update(this.der).digest());
  }

  /** SHA-1 of this certificate's *subject* Name DER: the issuerNameHash for certificates it issued (RFC 6960 4.1.1). */
  get subjectNameHashSha1(): Buffer {
    return (this.#issuerNameHashSha1 ??= createHash('sha1').update(this.subjectDer).digest());
  }

  /** SHA-1 of this certificate's public key bits: the issuerKeyHash for certificates it issued (RFC 6960 4.1.1). */
  get keyHashSha1(): Buffer {
    return (this.#keyHashSha1 ??= createHash('sha1').update(this.publicKeyBits).digest());
  }

  /** True when subject and issuer Names are byte-identical (self-issued, RFC 5280 6.1). */
  get selfIssued(): boolean {
    return this.subjectDer.equals(this.issuerDer);
  }

  /**
   * Verifies this certificate's signature with `issuer`'s public key (RSA PKCS#1 v1.5,
   * RSA-PSS and ECDSA, via OpenSSL). Returns false on a bad signature, an unsupported
   * algorithm or a certificate OpenSSL cannot decode (callers report
   * {@link encodingProblem} before trying signatures); never throws. The answer is
   * memoized per issuer object (parsed certificates are immutable and shared through
   * the parse cache).
   */
  isSignedBy(issuer: ParsedCertificate): boolean {
    const known = this.#signedBy.get(issuer);
    if (known !== undefined) return known;
    let ok: boolean;
    try {
      ok = this.x509.verify(issuer.publicKeyObject);
    } catch {
      ok = false;
    }
    this.#signedBy.set(issuer, ok);
    return ok;
  }

  /** Empties the process-wide parse cache (for benchmarks that measure first-sight cost). */
  static clearParseCache(): void {
    parseCache.clear();
  }
}

/** `00 01 02`: bytes as spaced lowercase hex, for messages. */
function hexBytes(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex').replace(/(..)(?=.)/g, '$1 ');
}

/** Why an INTEGER's content octets are not DER (X.690 8.3.1, 8.3.2), or undefined. */
function integerProblem(content: Uint8Array): string | undefined {
  if (content.length === 0) return 'is empty (X.690 8.3.1: an INTEGER has at least one content octet)';
  if (content.length > 1 && ((content[0] === 0x00 && content[1]! < 0x80) || (content[0] === 0xff && content[1]! >= 0x80))) {
    return `is not minimally encoded (it starts ${hexBytes(content.subarray(0, 2))}; X.690 8.3.2 forbids a leading ${content[0] === 0 ? '00' : 'ff'} octet that only repeats the sign bit)`;
  }
  return undefined;
}

/**
 * Portcullis's diagnosis of why OpenSSL refused `der`, or undefined when it finds
 * nothing. Only used to word {@link ParsedCertificate.encodingProblem}; OpenSSL decides
 * whether a certificate is refused. Checks what OpenSSL enforces and pkijs does not:
 * the serialNumber first, then every INTEGER (non-empty, minimal: X.690 8.3) and OBJECT
 * IDENTIFIER (no 0x80 padding in a subidentifier: X.690 8.19.2) in the TLV tree.
 * (OpenSSL tolerates BER lengths, so those are not blamed.) Bounded: at most 4096 TLVs,
 * stops at an indefinite length.
 */
function derEncodingProblem(der: Buffer, serial: Buffer): string | undefined {
  const s = integerProblem(serial);
  if (s) return `its serialNumber INTEGER ${s}`;
  let budget = 4096;
  const walk = (start: number, end: number): string | undefined | null => {
    let p = start;
    while (p < end) {
      if (--budget < 0) return null;
      const tag = der[p]!;
      let q = p + 1;
      if ((tag & 0x1f) === 0x1f) {
        while (q < end && der[q]! & 0x80) q++;
        q++;
      }
      if (q >= end) return null;
      const first = der[q++]!;
      let len = first;
      if (first === 0x80) return null;
      if (first > 0x80) {
        const n = first & 0x7f;
        if (n > 4 || q + n > end) return null;
        len = 0;
        for (let i = 0; i < n; i++) len = len * 256 + der[q++]!;
      }
      const valueEnd = q + len;
      if (valueEnd > end) return null;
      const value = der.subarray(q, valueEnd);
      if (tag === 0x02) {
        const i = integerProblem(value);
        if (i) return `an INTEGER at byte ${p} ${i}`;
      } else if (tag === 0x06) {
        for (let i = 0; i < value.length; i++) {
          if (value[i] === 0x80 && (i === 0 || !(value[i - 1]! & 0x80))) {
            return `an OBJECT IDENTIFIER at byte ${p} has a subidentifier padded with a leading 80 octet (X.690 8.19.2)`;
          }
        }
      }
      if (tag & 0x20) {
        const inner = walk(q, valueEnd);
        if (inner !== undefined) return inner;
      }
      p = valueEnd;
    }
    return undefined;
  };
  const found = walk(0, der.length);
  return found ? `it is not DER: ${found}` : undefined;
}

/** Most parsed certificates kept by {@link ParsedCertificate.fromDer}'s cache. */
export const PARSE_CACHE_MAX = 10_000;
const parseCache = new Map<string, ParsedCertificate>();

const CURVES: Record<string, { name: string; bits: number }> = {
  [OID.secp256r1]: { name: 'P-256', bits: 256 },
  [OID.secp384r1]: { name: 'P-384', bits: 384 },
  '1.3.132.0.35': { name: 'P-521', bits: 521 },
  '1.3.132.0.10': { name: 'secp256k1', bits: 256 },
};

function describePublicKey(spkiDer: Buffer, cert: pkijs.Certificate): PublicKeyDescription {
  const alg = cert.subjectPublicKeyInfo.algorithm.algorithmId;
  if (alg === OID.rsaEncryption || alg === OID.rsassaPss) {
    let bits: number | undefined;
    try {
      bits = createPublicKey({ key: spkiDer, format: 'der', type: 'spki' }).asymmetricKeyDetails?.modulusLength;
    } catch {
      bits = undefined;
    }
    const type = alg === OID.rsaEncryption ? 'RSA' : 'RSA-PSS';
    const supported = bits === 2048 || bits === 3072 || bits === 4096;
    return { type, bits, curve: undefined, supported, description: `${type} ${bits ?? '(unreadable key)'}` };
  }
  if (alg === OID.ecPublicKey) {
    const params = cert.subjectPublicKeyInfo.algorithm.algorithmParams;
    const curveOid = params instanceof asn1js.ObjectIdentifier ? params.valueBlock.toString() : undefined;
    const curve = curveOid ? CURVES[curveOid] : undefined;
    const supported = curve?.name === 'P-256' || curve?.name === 'P-384';
    return {
      type: 'EC', bits: curve?.bits, curve: curve?.name, supported,
      description: `ECDSA ${curve?.name ?? (curveOid ? `curve ${curveOid}` : 'with explicit curve parameters')}`,
    };
  }
  const names: Record<string, string> = { '1.3.101.112': 'Ed25519', '1.3.101.113': 'Ed448', '1.2.840.10040.4.1': 'DSA' };
  return { type: 'other', bits: undefined, curve: undefined, supported: false, description: names[alg] ?? `key algorithm ${alg}` };
}

/** Signature algorithms SPEC section 2 supports (SHA-256/384/512 with RSA, RSA-PSS or ECDSA). */
export const SUPPORTED_SIGNATURE_ALGORITHMS: ReadonlySet<string> = new Set([
  OID.sha256WithRSA, OID.sha384WithRSA, OID.sha512WithRSA, OID.rsassaPss,
  OID.ecdsaWithSHA256, OID.ecdsaWithSHA384, OID.ecdsaWithSHA512,
]);

/** Human name of a signature algorithm OID, for error messages. */
export function signatureAlgorithmName(oid: string): string {
  const names: Record<string, string> = {
    [OID.sha1WithRSA]: 'sha1WithRSAEncryption',
    [OID.sha256WithRSA]: 'sha256WithRSAEncryption',
    [OID.sha384WithRSA]: 'sha384WithRSAEncryption',
    [OID.sha512WithRSA]: 'sha512WithRSAEncryption',
    [OID.rsassaPss]: 'RSASSA-PSS',
    [OID.ecdsaWithSHA256]: 'ecdsa-with-SHA256',
    [OID.ecdsaWithSHA384]: 'ecdsa-with-SHA384',
    [OID.ecdsaWithSHA512]: 'ecdsa-with-SHA512',
    '1.2.840.113549.1.1.4': 'md5WithRSAEncryption',
    '1.2.840.10045.4.1': 'ecdsa-with-SHA1',
    '1.3.101.112': 'Ed25519',
  };
  return names[oid] ?? oid;
}
