/**
 * The admin listener (fastify). This part: `GET /healthz` (no auth),
 * `GET /readyz` and `GET /metrics` (Prometheus text; bearer token). The control-plane
 * issue adds the REST API on the same server.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { bearerMatches } from './token.js';

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

/**
 * Starts the admin listener. Errors are JSON `{"error":{"code","message"}}`
 * (`AccessDenied` 401 without a valid bearer token).
 * @throws Error when the address cannot be bound (message names it).
 */
export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const { host, port } = parseListenAddress(options.listen);
  const app = Fastify({ logger: false });
  app.addHook('onRequest', async (req, reply) => {
    if (req.url === '/healthz') return;
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
  app.setNotFoundHandler(async (req, reply) => reply.code(404).send({ error: { code: 'EntityNotFound', message: `no route ${req.method} ${req.url}` } }));
  app.setErrorHandler(async (err, req, reply) => {
    options.onError?.(err, `${req.method} ${req.url}`);
    return reply.code(500).send({ error: { code: 'Internal', message: 'internal error' } });
  });
  try {
    await app.listen({ host, port });
  } catch (err) {
    await app.close().catch(() => {});
    throw new Error(`cannot listen on admin address ${options.listen}: ${(err as Error).message}`);
  }
  const addr = app.server.address();
  const bound = typeof addr === 'object' && addr ? { host: addr.address, port: addr.port } : { host, port };
  return { app, address: bound, close: () => app.close() };
}
