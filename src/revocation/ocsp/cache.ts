import type { CertId, VerifiedOcspResponse } from './types.js';

/**
 * What one OCSP lookup produced: a verified response, or a failure with the SPEC
 * section 3 `errorType` (`InternalError` for transport failures, or
 * `OCSP response verification failed: {Type}`) and a human `errorDetail`.
 */
export type OcspOutcome =
  | { kind: 'response'; response: VerifiedOcspResponse }
  | { kind: 'failure'; errorType: string; errorDetail: string };

/** A lookup result with where it came from (SPEC 7 log extension: source `cache`/`network`). */
export interface OcspCacheResult {
  outcome: OcspOutcome;
  source: 'cache' | 'network';
  /** When the outcome was obtained from the responder (ms since epoch). */
  fetchedAt: number;
}

/** Cache settings (SPEC 3; config keys under `ocsp:`). All durations in milliseconds. */
export interface OcspCacheOptions {
  /** Upper bound on how long a verified response is reused (default 30 min, `maxCacheTtlSeconds`). */
  maxTtlMs: number;
  /** Lifetime of a response without nextUpdate (default 5 min, `defaultTtlSeconds`). */
  defaultTtlMs: number;
  /** Lifetime of a cached failure (default 30 s, `failureCacheSeconds`). */
  failureTtlMs: number;
  /**
   * Fraction of an entry's lifetime after which a lookup triggers a background refresh
   * (default 0.8: an entry used in the last fifth of its life is "hot" and is renewed
   * before it expires, so handshakes do not wait).
   */
  refreshAfterFraction: number;
  /** Most entries kept; the oldest are evicted beyond it (default 100 000). */
  maxEntries: number;
  /** Clock (ms since epoch); injected so tests move time instead of sleeping. */
  now: () => number;
}

/** Defaults of {@link OcspCacheOptions} (SPEC 3). */
export const DEFAULT_OCSP_CACHE_OPTIONS: Readonly<OcspCacheOptions> = Object.freeze({
  maxTtlMs: 30 * 60_000,
  defaultTtlMs: 5 * 60_000,
  failureTtlMs: 30_000,
  refreshAfterFraction: 0.8,
  maxEntries: 100_000,
  now: Date.now,
});

/** One row of {@link OcspCache.list} (operators' view of the cache). */
export interface OcspCacheEntryInfo {
  key: string;
  responderUrl: string;
  /** Serial number, lowercase hex without separators. */
  serialNumber: string;
  issuerNameHash: string;
  issuerKeyHash: string;
  /** `good`/`revoked`/`unknown`, or `failure`. */
  state: 'good' | 'revoked' | 'unknown' | 'failure';
  errorType: string | undefined;
  errorDetail: string | undefined;
  thisUpdate: string | undefined;
  nextUpdate: string | undefined;
  fetchedAt: string;
  expiresAt: string;
  hits: number;
  /** Error of the last failed background refresh while the response was still served. */
  lastRefreshError: string | undefined;
  refreshing: boolean;
}

/** Filter of {@link OcspCache.purge}; an empty filter purges everything. */
export interface OcspCachePurgeFilter {
  /** Serial number in any case, with or without ':' separators. */
  serialNumber?: string;
  responderUrl?: string;
  /** One entry: its {@link OcspCache.key} (CertID and responder, as {@link OcspCache.list} shows it). */
  key?: string;
}

interface Entry {
  key: string;
  certId: CertId;
  responderUrl: string;
  outcome: OcspOutcome;
  fetchedAt: number;
  expiresAt: number;
  refreshAt: number;
  hits: number;
  lastRefreshError: string | undefined;
  /** No background refresh before this time (backoff after a failed refresh). */
  refreshNotBefore: number;
}

/** Counters of {@link OcspCache.stats} (for metrics). */
export interface OcspCacheStats {
  hits: number;
  misses: number;
  /** Lookups that waited for another caller's in-flight request. */
  coalesced: number;
  refreshes: number;
  refreshFailures: number;
  evictions: number;
  size: number;
  inflight: number;
}

/** A request under way (a miss or a background refresh), detachable by {@link OcspCache.purge}. */
interface PendingLoad {
  certId: CertId;
  responderUrl: string;
  /** Set by purge: the answer must not be stored. */
  cancelled: boolean;
  promise: Promise<OcspCacheResult>;
}

/** Revoked for any reason except certificateHold (RFC 5280 5.3.1: the only reversible one). */
function isPermanentRevocation(r: VerifiedOcspResponse): boolean {
  return r.certStatus === 'revoked' && r.revocationReason !== 'certificateHold';
}

/** Produces a fresh outcome from the responder; must not reject (failures are outcomes). */
export type OcspLoader = () => Promise<OcspOutcome>;

/**
 * The process-wide OCSP response cache (SPEC section 3), shared by every distribution.
 *
 * - Keyed by CertID (hash algorithm, issuerNameHash, issuerKeyHash, serial) plus the
 *   responder URL.
 * - A verified response lives until the earlier of its nextUpdate and `maxTtlMs`;
 *   without nextUpdate, `defaultTtlMs` (also capped by `maxTtlMs`). A response whose
 *   nextUpdate is already past is not cached.
 * - Failures live `failureTtlMs`, so a dead responder is asked at most once per period.
 * - Concurrent misses for one key share one loader call (single flight).
 * - A lookup after `refreshAfterFraction` of an entry's life returns the cached value
 *   at once and starts one background refresh. If that refresh fails, the still-valid
 *   response keeps being served (the failure is recorded, and the next refresh is
 *   attempted after `failureTtlMs`); a successful refresh replaces the entry.
 * - Revoked is final (RFC 5280 3.3; except certificateHold): once a verified Revoked
 *   answer is cached, a later Good/Unknown or a failure for the same key never
 *   replaces it (the responder is still asked on the normal schedule); only a purge
 *   removes it. A response older (thisUpdate) than the live one is ignored.
 * - Entries beyond `maxEntries` are evicted oldest first (expired non-revoked first).
 */
export class OcspCache {
  readonly #opts: OcspCacheOptions;
  readonly #entries = new Map<string, Entry>();
  readonly #inflight = new Map<string, PendingLoad>();
  readonly #refreshing = new Map<string, PendingLoad>();
  #stats = { hits: 0, misses: 0, coalesced: 0, refreshes: 0, refreshFailures: 0, evictions: 0 };

  constructor(options: Partial<OcspCacheOptions> = {}) {
    this.#opts = { ...DEFAULT_OCSP_CACHE_OPTIONS, ...options };
  }

  /** The cache key of a CertID at a responder: `alg:nameHash:keyHash:serial@url`, hex lowercase. */
  static key(certId: CertId, responderUrl: string): string {
    return `${certId.hashAlgorithm}:${certId.issuerNameHash.toString('hex')}:${certId.issuerKeyHash.toString('hex')}:${certId.serialNumber.toString('hex')}@${responderUrl}`;
  }

  /**
   * Returns the outcome for `certId` at `responderUrl`: from the cache when a live
   * entry exists (possibly starting a background refresh), otherwise from `loader`
   * (shared with concurrent callers for the same key). Never rejects unless the loader
   * rejects, which it must not.
   */
  lookup(certId: CertId, responderUrl: string, loader: OcspLoader): Promise<OcspCacheResult> | OcspCacheResult {
    const key = memoKey(certId, responderUrl);
    const now = this.#opts.now();
    const entry = this.#entries.get(key);
    if (entry && now < entry.expiresAt) {
      entry.hits++;
      this.#stats.hits++;
      if (entry.outcome.kind === 'response' && now >= entry.refreshAt && now >= entry.refreshNotBefore) {
        this.#refreshInBackground(entry, loader);
      }
      return { outcome: entry.outcome, source: 'cache', fetchedAt: entry.fetchedAt };
    }
    const pending = this.#inflight.get(key);
    if (pending) {
      this.#stats.coalesced++;
      return pending.promise;
    }
    this.#stats.misses++;
    const record: PendingLoad = { certId, responderUrl, cancelled: false, promise: undefined as unknown as Promise<OcspCacheResult> };
    record.promise = this.#load(key, record, loader).finally(() => {
      if (this.#inflight.get(key) === record) this.#inflight.delete(key);
    });
    this.#inflight.set(key, record);
    return record.promise;
  }

  async #load(key: string, record: PendingLoad, loader: OcspLoader): Promise<OcspCacheResult> {
    const outcome = await loader();
    const fetchedAt = this.#opts.now();
    // A purge while this request was under way: answer its own waiters, store nothing.
    const effective = record.cancelled ? outcome : this.#store(key, record.certId, record.responderUrl, outcome, fetchedAt);
    return { outcome: effective, source: 'network', fetchedAt };
  }

  #refreshInBackground(entry: Entry, loader: OcspLoader): void {
    if (this.#refreshing.has(entry.key) || this.#inflight.has(entry.key)) return;
    const record: PendingLoad = { certId: entry.certId, responderUrl: entry.responderUrl, cancelled: false, promise: undefined as unknown as Promise<OcspCacheResult> };
    this.#refreshing.set(entry.key, record);
    this.#stats.refreshes++;
    const noteFailure = (message: string) => {
      this.#stats.refreshFailures++;
      const current = this.#entries.get(entry.key);
      if (current && !record.cancelled) {
        current.lastRefreshError = message;
        current.refreshNotBefore = this.#opts.now() + this.#opts.failureTtlMs;
      }
    };
    record.promise = loader()
      .then((outcome): OcspCacheResult => {
        const now = this.#opts.now();
        if (outcome.kind === 'failure') {
          // Keep serving the still-valid response; back off before the next attempt.
          noteFailure(`${outcome.errorType}: ${outcome.errorDetail}`);
        } else if (!record.cancelled) {
          this.#store(entry.key, entry.certId, entry.responderUrl, outcome, now);
        }
        return { outcome, source: 'network', fetchedAt: now };
      })
      .catch((err: unknown): OcspCacheResult => {
        noteFailure(`InternalError: ${(err as Error).message}`);
        return { outcome: { kind: 'failure', errorType: 'InternalError', errorDetail: (err as Error).message }, source: 'network', fetchedAt: this.#opts.now() };
      })
      .finally(() => {
        if (this.#refreshing.get(entry.key) === record) this.#refreshing.delete(entry.key);
      });
  }

  /**
   * Stores a new outcome and returns the outcome the entry now holds, which differs
   * from `outcome` in two fail-closed cases:
   * - the entry holds a Revoked answer (any reason but certificateHold, which RFC 5280
   *   5.3.1 allows to be lifted) and the new outcome is not Revoked: revocation is
   *   permanent (RFC 5280 3.3), so a later Good/Unknown (a replayed or lagging
   *   response) or a failure never replaces it; the entry keeps Revoked and takes the
   *   new outcome's lifetime. Only {@link purge} removes it.
   * - the entry holds a live response and the new response has an older thisUpdate (a
   *   replay or a lagging replica): the newer answer is kept.
   */
  #store(key: string, certId: CertId, responderUrl: string, outcome: OcspOutcome, fetchedAt: number): OcspOutcome {
    const existing = this.#entries.get(key);
    let kept = outcome;
    let note: string | undefined;
    if (existing?.outcome.kind === 'response') {
      const old = existing.outcome.response;
      const neu = outcome.kind === 'response' ? outcome.response : undefined;
      if (isPermanentRevocation(old) && neu?.certStatus !== 'revoked') {
        kept = existing.outcome;
        note = neu
          ? `responder answered ${neu.certStatus} (thisUpdate ${neu.thisUpdate.toISOString()}) for a certificate it had reported revoked; keeping Revoked`
          : `responder failed (${(outcome as { errorDetail: string }).errorDetail}); keeping Revoked`;
      } else if (neu && fetchedAt < existing.expiresAt && neu.thisUpdate.getTime() < old.thisUpdate.getTime()) {
        existing.lastRefreshError = `responder sent an older response (thisUpdate ${neu.thisUpdate.toISOString()} < ${old.thisUpdate.toISOString()}); kept the newer one`;
        return existing.outcome;
      }
    }
    const expiresAt = this.#expiry(outcome, fetchedAt);
    if (expiresAt <= fetchedAt) {
      if (kept === outcome) this.#entries.delete(key);
      return kept;
    }
    const life = expiresAt - fetchedAt;
    const entry: Entry = {
      key, certId, responderUrl, outcome: kept, fetchedAt, expiresAt,
      refreshAt: fetchedAt + Math.floor(life * this.#opts.refreshAfterFraction),
      hits: 0, lastRefreshError: note, refreshNotBefore: 0,
    };
    this.#entries.delete(key); // re-insert at the end: Map order is our age order
    this.#entries.set(key, entry);
    if (this.#entries.size > this.#opts.maxEntries) this.#evict();
    return kept;
  }

  #expiry(outcome: OcspOutcome, fetchedAt: number): number {
    if (outcome.kind === 'failure') return fetchedAt + this.#opts.failureTtlMs;
    const r = outcome.response;
    const cap = fetchedAt + this.#opts.maxTtlMs;
    if (!r.nextUpdate) return Math.min(cap, fetchedAt + this.#opts.defaultTtlMs);
    return Math.min(cap, r.nextUpdate.getTime());
  }

  #evict(): void {
    const target = Math.floor(this.#opts.maxEntries * 0.9);
    const now = this.#opts.now();
    // First drop expired entries (but keep Revoked answers, which stay sticky), then the oldest.
    for (const [k, e] of this.#entries) {
      const revoked = e.outcome.kind === 'response' && isPermanentRevocation(e.outcome.response);
      if (e.expiresAt <= now && !revoked) { this.#entries.delete(k); this.#stats.evictions++; }
    }
    for (const k of this.#entries.keys()) {
      if (this.#entries.size <= target) break;
      this.#entries.delete(k);
      this.#stats.evictions++;
    }
  }

  /** Entries currently held (expired ones included until evicted or replaced), oldest first. */
  list(): OcspCacheEntryInfo[] {
    const out: OcspCacheEntryInfo[] = [];
    for (const e of this.#entries.values()) {
      const r = e.outcome.kind === 'response' ? e.outcome.response : undefined;
      out.push({
        key: e.key,
        responderUrl: e.responderUrl,
        serialNumber: e.certId.serialNumber.toString('hex'),
        issuerNameHash: e.certId.issuerNameHash.toString('hex'),
        issuerKeyHash: e.certId.issuerKeyHash.toString('hex'),
        state: r ? r.certStatus : 'failure',
        errorType: e.outcome.kind === 'failure' ? e.outcome.errorType : undefined,
        errorDetail: e.outcome.kind === 'failure' ? e.outcome.errorDetail : undefined,
        thisUpdate: r?.thisUpdate.toISOString(),
        nextUpdate: r?.nextUpdate?.toISOString(),
        fetchedAt: new Date(e.fetchedAt).toISOString(),
        expiresAt: new Date(e.expiresAt).toISOString(),
        hits: e.hits,
        lastRefreshError: e.lastRefreshError,
        refreshing: this.#refreshing.has(e.key),
      });
    }
    return out;
  }

  /**
   * Removes entries matching `filter` (all entries when the filter is empty) and
   * returns how many were removed. Requests under way for matching keys are detached:
   * their answers are not stored, and the next lookup of a purged key asks the
   * responder anew (it never joins a request that started before the purge).
   */
  purge(filter: OcspCachePurgeFilter = {}): number {
    const serial = filter.serialNumber?.replaceAll(':', '').toLowerCase();
    const matches = (certId: CertId, responderUrl: string) =>
      (filter.key === undefined || OcspCache.key(certId, responderUrl) === filter.key)
      && (serial === undefined || certId.serialNumber.toString('hex') === serial)
      && (filter.responderUrl === undefined || responderUrl === filter.responderUrl);
    let n = 0;
    for (const [k, e] of this.#entries) {
      if (!matches(e.certId, e.responderUrl)) continue;
      this.#entries.delete(k);
      n++;
    }
    // Requests under way started before the purge: their answers must not come back.
    for (const pending of [this.#inflight, this.#refreshing]) {
      for (const [k, p] of pending) {
        if (!matches(p.certId, p.responderUrl)) continue;
        p.cancelled = true;
        pending.delete(k);
      }
    }
    return n;
  }

  /** Counters since start (for metrics): hits, misses, coalesced waits, refreshes, refresh failures, evictions. */
  stats(): OcspCacheStats {
    return { ...this.#stats, size: this.#entries.size, inflight: this.#inflight.size };
  }
}

/**
 * {@link OcspCache.key} of a CertId object the caller passes again and again (the
 * revocation checker keeps one per certificate and issuer), built once per object and
 * responder. Checked against copies of the CertId's bytes, so a CertId changed in place
 * still gets its own key.
 */
const keyMemo = new WeakMap<CertId, { responderUrl: string; hashAlgorithm: string; bytes: Buffer; key: string }>();

function memoKey(certId: CertId, responderUrl: string): string {
  const hit = keyMemo.get(certId);
  const { issuerNameHash: n, issuerKeyHash: k, serialNumber: sn } = certId;
  if (hit && hit.responderUrl === responderUrl && hit.hashAlgorithm === certId.hashAlgorithm && hit.bytes.length === n.length + k.length + sn.length
    && hit.bytes.compare(n, 0, n.length, 0, n.length) === 0
    && hit.bytes.compare(k, 0, k.length, n.length, n.length + k.length) === 0
    && hit.bytes.compare(sn, 0, sn.length, n.length + k.length) === 0) {
    return hit.key;
  }
  const key = OcspCache.key(certId, responderUrl);
  keyMemo.set(certId, { responderUrl, hashAlgorithm: certId.hashAlgorithm, bytes: Buffer.concat([n, k, sn]), key });
  return key;
}
