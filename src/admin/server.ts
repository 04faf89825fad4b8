/**
 * The admin listener (fastify): `GET /healthz` (no auth), `GET /readyz`, `GET /metrics`
 * (Prometheus text), and, when given {@link AdminServerOptions.api}, the REST API under
 * `/v1` (api.ts) with `GET /v1/openapi.json` — every route but `/healthz` behind the
 * bearer token.
 */
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { bearerMatches } from './token.js';
import { registerApiRoutes, type AdminApiOptions } from './api.js';
import { mapError } from './errors.js';
import { InvalidArgumentError } from '../errors.js';
import { describeDuplicateMember, findDuplicateMember } from '../kvs/index.js';
import { openApiDocument } from './openapi.js';
import { isConsoleUrl, registerConsoleRoutes } from './console.js';
import { registerLiveRoutes, type ConnectionLogSource } from './live.js';

/** Readiness as reported by `GET /readyz`. */
export interface Readiness {
  ready: boolean;
  /** `ok`, or `degraded`/`starting` with reasons. */
  status: 'ok' | 'starting' | 'degraded';
  reasons: string[];
  /** Extra facts shown as they are (e.g. workers ready, applied change sequence). */
  details?: Record<string, unknown>;
}

/** Options of {@link startAdminServer}. */
export interface AdminServerOptions {
  /** `host:port` (IPv6 as `[::1]:9901`); port 0 picks a free port. */
  listen: string;
  /** Bearer token every route except `/healthz` requires. */
  token: string;
  /** Prometheus exposition text and its content type. */
  metrics: () => Promise<{ contentType: string; body: string }>;
  readiness: () => Promise<Readiness> | Readiness;
  /** Told about unexpected route errors (the client sees only `Internal`). */
  onError?: (err: unknown, route: string) => void;
  /** The REST API's dependencies; without them only the health, readiness and metrics routes exist. */
  api?: AdminApiOptions;
  /** Largest request body, bytes (default 12 MiB: an inline KVS import of 5 MB with JSON escaping). */
  bodyLimit?: number;
  /** Live connection-log lines for `GET /v1/connection-log/stream` (live.ts); without it that route answers 501. */
  connectionLog?: ConnectionLogSource;
  /**
   * The built web console served at `/console/` (console.ts) when the API is enabled:
   * default: found next to this module (`dist/console`); `null`: the console pages say
   * it is not built.
   */
  consoleDir?: string | null;
  /**
   * The sequence the node's edge enforces (its replicas' applied sequence). When set,
   * a `StoreUnavailable` (503) answer says that the database is unreachable and the
   * edge keeps enforcing its last applied state at that sequence (cluster outage).
   */
  appliedSequence?: () => number | undefined;
}

/** A running admin listener. */
export interface AdminServer {
  readonly app: FastifyInstance;
  /** The bound address. */
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

/**
 * Splits `host:port` (IPv6 in brackets).
 * @throws Error naming the value when it is not `host:port` with a port 0–65535.
 */
export function parseListenAddress(listen: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`listen address "${listen}" is not host:port (IPv6 as [::1]:port)`);
  return { host: (m[1] ?? m[2])!, port };
}

/** fastify `maxParamLength` of the admin app: a 512-byte KVS key fully percent-encoded (1536) plus margin. */
export const ADMIN_MAX_PARAM_LENGTH = 2048;

/** Default {@link AdminServerOptions.bodyLimit}. */
export const DEFAULT_ADMIN_BODY_LIMIT = 12 * 1024 * 1024;

/**
 * Builds the admin app without listening (tests use `app.inject`). Errors are JSON
 * `{"error":{"code","message"}}` (`AccessDenied` 401 without a valid bearer token; see
 * errors.ts for the other codes). Closing the app also stops the `/test` sandbox worker.
 */
export async function createAdminApp(options: Omit<AdminServerOptions, 'listen'>): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    bodyLimit: options.bodyLimit ?? DEFAULT_ADMIN_BODY_LIMIT,
    // `/keys/{key}`: a key is up to 512 UTF-8 bytes (kvs maxKeyBytes), percent-encoded
    // up to 3 × 512 = 1536 characters; fastify's default of 100 would answer 414.
    maxParamLength: ADMIN_MAX_PARAM_LENGTH,
    // Router errors (a malformed percent-encoding, a too long segment) answer in the
    // API's error shape like every other error.
    frameworkErrors: (err, _req, reply) => {
      const m = mapError(err);
      void (reply as FastifyReply).code(m.status).send(m.body);
    },
  });
  // An empty body with `Content-Type: application/json` (clients that always send the
  // header, e.g. on DELETE or publish) is no body, not an error; anything else goes
  // through fastify's parser (prototype-poisoning protection included), then a member
  // name given twice in one object is refused (JSON.parse would keep the last silently).
  const defaultJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') { done(null, undefined); return; }
    defaultJson(req, text, (err, parsed) => {
      if (err) { done(err, undefined); return; }
      const dup = findDuplicateMember(text);
      if (dup) { done(new InvalidArgumentError(`body: ${describeDuplicateMember(dup)}`), undefined); return; }
      done(null, parsed);
    });
  });
  // Which methods each route path has, for 405 + Allow on a known path with another method.
  const routes: { re: RegExp; method: string }[] = [];
  app.addHook('onRoute', (r) => {
    const re = new RegExp(`^${r.url.split('/').map((seg) => (seg.startsWith(':') ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('/')}$`);
    for (const m of Array.isArray(r.method) ? r.method : [r.method]) routes.push({ re, method: m.toUpperCase() });
  });
  app.addHook('onRequest', async (req, reply) => {
    if (req.url === '/healthz' || req.url.startsWith('/healthz?')) return;
    // The console's static files; its API calls carry the token like any client's.
    if (options.api && isConsoleUrl(req.url)) return;
    if (!bearerMatches(req.headers.authorization, options.token)) {
      await reply.code(401).header('www-authenticate', 'Bearer').send({ error: { code: 'AccessDenied', message: 'a valid "Authorization: Bearer <token>" header is required' } });
    }
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const r = await options.readiness();
    return reply.code(r.ready ? 200 : 503).send(r);
  });
  app.get('/metrics', async (_req, reply) => {
    const m = await options.metrics();
    return reply.type(m.contentType).send(m.body);
  });
  if (options.api) {
    const closeApi = registerApiRoutes(app, options.api);
    app.addHook('onClose', async () => { await closeApi(); });
    app.get('/v1/openapi.json', async () => openApiDocument());
    const closeLive = registerLiveRoutes(app, { metrics: options.metrics, ...(options.connectionLog ? { connectionLog: options.connectionLog } : {}) });
    app.addHook('preClose', async () => { closeLive(); });
    registerConsoleRoutes(app, options.consoleDir);
  }
  app.setNotFoundHandler(async (req, reply) => {
    const path = req.url.replace(/\?.*$/, '');
    const allow = [...new Set(routes.filter((r) => r.re.test(path)).map((r) => r.method))].sort();
    if (allow.length > 0) {
      return reply.code(405).header('allow', allow.join(', ')).send({
        error: { code: 'InvalidArgument', message: `method ${req.method} is not allowed on ${path}; allowed: ${allow.join(', ')}` },
      });
    }
    return reply.code(404).send({ error: { code: 'EntityNotFound', message: `no route ${req.method} ${path}` } });
  });
  app.setErrorHandler(async (err, req, reply) => {
    const m = mapError(err);
    if (m.internal) options.onError?.(err, `${req.method} ${req.url.replace(/\?.*$/, '')}`);
    if (m.body.error.code === 'StoreUnavailable' && options.appliedSequence) {
      const seq = options.appliedSequence();
      m.body.error.message = `the database is unreachable; the edge keeps enforcing its last applied state (sequence ${seq ?? 'unknown'}): ${m.body.error.message}`;
    }
    return reply.code(m.status).send(m.body);
  });
  return app;
}

/**
 * Starts the admin listener ({@link createAdminApp} bound to `listen`).
 * @throws Error when the address cannot be bound (message names it).
 */
export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const { host, port } = parseListenAddress(options.listen);
  // Distributions may not take the admin socket; with port 0 it is known after binding.
  let adminListen: string | undefined = port === 0 ? undefined : options.listen;
  const app = await createAdminApp(options.api
    ? { ...options, api: { adminListen: () => adminListen, ...options.api } }
    : options);
  try {
    await app.listen({ host, port });
  } catch (err) {
    await app.close().catch(() => {});
    throw new Error(`cannot listen on admin address ${options.listen}: ${(err as Error).message}`);
  }
  const addr = app.server.address();
  const bound = typeof addr === 'object' && addr ? { host: addr.address, port: addr.port } : { host, port };
  if (port === 0) adminListen = `${host.includes(':') ? `[${host}]` : host}:${bound.port}`;
  return { app, address: bound, close: () => app.close() };
}
