import { CertificateParseError, InvalidArgumentError, TrustStoreBundleError } from '../errors.js';
import { ParsedCertificate, SUPPORTED_SIGNATURE_ALGORITHMS, signatureAlgorithmName } from './certificate.js';
import { OID } from './oids.js';
import { splitCertificates, type CertificateBlock } from './pem.js';
import { formatDnRfc4514 } from './dn.js';
import { formatSerialNumber } from './serial.js';

/**
 * Limits applied to a trust-store CA bundle (SPEC section 2, configurable).
 * `maxCertificates` counts the *distinct* certificates of the bundle (a block
 * byte-identical to an earlier one is dropped and not counted, as the trust store holds
 * it once); `maxBundleBytes` is the size of the whole bundle as given in bytes (UTF-8,
 * comments, blank lines and duplicate blocks included).
 */
export interface TrustStoreLimits {
  maxCertificates: number;
  maxBundleBytes: number;
}

/** SPEC section 2 defaults: 25 certificates, 64 KiB (65 536 bytes). */
export const DEFAULT_TRUST_STORE_LIMITS: Readonly<TrustStoreLimits> = Object.freeze({
  maxCertificates: 25,
  maxBundleBytes: 65_536,
});

/**
 * A certificate block that was dropped because it is byte-identical to an earlier one.
 * `where` and `duplicateOf` name the blocks, e.g. `certificate #4 (line 61)`.
 */
export interface DuplicateTrustAnchor {
  where: string;
  duplicateOf: string;
}

/** Map key for DER bytes (latin1 keeps one char per byte; cheaper than hex). */
function derKey(der: Uint8Array): string {
  return Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('latin1');
}

/**
 * The trust anchors of one trust store: every certificate of the CA bundle, root or
 * intermediate (SPEC section 2: "any certificate in the trust store" is a trust anchor).
 * Immutable after construction, so one instance is shared by every handshake that uses
 * the trust store.
 *
 * Lookups used by path validation (RFC 5280 6.1 name chaining):
 * - {@link bySubject}: anchors whose subject Name DER equals the given bytes;
 * - {@link byKeyIdentifier}: anchors whose subjectKeyIdentifier equals the given bytes;
 * - {@link issuersOf}: anchors that may have issued a certificate (subject == its issuer
 *   Name, key-identifier matches first);
 * - {@link find}: the anchor byte-identical to a certificate, if any;
 * - {@link bySubjectText}: anchors whose subject has the same *text* as a Name (for
 *   messages only: name chaining itself compares DER bytes).
 *
 * Build it with {@link parseTrustStoreBundle}; the constructor itself checks nothing
 * (callers that already validated certificates may use it directly).
 */
export class TrustAnchorSet {
  /** The distinct anchors, in bundle order. */
  readonly anchors: readonly ParsedCertificate[];
  /** Number of distinct anchors (the TrustStore resource's certificate count). */
  readonly count: number;
  /**
   * Distinct subject Name DERs in bundle order: the `certificate_authorities` /
   * CertificateRequest CA names sent when `advertiseTrustStoreCaNames` is true
   * (RFC 8446 4.2.4, RFC 5246 7.4.4). Do not mutate the buffers.
   */
  readonly subjectNames: readonly Buffer[];
  /** Byte-identical duplicate blocks that were dropped (empty when there were none). */
  readonly duplicates: readonly DuplicateTrustAnchor[];

  readonly #bySubject = new Map<string, ParsedCertificate[]>();
  readonly #byKeyId = new Map<string, ParsedCertificate[]>();
  readonly #byDer = new Map<string, ParsedCertificate>();
  readonly #bySubjectText = new Map<string, ParsedCertificate[]>();

  /**
   * @param anchors CA certificates, already checked (see {@link parseTrustStoreBundle}).
   *   Byte-identical repeats are skipped.
   * @param duplicates duplicate blocks to report (informational).
   */
  constructor(anchors: readonly ParsedCertificate[], duplicates: readonly DuplicateTrustAnchor[] = []) {
    const list: ParsedCertificate[] = [];
    const names: Buffer[] = [];
    for (const cert of anchors) {
      const key = derKey(cert.der);
      if (this.#byDer.has(key)) continue;
      this.#byDer.set(key, cert);
      list.push(cert);
      const subjectKey = derKey(cert.subjectDer);
      const same = this.#bySubject.get(subjectKey);
      if (same) same.push(cert);
      else {
        this.#bySubject.set(subjectKey, [cert]);
        names.push(cert.subjectDer);
      }
      const textKey = nameTextKey(cert.subjectDer);
      if (textKey !== undefined) {
        const sameText = this.#bySubjectText.get(textKey);
        if (sameText) sameText.push(cert);
        else this.#bySubjectText.set(textKey, [cert]);
      }
      if (cert.subjectKeyIdentifier) {
        const k = derKey(cert.subjectKeyIdentifier);
        const sameKey = this.#byKeyId.get(k);
        if (sameKey) sameKey.push(cert);
        else this.#byKeyId.set(k, [cert]);
      }
    }
    this.anchors = Object.freeze(list);
    this.count = list.length;
    this.subjectNames = Object.freeze(names);
    this.duplicates = Object.freeze(duplicates.slice());
    for (const v of this.#bySubject.values()) Object.freeze(v);
    for (const v of this.#byKeyId.values()) Object.freeze(v);
    for (const v of this.#bySubjectText.values()) Object.freeze(v);
    Object.freeze(this);
  }

  /** Anchors whose subject Name DER is byte-identical to `subjectDer` (empty array when none). */
  bySubject(subjectDer: Uint8Array): readonly ParsedCertificate[] {
    return this.#bySubject.get(derKey(subjectDer)) ?? EMPTY;
  }

  /** Anchors whose subjectKeyIdentifier (RFC 5280 4.2.1.2) equals `keyIdentifier` (empty array when none). */
  byKeyIdentifier(keyIdentifier: Uint8Array): readonly ParsedCertificate[] {
    return this.#byKeyId.get(derKey(keyIdentifier)) ?? EMPTY;
  }

  /**
   * Anchors that may have issued `cert`: subject == `cert`'s issuer Name (DER), ordered
   * so that anchors whose subjectKeyIdentifier equals `cert`'s authorityKeyIdentifier
   * come first, then anchors where either identifier is absent, then mismatches
   * (RFC 5280 4.2.1.1: the AKI helps pick among same-named CAs).
   */
  issuersOf(cert: ParsedCertificate): readonly ParsedCertificate[] {
    const named = this.bySubject(cert.issuerDer);
    return named.length <= 1 ? named : orderByKeyIdentifier(cert, named);
  }

  /** The anchor byte-identical to `cert` (same DER), or undefined. */
  find(cert: ParsedCertificate): ParsedCertificate | undefined {
    return this.#byDer.get(derKey(cert.der));
  }

  /**
   * Anchors whose subject Name reads the same as `nameDer` once decoded (see
   * {@link nameTextKey}: same RFC 4514 text, case and runs of spaces ignored), whatever
   * the DER bytes — e.g. PrintableString vs UTF8String values. Includes byte-identical
   * subjects. For diagnostics only: path building matches names by DER bytes.
   */
  bySubjectText(nameDer: Uint8Array): readonly ParsedCertificate[] {
    const key = nameTextKey(nameDer);
    return (key !== undefined && this.#bySubjectText.get(key)) || EMPTY;
  }
}

/**
 * Text form of a Name used to notice "same name, different encoding": its RFC 4514
 * string, NFKC-normalized, lowercased, with runs of white space collapsed (roughly the
 * caseIgnoreMatch of RFC 4518 string preparation). Undefined when the Name does not
 * decode. @internal shared with path-validation.ts
 */
export function nameTextKey(nameDer: Uint8Array): string | undefined {
  try {
    return formatDnRfc4514(nameDer).normalize('NFKC').toLowerCase().replace(/\s+/g, ' ').trim();
  } catch {
    return undefined;
  }
}

/**
 * True when `cert` has a nameConstraints extension (RFC 5280 4.2.1.10), critical or not.
 * Portcullis does not process name constraints; a CA certificate carrying them is
 * refused (trust-store bundles, path validation) rather than trusted beyond its
 * constraints. @internal shared with path-validation.ts
 */
export function hasNameConstraints(cert: ParsedCertificate): boolean {
  return cert.asn1.extensions?.some((e) => e.extnID === OID.nameConstraints) === true;
}

/**
 * Sentence ending of a nameConstraints refusal, after `<who> has a … nameConstraints
 * extension`. @internal shared with path-validation.ts
 */
export function nameConstraintsRefusal(cert: ParsedCertificate): string {
  const critical = cert.asn1.extensions?.find((e) => e.extnID === OID.nameConstraints)?.critical === true;
  return `has a ${critical ? 'critical' : 'non-critical'} nameConstraints extension (${OID.nameConstraints}); name constraints are not supported by Portcullis, so they cannot be enforced and certificates under this CA are refused instead (RFC 5280 4.2.1.10)`;
}

const EMPTY: readonly ParsedCertificate[] = Object.freeze([]);

/**
 * How well `issuer`'s subjectKeyIdentifier matches `child`'s authorityKeyIdentifier:
 * 0 = both present and equal, 1 = one of them absent, 2 = both present and different.
 * @internal shared with path-validation.ts
 */
export function keyIdentifierRank(child: ParsedCertificate, issuer: ParsedCertificate): number {
  const aki = child.authorityKeyIdentifier, ski = issuer.subjectKeyIdentifier;
  if (!aki || !ski) return 1;
  return aki.equals(ski) ? 0 : 2;
}

/** Stable sort of candidate issuers by {@link keyIdentifierRank}. @internal */
export function orderByKeyIdentifier(child: ParsedCertificate, candidates: readonly ParsedCertificate[]): ParsedCertificate[] {
  return candidates
    .map((c, i) => ({ c, i, r: keyIdentifierRank(child, c) }))
    .sort((a, b) => a.r - b.r || a.i - b.i)
    .map((x) => x.c);
}


/**
 * A short human description of a certificate for messages:
 * `"CN=Leaf, O=Org, C=US" (serial 01:ab:…)` (subject in RFC 4514 form, serial as the
 * DER INTEGER bytes in lowercase colon hex).
 * @internal shared with path-validation.ts
 */
export function describeCertificate(cert: ParsedCertificate): string {
  const serial = cert.serialNumberBytes.length ? `serial ${formatSerialNumber(cert.serialNumberBytes)}` : 'empty serial';
  return `"${formatDnRfc4514(cert.subjectDer)}" (${serial})`;
}

const CRITICAL_EXTENSION_NAMES: Record<string, string> = {
  [OID.nameConstraints]: 'nameConstraints',
  [OID.policyConstraints]: 'policyConstraints',
  [OID.inhibitAnyPolicy]: 'inhibitAnyPolicy',
  '2.5.29.33': 'policyMappings',
};

/** `2.5.29.30 (nameConstraints)` or just the OID. @internal */
export function extensionName(oid: string): string {
  const n = CRITICAL_EXTENSION_NAMES[oid];
  return n ? `${oid} (${n})` : oid;
}

function checkLimits(limits: Partial<TrustStoreLimits> | undefined): TrustStoreLimits {
  const l: TrustStoreLimits = {
    maxCertificates: limits?.maxCertificates ?? DEFAULT_TRUST_STORE_LIMITS.maxCertificates,
    maxBundleBytes: limits?.maxBundleBytes ?? DEFAULT_TRUST_STORE_LIMITS.maxBundleBytes,
  };
  for (const [k, v] of Object.entries(l)) {
    if (!Number.isSafeInteger(v) || v < 1) throw new InvalidArgumentError(`trust store limit ${k} must be a positive integer, got ${String(v)}`);
  }
  return l;
}

/**
 * Why `cert` cannot be a trust anchor, or undefined when it can. Checks, in order:
 * DER encoding that OpenSSL accepts, basicConstraints cA=TRUE, keyUsage (when present)
 * asserts keyCertSign, supported public key, supported signature algorithm (also for
 * self-signed roots), no nameConstraints extension (critical or not), and no critical
 * extension Portcullis does not process.
 */
function anchorProblem(cert: ParsedCertificate): string | undefined {
  const who = describeCertificate(cert);
  if (cert.encodingProblem) return `${who} is not a valid DER X.509 certificate: ${cert.encodingProblem}`;
  if (!cert.isCA) {
    const found = !cert.hasBasicConstraints
      ? cert.version < 3 ? `it is an X.509 v${cert.version} certificate without extensions` : 'basicConstraints extension is absent'
      : 'basicConstraints has cA=FALSE';
    return `${who} is not a CA certificate (${found}); only CA certificates (basicConstraints cA=TRUE) may be trust anchors`;
  }
  if (cert.keyUsage && !cert.keyUsage.has('keyCertSign')) {
    const found = [...cert.keyUsage].join(', ') || 'no bits set';
    return `${who} has a keyUsage extension without keyCertSign (found: ${found}), so it cannot sign certificates`;
  }
  if (!cert.publicKey.supported) {
    return `${who} has an unsupported public key (${cert.publicKey.description}); supported keys are RSA 2048/3072/4096 and ECDSA P-256/P-384`;
  }
  if (!SUPPORTED_SIGNATURE_ALGORITHMS.has(cert.signatureAlgorithmOid)) {
    return `${who} is signed with an unsupported signature algorithm (${signatureAlgorithmName(cert.signatureAlgorithmOid)}); supported are SHA-256/384/512 with RSA, RSA-PSS or ECDSA`;
  }
  if (hasNameConstraints(cert)) return `${who} ${nameConstraintsRefusal(cert)}`;
  if (cert.unhandledCriticalExtensions.length) {
    return `${who} has a critical extension Portcullis does not process (${cert.unhandledCriticalExtensions.map(extensionName).join(', ')}); ignoring it would accept clients the CA meant to exclude`;
  }
  return undefined;
}

/**
 * Parses and checks a trust-store CA bundle (SPEC section 2) into a {@link TrustAnchorSet}.
 *
 * Input: PEM text (RFC 7468) — `-----BEGIN CERTIFICATE-----` blocks; lines starting with
 * `#` and blank lines between blocks are allowed; a leading UTF-8 BOM is ignored. A
 * `Buffer` is decoded as UTF-8. DER input is not accepted.
 *
 * Checks, in this order (the first problem found is reported):
 * 1. bundle size ≤ `maxBundleBytes` (default 65 536 bytes);
 * 2. PEM armour and base64 of every block, at least one certificate, no other block
 *    types (e.g. a private key);
 * 3. number of distinct certificates ≤ `maxCertificates` (default 25; byte-identical
 *    duplicate blocks are not counted);
 * 4. for each distinct block in bundle order: DER parses as an X.509 certificate (RFC
 *    5280 4.1) and OpenSSL accepts its encoding ({@link ParsedCertificate.encodingProblem});
 *    basicConstraints cA=TRUE; keyUsage, when present, asserts keyCertSign; public key
 *    RSA 2048/3072/4096 or ECDSA P-256/P-384; signature algorithm SHA-256/384/512 with
 *    RSA, RSA-PSS or ECDSA — checked for self-signed roots too, because SPEC section 2
 *    lists supported signatures for the bundle; no nameConstraints extension, critical
 *    or not (Portcullis does not process name constraints, and ignoring them would
 *    widen what the CA may vouch for); no other critical extension Portcullis does not
 *    process.
 *
 * Not checked here: validity dates (time-dependent; path validation reports an expired
 * anchor) and self-signatures (trust anchors are trusted input, RFC 5280 6.1.1 (d)).
 *
 * Duplicates: a block byte-identical to an earlier one is dropped silently (listed in
 * {@link TrustAnchorSet.duplicates}) and does not count against `maxCertificates`;
 * concatenated bundles often repeat a root and the repetition changes nothing. (The
 * bundle's raw size, duplicates included, still counts against `maxBundleBytes`.) Different certificates with the same subject (re-issued
 * or cross-signed CAs) are all kept; path validation tries each.
 *
 * @param pem the bundle as text or bytes.
 * @param limits overrides of {@link DEFAULT_TRUST_STORE_LIMITS}.
 * @returns the anchors, in bundle order.
 * @throws TrustStoreBundleError (code `InvalidTrustStoreBundle`) whose message names the
 *   offending block, e.g. `certificate #3 (line 41): "CN=Leaf" (serial 01:02) is not a CA
 *   certificate (basicConstraints has cA=FALSE); …`, or states the limit and the actual value.
 * @throws InvalidArgumentError when a limit is not a positive integer.
 */
export function parseTrustStoreBundle(pem: string | Buffer, limits?: Partial<TrustStoreLimits>): TrustAnchorSet {
  const { maxCertificates, maxBundleBytes } = checkLimits(limits);
  const bytes = typeof pem === 'string' ? Buffer.byteLength(pem, 'utf8') : pem.length;
  if (bytes > maxBundleBytes) {
    throw new TrustStoreBundleError(`the bundle is ${bytes} bytes; the limit is ${maxBundleBytes} bytes`);
  }
  let text = typeof pem === 'string' ? pem : pem.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (!text.includes('-----BEGIN ') && text.includes('\u0000')) {
    throw new TrustStoreBundleError('the bundle is not PEM text (binary data without a -----BEGIN CERTIFICATE----- marker; DER is not accepted)');
  }

  let blocks: CertificateBlock[];
  try {
    blocks = splitCertificates(text);
  } catch (err) {
    if (err instanceof CertificateParseError) {
      const message = err.where ? err.message : `the bundle contains no usable certificate: ${err.message}`;
      throw new TrustStoreBundleError(message, { cause: err });
    }
    throw err;
  }
  // Drop byte-identical repeats first (cheap: no parsing), then count what is left.
  const distinct: CertificateBlock[] = [];
  const duplicates: DuplicateTrustAnchor[] = [];
  const seen = new Map<string, string>();
  for (const block of blocks) {
    const key = derKey(block.der);
    const first = seen.get(key);
    if (first !== undefined) {
      duplicates.push({ where: block.where, duplicateOf: first });
      continue;
    }
    seen.set(key, block.where);
    distinct.push(block);
  }
  if (distinct.length > maxCertificates) {
    const dup = duplicates.length ? ` (${blocks.length} blocks, ${duplicates.length} of them duplicates)` : '';
    throw new TrustStoreBundleError(`the bundle holds ${distinct.length} distinct certificates${dup}; the limit is ${maxCertificates}`);
  }

  const anchors: ParsedCertificate[] = [];
  for (const block of distinct) {
    let cert: ParsedCertificate;
    try {
      cert = ParsedCertificate.fromDer(block.der, block.where);
    } catch (err) {
      if (err instanceof CertificateParseError) throw new TrustStoreBundleError(err.message, { cause: err });
      throw err;
    }
    const problem = anchorProblem(cert);
    if (problem) throw new TrustStoreBundleError(`${block.where}: ${problem}`);
    try {
      // Build the public KeyObject now: every handshake that reaches this anchor uses it.
      void cert.publicKeyObject;
    } catch (err) {
      throw new TrustStoreBundleError(`${block.where}: ${describeCertificate(cert)} has a public key that cannot be loaded (${(err as Error).message})`, { cause: err });
    }
    anchors.push(cert);
  }
  return new TrustAnchorSet(anchors, duplicates);
}
