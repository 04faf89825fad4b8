/**
 * CRL import into a KeyValueStore (SPEC section 5 extension): verify an X.509 CRL (DER
 * or PEM) against a trust store, then make the store's CRL-sourced keys exactly the
 * CRL's revoked serials, in one atomic write under the store's ETag.
 *
 * Rules (documented for users in the README):
 * - Keys: `serialNumber.replaceAll(':', '')` — lowercase hex of the serial's DER
 *   INTEGER content octets, leading `00` kept (see {@link normalizeSerialForKvs});
 *   values: compact JSON `{"revocationDate","reason"?,"crlNumber"?,"issuer"}` (from
 *   `crlToKvsEntries` in revocation/crl).
 * - Keys written by an import are marked with source `crl`. A later import removes
 *   every `crl` key its CRL no longer lists (a certificate taken off hold, an expired
 *   certificate dropped by the CA) and adds or rewrites the others — all in one
 *   transaction: a replica sees the old list or the new one, never a mix.
 * - Keys put by hand are never changed or removed by an import, even when the CRL
 *   lists the same serial (they are marked `crl+manual`): removing a manual revocation
 *   because a CRL does not mention it would admit a revoked client.
 * - One CA per store: a store that holds the CRL of issuer A refuses a CRL of issuer B
 *   (replacing A's list with B's would un-revoke A's certificates). Use one store per CA.
 * - Keys the current CRL lists cannot be deleted by hand while it lists them (a key
 *   also put by hand keeps its hand-written value; see `KvsItemSource`).
 * - No rollback: refused are a CRL whose thisUpdate is older than the imported one's,
 *   whose cRLNumber is lower, that has no cRLNumber when the imported one had one, or
 *   that has the same thisUpdate or the same cRLNumber as the imported one but other
 *   DER bytes (compared by SHA-256). Re-importing the same CRL (same DER) is allowed.
 * - Not limited to `maxBatchKeys` (50): a CRL may list any number of serials; the
 *   store's size quota (`maxStoreBytes`, 5 MB by default: about 30,000 serials with
 *   the value format above and a short issuer name) still applies and a CRL over it is refused with
 *   ServiceQuotaExceeded, nothing changed.
 */
import { createHash } from 'node:crypto';
import { CrlError, EntityNotFoundError, InvalidArgumentError, PreconditionFailedError } from '../errors.js';
import { TrustAnchorSet, type ParsedCertificate } from '../pki/index.js';
import { crlToKvsEntries, parseCrl, verifyCrl } from '../revocation/index.js';
import type { KvsCrlState, Store } from '../store/index.js';
import type { KvsLimits } from './limits.js';
import { validateKey, validateKvsName, validateValue } from './validation.js';

/** Input of {@link importCrlIntoStore}. */
export interface ImportCrlOptions {
  /** The CRL, DER bytes or PEM (`-----BEGIN X509 CRL-----`). */
  crl: Uint8Array | string;
  /** CAs allowed to sign the CRL (`parseTrustStoreBundle`). */
  trustStore: TrustAnchorSet;
  /**
   * Intermediate CA certificates that chain to `trustStore` (see
   * {@link verifyIssuerChain}): a CRL signed by one of them is accepted although only
   * the root is in the trust store. Every one must chain, or the import is refused.
   */
  issuerChain?: readonly ParsedCertificate[];
  /** The store's current ETag. */
  ifMatch: string;
  /** Verification time (default now). */
  now?: Date;
  /** thisUpdate/nextUpdate tolerance, ms (default 5 minutes). */
  clockSkewMs?: number;
}

/** Result of a CRL import: the write result plus what changed. */
export interface ImportCrlResult {
  ETag: string;
  ItemCount: number;
  TotalSizeInBytes: number;
  /** Issuer (RFC 4514), thisUpdate, nextUpdate, cRLNumber of the imported CRL. */
  Crl: { Issuer: string; ThisUpdate: string; NextUpdate?: string; CrlNumber?: string };
  /** Revoked serials in the CRL (distinct). */
  Entries: number;
  /** CRL-sourced keys removed because the new CRL no longer lists them. */
  Removed: number;
  /** Serials the CRL lists that already exist as hand-written keys (left unchanged). */
  SkippedManualKeys: number;
}

/**
 * Verifies and imports a CRL (see the module comment for the rules).
 * @throws CrlError (code `InvalidCrl`: unparsable, bad signature, issuer not in the
 *   trust store, expired, not yet valid, delta/indirect, older than the imported one,
 *   another issuer than the imported one), InvalidIfMatchVersionError,
 *   PreconditionFailedError, EntityNotFoundError, EntityNotReadyError,
 *   EntitySizeLimitExceededError (limits lowered below a serial or value),
 *   ServiceQuotaExceededError — nothing changed in every case.
 */
export async function importCrlIntoStore(
  store: Store, name: string, opts: ImportCrlOptions & { limits: KvsLimits; newEtag: string; nowMs: number },
): Promise<ImportCrlResult> {
  validateKvsName(name);
  const crl = parseCrl(opts.crl);
  const now = opts.now ?? new Date(opts.nowMs);
  const signers = opts.issuerChain && opts.issuerChain.length > 0 ? verifyIssuerChain(opts.issuerChain, opts.trustStore, now) : opts.trustStore;
  verifyCrl(crl, signers, { now: opts.now ?? new Date(opts.nowMs), ...(opts.clockSkewMs !== undefined ? { clockSkewMs: opts.clockSkewMs } : {}) });
  const entries = crlToKvsEntries(crl);
  for (const e of entries) {
    validateKey(e.key, opts.limits);
    validateValue(e.key, e.value, opts.limits);
  }
  const record = await store.kvs.getStore(name);
  if (!record) throw new EntityNotFoundError(`key value store "${name}" does not exist`);
  // The previous CRL state is read outside the write; the write's If-Match guarantees
  // it is still the state the write replaces.
  if (record.etag !== opts.ifMatch) {
    throw new PreconditionFailedError(`the If-Match ETag "${opts.ifMatch}" is not the current ETag of key value store "${name}"`);
  }
  const thisUpdate = crl.thisUpdate.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const nextUpdate = crl.nextUpdate?.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const crlNumber = crl.crlNumber?.toString(10);
  const derSha256 = createHash('sha256').update(crl.der).digest('hex');
  const prev = record.crlState;
  if (prev) {
    const sameCrl = prev.derSha256 !== undefined && prev.derSha256 === derSha256;
    if (prev.issuer !== crl.issuer) {
      throw new CrlError(`key value store "${name}" holds the CRL of "${prev.issuer}"; this CRL is from "${crl.issuer}" — import each CA's CRL into its own store`);
    }
    if (Date.parse(thisUpdate) < Date.parse(prev.thisUpdate)) {
      throw new CrlError(`this CRL (thisUpdate ${thisUpdate}) is older than the one already imported (thisUpdate ${prev.thisUpdate}); refusing to roll back`);
    }
    if (crlNumber !== undefined && prev.crlNumber !== undefined && BigInt(crlNumber) < BigInt(prev.crlNumber)) {
      throw new CrlError(`this CRL (cRLNumber ${crlNumber}) is older than the one already imported (cRLNumber ${prev.crlNumber}); refusing to roll back`);
    }
    if (crlNumber === undefined && prev.crlNumber !== undefined) {
      throw new CrlError(`this CRL has no cRLNumber but the one already imported has cRLNumber ${prev.crlNumber}; a CA does not drop the cRLNumber from its CRLs, refusing it as a possible rollback`);
    }
    if (!sameCrl && thisUpdate === prev.thisUpdate) {
      throw new CrlError(`this CRL has the same thisUpdate (${thisUpdate}) as the one already imported but different content; only the same CRL may be imported again, a newer one needs a later thisUpdate`);
    }
    if (!sameCrl && crlNumber !== undefined && crlNumber === prev.crlNumber) {
      throw new CrlError(`this CRL has the same cRLNumber (${crlNumber}) as the one already imported but different content; only the same CRL may be imported again, a newer one needs a higher cRLNumber`);
    }
  }
  const crlState: KvsCrlState = {
    issuer: crl.issuer,
    thisUpdate,
    ...(nextUpdate ? { nextUpdate } : {}),
    ...(crlNumber !== undefined ? { crlNumber } : {}),
    entries: entries.length,
    importedAt: new Date(opts.nowMs).toISOString(),
    derSha256,
  };
  const outcome = await store.kvs.updateItems(name, {
    ifMatch: opts.ifMatch,
    newEtag: opts.newEtag,
    puts: entries,
    deletes: [],
    replaceSource: 'crl',
    crlState,
    maxStoreBytes: opts.limits.maxStoreBytes,
    now: opts.nowMs,
  });
  return {
    ETag: outcome.record.etag,
    ItemCount: outcome.record.itemCount,
    TotalSizeInBytes: outcome.record.totalSize,
    Crl: { Issuer: crl.issuer, ThisUpdate: thisUpdate, ...(nextUpdate ? { NextUpdate: nextUpdate } : {}), ...(crlNumber !== undefined ? { CrlNumber: crlNumber } : {}) },
    Entries: entries.length,
    Removed: outcome.deleted.length,
    SkippedManualKeys: outcome.skipped.length,
  };
}

/**
 * The CAs that may sign a CRL when intermediates are given: `trustStore`'s anchors plus
 * every certificate of `chain` that chains to them (RFC 5280 6.1 for CA certificates).
 * A chain certificate is accepted once its issuer — an anchor or an already accepted
 * chain certificate, matched by Name DER — verifies its signature, and it is itself a CA:
 * basicConstraints cA true, keyUsage (when present) with keyCertSign or cRLSign, no
 * unhandled critical extension, and valid at `now` (notBefore ≤ now ≤ notAfter). The
 * chain may be in any order; at most 8 certificates.
 * @throws InvalidArgumentError naming `issuerChainPem`, the certificate (#n, subject)
 *   and why it does not chain — nothing is trusted from a chain with one bad member.
 */
export function verifyIssuerChain(chain: readonly ParsedCertificate[], trustStore: TrustAnchorSet, now: Date): TrustAnchorSet {
  if (chain.length > 8) throw new InvalidArgumentError(`issuerChainPem: ${chain.length} certificates; at most 8 intermediates`);
  const subject = (c: ParsedCertificate): string => `certificate #${chain.indexOf(c) + 1} ("${c.x509.subject.replaceAll('\n', ', ')}")`;
  for (const c of chain) {
    if (!c.isCA) throw new InvalidArgumentError(`issuerChainPem: ${subject(c)} is not a CA certificate (basicConstraints cA is not true); give only the intermediate CAs`);
    if (c.keyUsage && !c.keyUsage.has('keyCertSign') && !c.keyUsage.has('cRLSign')) {
      throw new InvalidArgumentError(`issuerChainPem: ${subject(c)} has a keyUsage without keyCertSign or cRLSign`);
    }
    if (c.unhandledCriticalExtensions.length > 0) {
      throw new InvalidArgumentError(`issuerChainPem: ${subject(c)} has a critical extension Portcullis does not process (${c.unhandledCriticalExtensions.join(', ')})`);
    }
    if (now < c.notBefore || now > c.notAfter) {
      throw new InvalidArgumentError(`issuerChainPem: ${subject(c)} is not valid now (notBefore ${c.notBefore.toISOString()}, notAfter ${c.notAfter.toISOString()})`);
    }
  }
  const accepted: ParsedCertificate[] = [];
  const pending = [...chain];
  const issuerOk = (issuer: ParsedCertificate): boolean => issuer.isCA && (!issuer.keyUsage || issuer.keyUsage.has('keyCertSign'));
  for (let progress = true; progress && pending.length > 0;) {
    progress = false;
    for (let i = 0; i < pending.length; i++) {
      const c = pending[i]!;
      const candidates = [...trustStore.bySubject(c.issuerDer), ...accepted.filter((a) => a.subjectDer.equals(c.issuerDer))];
      if (candidates.some((issuer) => issuerOk(issuer) && c.isSignedBy(issuer))) {
        accepted.push(c);
        pending.splice(i, 1);
        i--;
        progress = true;
      }
    }
  }
  if (pending.length > 0) {
    const c = pending[0]!;
    throw new InvalidArgumentError(`issuerChainPem: ${subject(c)} does not chain to the trust store: no trust-store certificate or verified intermediate named "${c.x509.issuer.replaceAll('\n', ', ')}" signed it`);
  }
  return new TrustAnchorSet([...trustStore.anchors, ...accepted]);
}
