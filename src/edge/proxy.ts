/**
 * The data path after an allow decision (SPEC section 6): {@link OriginProxy} serves
 * HTTP/1.1 or HTTP/2 (by the ALPN the handshake chose) on an admitted TLS socket and
 * proxies every request to the distribution's origin with undici.
 *
 * How the socket is served: the TLS handshake is already done, so the proxy uses
 * servers that never listen and hands them the socket with `emit('connection', socket)`:
 * - HTTP/1.1 (ALPN `http/1.1` or none): a `node:http` Server per distinct
 *   (`maxHeaderBytes`, `idleTimeoutMs`) pair. Keep-alive and pipelining as Node does;
 *   a request head over `maxHeaderBytes` gets Node's `431` and the connection closes.
 *   The server gets a synthetic `'listening'` event so that Node's connection tracking
 *   (headersTimeout/requestTimeout checks, closeIdleConnections) runs, as for a
 *   listening server.
 * - HTTP/2 (ALPN `h2`): a plain `http2.createServer()` per `maxHeaderBytes` (its
 *   `SETTINGS_MAX_HEADER_LIST_SIZE`), given the TLS socket the same way. Node's http2
 *   session works on any stream socket (it consumes the TLSSocket's handle, cleartext
 *   above TLS), so no second TLS layer is involved; checked with `curl --http2`. A
 *   header list over the limit gets `431` (checked by this code: nghttp2 applies the
 *   setting only after the client acknowledged it, i.e. not to a client's first
 *   requests; afterwards nghttp2 itself resets such a stream with `ENHANCE_YOUR_CALM`).
 *   The session closes (GOAWAY) after `idleTimeoutMs` without activity.
 *
 * Origin side: one undici `Pool` per (origin scheme+host+port, connect timeout, TLS
 * settings), reused by every connection of every distribution with that origin;
 * `connectTimeoutMs` is the pool's connect timeout, `responseTimeoutMs` both the
 * per-request headers timeout and the idle-between-body-chunks timeout. Bodies stream
 * both ways with backpressure (nothing is buffered whole).
 *
 * Headers: see proxy-headers.ts. The origin gets the client's `Host` (`:authority` for
 * HTTP/2), `X-Forwarded-For` (client IP appended), `X-Forwarded-Proto: https`,
 * `X-Forwarded-Host`, an RFC 7239 `Forwarded` element appended to the client's list
 * (`for=…;host=…;proto=https`: origins must trust only the last element, as for
 * `X-Forwarded-For`) and `Via` (RFC 9110 7.6.3); and the gate's certificate headers
 * after every client copy of them was removed.
 *
 * Failures: before the response headers → `502` (refused, reset, DNS, TLS) or `504`
 * (connect or response-headers timeout) with a short text body; after them → the
 * client's response is aborted (HTTP/1.1: connection destroyed; HTTP/2: `RST_STREAM`
 * `INTERNAL_ERROR`). Each is logged at `warn` with `connectionId` and counted in
 * `portcullis_origin_errors_total` (proxy-metrics.ts).
 *
 * WebSocket (RFC 6455) over HTTP/1.1: the upgrade request goes over a fresh raw
 * `net`/`tls` connection to the origin with the cleaned headers plus
 * `Connection: Upgrade`/`Upgrade`; after the origin's `101` the two sockets are piped
 * both ways. A non-101 answer is passed back with `Connection: close` and the client
 * side is never piped to the origin (the rest of that connection cannot bypass the
 * header rules). WebSocket over HTTP/2 (RFC 8441 extended CONNECT) is not supported:
 * HTTP/2 `CONNECT` gets `501`; other HTTP/1.1 `Upgrade` protocols get `501` (a TLS
 * client has no reason to ask for `h2c`); HTTP/1.1 `CONNECT` gets `405`.
 *
 * Not forwarded: request and response trailers; `1xx` informational responses other
 * than the WebSocket `101`.
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, STATUS_CODES, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import {
  constants as h2constants, createServer as createHttp2Server,
  type Http2Server, type IncomingHttpHeaders as H2IncomingHeaders, type ServerHttp2Session, type ServerHttp2Stream,
} from 'node:http2';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { finished, PassThrough, type Duplex, type Readable, type Writable } from 'node:stream';
import { connect as tlsConnect, rootCertificates } from 'node:tls';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { Pool } from 'undici';
import { InvalidArgumentError, PortcullisError } from '../errors.js';
import type { DistributionLimits, DistributionOrigin } from '../resources/types.js';
import { classifyOriginFailure, errorCode, type OriginFailure } from './proxy-errors.js';
import {
  buildOriginRequestHeaders, cleanResponseHeaders, flattenPairs, isWebSocketUpgrade, joinOriginPath, pairsFromRaw,
  type HeaderPairs,
} from './proxy-headers.js';
import { registerOriginMetrics, statusClass, type OriginErrorKind, type OriginMetrics } from './proxy-metrics.js';
import type { AdmittedConnection, ConnectionHandler } from './types.js';

export { registerOriginMetrics, statusClass, type OriginErrorKind, type OriginMetrics } from './proxy-metrics.js';
export { classifyOriginFailure, type OriginFailure } from './proxy-errors.js';
export {
  buildOriginRequestHeaders, cleanResponseHeaders, forwardedElement, isCertificateHeaderName, isWebSocketUpgrade,
  joinOriginPath, HOP_BY_HOP_HEADERS, VIA_PSEUDONYM, type HeaderPairs, type OriginHeaderContext, type ResponseHeaders,
} from './proxy-headers.js';

/** Options of {@link OriginProxy}. */
export interface OriginProxyOptions {
  /** Origin failures at `warn`, client-side aborts at `debug`. */
  logger: Logger;
  /** When given, the proxy's counters are registered there ({@link registerOriginMetrics}). */
  metrics?: Registry;
  /** How long {@link OriginProxy.close} lets in-flight requests finish before destroying what is left, ms. Default 10000. */
  drainTimeoutMs?: number;
}

/** Largest origin response head read for a WebSocket upgrade, bytes. */
const MAX_UPGRADE_RESPONSE_HEAD = 64 * 1024;

const BODY_502 = 'Bad Gateway: the origin could not be reached\n';
const BODY_504 = 'Gateway Timeout: the origin did not answer in time\n';

/** State of one admitted connection. */
interface ConnState {
  conn: AdmittedConnection;
  protocol: 'http/1.1' | 'h2';
  /** Requests (and WebSocket tunnels) not yet finished. */
  inflight: number;
  session?: ServerHttp2Session;
  /** The origin socket of a WebSocket tunnel on this connection. */
  tunnel?: Socket;
}

/** One request, protocol-neutral. */
interface ProxiedRequest {
  method: string;
  /** Client's request target (origin form, absolute form or `*`). */
  target: string;
  headers: HeaderPairs;
  clientHost: string | undefined;
  httpVersion: string;
  /** Request body stream, or undefined when the request has none. */
  body: Readable | undefined;
}

/** The client side of one request, protocol-neutral. */
interface ClientReply {
  sendHead(status: number, headers: Record<string, string | string[]>): void;
  sendError(status: number, body: string): void;
  body: Writable;
}

interface PoolEntry {
  pool: Pool;
  url: URL;
}

/**
 * Serves admitted connections and proxies their requests to the origin (SPEC section 6;
 * see the module comment for protocols, headers, failures and WebSockets).
 * `handle()` never throws; `close()` drains (bounded by `drainTimeoutMs`).
 */
export class OriginProxy implements ConnectionHandler {
  private readonly logger: Logger;
  private readonly metrics: OriginMetrics | undefined;
  private readonly drainTimeoutMs: number;
  private readonly states = new WeakMap<object, ConnState>();
  private readonly connections = new Set<ConnState>();
  private readonly httpServers = new Map<string, HttpServer>();
  private readonly h2Servers = new Map<number, Http2Server>();
  private readonly pools = new Map<string, PoolEntry>();
  /**
   * The pool of each origin object seen (a distribution document's `origin`, replaced
   * with the document): the URL parse and key of {@link poolForKey} once per document,
   * not per request.
   */
  private poolByOrigin = new WeakMap<DistributionOrigin, PoolEntry>();
  /** The connection being handed to an HTTP/2 server (its `'session'` event fires synchronously). */
  private pendingH2: ConnState | undefined;
  private closing = false;
  private closePromise: Promise<void> | undefined;
  private onDrained: (() => void) | undefined;

  constructor(options: OriginProxyOptions) {
    this.logger = options.logger;
    this.metrics = options.metrics ? registerOriginMetrics(options.metrics) : undefined;
    this.drainTimeoutMs = options.drainTimeoutMs ?? 10_000;
  }

  /**
   * Takes ownership of an admitted socket: HTTP/2 when `socket.alpnProtocol` is `'h2'`,
   * HTTP/1.1 otherwise. After {@link close} the socket is destroyed at once. Never throws.
   */
  handle(conn: AdmittedConnection): void {
    const { socket } = conn;
    if (this.closing) {
      socket.destroy();
      return;
    }
    const state: ConnState = { conn, protocol: socket.alpnProtocol === 'h2' ? 'h2' : 'http/1.1', inflight: 0 };
    try {
      this.connections.add(state);
      this.states.set(socket, state);
      socket.on('error', (err) => this.logger.debug({ connectionId: conn.connectionId, err: err.message }, 'client socket error'));
      socket.once('close', () => {
        this.connections.delete(state);
        state.tunnel?.destroy();
        if (this.closing && this.connections.size === 0) this.onDrained?.();
      });
      if (state.protocol === 'h2') this.serveH2(state);
      else this.serveHttp1(state);
    } catch (err) {
      this.logger.error({ connectionId: conn.connectionId, err }, 'proxy could not take the connection');
      socket.destroy();
    }
  }

  /**
   * Stops taking connections and requests, lets in-flight requests finish for up to
   * `drainTimeoutMs` (HTTP/2: GOAWAY; HTTP/1.1: idle connections closed, busy ones
   * closed after their response with `Connection: close`), destroys what is left
   * (WebSocket tunnels included) and closes the origin pools. Idempotent; never rejects.
   */
  close(): Promise<void> {
    this.closePromise ??= this.drain();
    return this.closePromise;
  }

  private async drain(): Promise<void> {
    this.closing = true;
    for (const state of this.connections) {
      if (state.protocol === 'h2') state.session?.close();
      else if (state.inflight === 0) state.conn.socket.end();
    }
    if (this.connections.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.drainTimeoutMs);
        timer.unref();
        this.onDrained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    for (const state of this.connections) {
      state.tunnel?.destroy();
      state.conn.socket.destroy();
    }
    for (const server of this.httpServers.values()) server.close(() => undefined);
    for (const server of this.h2Servers.values()) server.close(() => undefined);
    await Promise.all([...this.pools.values()].map((p) => p.pool.destroy().catch(() => undefined)));
    this.pools.clear();
    this.poolByOrigin = new WeakMap();
  }

  // ---------------------------------------------------------------------------------
  // HTTP/1.1

  private httpServerFor(limits: DistributionLimits): HttpServer {
    const key = `${limits.maxHeaderBytes}/${limits.idleTimeoutMs}`;
    let server = this.httpServers.get(key);
    if (server) return server;
    server = createHttpServer({ maxHeaderSize: limits.maxHeaderBytes });
    server.timeout = limits.idleTimeoutMs;
    server.keepAliveTimeout = limits.idleTimeoutMs;
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const state = this.states.get(req.socket);
      if (!state) {
        req.socket.destroy();
        return;
      }
      this.onHttp1Request(state, req, res);
    });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const state = this.states.get(socket);
      if (!state) {
        socket.destroy();
        return;
      }
      this.onUpgrade(state, req, socket, head);
    });
    server.on('connect', (_req: IncomingMessage, socket: Duplex) => writeRawResponse(socket, 405, 'CONNECT is not supported\n'));
    // Node starts its connection tracking (headersTimeout/requestTimeout checks,
    // closeIdleConnections) on 'listening'; this server never listens.
    server.emit('listening');
    this.httpServers.set(key, server);
    return server;
  }

  private serveHttp1(state: ConnState): void {
    const { socket } = state.conn;
    this.httpServerFor(state.conn.limits).emit('connection', socket);
    socket.resume();
  }

  private onHttp1Request(state: ConnState, req: IncomingMessage, res: ServerResponse): void {
    state.inflight++;
    res.once('close', () => {
      state.inflight--;
      if (this.closing && state.inflight === 0 && !state.tunnel) state.conn.socket.end();
    });
    // While a request is in flight the origin timeouts bound it: the socket idle timer
    // only ends a client that stalls while still sending its request.
    res.on('timeout', () => {
      if (!req.complete) req.socket.destroy();
    });
    const hasBody = req.headers['transfer-encoding'] !== undefined
      || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
    const reply: ClientReply = {
      sendHead: (status, headers) => {
        if (this.closing) headers.connection = 'close';
        res.writeHead(status, headers);
      },
      sendError: (status, body) => {
        res.writeHead(status, {
          'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(body)),
          ...(this.closing ? { connection: 'close' } : {}),
        });
        res.end(body);
      },
      body: res,
    };
    void this.forward(state, {
      method: req.method ?? 'GET',
      target: req.url ?? '/',
      headers: pairsFromRaw(req.rawHeaders),
      clientHost: req.headers.host,
      httpVersion: req.httpVersion,
      body: hasBody ? req : undefined,
    }, reply, res);
  }

  // ---------------------------------------------------------------------------------
  // HTTP/2

  private h2ServerFor(limits: DistributionLimits): Http2Server {
    let server = this.h2Servers.get(limits.maxHeaderBytes);
    if (server) return server;
    server = createHttp2Server({ settings: { maxHeaderListSize: limits.maxHeaderBytes } });
    server.on('session', (session: ServerHttp2Session) => {
      const state = this.pendingH2;
      if (!state) {
        session.destroy();
        return;
      }
      state.session = session;
      session.on('stream', (stream: ServerHttp2Stream, headers: H2IncomingHeaders) => this.onH2Stream(state, stream, headers));
      session.on('error', (err) => this.logger.debug({ connectionId: state.conn.connectionId, err: err.message }, 'http2 session error'));
      session.setTimeout(state.conn.limits.idleTimeoutMs, () => session.close());
    });
    this.h2Servers.set(limits.maxHeaderBytes, server);
    return server;
  }

  private serveH2(state: ConnState): void {
    const server = this.h2ServerFor(state.conn.limits);
    this.pendingH2 = state;
    try {
      server.emit('connection', state.conn.socket);
    } finally {
      this.pendingH2 = undefined;
    }
    if (!state.session) throw new PortcullisError('Internal', 'the http2 server created no session for the socket');
  }

  private onH2Stream(state: ConnState, stream: ServerHttp2Stream, headers: H2IncomingHeaders): void {
    stream.on('error', (err) => this.logger.debug({ connectionId: state.conn.connectionId, err: err.message }, 'http2 stream error'));
    const method = headers[':method'] ?? 'GET';
    const path = headers[':path'];
    if (method === 'CONNECT' || path === undefined) {
      stream.respond({ ':status': 501, 'content-type': 'text/plain; charset=utf-8' });
      stream.end('CONNECT (and RFC 8441 extended CONNECT) is not supported\n');
      return;
    }
    // nghttp2 enforces SETTINGS_MAX_HEADER_LIST_SIZE only once the client has
    // acknowledged our SETTINGS, and a client sends its first request before that: the
    // limit is checked here too, with the RFC 9113 6.5.2 size (name + value + 32 each).
    if (headerListSize(headers) > state.conn.limits.maxHeaderBytes) {
      stream.respond({ ':status': 431, 'content-type': 'text/plain; charset=utf-8' });
      stream.end('Request Header Fields Too Large\n');
      return;
    }
    state.inflight++;
    stream.once('close', () => {
      state.inflight--;
    });
    const pairs: HeaderPairs = [];
    for (const [name, value] of Object.entries(headers)) {
      if (name.startsWith(':') || value === undefined) continue;
      for (const v of Array.isArray(value) ? value : [value]) pairs.push([name, v]);
    }
    const authority = headers[':authority'] ?? headers.host;
    const reply: ClientReply = {
      sendHead: (status, h) => stream.respond({ ...h, ':status': status }),
      sendError: (status, body) => {
        stream.respond({ ':status': status, 'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(body)) });
        stream.end(body);
      },
      body: stream,
    };
    void this.forward(state, {
      method, target: path, headers: pairs, clientHost: authority, httpVersion: '2',
      body: stream.endAfterHeaders ? undefined : stream,
    }, reply, stream);
  }

  // ---------------------------------------------------------------------------------
  // Origin

  /** The pool for an origin; throws InvalidArgumentError when the URL is not http(s), a node:fs error when `caFile` cannot be read. */
  private poolFor(origin: DistributionOrigin): PoolEntry {
    const known = this.poolByOrigin.get(origin);
    if (known) return known;
    const entry = this.poolForKey(origin);
    this.poolByOrigin.set(origin, entry);
    return entry;
  }

  private poolForKey(origin: DistributionOrigin): PoolEntry {
    const url = new URL(origin.url);
    const https = url.protocol === 'https:';
    if (!https && url.protocol !== 'http:') throw new InvalidArgumentError(`origin URL ${origin.url} is not http or https`);
    const key = JSON.stringify([url.origin, origin.connectTimeoutMs, https && origin.verifyTls, https ? origin.caFile ?? null : null]);
    let entry = this.pools.get(key);
    if (entry) return entry;
    const connect: { timeout: number; rejectUnauthorized?: boolean; ca?: string[] } = { timeout: origin.connectTimeoutMs };
    if (https) {
      connect.rejectUnauthorized = origin.verifyTls;
      if (origin.caFile) connect.ca = [...rootCertificates, readFileSync(origin.caFile, 'utf8')];
    }
    entry = { pool: new Pool(url.origin, { connect, headersTimeout: origin.responseTimeoutMs, bodyTimeout: origin.responseTimeoutMs }), url };
    this.pools.set(key, entry);
    return entry;
  }

  /**
   * Proxies one request. `clientSide` is the client's response stream: its early
   * close (client gone) aborts the origin request.
   */
  private async forward(state: ConnState, rq: ProxiedRequest, reply: ClientReply, clientSide: Writable): Promise<void> {
    const { conn } = state;
    const ac = new ClientGone();
    const onClientClose = (): void => {
      if (!clientSide.writableFinished) ac.abort();
    };
    clientSide.once('close', onClientClose);
    const logFields = { connectionId: conn.connectionId, distributionId: conn.distributionId, method: rq.method, target: rq.target };
    let entry: PoolEntry;
    try {
      entry = this.poolFor(conn.origin);
    } catch (err) {
      this.failBeforeHeaders(conn, reply, { kind: 'other', status: 502, code: errorCode(err) }, err, logFields);
      return;
    }
    const headers = buildOriginRequestHeaders(rq.headers, {
      clientIp: conn.clientIp, clientHost: rq.clientHost, fallbackHost: entry.url.host,
      certificateHeaders: conn.certificateHeaders, httpVersion: rq.httpVersion,
    });
    let data: Awaited<ReturnType<Pool['request']>>;
    try {
      data = await entry.pool.request({
        path: joinOriginPath(entry.url.pathname, rq.target),
        method: rq.method,
        headers: flattenPairs(headers),
        // undici destroys the body stream it was given once it has read it; for HTTP/2
        // that would be the whole stream (response side included), so it gets a
        // PassThrough (`pipe` streams with backpressure and never destroys the source).
        body: rq.body ? rq.body.pipe(new PassThrough()) : null,
        signal: ac,
        headersTimeout: conn.origin.responseTimeoutMs,
        bodyTimeout: conn.origin.responseTimeoutMs,
      });
    } catch (err) {
      if (ac.aborted) {
        this.logger.debug(logFields, 'client went away before the origin answered');
        return;
      }
      this.failBeforeHeaders(conn, reply, classifyOriginFailure(err), err, logFields);
      return;
    }
    if (ac.aborted) {
      data.body.destroy();
      return;
    }
    try {
      reply.sendHead(data.statusCode, cleanResponseHeaders(data.headers));
    } catch (err) {
      // Headers Node refuses to send (invalid characters from the origin).
      data.body.destroy();
      this.failBeforeHeaders(conn, reply, { kind: 'other', status: 502, code: errorCode(err) }, err, logFields);
      return;
    }
    this.metrics?.requests.inc({ distribution: conn.distributionId, status_class: statusClass(data.statusCode) });
    // pipe + finished instead of stream.pipeline, same outcome: pipeline builds an
    // AbortController per call and aborts it (a DOMException with a stack) when done.
    // Either side's failure settles once and destroys both (a client gone mid-body
    // releases the origin request).
    const body = data.body;
    let settled = false;
    const settle = (err: Error | null | undefined): void => {
      if (settled) return;
      settled = true;
      if (!err) return;
      // As pipeline does: both sides destroyed (an HTTP/2 stream destroyed with an error
      // is reset at once, its queued DATA dropped; close() alone would flush them first).
      body.destroy();
      reply.body.destroy(err);
      if (ac.aborted || errorCode(err) === 'ERR_STREAM_PREMATURE_CLOSE') {
        this.logger.debug(logFields, 'client went away during the response body');
        return;
      }
      this.logger.warn({ ...logFields, kind: 'body', code: errorCode(err), err: err.message }, 'origin response body failed; client response aborted');
      this.metrics?.errors.inc({ distribution: conn.distributionId, kind: 'body' });
      if (state.protocol === 'h2') (reply.body as ServerHttp2Stream).close(h2constants.NGHTTP2_INTERNAL_ERROR);
      else conn.socket.destroy();
    };
    body.on('error', settle);
    finished(reply.body, settle);
    body.pipe(reply.body);
  }

  private failBeforeHeaders(conn: AdmittedConnection, reply: ClientReply, f: OriginFailure, err: unknown, logFields: object): void {
    this.logger.warn({ ...logFields, kind: f.kind, code: f.code, status: f.status, err: err instanceof Error ? err.message : String(err) }, 'origin request failed');
    this.countFailure(conn, f.kind, f.status);
    try {
      reply.sendError(f.status, f.status === 504 ? BODY_504 : BODY_502);
    } catch {
      conn.socket.destroy();
    }
  }

  private countFailure(conn: AdmittedConnection, kind: OriginErrorKind, status: number): void {
    this.metrics?.errors.inc({ distribution: conn.distributionId, kind });
    this.metrics?.requests.inc({ distribution: conn.distributionId, status_class: statusClass(status) });
  }

  // ---------------------------------------------------------------------------------
  // WebSocket

  private onUpgrade(state: ConnState, req: IncomingMessage, client: Duplex, head: Buffer): void {
    const { conn } = state;
    if (!isWebSocketUpgrade(req.method, req.headers.upgrade)) {
      writeRawResponse(client, 501, 'only WebSocket upgrades are supported\n');
      return;
    }
    const logFields = { connectionId: conn.connectionId, distributionId: conn.distributionId, method: 'GET', target: req.url, websocket: true };
    let url: URL;
    try {
      url = new URL(conn.origin.url);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError(`origin URL ${conn.origin.url} is not http or https`);
    } catch (err) {
      this.failUpgrade(conn, client, { kind: 'other', status: 502, code: undefined }, err, logFields);
      return;
    }
    state.inflight++;
    const https = url.protocol === 'https:';
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const port = Number(url.port) || (https ? 443 : 80);
    const headers = buildOriginRequestHeaders(pairsFromRaw(req.rawHeaders), {
      clientIp: conn.clientIp, clientHost: req.headers.host, fallbackHost: url.host,
      certificateHeaders: conn.certificateHeaders, httpVersion: req.httpVersion,
      websocketUpgrade: String(req.headers.upgrade),
    });
    const requestHead = `GET ${joinOriginPath(url.pathname, req.url ?? '/')} HTTP/1.1\r\n`
      + headers.map(([n, v]) => `${n}: ${v}\r\n`).join('') + '\r\n';
    let upstream: Socket;
    try {
      upstream = https
        ? tlsConnect({
          host, port, ALPNProtocols: ['http/1.1'], rejectUnauthorized: conn.origin.verifyTls,
          ...(isIP(host) ? {} : { servername: host }),
          ...(conn.origin.caFile ? { ca: [...rootCertificates, readFileSync(conn.origin.caFile, 'utf8')] } : {}),
        })
        : netConnect({ host, port });
    } catch (err) {
      state.inflight--;
      this.failUpgrade(conn, client, { kind: 'other', status: 502, code: errorCode(err) }, err, logFields);
      return;
    }
    state.tunnel = upstream;
    let phase: 'connect' | 'head' | 'open' | 'done' = 'connect';
    const finish = (): void => {
      if (phase === 'done') return;
      phase = 'done';
      clearTimeout(timer);
      state.inflight--;
      state.tunnel = undefined;
      upstream.destroy();
      client.destroy();
    };
    const failEarly = (f: OriginFailure, err: unknown): void => {
      if (phase !== 'connect' && phase !== 'head') return;
      phase = 'done';
      clearTimeout(timer);
      state.inflight--;
      state.tunnel = undefined;
      upstream.destroy();
      this.failUpgrade(conn, client, f, err, logFields);
    };
    let timer = setTimeout(() => failEarly(
      { kind: 'connect_timeout', status: 504, code: 'ETIMEDOUT' }, new Error('connect timeout')), conn.origin.connectTimeoutMs);
    upstream.once(https ? 'secureConnect' : 'connect', () => {
      if (phase !== 'connect') return;
      phase = 'head';
      clearTimeout(timer);
      timer = setTimeout(() => failEarly(
        { kind: 'response_timeout', status: 504, code: 'UND_ERR_HEADERS_TIMEOUT' }, new Error('no upgrade response in time')), conn.origin.responseTimeoutMs);
      upstream.write(requestHead);
      if (head.length) upstream.write(head);
    });
    let received = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) {
        if (received.length > MAX_UPGRADE_RESPONSE_HEAD) {
          failEarly({ kind: 'protocol', status: 502, code: undefined }, new Error('origin upgrade response head too large'));
        }
        return;
      }
      upstream.off('data', onData);
      clearTimeout(timer);
      const headText = received.subarray(0, end).toString('latin1');
      const rest = received.subarray(end + 4);
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(headText);
      if (!status) {
        failEarly({ kind: 'protocol', status: 502, code: undefined }, new Error('origin sent no HTTP/1.1 status line'));
        return;
      }
      phase = 'open';
      const code = Number(status[1]);
      this.metrics?.requests.inc({ distribution: conn.distributionId, status_class: statusClass(code) });
      if (code === 101) {
        client.write(received.subarray(0, end + 4));
        if (rest.length) client.write(rest);
        upstream.pipe(client);
        client.pipe(upstream);
      } else {
        // Never pipe the client to the origin here: the rest of this connection would
        // reach the origin without the header rules. Pass the answer back and close.
        const lines = headText.split('\r\n').filter((l, i) => i === 0 || !/^(connection|keep-alive)\s*:/i.test(l));
        client.write(`${lines.join('\r\n')}\r\nConnection: close\r\n\r\n`);
        if (rest.length) client.write(rest);
        upstream.pipe(client);
      }
      (client as Socket).setTimeout(conn.limits.idleTimeoutMs, finish);
    };
    upstream.on('data', onData);
    upstream.on('error', (err) => {
      if (phase === 'connect' || phase === 'head') failEarly(classifyOriginFailure(err), err);
      else if (phase === 'open') {
        this.logger.warn({ ...logFields, kind: 'body', code: errorCode(err), err: err.message }, 'origin websocket connection failed');
        this.metrics?.errors.inc({ distribution: conn.distributionId, kind: 'body' });
        finish();
      }
    });
    upstream.on('close', () => {
      if (phase === 'connect' || phase === 'head') failEarly({ kind: 'reset', status: 502, code: 'ECONNRESET' }, new Error('origin closed the connection'));
      else if (phase === 'open') {
        client.end();
        setTimeout(finish, 1000).unref();
      }
    });
    client.on('error', () => finish());
    client.on('close', () => finish());
  }

  private failUpgrade(conn: AdmittedConnection, client: Duplex, f: OriginFailure, err: unknown, logFields: object): void {
    this.logger.warn({ ...logFields, kind: f.kind, code: f.code, status: f.status, err: err instanceof Error ? err.message : String(err) }, 'origin websocket upgrade failed');
    this.countFailure(conn, f.kind, f.status);
    writeRawResponse(client, f.status, f.status === 504 ? BODY_504 : BODY_502);
  }
}

/**
 * The `signal` of an origin request (undici takes an EventEmitter as well as an
 * AbortSignal): aborted, once, when the client went away. Cheaper than an
 * AbortController per request (an EventTarget, and a DOMException on abort).
 */
class ClientGone extends EventEmitter {
  aborted = false;

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.emit('abort');
  }
}

/** Size of an HTTP/2 header list as RFC 9113 6.5.2 counts it: name + value octets + 32 per field. */
function headerListSize(headers: H2IncomingHeaders): number {
  let size = 0;
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) size += Buffer.byteLength(name) + Buffer.byteLength(v) + 32;
  }
  return size;
}

/** Writes a complete HTTP/1.1 response with `Connection: close` on a detached socket and ends it. */
function writeRawResponse(socket: Duplex, status: number, body: string): void {
  if (socket.destroyed) return;
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: text/plain; charset=utf-8\r\n`
    + `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}
