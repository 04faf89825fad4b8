/**
 * CRL verification against a trust store: the subset of RFC 5280 6.3 that a
 * revoked-serial import needs (complete, direct CRLs issued by a trust-store CA).
 * Signatures are checked with node:crypto over the tbsCertList bytes exactly as
 * received; pkijs' `CertificateRevocationList.verify()` is not used (it cannot report
 * why a check failed, and accepts SHA-1).
 */
import type { KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CrlError, InvalidArgumentError } from '../../errors.js';
import {
  OID, formatDnRfc4514, formatIsoSeconds, formatSerialNumber, signatureScheme, verifySignature,
  type ParsedCertificate, type SignatureScheme, type TrustAnchorSet,
} from '../../pki/index.js';
import type { ParsedCrl } from './parse.js';

/** Default {@link VerifyCrlOptions.clockSkewMs}: 300 000 ms (5 minutes), as for OCSP (SPEC section 3). */
export const DEFAULT_CRL_CLOCK_SKEW_MS = 300_000;

/** Options of {@link verifyCrl}. */
export interface VerifyCrlOptions {
  /** The current time (injected so tests and imports can pin it). */
  now: Date;
  /** Tolerated clock difference for thisUpdate/nextUpdate, in milliseconds; default {@link DEFAULT_CRL_CLOCK_SKEW_MS}. */
  clockSkewMs?: number;
}

/** What {@link verifyCrl} established. */
export interface VerifiedCrl {
  /** The trust-store certificate whose key verified the CRL signature. */
  issuer: ParsedCertificate;
}

/**
 * node:crypto parameters for the CRL's signatureAlgorithm, or a sentence saying why it
 * is refused (the shared pki/ rule: SHA-256/384/512 with RSA, RSA-PSS or ECDSA).
 */
function crlSignatureScheme(crl: ParsedCrl): SignatureScheme | string {
  let params: unknown;
  if (crl.signatureAlgorithmOid === OID.rsassaPss) {
    try {
      params = new pkijs.AlgorithmIdentifier({ schema: asn1js.fromBER(crl.signatureAlgorithmDer).result }).algorithmParams;
    } catch {
      return 'RSASSA-PSS with missing or malformed parameters';
    }
  }
  return signatureScheme(crl.signatureAlgorithmOid, params);
}

/** 0 = CRL AKI equals the certificate's SKI, 1 = either is absent, 2 = both present and different. */
function keyIdRank(crl: ParsedCrl, cert: ParsedCertificate): number {
  const aki = crl.authorityKeyIdentifier, ski = cert.subjectKeyIdentifier;
  if (!aki || !ski) return 1;
  return aki.equals(ski) ? 0 : 2;
}

const EXTENSION_NAMES: Readonly<Record<string, string>> = {
  '2.5.29.27': 'deltaCRLIndicator', '2.5.29.28': 'issuingDistributionPoint', '2.5.29.29': 'certificateIssuer',
};
function extensionList(oids: readonly string[]): string {
  return oids.map((o) => (EXTENSION_NAMES[o] ? `${o} (${EXTENSION_NAMES[o]})` : o)).join(', ');
}

/**
 * Checks that a CRL is a complete, direct CRL issued and signed by a CA of the trust
 * store and current at `options.now` — the subset of RFC 5280 6.3.3 that importing its
 * revoked serials needs. Checks, in this order; the first failure is thrown:
 *
 * 1. Scope (RFC 5280 5.2.4, 5.2.5, 5.3.3; unsupported, refused): a delta CRL
 *    (deltaCRLIndicator) — it lists only changes since a base CRL, so importing it
 *    alone would forget every earlier revocation; an indirect CRL (issuingDistribution-
 *    Point indirectCRL, or an entry with a certificateIssuer extension) — its entries
 *    may belong to other CAs, whose serial numbers are not unique against this CA's;
 *    an issuingDistributionPoint with onlyContainsAttributeCerts (attribute
 *    certificates are not client certificates).
 * 2. Critical extensions: any critical CRL extension or CRL entry extension this module
 *    does not process is refused (RFC 5280 5.2, 5.3). An entry with reasonCode
 *    removeFromCRL is refused too: RFC 5280 5.3.1 allows it only in delta CRLs.
 * 3. Signature algorithm: SHA-256/384/512 with RSA PKCS#1 v1.5, RSASSA-PSS or ECDSA;
 *    SHA-1, MD5 and anything else are refused.
 * 4. Issuer (6.3.3 (f)): trust-store certificates whose subject Name DER equals the
 *    CRL's issuer Name DER, those whose subjectKeyIdentifier equals the CRL's
 *    authorityKeyIdentifier first. None → refused. A candidate whose keyUsage extension
 *    is present without cRLSign (RFC 5280 4.2.1.3) is not used.
 * 5. Signature (6.3.3 (g)): verified over the tbsCertList bytes as received with each
 *    usable candidate's public key (`ParsedCertificate.publicKeyObject`); the first that
 *    verifies is the issuer. None → refused.
 * 6. Freshness (5.1.2.4, 5.1.2.5): thisUpdate must not be after now + clockSkewMs;
 *    nextUpdate, when present, must not be before now − clockSkewMs. A value exactly on
 *    the bound passes. A CRL without nextUpdate is accepted (RFC 5280 requires issuers to
 *    include it; nothing here depends on it).
 *
 * Not checked: the issuer certificate's own validity period or revocation status — it is
 * a trust anchor (RFC 5280 6.1.1 (d)), and a CRL from an expired CA can only add
 * revocations. Entries are not filtered by issuingDistributionPoint scope flags
 * (onlyContainsUserCerts, onlyContainsCACerts, onlySomeReasons, a distributionPoint
 * name): every listed certificate is revoked whatever the CRL's scope.
 *
 * @param crl a CRL from `parseCrl`.
 * @param anchors the trust store whose CAs may issue CRLs.
 * @param options `now`, and `clockSkewMs` (ms, default 300 000).
 * @returns the trust-store certificate that signed the CRL.
 * @throws CrlError (code `InvalidCrl`) naming the failed check, e.g.
 *   `CRL issuer "CN=Example CA" is not in the trust store`,
 *   `CRL signature does not verify with the key of "CN=Example CA" (trust store certificate #2)`,
 *   `CRL expired: nextUpdate 2026-01-02T00:00:00Z is before now (2026-01-03T00:00:00Z) minus clock skew 300000 ms`.
 * @throws InvalidArgumentError when `now` is not a valid Date or `clockSkewMs` is not a
 *   non-negative finite number.
 */
export function verifyCrl(crl: ParsedCrl, anchors: TrustAnchorSet, options: VerifyCrlOptions): VerifiedCrl {
  const { now } = options;
  const skew = options.clockSkewMs ?? DEFAULT_CRL_CLOCK_SKEW_MS;
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) throw new InvalidArgumentError('verifyCrl: now must be a valid Date');
  if (typeof skew !== 'number' || !Number.isFinite(skew) || skew < 0) {
    throw new InvalidArgumentError(`verifyCrl: clockSkewMs must be a non-negative number of milliseconds, got ${String(skew)}`);
  }
  const name = `"${crl.issuer}"`;

  // 1. Scope
  if (crl.isDelta) {
    throw new CrlError(`CRL from ${name} is a delta CRL (deltaCRLIndicator, base CRL number ${String(crl.baseCrlNumber)}): delta CRLs are not supported — it lists only changes since a base CRL, so importing it alone would drop earlier revocations; import the complete CRL`);
  }
  if (crl.issuingDistributionPoint?.indirectCRL) {
    throw new CrlError(`CRL from ${name} is an indirect CRL (issuingDistributionPoint indirectCRL): indirect CRLs are not supported — their entries may belong to other CAs, whose serial numbers can collide with this CA's`);
  }
  const indirectEntry = crl.revoked.findIndex((e) => e.hasCertificateIssuer);
  if (indirectEntry !== -1) {
    const e = crl.revoked[indirectEntry]!;
    throw new CrlError(`CRL from ${name} is an indirect CRL: entry #${indirectEntry + 1} (serial ${formatSerialNumber(e.serialNumberBytes)}) has a certificateIssuer extension (RFC 5280 5.3.3); indirect CRLs are not supported — their entries may belong to other CAs`);
  }
  if (crl.issuingDistributionPoint?.onlyContainsAttributeCerts) {
    throw new CrlError(`CRL from ${name} covers attribute certificates only (issuingDistributionPoint onlyContainsAttributeCerts, which RFC 5280 5.2.5 forbids); it says nothing about client certificates`);
  }

  // 2. Critical extensions
  if (crl.unhandledCriticalExtensions.length) {
    throw new CrlError(`CRL from ${name} has a critical CRL extension Portcullis does not process (${extensionList(crl.unhandledCriticalExtensions)}); RFC 5280 5.2 forbids using such a CRL`);
  }
  for (let i = 0; i < crl.revoked.length; i++) {
    const e = crl.revoked[i]!;
    if (e.unhandledCriticalExtensions) {
      throw new CrlError(`CRL from ${name}: entry #${i + 1} (serial ${formatSerialNumber(e.serialNumberBytes)}) has a critical CRL entry extension Portcullis does not process (${extensionList(e.unhandledCriticalExtensions)}); RFC 5280 5.3 forbids using such a CRL`);
    }
    if (e.reason === 'removeFromCRL') {
      throw new CrlError(`CRL from ${name}: entry #${i + 1} (serial ${formatSerialNumber(e.serialNumberBytes)}) has reason removeFromCRL, which RFC 5280 5.3.1 allows only in delta CRLs`);
    }
  }

  // 3. Signature algorithm
  const scheme = crlSignatureScheme(crl);
  if (typeof scheme === 'string') throw new CrlError(`CRL from ${name} cannot be verified: ${scheme}`);

  // 4. Issuer
  const named = anchors.bySubject(crl.issuerDer);
  if (named.length === 0) {
    throw new CrlError(`CRL issuer ${name} is not in the trust store (no trust-store certificate has this subject; the trust store holds ${anchors.count} certificate(s))`);
  }
  const position = (cert: ParsedCertificate) => `trust store certificate #${anchors.anchors.indexOf(cert) + 1}`;
  const ordered = named
    .map((cert, i) => ({ cert, i, rank: keyIdRank(crl, cert) }))
    .sort((a, b) => a.rank - b.rank || a.i - b.i)
    .map((x) => x.cert);
  const usable = ordered.filter((c) => !c.keyUsage || c.keyUsage.has('cRLSign'));
  if (usable.length === 0) {
    const details = ordered.map((c) => `${position(c)} has keyUsage ${[...c.keyUsage!].join(', ') || '(no bits set)'}`).join('; ');
    throw new CrlError(`CRL issuer ${name} may not sign CRLs: its keyUsage extension lacks cRLSign (RFC 5280 4.2.1.3) — ${details}`);
  }

  // 5. Signature
  const issuer = usable.find((c) => {
    let key: KeyObject;
    try {
      key = c.publicKeyObject;
    } catch {
      return false;
    }
    return verifySignature(scheme, crl.tbsDer, crl.signature, key);
  });
  if (!issuer) {
    const tried = usable.map((c) => `"${formatDnRfc4514(c.subjectDer)}" (${position(c)})`).join(' or ');
    throw new CrlError(`CRL signature does not verify with the key of ${tried}`);
  }

  // 6. Freshness
  const t = now.getTime();
  if (crl.thisUpdate.getTime() > t + skew) {
    throw new CrlError(`CRL not yet valid: thisUpdate ${formatIsoSeconds(crl.thisUpdate)} is after now (${formatIsoSeconds(now)}) plus clock skew ${skew} ms`);
  }
  if (crl.nextUpdate && crl.nextUpdate.getTime() < t - skew) {
    throw new CrlError(`CRL expired: nextUpdate ${formatIsoSeconds(crl.nextUpdate)} is before now (${formatIsoSeconds(now)}) minus clock skew ${skew} ms`);
  }
  return { issuer };
}
