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
 * computed at parse time except the node `X509Certificate` and the public `KeyObject`,
 * which are built on first use.
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

  /** Node's X509Certificate for this DER (built on first use). */
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
   * RSA-PSS and ECDSA, via OpenSSL). Returns false on a bad signature or an
   * unsupported algorithm; never throws. The answer is memoized per issuer object
   * (parsed certificates are immutable and shared through the parse cache).
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
