/**
 * Prometheus metrics of the edge (prom-client), registered on a Registry the caller
 * owns. Names follow Prometheus conventions (`_total` counters, `_seconds` durations).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { OcspCache, RevocationStatus } from '../revocation/index.js';

/** The edge metric set (see {@link createEdgeMetrics} for names and labels). */
export interface EdgeMetrics {
  connections: Counter<'distribution' | 'status'>;
  gateDuration: Histogram<'distribution'>;
  handshakeDuration: Histogram<'distribution'>;
  ocspRequests: Counter<'responder' | 'outcome'>;
  functionInvocations: Counter<'function' | 'outcome'>;
  functionComputeUtilization: Histogram<'function'>;
  activeConnections: Gauge<'listener'>;
  /** Points the OCSP cache counters at a cache (the revocation checker's). */
  observeOcspCache(cache: OcspCache): void;
  /** Counts the network lookups of one revocation check by responder and outcome. */
  recordRevocation(status: RevocationStatus): void;
}

/**
 * Registers the edge metrics on `registry`:
 * - `portcullis_edge_connections_total{distribution,status}` — connection attempts by
 *   `connectionStatus` (`Success`, `Failed:<Code>`); distribution `-` when unknown;
 * - `portcullis_edge_gate_duration_seconds{distribution}` — handshake done → decision;
 * - `portcullis_edge_tls_handshake_duration_seconds{distribution}` — TCP accept → handshake done;
 * - `portcullis_ocsp_requests_total{responder,outcome}` — certificate statuses fetched
 *   from a responder for a connection (source `network`; outcome `Good`, `Revoked`,
 *   `Unknown`, `Error`); answers from the cache are not counted here;
 * - `portcullis_ocsp_cache_hits_total`, `portcullis_ocsp_cache_misses_total`,
 *   `portcullis_ocsp_cache_coalesced_total`, `portcullis_ocsp_cache_entries` — the shared
 *   OCSP cache's own counters (revocation/ `OcspCache.stats()`), read at scrape time;
 * - `portcullis_edge_function_invocations_total{function,outcome}` — outcome `allow`,
 *   `deny` or `error`;
 * - `portcullis_edge_function_compute_utilization_percent{function}` — percent of the
 *   function CPU limit used per invocation;
 * - `portcullis_edge_active_connections{listener}` — open TCP connections per listen address.
 * @throws Error (prom-client) when metrics with these names are already registered on `registry`.
 */
export function createEdgeMetrics(registry: Registry): EdgeMetrics {
  const registers = [registry];
  let cache: OcspCache | undefined;
  const fromCache = (pick: (s: ReturnType<OcspCache['stats']>) => number) => function (this: Counter | Gauge) {
    this.reset();
    if (!cache) return;
    const v = pick(cache.stats());
    if (this instanceof Gauge) this.set(v);
    else (this as Counter).inc(v);
  };
  new Counter({ name: 'portcullis_ocsp_cache_hits_total', help: 'OCSP cache lookups answered from the cache', registers, collect: fromCache((s) => s.hits) });
  new Counter({ name: 'portcullis_ocsp_cache_misses_total', help: 'OCSP cache lookups that asked a responder', registers, collect: fromCache((s) => s.misses) });
  new Counter({ name: 'portcullis_ocsp_cache_coalesced_total', help: 'OCSP cache lookups that joined a request under way', registers, collect: fromCache((s) => s.coalesced) });
  new Gauge({ name: 'portcullis_ocsp_cache_entries', help: 'Entries in the OCSP cache', registers, collect: fromCache((s) => s.size) });
  const ocspRequests = new Counter({
    name: 'portcullis_ocsp_requests_total', help: 'Certificate statuses fetched from OCSP responders for connections, by responder and outcome',
    labelNames: ['responder', 'outcome'] as const, registers,
  });
  return {
    connections: new Counter({
      name: 'portcullis_edge_connections_total', help: 'Connection attempts by distribution and connectionStatus',
      labelNames: ['distribution', 'status'] as const, registers,
    }),
    gateDuration: new Histogram({
      name: 'portcullis_edge_gate_duration_seconds', help: 'Handshake done to decision (validation, OCSP, function)',
      labelNames: ['distribution'] as const, registers,
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    }),
    handshakeDuration: new Histogram({
      name: 'portcullis_edge_tls_handshake_duration_seconds', help: 'TCP accept to TLS handshake done',
      labelNames: ['distribution'] as const, registers,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    }),
    ocspRequests,
    functionInvocations: new Counter({
      name: 'portcullis_edge_function_invocations_total', help: 'Connection function invocations by outcome (allow, deny, error)',
      labelNames: ['function', 'outcome'] as const, registers,
    }),
    functionComputeUtilization: new Histogram({
      name: 'portcullis_edge_function_compute_utilization_percent', help: 'Percent of the function CPU limit used per invocation',
      labelNames: ['function'] as const, registers, buckets: [1, 5, 10, 25, 50, 75, 90, 100, 150],
    }),
    activeConnections: new Gauge({
      name: 'portcullis_edge_active_connections', help: 'Open TCP connections by listen address',
      labelNames: ['listener'] as const, registers,
    }),
    observeOcspCache(c: OcspCache): void {
      cache = c;
    },
    recordRevocation(status: RevocationStatus): void {
      for (const s of [status.certificates.leaf, ...status.certificates.intermediates]) {
        if (s.source === 'network') ocspRequests.inc({ responder: s.responder, outcome: s.status });
      }
    },
  };
}
