import { performance } from 'node:perf_hooks';
import { OcspTransportError, OcspVerificationError } from '../errors.js';
import { formatDnRfc4514, formatIsoSeconds, formatSerialNumber, type ParsedCertificate } from '../pki/index.js';
import {
  OcspCache, OcspHttpClient, buildCertId, buildOcspRequest, parseAndVerifyOcspResponse,
  type CertId, type OcspCacheResult, type OcspFetcher, type OcspOutcome,
} from './ocsp/index.js';

/** Per-certificate status of SPEC section 3 (CloudFront `revocationStatus.certificates.*.status`). */
export type RevocationStatusValue = 'Good' | 'Revoked' | 'Unknown' | 'Error';

/**
 * The revocation result of one checked certificate, as a connection function sees it
 * (CloudFront field names) plus Portcullis extensions (marked).
 */
export interface CertificateRevocationStatus {
  status: RevocationStatusValue;
  /** For Revoked: revocation time, ISO 8601 UTC without milliseconds. */
  revocationTime?: string;
  /** For Revoked: CRLReason name (RFC 5280 5.3.1) when the responder gave one. */
  revocationReason?: string;
  /** For Error: `InternalError` or `OCSP response verification failed: {Type}`. */
  errorType?: string;
  /** Extension: a human sentence explaining the error. */
  errorDetail?: string;
  /** Extension: serial number, lowercase colon-separated hex as encoded. */
  serialNumber: string;
  /** Extension: the responder asked (first OCSP URL of the certificate's AIA). */
  responder: string;
  /** Extension: `cache` when the answer came from the shared cache, `network` when fetched for this check. */
  source: 'cache' | 'network';
  /** Extension: thisUpdate / nextUpdate of the response used, ISO 8601. */
  thisUpdate?: string;
  nextUpdate?: string;
  /** Extension: milliseconds (µs precision) this certificate's status took within the check. */
  durationMs: number;
}

/** `chainValidity` (SPEC 3): Invalid if any Revoked; else Unknown if any Unknown/Error; else Valid. */
export type ChainValidity = 'Valid' | 'Invalid' | 'Unknown';

/** The `revocationStatus` object of the connection (SPEC 3/4). */
export interface RevocationStatus {
  chainValidity: ChainValidity;
  certificates: {
    leaf: CertificateRevocationStatus;
    /** Intermediates below the trust anchor, from the leaf's issuer upwards. */
    intermediates: CertificateRevocationStatus[];
  };
}

/** Result of {@link RevocationChecker.check}. */
export type RevocationCheckResult =
  | { ok: true; revocationStatus: RevocationStatus; durationMs: number }
  | {
      ok: false;
      code: 'ClientCertOcspEndpointMissing';
      /** Human sentence naming the certificate without an OCSP URL. */
      reason: string;
      /** Position in the path (0 = leaf). */
      certificateIndex: number;
    };

/** OCSP settings of a checker (SPEC 3; config keys under `ocsp:`). Durations in ms. */
export interface RevocationCheckerOptions {
  /** Total budget for the whole chain (default 2000, `timeoutMs`). */
  timeoutMs: number;
  /**
   * How long one responder request may run (default 10 000, `fetchTimeoutMs`; never
   * less than `timeoutMs`). A request still running when a handshake's budget is spent
   * keeps going up to this limit and fills the cache for later connections.
   */
  fetchTimeoutMs: number;
  /** Accepted clock difference for thisUpdate/nextUpdate (default 300 000, `clockSkewSeconds`). */
  clockSkewMs: number;
  /**
   * Oldest accepted thisUpdate of a response without nextUpdate, in ms (default
   * 86 400 000 = 24 h, `maxAgeWithoutNextUpdateSeconds`): stops replays of old responses.
   */
  maxAgeWithoutNextUpdateMs: number;
  /** Response body cap in bytes (default 65536, `maxResponseBytes`). */
  maxResponseBytes: number;
  /** Send a nonce (RFC 8954) and verify it when echoed (default false, `nonce`). */
  nonce: boolean;
  /** Shared cache; default: a new cache with default options. */
  cache?: OcspCache;
  /** Transport; default: an {@link OcspHttpClient}. */
  fetch?: OcspFetcher;
  /** Clock (ms since epoch) used for response verification. */
  now?: () => number;
}

/** Defaults of {@link RevocationCheckerOptions} (SPEC 3). */
export const DEFAULT_REVOCATION_OPTIONS = Object.freeze({
  timeoutMs: 2000,
  fetchTimeoutMs: 10_000,
  maxAgeWithoutNextUpdateMs: 86_400_000,
  clockSkewMs: 300_000,
  maxResponseBytes: 65_536,
  nonce: false,
});

/**
 * Checks the revocation status of a validated path over OCSP (SPEC section 3).
 *
 * Checked: the leaf and every intermediate below the trust anchor (the anchor never),
 * each against the first OCSP URL of its own AIA, concurrently, through the shared
 * {@link OcspCache}. The whole check waits at most `timeoutMs`; a certificate without
 * an answer by then is `Error`/`InternalError` (the fetch itself continues in the
 * background with its own timeout and fills the cache for later connections).
 */
export class RevocationChecker {
  readonly cache: OcspCache;
  readonly #opts: Required<Omit<RevocationCheckerOptions, 'cache' | 'fetch' | 'now'>>;
  readonly #fetch: OcspFetcher;
  readonly #now: () => number;
  readonly #client: OcspHttpClient | undefined;

  constructor(options: Partial<RevocationCheckerOptions> = {}) {
    this.#opts = {
      timeoutMs: options.timeoutMs ?? DEFAULT_REVOCATION_OPTIONS.timeoutMs,
      fetchTimeoutMs: Math.max(options.fetchTimeoutMs ?? DEFAULT_REVOCATION_OPTIONS.fetchTimeoutMs, options.timeoutMs ?? DEFAULT_REVOCATION_OPTIONS.timeoutMs),
      clockSkewMs: options.clockSkewMs ?? DEFAULT_REVOCATION_OPTIONS.clockSkewMs,
      maxAgeWithoutNextUpdateMs: options.maxAgeWithoutNextUpdateMs ?? DEFAULT_REVOCATION_OPTIONS.maxAgeWithoutNextUpdateMs,
      maxResponseBytes: options.maxResponseBytes ?? DEFAULT_REVOCATION_OPTIONS.maxResponseBytes,
      nonce: options.nonce ?? DEFAULT_REVOCATION_OPTIONS.nonce,
    };
    this.#now = options.now ?? Date.now;
    this.cache = options.cache ?? new OcspCache({ now: this.#now });
    if (options.fetch) {
      this.#fetch = options.fetch;
    } else {
      this.#client = new OcspHttpClient();
      this.#fetch = this.#client.fetch;
    }
  }

  /**
   * Checks `path` (leaf → … → trust anchor, as returned by path validation).
   * Returns `ClientCertOcspEndpointMissing` without contacting any responder when a
   * checked certificate has no OCSP URL. Never rejects.
   */
  async check(path: readonly ParsedCertificate[]): Promise<RevocationCheckResult> {
    const started = performance.now();
    const checked = path.length > 1 ? path.length - 1 : 0;
    if (checked === 0) throw new RangeError('path must contain at least the leaf and its trust anchor');
    for (let i = 0; i < checked; i++) {
      const cert = path[i] as ParsedCertificate;
      if (cert.ocspUrls.length === 0) {
        return {
          ok: false, code: 'ClientCertOcspEndpointMissing', certificateIndex: i,
          reason: `${i === 0 ? 'leaf' : `intermediate #${i}`} certificate "${formatDnRfc4514(cert.subjectDer)}" (serial ${formatSerialNumber(cert.serialNumberBytes)}) has no OCSP URL in its Authority Information Access extension`,
        };
      }
    }
    // Look every certificate up synchronously first: on a warm cache no timer, no
    // promise and no allocation beyond the result objects is needed.
    const lookups: (OcspCacheResult | Promise<OcspCacheResult>)[] = new Array(checked);
    let anyPending = false;
    for (let i = 0; i < checked; i++) {
      const cert = path[i] as ParsedCertificate;
      const issuer = path[i + 1] as ParsedCertificate;
      const responder = cert.ocspUrls[0] as string;
      const r = this.cache.lookup(certIdOf(cert, issuer), responder, () => this.#fetchAndVerify(cert, issuer, responder));
      if (r instanceof Promise) anyPending = true;
      lookups[i] = r;
    }
    let results: CertificateRevocationStatus[];
    if (!anyPending) {
      const durationMs = performance.now() - started;
      results = lookups.map((r, i) => toCertificateStatus(r as OcspCacheResult, this.#base(path[i] as ParsedCertificate, durationMs)));
    } else {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), this.#opts.timeoutMs);
        timer.unref?.();
      });
      try {
        results = await Promise.all(lookups.map(async (r, i) => {
          const result = r instanceof Promise ? await Promise.race([r, deadline]) : r;
          const base = this.#base(path[i] as ParsedCertificate, performance.now() - started);
          if (result === 'timeout') {
            return {
              status: 'Error', errorType: 'InternalError', source: 'network', ...base,
              errorDetail: `no answer from responder ${base.responder} within the ${this.#opts.timeoutMs} ms OCSP budget for this chain`,
            } satisfies CertificateRevocationStatus;
          }
          return toCertificateStatus(result, base);
        }));
      } finally {
        clearTimeout(timer);
      }
    }
    const [leaf, ...intermediates] = results as [CertificateRevocationStatus, ...CertificateRevocationStatus[]];
    return {
      ok: true,
      revocationStatus: { chainValidity: chainValidity(results), certificates: { leaf, intermediates } },
      durationMs: roundMs(performance.now() - started),
    };
  }

  #base(cert: ParsedCertificate, durationMs: number): { serialNumber: string; responder: string; durationMs: number } {
    return { serialNumber: serialOf(cert), responder: cert.ocspUrls[0] as string, durationMs: roundMs(durationMs) };
  }

  /** One network exchange plus verification; failures become outcomes (never rejects). */
  async #fetchAndVerify(cert: ParsedCertificate, issuer: ParsedCertificate, responder: string): Promise<OcspOutcome> {
    const request = buildOcspRequest({ cert, issuer, nonce: this.#opts.nonce });
    const signal = AbortSignal.timeout(this.#opts.fetchTimeoutMs);
    try {
      const { body } = await this.#fetch({ responderUrl: responder, requestDer: request.der, signal, maxResponseBytes: this.#opts.maxResponseBytes });
      const response = parseAndVerifyOcspResponse(body, {
        certId: request.certId, issuer, nonce: request.nonce,
        now: new Date(this.#now()), clockSkewMs: this.#opts.clockSkewMs,
        maxAgeWithoutNextUpdateMs: this.#opts.maxAgeWithoutNextUpdateMs,
      });
      return { kind: 'response', response };
    } catch (err) {
      if (err instanceof OcspVerificationError) {
        return { kind: 'failure', errorType: `OCSP response verification failed: ${err.type}`, errorDetail: err.message };
      }
      if (err instanceof OcspTransportError) return { kind: 'failure', errorType: 'InternalError', errorDetail: err.message };
      return { kind: 'failure', errorType: 'InternalError', errorDetail: `unexpected error while checking ${responder}: ${(err as Error).message}` };
    }
  }

  /** Releases pooled responder connections. */
  async close(): Promise<void> {
    await this.#client?.close();
  }
}

/**
 * Per-connection work that depends only on objects that live across connections (the
 * parse cache's certificates, the OCSP cache's parsed responses), done once per object:
 * the CertId of a certificate under its issuer (the same CertId object each time, so
 * the OCSP cache's key for it is built once too), the formatted serial number, and the
 * ISO text of a response's times. Weakly held: they go with their objects.
 */
const certIds = new WeakMap<ParsedCertificate, { issuer: ParsedCertificate; certId: CertId }>();
const serials = new WeakMap<ParsedCertificate, string>();
const isoTexts = new WeakMap<Date, { t: number; s: string }>();

function certIdOf(cert: ParsedCertificate, issuer: ParsedCertificate): CertId {
  const hit = certIds.get(cert);
  if (hit && hit.issuer === issuer) return hit.certId;
  const certId = buildCertId(cert, issuer);
  certIds.set(cert, { issuer, certId });
  return certId;
}

function serialOf(cert: ParsedCertificate): string {
  let s = serials.get(cert);
  if (s === undefined) serials.set(cert, s = formatSerialNumber(cert.serialNumberBytes));
  return s;
}

function isoOf(d: Date): string {
  const t = d.getTime();
  const hit = isoTexts.get(d);
  // A Date is mutable: the memo holds only while its time is the one formatted.
  if (hit && hit.t === t) return hit.s;
  const s = formatIsoSeconds(d);
  isoTexts.set(d, { t, s });
  return s;
}

function toCertificateStatus(
  result: OcspCacheResult,
  base: { serialNumber: string; responder: string; durationMs: number },
): CertificateRevocationStatus {
  const { outcome, source } = result;
  if (outcome.kind === 'failure') {
    return { status: 'Error', errorType: outcome.errorType, errorDetail: outcome.errorDetail, source, ...base };
  }
  const r = outcome.response;
  const times = { thisUpdate: isoOf(r.thisUpdate), ...(r.nextUpdate ? { nextUpdate: isoOf(r.nextUpdate) } : {}) };
  switch (r.certStatus) {
    case 'good':
      return { status: 'Good', source, ...times, ...base };
    case 'unknown':
      return { status: 'Unknown', source, ...times, ...base };
    case 'revoked':
      return {
        status: 'Revoked',
        ...(r.revocationTime ? { revocationTime: isoOf(r.revocationTime) } : {}),
        ...(r.revocationReason ? { revocationReason: r.revocationReason } : {}),
        source, ...times, ...base,
      };
  }
}

/** Milliseconds rounded to the microsecond (for logs and JSON). */
function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** chainValidity of SPEC section 3 over per-certificate statuses. */
export function chainValidity(statuses: readonly { status: RevocationStatusValue }[]): ChainValidity {
  if (statuses.some((s) => s.status === 'Revoked')) return 'Invalid';
  if (statuses.some((s) => s.status === 'Unknown' || s.status === 'Error')) return 'Unknown';
  return 'Valid';
}

/**
 * The decision when no connection function is associated (SPEC 3): allow only when
 * every checked certificate is Good; else `ClientCertRevoked` when any is Revoked,
 * else `ClientCertRevocationUnknown`.
 */
export function revocationDecision(status: RevocationStatus):
  | { allow: true }
  | { allow: false; code: 'ClientCertRevoked' | 'ClientCertRevocationUnknown' } {
  const all = [status.certificates.leaf, ...status.certificates.intermediates];
  if (all.every((c) => c.status === 'Good')) return { allow: true };
  return { allow: false, code: all.some((c) => c.status === 'Revoked') ? 'ClientCertRevoked' : 'ClientCertRevocationUnknown' };
}
