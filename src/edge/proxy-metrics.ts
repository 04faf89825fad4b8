/**
 * Prometheus counters of the origin proxy (SPEC section 8 metrics).
 */
import { Counter, type Registry } from 'prom-client';

/** What went wrong talking to the origin (the `kind` label of `portcullis_origin_errors_total`). */
export type OriginErrorKind =
  /** TCP connect refused or network unreachable → 502. */
  | 'connect'
  /** The origin's host name did not resolve → 502. */
  | 'dns'
  /** TLS handshake with an https origin failed (certificate not trusted, protocol error) → 502. */
  | 'tls'
  /** The origin closed or reset the connection before the response headers → 502. */
  | 'reset'
  /** TCP (+TLS) connect took longer than `origin.connectTimeoutMs` → 504. */
  | 'connect_timeout'
  /** No response headers within `origin.responseTimeoutMs` → 504. */
  | 'response_timeout'
  /** The response body failed after the headers were sent (reset, or silent for `responseTimeoutMs`): the client stream is aborted. */
  | 'body'
  /** A WebSocket upgrade the origin answered with something unparsable. */
  | 'protocol'
  /** Anything else (logged with its code). */
  | 'other';

/** The two counters; label `distribution` is the distribution id. */
export interface OriginMetrics {
  /** `portcullis_origin_requests_total{distribution,status_class}`: requests proxied, by the class (`1xx`…`5xx`) of the status the client received (502/504 made by the gateway count as `5xx`). */
  requests: Counter<'distribution' | 'status_class'>;
  /** `portcullis_origin_errors_total{distribution,kind}`: origin failures by {@link OriginErrorKind}. */
  errors: Counter<'distribution' | 'kind'>;
}

const REQUESTS = 'portcullis_origin_requests_total';
const ERRORS = 'portcullis_origin_errors_total';

/**
 * Registers the proxy's counters in `registry` and returns them; calling it again with
 * the same registry returns the already-registered counters (so several proxies can
 * share one registry). Throws prom-client's error if another metric of the same name but
 * a different type is registered there.
 */
export function registerOriginMetrics(registry: Registry): OriginMetrics {
  const existingRequests = registry.getSingleMetric(REQUESTS) as Counter<'distribution' | 'status_class'> | undefined;
  const existingErrors = registry.getSingleMetric(ERRORS) as Counter<'distribution' | 'kind'> | undefined;
  const requests = existingRequests ?? new Counter({
    name: REQUESTS,
    help: 'Requests proxied to origins, by distribution id and the status class the client received.',
    labelNames: ['distribution', 'status_class'] as const,
    registers: [registry],
  });
  const errors = existingErrors ?? new Counter({
    name: ERRORS,
    help: 'Origin failures (connect, dns, tls, reset, timeouts, body, protocol, other) by distribution id.',
    labelNames: ['distribution', 'kind'] as const,
    registers: [registry],
  });
  return { requests, errors };
}

/** `'2xx'` for 204 and so on. */
export function statusClass(status: number): string {
  return `${Math.floor(status / 100)}xx`;
}
