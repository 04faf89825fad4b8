import { InvalidArgumentError } from '../errors.js';
import { SUPPORTED_SIGNATURE_ALGORITHMS, signatureAlgorithmName, type ParsedCertificate } from './certificate.js';
import { OID } from './oids.js';
import {
  describeCertificate, extensionName, hasNameConstraints, nameConstraintsRefusal, nameTextKey, orderByKeyIdentifier,
  type TrustAnchorSet,
} from './trust-store.js';
import { formatDnRfc4514 } from './dn.js';

/**
 * Failure codes of {@link validateClientChain}: the SPEC section 7 connection-log codes
 * (`Failed:<Code>`) that path validation can produce.
 */
export type PathValidationFailureCode =
  | 'ClientCertUntrusted'
  | 'ClientCertExpired'
  | 'ClientCertNotYetValid'
  | 'ClientCertIntentInvalid'
  | 'ClientCertMaxChainDepthExceeded'
  | 'ClientCertMaxSizeExceeded'
  | 'ClientCertTypeUnsupported'
  | 'ClientCertInvalid';

/** Options of {@link validateClientChain}. */
export interface PathValidationOptions {
  /** Validation time (injected; the gate passes the handshake time). */
  now: Date;
  /**
   * When true, notBefore/notAfter of every certificate are not checked (SPEC section 2,
   * CloudFront `ignoreCertificateExpiry`); everything else, signatures included, still is.
   * Default false.
   */
  ignoreCertificateExpiry?: boolean;
  /**
   * Most certificates allowed below the trust anchor, leaf included. Default 4 (the
   * leaf and up to 3 intermediates, SPEC section 2). The anchor itself is not counted.
   */
  maxChainDepth?: number;
  /** Largest DER size in bytes allowed for any presented certificate. Default 16 384 (16 KiB, SPEC section 2). */
  maxCertificateBytes?: number;
}

/** SPEC section 2 defaults of {@link PathValidationOptions}. */
export const DEFAULT_PATH_VALIDATION_LIMITS: Readonly<{ maxChainDepth: number; maxCertificateBytes: number }> = Object.freeze({
  maxChainDepth: 4,
  maxCertificateBytes: 16_384,
});

/**
 * Upper bound on candidate issuers examined (one signature check at most each) while
 * building paths for one chain, so a client sending many same-named certificates cannot
 * make a handshake expensive. Generous: a normal chain needs one per link.
 */
export const MAX_ISSUER_CANDIDATES_EXAMINED = 64;

/** A validated certification path (RFC 5280 6.1). Arrays are frozen. */
export interface PathValidationSuccess {
  ok: true;
  /** leaf → intermediates → anchor. */
  path: readonly ParsedCertificate[];
  /** The certificates strictly between leaf and anchor, leaf's issuer first (what OCSP checks, SPEC section 3). */
  intermediates: readonly ParsedCertificate[];
  /** The trust-store certificate the path ends at (the trust store's object, even when the client sent a copy). */
  anchor: ParsedCertificate;
}

/** A failed path validation: a result, never thrown. */
export interface PathValidationFailure {
  ok: false;
  code: PathValidationFailureCode;
  /** One human sentence naming the certificate (subject and serial) and what is wrong. */
  reason: string;
  /**
   * Index into the `presented` array of the certificate at fault (0 = leaf). Absent when
   * the fault lies in a trust anchor the client did not send, or in no single certificate.
   */
  certificateIndex?: number;
}

/** Result of {@link validateClientChain}. */
export type PathValidationResult = PathValidationSuccess | PathValidationFailure;

/** Check stages of a complete candidate path, in precedence order (higher = got further). */
const Stage = { Depth: 1, Type: 2, Structure: 3, Intent: 4, Time: 5 } as const;
type Stage = (typeof Stage)[keyof typeof Stage];

interface RankedFailure {
  stage: Stage;
  failure: PathValidationFailure;
}

interface DeadEnd {
  depth: number;
  failure: PathValidationFailure;
}

interface Search {
  readonly anchors: TrustAnchorSet;
  readonly presentedBySubject: Map<string, ParsedCertificate[]>;
  readonly indexOf: Map<ParsedCertificate, number>;
  readonly signatureMemo: Map<ParsedCertificate, Map<ParsedCertificate, boolean>>;
  readonly now: Date;
  readonly ignoreCertificateExpiry: boolean;
  readonly maxChainDepth: number;
  steps: number;
  exhausted: boolean;
  success: PathValidationSuccess | undefined;
  best: RankedFailure | undefined;
  deadEnd: DeadEnd | undefined;
}

function derKey(der: Buffer): string {
  return der.toString('latin1');
}

function iso(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function fail(code: PathValidationFailureCode, reason: string, certificateIndex: number | undefined): PathValidationFailure {
  return certificateIndex === undefined ? { ok: false, code, reason } : { ok: false, code, reason, certificateIndex };
}

/**
 * Validates a client certificate chain against a trust store (SPEC section 2; RFC 5280
 * section 6.1 with the trust store as the set of trust anchors). Runs on every handshake:
 * it parses nothing, keeps no state between calls (per-call memo only) and bounds its
 * path search (see {@link MAX_ISSUER_CANDIDATES_EXAMINED}).
 *
 * Path building: `presented[0]` is the leaf; the rest is whatever the client sent, in any
 * order, possibly with unrelated or repeated certificates. From the leaf upwards, the
 * candidate issuers of a certificate are the trust anchors and presented certificates
 * whose subject Name DER equals its issuer Name DER (byte comparison, RFC 5280 6.1.3
 * (a)(4); stricter than the string-prepared comparison of RFC 5280 7.1, as Go's
 * crypto/x509 is: a Name that matches only once decoded, e.g. PrintableString vs
 * UTF8String, does not chain, and the `ClientCertUntrusted` reason says so); anchors
 * are tried before presented certificates (shortest path first), and within each group
 * a subjectKeyIdentifier matching the authorityKeyIdentifier first. A candidate whose
 * key does not verify the signature is skipped; the search backtracks
 * when a branch dead-ends, never uses a certificate twice on one path, and stops at the
 * first trust anchor reached: any trust-store certificate (root or intermediate) is an
 * anchor, and a presented copy of one stands for it. The anchor's own signature, and its
 * issuer, are not examined (RFC 5280 6.1.1 (d)). Each complete candidate path is then
 * checked; the first that passes is returned.
 *
 * Checks and precedence (the first failing check of this list decides the code):
 * 1. `ClientCertMaxSizeExceeded` — any presented certificate (used or not) larger than
 *    `maxCertificateBytes`.
 * 2. `ClientCertInvalid` — any presented certificate (used or not) that is not a valid
 *    DER certificate ({@link ParsedCertificate.encodingProblem}: OpenSSL refuses it, e.g.
 *    a non-minimal or empty serialNumber INTEGER), since its signature cannot be checked;
 *    a TLS stack would refuse such a Certificate message too.
 * 3. `ClientCertTypeUnsupported` — leaf public key not RSA 2048/3072/4096 or ECDSA
 *    P-256/P-384, or leaf signature algorithm not SHA-256/384/512 with RSA, RSA-PSS or
 *    ECDSA (e.g. SHA-1).
 * 4. `ClientCertUntrusted` — no chain of valid signatures from the leaf to a trust anchor
 *    (a bad signature, e.g. a certificate forged under a trusted issuer name, is
 *    "untrusted"). The reason names the certificate where the search ended and why (bad
 *    signature, unknown issuer, an issuer Name that matches a trust anchor or presented
 *    certificate only in its text form, a loop).
 * 5. For complete paths (first failing check wins; among several failing paths, the one
 *    that got furthest down this list is reported):
 *    a. `ClientCertMaxChainDepthExceeded` — more than `maxChainDepth` certificates below
 *       the anchor;
 *    b. `ClientCertTypeUnsupported` — an intermediate's key or signature algorithm;
 *    c. `ClientCertInvalid` — first, no CA certificate of the path (the anchor and every
 *       intermediate) has a nameConstraints extension, critical or not: Portcullis does
 *       not implement name-constraint processing (RFC 5280 6.1.3 (b)(c), 6.1.4 (g)) and
 *       refuses such paths rather than ignore the constraints (fail closed); then, in
 *       RFC 5280 6.1.4 order from the anchor down, each
 *       intermediate: no unprocessed critical extension, basicConstraints cA=TRUE
 *       (6.1.4 (k)), keyUsage (when present) with keyCertSign (6.1.4 (n)),
 *       pathLenConstraint of the anchor and of every CA above it (6.1.4 (l)(m);
 *       self-issued certificates not counted); then the leaf's critical extensions
 *       (6.1.5 (f));
 *    d. `ClientCertIntentInvalid` — the leaf: is a CA (basicConstraints cA=TRUE; a CA
 *       certificate is not a client identity — decided here, stricter than RFC 5280);
 *       has an EKU extension without id-kp-clientAuth (anyExtendedKeyUsage alone is
 *       *not* accepted, as OpenSSL's TLS-client purpose check does and as RFC 5280
 *       4.2.1.12 permits); has a keyUsage without digitalSignature or keyAgreement
 *       (OpenSSL's TLS-client rule). EKUs of intermediates are not checked (SPEC
 *       section 2 names the leaf only);
 *    e. `ClientCertNotYetValid` / `ClientCertExpired` — unless `ignoreCertificateExpiry`,
 *       notBefore ≤ now ≤ notAfter for every certificate on the path in order leaf →
 *       intermediates → anchor. The anchor's dates *are* checked (as OpenSSL and Go do,
 *       although RFC 5280 treats the anchor as trusted input): an expired CA in a trust
 *       store stops admitting clients. Time is checked last so that a chain broken in
 *       any other way is never reported as merely expired.
 *
 * @param presented the client's chain, leaf first (already parsed; a block that fails to
 *   parse is the caller's `ClientCertInvalid`).
 * @param anchors the trust store.
 * @param options validation time, expiry policy and limits.
 * @returns `{ ok: true, path, intermediates, anchor }` or `{ ok: false, code, reason, certificateIndex? }`.
 * @throws InvalidArgumentError only for invalid options (a programming error).
 */
export function validateClientChain(
  presented: readonly ParsedCertificate[],
  anchors: TrustAnchorSet,
  options: PathValidationOptions,
): PathValidationResult {
  const maxChainDepth = options.maxChainDepth ?? DEFAULT_PATH_VALIDATION_LIMITS.maxChainDepth;
  const maxCertificateBytes = options.maxCertificateBytes ?? DEFAULT_PATH_VALIDATION_LIMITS.maxCertificateBytes;
  if (!(options.now instanceof Date) || Number.isNaN(options.now.getTime())) throw new InvalidArgumentError('path validation needs a valid `now` Date');
  if (!Number.isSafeInteger(maxChainDepth) || maxChainDepth < 1) throw new InvalidArgumentError(`maxChainDepth must be a positive integer, got ${maxChainDepth}`);
  if (!Number.isSafeInteger(maxCertificateBytes) || maxCertificateBytes < 1) throw new InvalidArgumentError(`maxCertificateBytes must be a positive integer, got ${maxCertificateBytes}`);

  const leaf = presented[0];
  if (!leaf) return fail('ClientCertInvalid', 'no client certificate was presented', undefined);

  // 1. Size of everything the client sent.
  for (let i = 0; i < presented.length; i++) {
    const c = presented[i]!;
    if (c.der.length > maxCertificateBytes) {
      return fail('ClientCertMaxSizeExceeded',
        `${i === 0 ? 'client certificate' : `presented certificate #${i + 1}`} ${describeCertificate(c)} is ${c.der.length} bytes; the limit is ${maxCertificateBytes} bytes per certificate`, i);
    }
  }
  // 2. Encoding: OpenSSL must accept every presented certificate (signatures are checked by it).
  for (let i = 0; i < presented.length; i++) {
    const c = presented[i]!;
    if (c.encodingProblem) {
      return fail('ClientCertInvalid',
        `${i === 0 ? 'client certificate' : `presented certificate #${i + 1}`} ${describeCertificate(c)} is not a valid DER X.509 certificate: ${c.encodingProblem}`, i);
    }
  }
  // 3. Leaf key and signature algorithm.
  const leafType = typeProblem(leaf, 'client certificate');
  if (leafType) return fail('ClientCertTypeUnsupported', leafType, 0);

  // Index the presented certificates (a copy of an anchor stands for the anchor).
  const indexOf = new Map<ParsedCertificate, number>();
  const presentedBySubject = new Map<string, ParsedCertificate[]>();
  const seenDer = new Set<string>();
  for (let i = 0; i < presented.length; i++) {
    const c = presented[i]!;
    const anchor = anchors.find(c);
    if (anchor) {
      if (!indexOf.has(anchor)) indexOf.set(anchor, i);
      continue;
    }
    const key = derKey(c.der);
    if (seenDer.has(key)) continue;
    seenDer.add(key);
    indexOf.set(c, i);
    if (i === 0) continue;
    const sk = derKey(c.subjectDer);
    const list = presentedBySubject.get(sk);
    if (list) list.push(c);
    else presentedBySubject.set(sk, [c]);
  }

  const s: Search = {
    anchors, presentedBySubject, indexOf, signatureMemo: new Map(), now: options.now,
    ignoreCertificateExpiry: options.ignoreCertificateExpiry === true, maxChainDepth,
    steps: 0, exhausted: false, success: undefined, best: undefined, deadEnd: undefined,
  };

  const leafAnchor = anchors.find(leaf);
  if (leafAnchor) {
    // The client presented a trust-store certificate as its own: the path is just the anchor.
    evaluate(s, [leafAnchor]);
  } else {
    extend(s, [leaf], new Set([leaf]));
  }

  if (s.success) return s.success;
  if (s.best) return s.best.failure;
  if (s.exhausted) {
    return fail('ClientCertUntrusted',
      `no path from client certificate ${describeCertificate(leaf)} to a trust anchor was found after examining ${MAX_ISSUER_CANDIDATES_EXAMINED} candidate issuers`, 0);
  }
  return s.deadEnd?.failure ?? fail('ClientCertUntrusted', `client certificate ${describeCertificate(leaf)} does not chain to a trust anchor`, 0);
}

/** Unsupported key or signature algorithm of `cert`, as a sentence, or undefined. */
function typeProblem(cert: ParsedCertificate, role: string): string | undefined {
  if (!cert.publicKey.supported) {
    return `${role} ${describeCertificate(cert)} has an unsupported public key (${cert.publicKey.description}); supported keys are RSA 2048/3072/4096 and ECDSA P-256/P-384`;
  }
  if (!SUPPORTED_SIGNATURE_ALGORITHMS.has(cert.signatureAlgorithmOid)) {
    return `${role} ${describeCertificate(cert)} is signed with an unsupported signature algorithm (${signatureAlgorithmName(cert.signatureAlgorithmOid)}); supported are SHA-256/384/512 with RSA, RSA-PSS or ECDSA`;
  }
  return undefined;
}

function verify(s: Search, child: ParsedCertificate, issuer: ParsedCertificate): boolean {
  let m = s.signatureMemo.get(child);
  if (!m) s.signatureMemo.set(child, (m = new Map()));
  let ok = m.get(issuer);
  if (ok === undefined) m.set(issuer, (ok = child.isSignedBy(issuer)));
  return ok;
}

/** Depth-first search for issuers of the last certificate of `path`; evaluates every complete path found. */
function extend(s: Search, path: ParsedCertificate[], onPath: Set<ParsedCertificate>): void {
  const child = path[path.length - 1]!;
  const fromAnchors = s.anchors.issuersOf(child);
  const named = s.presentedBySubject.get(derKey(child.issuerDer));
  const fromPresented = named ? (named.length > 1 ? orderByKeyIdentifier(child, named) : named) : [];
  const badSignature: ParsedCertificate[] = [];
  let usable = 0, loops = 0;
  const candidates: [ParsedCertificate, boolean][] = [
    ...fromAnchors.map((c): [ParsedCertificate, boolean] => [c, true]),
    ...fromPresented.map((c): [ParsedCertificate, boolean] => [c, false]),
  ];
  for (const [candidate, isAnchor] of candidates) {
    if (s.success) return;
    if (onPath.has(candidate)) {
      loops++;
      continue;
    }
    if (s.steps >= MAX_ISSUER_CANDIDATES_EXAMINED) {
      s.exhausted = true;
      return;
    }
    s.steps++;
    if (!verify(s, child, candidate)) {
      badSignature.push(candidate);
      continue;
    }
    usable++;
    path.push(candidate);
    if (isAnchor) {
      evaluate(s, path);
    } else {
      onPath.add(candidate);
      extend(s, path, onPath);
      onPath.delete(candidate);
    }
    path.pop();
  }
  if (usable === 0) recordDeadEnd(s, path, badSignature, loops > 0);
}

function recordDeadEnd(s: Search, path: readonly ParsedCertificate[], badSignature: readonly ParsedCertificate[], loop: boolean): void {
  const depth = path.length;
  if (s.deadEnd && s.deadEnd.depth >= depth) return;
  const cert = path[depth - 1]!;
  const who = `${depth === 1 ? 'client certificate' : 'presented certificate'} ${describeCertificate(cert)}`;
  let reason: string;
  if (badSignature.length === 1) {
    reason = `the signature of ${who} does not verify with the public key of ${s.anchors.find(badSignature[0]!) === badSignature[0] ? 'trust anchor' : 'presented certificate'} ${describeCertificate(badSignature[0]!)}, which is named as its issuer`;
  } else if (badSignature.length > 1) {
    reason = `the signature of ${who} does not verify with the public key of any of the ${badSignature.length} certificates named as its issuer`;
  } else if (cert.selfIssued) {
    reason = `${who} is self-issued and is not in the trust store`;
  } else if (loop) {
    reason = `the issuer of ${who} leads back into its own chain (a loop) and no trust anchor was reached`;
  } else {
    const textMatch = textOnlyIssuerMatch(s, cert);
    reason = textMatch
      ? `${who} names its issuer "${formatDnRfc4514(cert.issuerDer)}"; that issuer name matches ${textMatch} only in its text form; the DER encodings differ (RFC 5280 7.1 name chaining compares names after string preparation, but Portcullis compares the DER bytes, as Go's crypto/x509 does, and fails closed: the issuing CA must copy its subject into the issuer field unchanged, RFC 5280 4.1.2.6)`
      : `${who} was issued by "${formatDnRfc4514(cert.issuerDer)}", which is neither in the trust store nor among the presented certificates`;
  }
  s.deadEnd = { depth, failure: fail('ClientCertUntrusted', reason, s.indexOf.get(cert)) };
}

/**
 * For a certificate whose issuer Name matched nothing byte for byte: the trust anchor
 * (preferred) or presented certificate whose subject has the same text, as
 * `trust anchor "…" (serial …)`, or undefined. Failure path only; bounded.
 */
function textOnlyIssuerMatch(s: Search, cert: ParsedCertificate): string | undefined {
  const anchor = s.anchors.bySubjectText(cert.issuerDer).find((a) => !a.subjectDer.equals(cert.issuerDer));
  if (anchor) return `trust anchor ${describeCertificate(anchor)}`;
  const key = nameTextKey(cert.issuerDer);
  if (key === undefined) return undefined;
  let examined = 0;
  for (const list of s.presentedBySubject.values()) {
    if (++examined > MAX_ISSUER_CANDIDATES_EXAMINED) break;
    const c = list[0]!;
    if (c !== cert && !c.subjectDer.equals(cert.issuerDer) && nameTextKey(c.subjectDer) === key) return `presented certificate ${describeCertificate(c)}`;
  }
  return undefined;
}

function evaluate(s: Search, path: readonly ParsedCertificate[]): void {
  const failure = checkPath(s, path);
  if (!failure) {
    const p = Object.freeze(path.slice());
    s.success = { ok: true, path: p, intermediates: Object.freeze(p.slice(1, -1)), anchor: p[p.length - 1]! };
    return;
  }
  if (!s.best || failure.stage > s.best.stage) s.best = failure;
}

function intermediates(n: number): string {
  return `${n} intermediate${n === 1 ? '' : 's'}`;
}

function roleOf(i: number, n: number): string {
  return i === 0 ? 'client certificate' : i === n - 1 ? 'trust anchor' : 'intermediate CA certificate';
}

/** Checks one complete path (leaf … anchor); undefined when it is valid. */
function checkPath(s: Search, path: readonly ParsedCertificate[]): RankedFailure | undefined {
  const n = path.length;
  const leaf = path[0]!;
  const anchor = path[n - 1]!;
  const at = (stage: Stage, code: PathValidationFailureCode, reason: string, cert: ParsedCertificate): RankedFailure =>
    ({ stage, failure: fail(code, reason, s.indexOf.get(cert)) });

  // a. Depth: certificates below the anchor.
  const below = n - 1;
  if (below > s.maxChainDepth) {
    return at(Stage.Depth, 'ClientCertMaxChainDepthExceeded',
      `the path from client certificate ${describeCertificate(leaf)} to trust anchor ${describeCertificate(anchor)} has ${below} certificates below the anchor (the leaf and ${intermediates(below - 1)}); at most ${s.maxChainDepth} ${s.maxChainDepth === 1 ? 'is' : 'are'} allowed (the leaf and ${intermediates(s.maxChainDepth - 1)})`,
      path[s.maxChainDepth]!);
  }

  // b. Intermediates' key and signature types (the leaf's were checked before path building).
  for (let i = 1; i < n - 1; i++) {
    const c = path[i]!;
    const problem = typeProblem(c, 'intermediate CA certificate');
    if (problem) return at(Stage.Type, 'ClientCertTypeUnsupported', problem, c);
  }

  // c. Structure. Name constraints first: not implemented, so refused on any CA of the
  // path, critical or not (ignoring a non-critical one would be fail-open).
  for (let i = n - 1; i >= 1; i--) {
    const c = path[i]!;
    if (hasNameConstraints(c)) {
      return at(Stage.Structure, 'ClientCertInvalid', `${i === n - 1 ? 'trust anchor' : 'intermediate CA certificate'} ${describeCertificate(c)} ${nameConstraintsRefusal(c)}`, c);
    }
  }
  // Then RFC 5280 6.1.4 from the anchor down, then 6.1.5 for the leaf.
  let maxPathLength = Number.POSITIVE_INFINITY;
  let limiter: ParsedCertificate | undefined;
  if (n > 1 && anchor.pathLenConstraint !== undefined) {
    maxPathLength = anchor.pathLenConstraint;
    limiter = anchor;
  }
  for (let i = n - 2; i >= 1; i--) {
    const c = path[i]!;
    const who = `intermediate CA certificate ${describeCertificate(c)}`;
    if (c.unhandledCriticalExtensions.length) {
      return at(Stage.Structure, 'ClientCertInvalid', `${who} has a critical extension Portcullis does not process (${c.unhandledCriticalExtensions.map(extensionName).join(', ')})`, c);
    }
    if (!c.isCA) {
      const found = c.hasBasicConstraints ? 'basicConstraints has cA=FALSE' : 'basicConstraints extension is absent';
      return at(Stage.Structure, 'ClientCertInvalid', `${who} issued another certificate on the path but is not a CA certificate (${found})`, c);
    }
    if (c.keyUsage && !c.keyUsage.has('keyCertSign')) {
      return at(Stage.Structure, 'ClientCertInvalid', `${who} issued another certificate on the path but its keyUsage lacks keyCertSign (found: ${[...c.keyUsage].join(', ') || 'no bits set'})`, c);
    }
    if (!c.selfIssued) {
      if (maxPathLength <= 0) {
        const role = limiter === anchor ? 'trust anchor' : 'intermediate CA certificate';
        return at(Stage.Structure, 'ClientCertInvalid', `${who} violates the pathLenConstraint of ${limiter!.pathLenConstraint} of ${role} ${describeCertificate(limiter!)}: no further intermediate CA certificate is allowed below it`, c);
      }
      maxPathLength--;
    }
    if (c.pathLenConstraint !== undefined && c.pathLenConstraint < maxPathLength) {
      maxPathLength = c.pathLenConstraint;
      limiter = c;
    }
  }
  if (leaf.unhandledCriticalExtensions.length) {
    return at(Stage.Structure, 'ClientCertInvalid', `client certificate ${describeCertificate(leaf)} has a critical extension Portcullis does not process (${leaf.unhandledCriticalExtensions.map(extensionName).join(', ')})`, leaf);
  }

  // d. Intent of the leaf.
  const who = `client certificate ${describeCertificate(leaf)}`;
  if (leaf.isCA) {
    return at(Stage.Intent, 'ClientCertIntentInvalid', `${who} is a CA certificate (basicConstraints cA=TRUE); a CA certificate cannot be used as a client certificate`, leaf);
  }
  if (leaf.extKeyUsage && !leaf.extKeyUsage.includes(OID.kpClientAuth)) {
    return at(Stage.Intent, 'ClientCertIntentInvalid', `${who} has an extendedKeyUsage extension without clientAuth (found: ${leaf.extKeyUsage.map(ekuName).join(', ') || 'none'})`, leaf);
  }
  if (leaf.keyUsage && !leaf.keyUsage.has('digitalSignature') && !leaf.keyUsage.has('keyAgreement')) {
    return at(Stage.Intent, 'ClientCertIntentInvalid', `${who} has a keyUsage extension without digitalSignature (found: ${[...leaf.keyUsage].join(', ') || 'no bits set'}), so it cannot authenticate a TLS client`, leaf);
  }

  // e. Validity periods (RFC 5280 6.1.3 (a)(2)), leaf → anchor.
  if (!s.ignoreCertificateExpiry) {
    const now = s.now.getTime();
    for (let i = 0; i < n; i++) {
      const c = path[i]!;
      if (now < c.notBefore.getTime()) {
        return at(Stage.Time, 'ClientCertNotYetValid', `${roleOf(i, n)} ${describeCertificate(c)} is not valid before ${iso(c.notBefore)} (validation time ${iso(s.now)})`, c);
      }
      if (now > c.notAfter.getTime()) {
        return at(Stage.Time, 'ClientCertExpired', `${roleOf(i, n)} ${describeCertificate(c)} expired at ${iso(c.notAfter)} (validation time ${iso(s.now)})`, c);
      }
    }
  }
  return undefined;
}

function ekuName(oid: string): string {
  switch (oid) {
    case OID.kpServerAuth: return 'serverAuth';
    case OID.kpClientAuth: return 'clientAuth';
    case OID.kpOcspSigning: return 'OCSPSigning';
    case OID.anyExtendedKeyUsage: return 'anyExtendedKeyUsage';
    case '1.3.6.1.5.5.7.3.3': return 'codeSigning';
    case '1.3.6.1.5.5.7.3.4': return 'emailProtection';
    case '1.3.6.1.5.5.7.3.8': return 'timeStamping';
    default: return oid;
  }
}
