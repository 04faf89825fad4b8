/**
 * Live views of the admin API for the web console:
 * - `GET /v1/connection-log/stream` — the connection log (SPEC section 7) as
 *   server-sent events (`text/event-stream`, WHATWG HTML "Server-sent events"), filtered
 *   by distribution, status and serial. Authenticated like every route (bearer header:
 *   browsers read it with `fetch()` streaming, never with a token in the URL). Each
 *   subscriber has a bounded send buffer: a client that does not keep up is
 *   disconnected, the data path never waits for it.
 * - `GET /v1/stats` — connections allowed/denied and the OCSP cache hit rate over the
 *   last minute, from the node's Prometheus counters (cluster mode: the primary's
 *   aggregate over workers) sampled every 10 s.
 */
import type { FastifyInstance } from 'fastify';
import { InvalidArgumentError } from '../errors.js';
import { ApiError } from './errors.js';

/** The fields of a connection-log line the stream filters on (the whole line is sent). */
export interface ConnectionLogLineFields {
  connectionStatus: string;
  distributionId: string | null;
  distributionName: string | null;
  clientLeafCertSerialNumber: string | null;
}

/**
 * Where live connection-log lines come from: the edge's tap in single-process mode, or
 * the primary's tap fed by the workers over cluster IPC (workers forward only while
 * someone subscribes). `subscribe` returns the unsubscribe function.
 */
export interface ConnectionLogSource {
  subscribe(listener: (line: Readonly<ConnectionLogLineFields>, json: string) => void): () => void;
}

/** Options of {@link registerLiveRoutes}. */
export interface LiveRouteOptions {
  /** Live connection log; undefined: the stream route answers 501. */
  connectionLog?: ConnectionLogSource;
  /** The node's Prometheus exposition text (the `/metrics` body). */
  metrics: () => Promise<{ body: string }>;
  /** Clock, ms (tests). */
  now?: () => number;
  /** Sampling period of `/v1/stats`, ms (default 10 000; tests use less). */
  statsSampleMs?: number;
}

/** Most concurrent stream subscribers per admin listener. */
export const MAX_STREAM_SUBSCRIBERS = 32;
/** Bytes a subscriber may have queued before it is disconnected as too slow. */
export const STREAM_MAX_BUFFERED_BYTES = 1024 * 1024;
/** Comment line sent this often so proxies and clients see the stream is alive, ms. */
const KEEPALIVE_MS = 15_000;
/** The window `/v1/stats` reports over, ms. */
export const STATS_WINDOW_MS = 60_000;

/** The filter of one stream subscriber (query parameters). */
export interface StreamFilter {
  /** Distribution name or id, exact. */
  distribution?: string;
  /** `allowed` (Success), `denied` (any `Failed:*`) or an exact connectionStatus such as `Failed:ClientCertificateRevoked`. */
  status?: string;
  /** Hex digits of the leaf serial, `:` optional, any case; matches a part of the serial. */
  serial?: string;
}

/**
 * Parses the stream's query.
 * @throws InvalidArgumentError for an unknown parameter, one given twice, or a serial that is not hex.
 */
export function parseStreamFilter(query: Record<string, unknown>): StreamFilter {
  const f: StreamFilter = {};
  const problems: string[] = [];
  for (const [k, v] of Object.entries(query)) {
    if (k !== 'distribution' && k !== 'status' && k !== 'serial') { problems.push(`${k}: unknown query parameter (distribution, status, serial)`); continue; }
    if (typeof v !== 'string') { problems.push(`${k}: give it once`); continue; }
    if (v === '') continue;
    if (k === 'serial') {
      const hex = v.replaceAll(':', '').toLowerCase();
      if (!/^[0-9a-f]+$/.test(hex)) { problems.push('serial: expected hex digits, ":" separators allowed'); continue; }
      f.serial = hex;
    } else if (k === 'status') {
      if (!/^(?:allowed|denied|Success|Failed:[A-Za-z]+)$/.test(v)) { problems.push('status: expected allowed, denied, Success or Failed:<Code>'); continue; }
      f.status = v;
    } else {
      f.distribution = v;
    }
  }
  if (problems.length > 0) throw new InvalidArgumentError(problems.join('; '));
  return f;
}

/** True when `line` passes `filter`. */
export function matchesStreamFilter(line: Readonly<ConnectionLogLineFields>, filter: StreamFilter): boolean {
  if (filter.distribution !== undefined && line.distributionName !== filter.distribution && line.distributionId !== filter.distribution) return false;
  if (filter.status !== undefined) {
    const s = line.connectionStatus;
    if (filter.status === 'allowed' ? s !== 'Success' : filter.status === 'denied' ? !s.startsWith('Failed') : s !== filter.status) return false;
  }
  if (filter.serial !== undefined && !(line.clientLeafCertSerialNumber ?? '').replaceAll(':', '').includes(filter.serial)) return false;
  return true;
}

/** Counter totals read from the exposition text. */
export interface CounterSample {
  /** ms since the epoch. */
  at: number;
  /** Connection attempts by connectionStatus, summed over distributions. */
  byStatus: Record<string, number>;
  ocspCacheHits: number;
  ocspCacheMisses: number;
  /** `portcullis_applied_change_sequence`, when exposed. */
  appliedChangeSequence: number | null;
}

const LABEL = /(\w+)="((?:[^"\\]|\\.)*)"/g;

/**
 * Reads `portcullis_edge_connections_total{status}` and the OCSP cache hit/miss counters
 * from Prometheus text exposition (format 0.0.4). Missing metrics count 0.
 */
export function countersFromExposition(text: string, at: number): CounterSample {
  const sample: CounterSample = { at, byStatus: {}, ocspCacheHits: 0, ocspCacheMisses: 0, appliedChangeSequence: null };
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const value = Number(m[3]);
    if (!Number.isFinite(value)) continue;
    if (m[1] === 'portcullis_ocsp_cache_hits_total') sample.ocspCacheHits += value;
    else if (m[1] === 'portcullis_ocsp_cache_misses_total') sample.ocspCacheMisses += value;
    else if (m[1] === 'portcullis_applied_change_sequence') sample.appliedChangeSequence = value;
    else if (m[1] === 'portcullis_edge_connections_total') {
      let status = '';
      for (const l of (m[2] ?? '').matchAll(LABEL)) if (l[1] === 'status') status = l[2]!.replace(/\\(.)/g, '$1');
      sample.byStatus[status] = (sample.byStatus[status] ?? 0) + value;
    }
  }
  return sample;
}

/** The `/v1/stats` body. */
export interface StatsView {
  /** When the newest sample was taken, ISO 8601. */
  sampledAt: string;
  /** Seconds the figures cover: 60 once the node has run a minute, less before. */
  windowSeconds: number;
  connections: { allowed: number; denied: number; byStatus: Record<string, number> };
  /** Hit rate = hits / (hits + misses) in the window; null without lookups. */
  ocspCache: { hits: number; misses: number; hitRate: number | null };
  /** Counts since the node started. */
  totals: { allowed: number; denied: number; ocspCacheHits: number; ocspCacheMisses: number };
  /** The change-feed sequence the data path has applied (cluster: the lowest among workers); null when not exposed. */
  appliedChangeSequence: number | null;
}

function allowedDenied(byStatus: Record<string, number>): { allowed: number; denied: number } {
  let allowed = 0;
  let denied = 0;
  for (const [s, n] of Object.entries(byStatus)) {
    if (s === 'Success') allowed += n;
    else denied += n;
  }
  return { allowed, denied };
}

/** Amounts by which counters went down between two samples (a worker restarted and its counts were lost from the sum). */
export interface CounterDrops {
  byStatus: Record<string, number>;
  ocspCacheHits: number;
  ocspCacheMisses: number;
}

/** An empty {@link CounterDrops}. */
export function noDrops(): CounterDrops {
  return { byStatus: {}, ocspCacheHits: 0, ocspCacheMisses: 0 };
}

/** The decreases from `prev` to `cur`, added to `into` (returned). */
export function addDrops(into: CounterDrops, prev: CounterSample, cur: CounterSample): CounterDrops {
  for (const [s, n] of Object.entries(prev.byStatus)) {
    const now = cur.byStatus[s] ?? 0;
    if (now < n) into.byStatus[s] = (into.byStatus[s] ?? 0) + (n - now);
  }
  if (cur.ocspCacheHits < prev.ocspCacheHits) into.ocspCacheHits += prev.ocspCacheHits - cur.ocspCacheHits;
  if (cur.ocspCacheMisses < prev.ocspCacheMisses) into.ocspCacheMisses += prev.ocspCacheMisses - cur.ocspCacheMisses;
  return into;
}

/**
 * The figures of `latest` against the newest sample at least {@link STATS_WINDOW_MS}
 * older (or the oldest one kept, while the node is younger than the window).
 *
 * The counters are sums over workers (cluster mode), so a restarted worker makes a sum
 * go down by the counts it had. The window is therefore summed step by step over the
 * consecutive samples, counting only increases: a step where a counter went down counts
 * 0 for it (the counts of the lost worker are not new events — at worst the events of
 * that one step are missed, never old events counted as new). `lost` is what the sums
 * lost before the samples (kept by the caller) so that `totals` stay counts since the
 * node started: latest + everything lost to restarts.
 */
export function statsBetween(samples: readonly CounterSample[], latest: CounterSample, lost: CounterDrops = noDrops()): StatsView {
  let start = -1;
  for (let i = 0; i < samples.length; i++) if (samples[i]!.at <= latest.at - STATS_WINDOW_MS) start = i;
  if (start < 0 && samples.length > 0) start = 0;
  const chain = [...(start >= 0 ? samples.slice(start) : []), latest].filter((x, i, all) => i === 0 || x.at >= all[i - 1]!.at);
  const base = chain[0]!;
  const byStatus: Record<string, number> = {};
  let hits = 0;
  let misses = 0;
  for (let i = 1; i < chain.length; i++) {
    const prev = chain[i - 1]!;
    const cur = chain[i]!;
    for (const [s, n] of Object.entries(cur.byStatus)) {
      const d = n - (prev.byStatus[s] ?? 0);
      if (d > 0) byStatus[s] = (byStatus[s] ?? 0) + d;
    }
    hits += Math.max(0, cur.ocspCacheHits - prev.ocspCacheHits);
    misses += Math.max(0, cur.ocspCacheMisses - prev.ocspCacheMisses);
  }
  // Totals: the current sums plus every count lost to a restart (before and within the samples).
  const allLost = { byStatus: { ...lost.byStatus }, ocspCacheHits: lost.ocspCacheHits, ocspCacheMisses: lost.ocspCacheMisses };
  for (let i = 1; i < chain.length; i++) addDrops(allLost, chain[i - 1]!, chain[i]!);
  const totalByStatus: Record<string, number> = { ...latest.byStatus };
  for (const [s, n] of Object.entries(allLost.byStatus)) totalByStatus[s] = (totalByStatus[s] ?? 0) + n;
  return {
    sampledAt: new Date(latest.at).toISOString(),
    windowSeconds: Math.round((latest.at - base.at) / 1000),
    connections: { ...allowedDenied(byStatus), byStatus },
    ocspCache: { hits, misses, hitRate: hits + misses > 0 ? hits / (hits + misses) : null },
    totals: { ...allowedDenied(totalByStatus), ocspCacheHits: latest.ocspCacheHits + allLost.ocspCacheHits, ocspCacheMisses: latest.ocspCacheMisses + allLost.ocspCacheMisses },
    appliedChangeSequence: latest.appliedChangeSequence,
  };
}

/**
 * Registers `GET /v1/connection-log/stream` and `GET /v1/stats`. Returns a closer that
 * ends every open stream and stops the sampler (the server calls it before closing).
 */
export function registerLiveRoutes(app: FastifyInstance, options: LiveRouteOptions): () => void {
  const now = options.now ?? Date.now;
  const period = options.statsSampleMs ?? 10_000;
  const samples: CounterSample[] = [];
  /** Counts the sums lost to worker restarts before samples[0] (for the totals). */
  const lostBefore = noDrops();
  const take = async (): Promise<CounterSample> => countersFromExposition((await options.metrics()).body, now());
  const keep = (s: CounterSample): void => {
    samples.push(s);
    // Enough history for one full window plus a spare sample.
    while (samples.length > 2 && samples[1]!.at <= s.at - STATS_WINDOW_MS) addDrops(lostBefore, samples.shift()!, samples[0]!);
  };
  let sampling = false;
  const sampler = setInterval(() => {
    if (sampling) return;
    sampling = true;
    take().then(keep, () => {}).finally(() => { sampling = false; });
  }, period);
  sampler.unref();
  // The baseline at start-up (counters are 0 or near it).
  void take().then(keep, () => {});

  app.get('/v1/stats', async () => {
    const latest = await take();
    return statsBetween(samples, latest, lostBefore);
  });

  const streams = new Set<() => void>();
  app.get('/v1/connection-log/stream', async (req, reply) => {
    const filter = parseStreamFilter(req.query as Record<string, unknown>);
    if (!options.connectionLog) throw new ApiError('NotImplemented', 'the connection-log stream is not available on this server');
    if (streams.size >= MAX_STREAM_SUBSCRIBERS) {
      throw new ApiError('TooManyRequests', `too many open connection-log streams: at most ${MAX_STREAM_SUBSCRIBERS} may be open at once on this server; close another console tab or retry later`);
    }
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-store',
      'x-content-type-options': 'nosniff',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    });
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      unsubscribe();
      clearInterval(keepalive);
      streams.delete(close);
      if (!res.destroyed) res.end();
    };
    const send = (chunk: string): void => {
      if (closed) return;
      // A client that does not read: drop it rather than buffer without bound.
      if (res.writableLength > STREAM_MAX_BUFFERED_BYTES) { closed = true; unsubscribe(); clearInterval(keepalive); streams.delete(close); res.destroy(); return; }
      res.write(chunk);
    };
    const unsubscribe = options.connectionLog.subscribe((line, json) => {
      if (matchesStreamFilter(line, filter)) send(`event: connection\ndata: ${json}\n\n`);
    });
    const keepalive = setInterval(() => send(': keepalive\n\n'), KEEPALIVE_MS);
    keepalive.unref();
    streams.add(close);
    req.raw.on('close', close);
    res.on('error', close);
    send(`retry: 3000\nevent: ready\ndata: ${JSON.stringify({ filter })}\n\n`);
  });

  return () => {
    clearInterval(sampler);
    for (const c of [...streams]) c();
  };
}
