/**
 * The admin REST API under `/v1` (control-plane issue): trust stores, key value stores
 * (with keys and CRL import), connection functions (with code, test and publish),
 * distributions, and the node's OCSP cache. A thin HTTP layer over the services of
 * resources/, kvs/ and functions/: the resource rules (names, ETags, If-Match, in-use
 * checks, limits) are theirs; this file parses bodies (zod, `field.path: problem`),
 * resolves ids to names, and shapes responses.
 *
 * Conventions: JSON in and out; a response about one resource carries its `ETag`
 * header (quoted; `If-Match` may be quoted or bare, a weak one is PreconditionFailed); writes to an existing resource need `If-Match` (missing →
 * `InvalidIfMatchVersion` 400, stale → `PreconditionFailed` 412, decided inside the
 * store's write transaction, so of two writers with the same ETag exactly one wins).
 * Creates answer 201, deletes of resources 204, lists `{"Items":[…],"Quantity":n}`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { CrlError, EntityNotFoundError, InvalidArgumentError, PortcullisError, PreconditionFailedError, StoreUnavailableError } from '../errors.js';
import {
  DistributionService, TrustStoreService, joinProblems, zodProblems, type DistributionRecord, type TrustStoreRecord,
} from '../resources/index.js';
import { KeyValueStoreService, type KvsLimits } from '../kvs/index.js';
import {
  FunctionService, SandboxWorker, buildConnection, connectionJson, defaultWatchdogMs, resolveFunctionLimits,
  syntheticRevocationStatus, FUNCTION_RUNTIME, type FunctionLimits, type FunctionResult,
} from '../functions/index.js';
import { ParsedCertificate, chainView, parseTrustStoreBundle, splitCertificates, type TrustStoreLimits } from '../pki/index.js';
import type { OcspCacheEntryInfo, OcspCachePurgeFilter, RevocationStatus } from '../revocation/index.js';
import type { Store, FunctionStage } from '../store/index.js';
import { ApiError } from './errors.js';
import { ipAddress, parsePemCertificates, registerToolRoutes } from './tools.js';

/**
 * The node's OCSP cache as the API sees it: the gateway node's cache in single-process
 * mode, or a request to every cluster worker. `undefined` answers 501.
 */
export interface OcspCacheControl {
  /** Entries; in cluster mode each carries the `worker` id that holds it. */
  list(): Promise<(OcspCacheEntryInfo & { worker?: number })[]>;
  /** Removes matching entries (all with an empty filter); returns how many (summed over workers). */
  purge(filter: OcspCachePurgeFilter): Promise<number>;
}

/** What the API routes work on. */
export interface AdminApiOptions {
  /** The store (the API opens none itself; the caller closes it). */
  store: Store;
  /** KVS limits (config `kvs:`). */
  kvsLimits?: Partial<KvsLimits>;
  /** Function limits (config `functions:`): the compile check and `/test` runs use them. */
  functionLimits?: Partial<FunctionLimits>;
  trustStoreLimits?: Partial<TrustStoreLimits>;
  /** The node's OCSP cache; undefined: the `/v1/ocsp-cache` routes answer 501 with `ocspCacheUnavailable`. */
  ocspCache?: OcspCacheControl;
  /** Why the OCSP cache is not available (the 501 message). */
  ocspCacheUnavailable?: string;
  /** Clock, ms (tests). */
  now?: () => number;
  /**
   * The admin listener's own `host:port` (a function when known only after binding):
   * distributions may not listen on it or on a socket overlapping it. `startAdminServer`
   * fills it in.
   */
  adminListen?: string | (() => string | undefined);
  /** Host name resolution for distribution listen addresses (tests; default `dns.lookup`). */
  lookupHost?: (host: string) => Promise<{ address: string; family: number }>;
  /** `GET /v1/nodes`: a node whose last heartbeat is older than this is `stale`, ms (default 5000; config `cluster.staleAfterMs`). */
  nodeStaleAfterMs?: number;
}

/** One node in `GET /v1/nodes` (cluster issue). */
export interface NodeView {
  Name: string;
  /** The node's own readiness at its last heartbeat, or `stale` when that is older than the stale limit. */
  Status: 'ok' | 'starting' | 'degraded' | 'stale';
  Reasons: string[];
  LastHeartbeat: string;
  HeartbeatAgeMs: number;
  /** The change sequence every replica of the node has applied. */
  AppliedSequence: number;
  /**
   * AppliedSequence = the cluster's latest sequence and the node is not stale: the node
   * enforces every committed change. False for a stale node (it may still be serving
   * older state) and for a node ahead of the database (its state is another history's).
   */
  InSync: boolean;
  Stale: boolean;
  StartedTime: string;
  Version: string;
  Host: string;
  Pid: number;
  AdminAddress: string | null;
  Listeners: { distribution: string; address: string; port: number }[];
}

/** Longest `waitForSequence` wait of `GET /v1/nodes`, ms. */
const MAX_NODES_WAIT_MS = 60_000;

type Req = FastifyRequest;

/** Parses `input` with `schema` or throws InvalidArgument listing every problem as `path: problem`. */
function parseBody<T>(schema: z.ZodType<T>, input: unknown, what = 'body'): T {
  if (input === undefined || input === null) throw new InvalidArgumentError(`${what}: a JSON object is required`);
  const r = schema.safeParse(input, { reportInput: true });
  if (!r.success) throw new InvalidArgumentError(joinProblems(zodProblems(r.error)));
  return r.data;
}

/**
 * The If-Match header's ETag, quoted (`"ETAG"`, RFC 9110) or bare (`ETAG`, as the JSON
 * bodies show it); undefined when absent (the services refuse that).
 * @throws PreconditionFailedError for a weak ETag (`W/"…"`): writes use the strong
 *   comparison (RFC 9110 13.1.1), under which a weak ETag never matches.
 */
export function ifMatchOf(req: Req): string | undefined {
  const h = req.headers['if-match'];
  if (typeof h !== 'string') return undefined;
  const v = h.trim();
  if (/^W\//.test(v)) {
    throw new PreconditionFailedError('If-Match: a weak ETag (W/"…") never matches a write, which compares ETags strongly; send the ETag as "ETAG" or ETAG');
  }
  const m = /^"([^"]*)"$/.exec(v);
  return m ? m[1] : v;
}

function stageOf(req: Req, field = 'stage'): FunctionStage {
  const s = (req.query as Record<string, unknown>)[field];
  if (s === undefined || s === '') return 'DEVELOPMENT';
  if (s === 'DEVELOPMENT' || s === 'LIVE') return s;
  throw new InvalidArgumentError(`${field}: must be one of "DEVELOPMENT", "LIVE"`);
}

function param(req: Req, name: string): string {
  return (req.params as Record<string, string>)[name] ?? '';
}

function list<T>(items: T[]): { Items: T[]; Quantity: number } {
  return { Items: items, Quantity: items.length };
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** The API shape of a trust store. */
export function trustStoreView(r: TrustStoreRecord): Record<string, unknown> {
  const d = r.document;
  return {
    Id: r.id, Name: r.name, ETag: r.etag, Status: d.status, ...(d.statusReason !== undefined ? { StatusReason: d.statusReason } : {}),
    CertificateCount: d.certificateCount, UseClientCertificateOcspEndpoint: d.useClientCertificateOcspEndpoint, Comment: d.comment ?? '',
    CaBundlePem: d.caBundlePem, CreatedTime: iso(r.createdAt), LastModifiedTime: iso(r.lastModified),
  };
}

/** The API shape of a distribution: the stored document (defaults filled in) under `DistributionConfig`. */
export function distributionView(r: DistributionRecord): Record<string, unknown> {
  return { Id: r.id, Name: r.name, ETag: r.etag, CreatedTime: iso(r.createdAt), LastModifiedTime: iso(r.lastModified), DistributionConfig: r.document };
}

// ---- body schemas -----------------------------------------------------------------

const name = z.string();
const trustStoreCreate = z.strictObject({
  name, caBundlePem: z.string(), useClientCertificateOcspEndpoint: z.boolean().optional(), comment: z.string().optional(),
});
const trustStoreUpdate = z.strictObject({
  name: name.optional(), caBundlePem: z.string().optional(), useClientCertificateOcspEndpoint: z.boolean().optional(), comment: z.string().optional(),
});
const kvsImportDocument = z.looseObject({ data: z.array(z.unknown()) });
const kvsCreate = z.strictObject({
  name, comment: z.string().optional(), importFile: z.string().min(1).optional(), importUrl: z.string().regex(/^https?:\/\//i, { error: 'must be an http:// or https:// URL' }).optional(),
  importData: z.union([kvsImportDocument, z.string()]).optional(),
}).refine((b) => [b.importFile, b.importUrl, b.importData].filter((x) => x !== undefined).length <= 1, {
  error: 'give at most one of importFile, importUrl, importData',
});
const kvsUpdate = z.strictObject({ name: name.optional(), comment: z.string() });
const kvsBatch = z.strictObject({
  puts: z.array(z.strictObject({ key: z.string(), value: z.string() })).optional(),
  deletes: z.array(z.strictObject({ key: z.string() })).optional(),
});
const kvsPutKey = z.strictObject({ value: z.string() });
const importCrl = z.strictObject({ crlPem: z.string().optional(), crlDerBase64: z.string().optional(), trustStore: z.string().min(1), issuerChainPem: z.string().optional() })
  .refine((b) => (b.crlPem === undefined) !== (b.crlDerBase64 === undefined), { error: 'give exactly one of crlPem, crlDerBase64' });
const runtime = z.literal(FUNCTION_RUNTIME);
const functionCreate = z.strictObject({
  name, comment: z.string().optional(), runtime: runtime.optional(), code: z.string(), keyValueStore: z.string().nullable().optional(),
});
const functionUpdate = z.strictObject({
  name: name.optional(), comment: z.string().optional(), runtime: runtime.optional(), code: z.string().optional(), keyValueStore: z.string().nullable().optional(),
});
const functionTest = z.strictObject({
  stage: z.enum(['DEVELOPMENT', 'LIVE']).optional(),
  connection: z.record(z.string(), z.unknown()).optional(),
  clientCertificatePem: z.string().optional(),
  clientIp: ipAddress.optional(),
  revocationStatus: z.record(z.string(), z.unknown()).optional(),
  ocspStatus: z.strictObject({ leaf: z.enum(['Good', 'Revoked', 'Unknown', 'Error']), intermediates: z.enum(['Good', 'Revoked', 'Unknown', 'Error']).optional() }).optional(),
}).refine((b) => (b.connection === undefined) !== (b.clientCertificatePem === undefined), { error: 'give exactly one of connection, clientCertificatePem' })
  .refine((b) => b.ocspStatus === undefined || (b.clientCertificatePem !== undefined && b.revocationStatus === undefined), { error: 'ocspStatus: applies to clientCertificatePem, instead of revocationStatus', path: ['ocspStatus'] })
  .refine((b) => b.connection === undefined || b.clientIp === undefined, { error: 'clientIp: applies to clientCertificatePem; a connection object holds its own clientIp', path: ['clientIp'] });

/** Distribution create body: `name` plus the distribution document's fields. */
function splitName(body: unknown): { name: unknown; document: Record<string, unknown> } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InvalidArgumentError('body: expected a JSON object');
  const { name: n, ...document } = body as Record<string, unknown>;
  return { name: n, document };
}

function checkSameName(given: string | undefined, actual: string, kind: string): void {
  if (given !== undefined && given !== actual) {
    throw new InvalidArgumentError(`name: "${given}" differs from the ${kind}'s name "${actual}" (renaming is not supported)`);
  }
}

/** Sends `body` with the resource's ETag header, quoted (`"ETAG"`, RFC 9110 8.8.3); the body's `ETag` fields stay bare (CloudFront style). */
function withEtag(reply: FastifyReply, etag: string, body: unknown, status = 200): FastifyReply {
  return reply.code(status).header('etag', `"${etag}"`).send(body);
}

/**
 * Registers every `/v1` route on `app` (the bearer-token hook and the error handler
 * are the server's). Returns a closer for the sandbox worker that `/test` runs in.
 */
export function registerApiRoutes(app: FastifyInstance, options: AdminApiOptions): () => Promise<void> {
  const { store } = options;
  const now = options.now ?? Date.now;
  const trustStores = new TrustStoreService(store, { now, ...(options.trustStoreLimits ? { limits: options.trustStoreLimits } : {}) });
  const distributions = new DistributionService(store, {
    now, ...(options.adminListen !== undefined ? { adminListen: options.adminListen } : {}), ...(options.lookupHost ? { lookupHost: options.lookupHost } : {}),
  });
  const kvs = new KeyValueStoreService(store, { now, ...(options.kvsLimits ? { limits: options.kvsLimits } : {}) });
  const functionLimits = resolveFunctionLimits(options.functionLimits);
  const functions = new FunctionService(store, { now, limits: functionLimits });
  // `/test` runs hostile code: in a worker thread under a watchdog, never in this thread.
  const sandbox = new SandboxWorker({ watchdogMs: defaultWatchdogMs(functionLimits.cpuLimitMs) });

  // ---- name/id resolution ----
  async function kvsName(idOrName: string): Promise<string> {
    if (await store.kvs.getStore(idOrName)) return idOrName;
    const byId = (await store.kvs.listStores()).find((s) => s.id === idOrName);
    return byId?.name ?? idOrName; // unknown: the service reports EntityNotFound (or an invalid name)
  }
  async function functionName(idOrName: string): Promise<string> {
    if (await store.functions.get(idOrName, 'DEVELOPMENT')) return idOrName;
    const byId = (await store.functions.list()).find((f) => f.id === idOrName);
    return byId?.name ?? idOrName;
  }

  /** The items of the KVS associated with the function's `stage` as they are now; undefined when none is. */
  async function associatedKvsData(n: string, stage: FunctionStage): Promise<Map<string, string> | undefined> {
    const doc = (await store.functions.get(n, stage))?.document as { keyValueStore?: { name: string } | null } | undefined;
    const assoc = doc?.keyValueStore;
    if (!assoc) return undefined;
    const kvsData = new Map<string, string>();
    const rec = await store.kvs.getStore(assoc.name);
    if (rec) {
      let after: string | undefined;
      for (;;) {
        const rows = await store.kvs.listItems(rec.id, { ...(after !== undefined ? { after } : {}), limit: 1000 });
        for (const it of rows) kvsData.set(it.key, it.value);
        if (rows.length < 1000) break;
        after = rows[rows.length - 1]!.key;
      }
    }
    return kvsData;
  }

  // ---- trust stores ----
  app.post('/v1/trust-stores', async (req, reply) => {
    const b = parseBody(trustStoreCreate, req.body);
    const r = await trustStores.create({
      name: b.name, caBundlePem: b.caBundlePem,
      ...(b.useClientCertificateOcspEndpoint !== undefined ? { useClientCertificateOcspEndpoint: b.useClientCertificateOcspEndpoint } : {}),
      ...(b.comment !== undefined ? { comment: b.comment } : {}),
    });
    return withEtag(reply, r.etag, trustStoreView(r), 201);
  });
  app.get('/v1/trust-stores', async () => list((await trustStores.list()).map(trustStoreView)));
  app.get('/v1/trust-stores/:id', async (req, reply) => {
    const r = await trustStores.get(param(req, 'id'));
    return withEtag(reply, r.etag, trustStoreView(r));
  });
  app.put('/v1/trust-stores/:id', async (req, reply) => {
    const b = parseBody(trustStoreUpdate, req.body);
    const current = await trustStores.get(param(req, 'id'));
    checkSameName(b.name, current.name, 'trust store');
    const r = await trustStores.update(current.name, ifMatchOf(req) as string, {
      ...(b.caBundlePem !== undefined ? { caBundlePem: b.caBundlePem } : {}),
      ...(b.useClientCertificateOcspEndpoint !== undefined ? { useClientCertificateOcspEndpoint: b.useClientCertificateOcspEndpoint } : {}),
      ...(b.comment !== undefined ? { comment: b.comment } : {}),
    });
    return withEtag(reply, r.etag, trustStoreView(r));
  });
  app.delete('/v1/trust-stores/:id', async (req, reply) => {
    const current = await trustStores.get(param(req, 'id'));
    await trustStores.delete(current.name, ifMatchOf(req) as string);
    return reply.code(204).send();
  });

  // ---- key value stores ----
  app.post('/v1/key-value-stores', async (req, reply) => {
    const b = parseBody(kvsCreate, req.body);
    const importData = b.importData === undefined ? undefined
      : Buffer.from(typeof b.importData === 'string' ? b.importData : JSON.stringify(b.importData), 'utf8');
    const importSource = b.importFile ?? b.importUrl;
    const d = await kvs.create({
      name: b.name, ...(b.comment !== undefined ? { comment: b.comment } : {}),
      ...(importSource !== undefined ? { importSource } : {}), ...(importData !== undefined ? { importData } : {}),
    });
    return withEtag(reply, d.ETag, d, 201);
  });
  app.get('/v1/key-value-stores', async () => list(await kvs.list()));
  app.get('/v1/key-value-stores/:name', async (req, reply) => {
    const d = await kvs.describe(await kvsName(param(req, 'name')));
    // Limits (a Portcullis extension): lets a client check a whole import before its first write.
    const l = kvs.limits;
    const Limits = { MaxKeyBytes: l.maxKeyBytes, MaxValueBytes: l.maxValueBytes, MaxStoreBytes: l.maxStoreBytes, MaxBatchKeys: l.maxBatchKeys };
    return withEtag(reply, d.ETag, { ...d, Limits });
  });
  app.put('/v1/key-value-stores/:name', async (req, reply) => {
    const b = parseBody(kvsUpdate, req.body);
    const n = await kvsName(param(req, 'name'));
    checkSameName(b.name, n, 'key value store');
    const d = await kvs.update(n, { comment: b.comment, ifMatch: ifMatchOf(req) });
    return withEtag(reply, d.ETag, d);
  });
  app.delete('/v1/key-value-stores/:name', async (req, reply) => {
    await kvs.deleteStore(await kvsName(param(req, 'name')), { ifMatch: ifMatchOf(req) });
    return reply.code(204).send();
  });
  app.get('/v1/key-value-stores/:name/keys', async (req, reply) => {
    const n = await kvsName(param(req, 'name'));
    const q = req.query as Record<string, unknown>;
    let maxResults: number | undefined;
    if (q.maxResults !== undefined) {
      maxResults = typeof q.maxResults === 'string' && /^\d+$/.test(q.maxResults) ? Number(q.maxResults) : NaN;
      if (!Number.isInteger(maxResults)) throw new InvalidArgumentError(`maxResults: must be an integer from 1 to ${kvs.limits.maxListKeys}`);
    }
    if (q.nextToken !== undefined && typeof q.nextToken !== 'string') throw new InvalidArgumentError('nextToken: give it once');
    if (q.prefix !== undefined && typeof q.prefix !== 'string') throw new InvalidArgumentError('prefix: give it once');
    const d = await kvs.describe(n);
    const page = await kvs.listKeys(n, {
      ...(maxResults !== undefined ? { maxResults } : {}), ...(typeof q.nextToken === 'string' ? { nextToken: q.nextToken } : {}),
      ...(typeof q.prefix === 'string' && q.prefix !== '' ? { prefix: q.prefix } : {}),
    });
    return withEtag(reply, d.ETag, page);
  });
  app.post('/v1/key-value-stores/:name/keys', async (req, reply) => {
    const b = parseBody(kvsBatch, req.body);
    const r = await kvs.updateKeys(await kvsName(param(req, 'name')), {
      ifMatch: ifMatchOf(req), puts: b.puts ?? [], deletes: (b.deletes ?? []).map((d) => d.key),
    });
    return withEtag(reply, r.ETag, r);
  });
  app.get('/v1/key-value-stores/:name/keys/:key', async (req, reply) => {
    const n = await kvsName(param(req, 'name'));
    const d = await kvs.describe(n);
    const r = await kvs.getKey(n, param(req, 'key'));
    return withEtag(reply, d.ETag, r);
  });
  app.put('/v1/key-value-stores/:name/keys/:key', async (req, reply) => {
    const b = parseBody(kvsPutKey, req.body);
    const r = await kvs.putKey(await kvsName(param(req, 'name')), { key: param(req, 'key'), value: b.value, ifMatch: ifMatchOf(req) });
    return withEtag(reply, r.ETag, r);
  });
  app.delete('/v1/key-value-stores/:name/keys/:key', async (req, reply) => {
    const r = await kvs.deleteKey(await kvsName(param(req, 'name')), { key: param(req, 'key'), ifMatch: ifMatchOf(req) });
    return withEtag(reply, r.ETag, r);
  });
  app.post('/v1/key-value-stores/:name/import-crl', async (req, reply) => {
    const b = parseBody(importCrl, req.body);
    const n = await kvsName(param(req, 'name'));
    const ifMatch = ifMatchOf(req);
    const ts = await trustStores.get(b.trustStore);
    let crl: string | Uint8Array;
    if (b.crlPem !== undefined) {
      crl = b.crlPem;
    } else {
      const text = b.crlDerBase64!.replace(/\s+/g, '');
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length === 0) throw new InvalidArgumentError('crlDerBase64: not base64');
      crl = Buffer.from(text, 'base64');
    }
    let anchors;
    try {
      anchors = parseTrustStoreBundle(ts.document.caBundlePem, options.trustStoreLimits);
    } catch (err) {
      throw new InvalidArgumentError(`trustStore: trust store "${ts.name}" cannot verify a CRL: ${(err as PortcullisError).message}`);
    }
    const issuerChain = b.issuerChainPem !== undefined && b.issuerChainPem.trim() !== '' ? parsePemCertificates(b.issuerChainPem, 'issuerChainPem') : undefined;
    try {
      const r = await kvs.importCrl(n, { crl, trustStore: anchors, ifMatch, ...(issuerChain ? { issuerChain } : {}) });
      return withEtag(reply, r.ETag, r);
    } catch (err) {
      if (err instanceof PortcullisError && err.code === 'InvalidCrl' && !issuerChain && /is not in the trust store/.test(err.message)) {
        // The usual case: an intermediate signed the CRL and the trust store holds only the root.
        throw new CrlError(`${err.message}. If an intermediate CA signed it, pass that intermediate (and any between it and the trust store) as issuerChainPem`, { cause: err });
      }
      throw err;
    }
  });

  // ---- connection functions ----
  app.post('/v1/connection-functions', async (req, reply) => {
    const b = parseBody(functionCreate, req.body);
    const s = await functions.create(b.name, {
      code: b.code, runtime: FUNCTION_RUNTIME, ...(b.comment !== undefined ? { comment: b.comment } : {}),
      ...(b.keyValueStore !== undefined ? { keyValueStore: b.keyValueStore } : {}),
    });
    return withEtag(reply, s.ETag, s, 201);
  });
  app.get('/v1/connection-functions', async (req) => list(await functions.list(stageOf(req))));
  app.get('/v1/connection-functions/:id', async (req, reply) => {
    const s = await functions.describe(await functionName(param(req, 'id')), stageOf(req));
    return withEtag(reply, s.ETag, s);
  });
  app.put('/v1/connection-functions/:id', async (req, reply) => {
    if (stageOf(req) !== 'DEVELOPMENT') throw new InvalidArgumentError('stage: only the DEVELOPMENT stage can be updated; publish copies it to LIVE');
    const b = parseBody(functionUpdate, req.body);
    const n = await functionName(param(req, 'id'));
    checkSameName(b.name, n, 'connection function');
    const s = await functions.update(n, ifMatchOf(req) as string, {
      ...(b.code !== undefined ? { code: b.code } : {}), ...(b.comment !== undefined ? { comment: b.comment } : {}),
      ...(b.keyValueStore !== undefined ? { keyValueStore: b.keyValueStore } : {}),
    });
    return withEtag(reply, s.ETag, s);
  });
  app.delete('/v1/connection-functions/:id', async (req, reply) => {
    await functions.delete(await functionName(param(req, 'id')), ifMatchOf(req) as string);
    return reply.code(204).send();
  });
  app.get('/v1/connection-functions/:id/code', async (req, reply) => {
    const n = await functionName(param(req, 'id'));
    const c = await functions.getCode(n, stageOf(req));
    return withEtag(reply, c.ETag, { Name: n, Stage: c.Stage, ETag: c.ETag, Code: c.code });
  });
  app.post('/v1/connection-functions/:id/publish', async (req, reply) => {
    const s = await functions.publish(await functionName(param(req, 'id')), ifMatchOf(req) as string);
    return withEtag(reply, s.ETag, s);
  });
  app.post('/v1/connection-functions/:id/test', async (req, reply) => {
    const b = parseBody(functionTest, req.body);
    const n = await functionName(param(req, 'id'));
    const stage = b.stage ?? 'DEVELOPMENT';
    const code = await functions.getCode(n, stage);
    let json: string;
    if (b.connection !== undefined) {
      json = JSON.stringify(b.revocationStatus !== undefined ? { ...b.connection, revocationStatus: b.revocationStatus } : b.connection);
    } else {
      let chain;
      try {
        const blocks = splitCertificates(Buffer.from(b.clientCertificatePem!, 'utf8'));
        if (blocks.length === 0) throw new InvalidArgumentError('holds no certificate');
        chain = chainView(blocks.map((x) => ParsedCertificate.fromDer(x.der, x.where)));
      } catch (e) {
        if (e instanceof PortcullisError) throw new InvalidArgumentError(`clientCertificatePem: ${e.message}`, { cause: e });
        throw e;
      }
      json = connectionJson(buildConnection({
        clientIp: b.clientIp ?? '203.0.113.10', clientPort: 50000, endpoint: 'test.example.test', distributionId: 'test', certificates: chain,
        revocationStatus: (b.revocationStatus as RevocationStatus | undefined)
          ?? syntheticRevocationStatus(chain, b.ocspStatus?.leaf ?? 'Good', b.ocspStatus?.intermediates ?? b.ocspStatus?.leaf ?? 'Good', now()),
      }));
    }
    // The associated KVS as it is now (the stage's association), so cf.kvs() sees real data.
    const kvsData = await associatedKvsData(n, stage);
    const assoc = kvsData !== undefined;
    const fn = await sandbox.load(code.code, { ...functionLimits, name: n }, assoc ? { kvs: kvsData } : {});
    let r: FunctionResult;
    try {
      r = await fn.invoke(json, assoc ? { kvs: 'kvs' } : {});
    } finally {
      fn.dispose();
    }
    return withEtag(reply, code.ETag, {
      decision: r.decision, implicit: r.implicit, customData: r.customData ?? null, logs: r.logs,
      computeUtilization: r.computeUtilization, error: r.error ?? null,
    });
  });

  // ---- distributions ----
  app.post('/v1/distributions', async (req, reply) => {
    const { name: n, document } = splitName(req.body);
    if (typeof n !== 'string') throw new InvalidArgumentError(n === undefined ? 'name: required' : 'name: expected a string');
    const r = await distributions.create(n, document);
    return withEtag(reply, r.etag, distributionView(r), 201);
  });
  app.get('/v1/distributions', async () => list((await distributions.list()).map(distributionView)));
  app.get('/v1/distributions/:id', async (req, reply) => {
    const r = await distributions.get(param(req, 'id'));
    return withEtag(reply, r.etag, distributionView(r));
  });
  app.put('/v1/distributions/:id', async (req, reply) => {
    const { name: n, document } = splitName(req.body);
    const current = await distributions.get(param(req, 'id'));
    if (n !== undefined && typeof n !== 'string') throw new InvalidArgumentError('name: expected a string');
    checkSameName(n, current.name, 'distribution');
    const r = await distributions.update(current.name, ifMatchOf(req) as string, document);
    return withEtag(reply, r.etag, distributionView(r));
  });
  app.delete('/v1/distributions/:id', async (req, reply) => {
    const current = await distributions.get(param(req, 'id'));
    await distributions.delete(current.name, ifMatchOf(req) as string);
    return reply.code(204).send();
  });

  // ---- nodes (cluster issue) ----
  const staleAfterMs = options.nodeStaleAfterMs ?? 5000;
  async function nodesView(): Promise<{ Items: NodeView[]; Quantity: number; LatestSequence: number; AllInSync: boolean }> {
    const repo = store.nodes;
    if (!repo) throw new StoreUnavailableError('the node table is not available: this node serves its local snapshot while the database is unreachable');
    const latest = await store.latestSequence();
    const rows = await repo.list();
    const t = now();
    const items = rows.map((n): NodeView => {
      const age = Math.max(0, t - n.heartbeatAt);
      const stale = age > staleAfterMs;
      // Ahead of the database: its state follows a history the database no longer has
      // (replaced, or restored from an older backup). Never in sync.
      const ahead = n.appliedSeq > latest;
      const reasons = [
        ...(stale ? [`no heartbeat for ${(age / 1000).toFixed(1)} s`] : []),
        ...(ahead ? [`applied sequence ${n.appliedSeq} is ahead of the database's latest ${latest}: the database was replaced or restored; the node will reload`] : []),
        ...n.reasons,
      ];
      return {
        Name: n.name, Status: stale ? 'stale' : ahead ? 'degraded' : n.status,
        Reasons: reasons,
        LastHeartbeat: new Date(n.heartbeatAt).toISOString(), HeartbeatAgeMs: age, AppliedSequence: n.appliedSeq,
        // A stale node may still be serving (cut off from the database, not dead): what
        // it enforces is unknown, so it is never counted as in sync.
        InSync: !stale && n.appliedSeq === latest, Stale: stale, StartedTime: new Date(n.startedAt).toISOString(), Version: n.version,
        Host: n.host, Pid: n.pid, AdminAddress: n.adminAddress, Listeners: n.listeners,
      };
    });
    return { ...list(items), LatestSequence: latest, AllInSync: items.every((n) => n.InSync) };
  }
  app.get('/v1/nodes', async (req) => {
    const q = req.query as Record<string, unknown>;
    const unknown = Object.keys(q).filter((k) => k !== 'waitForSequence' && k !== 'timeoutMs');
    if (unknown.length > 0) throw new InvalidArgumentError(unknown.map((k) => `${k}: unknown query parameter`).join('; '));
    const int = (k: string, max: number): number | undefined => {
      const v = q[k];
      if (v === undefined) return undefined;
      if (typeof v !== 'string' || !/^\d{1,16}$/.test(v) || Number(v) > max) throw new InvalidArgumentError(`${k}: expected an integer from 0 to ${max}`);
      return Number(v);
    };
    const waitFor = int('waitForSequence', Number.MAX_SAFE_INTEGER);
    const timeoutMs = int('timeoutMs', MAX_NODES_WAIT_MS) ?? 10_000;
    if (waitFor === undefined) {
      if (q.timeoutMs !== undefined) throw new InvalidArgumentError('timeoutMs: applies only with waitForSequence');
      return nodesView();
    }
    // A sequence not committed yet would only wait out the timeout.
    const latestNow = await store.latestSequence();
    if (waitFor > latestNow) throw new InvalidArgumentError(`waitForSequence: sequence ${waitFor} has not been committed; the latest is ${latestNow}`);
    // Every node has applied change `waitFor` (heartbeats carry the applied sequence).
    // A stale node confirms nothing: it may still be serving older state (cut off from
    // the database); a node taken out of the cluster must be removed (DELETE).
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await nodesView();
      const confirmed = (n: NodeView): boolean => !n.Stale && n.AppliedSequence >= waitFor && n.AppliedSequence <= v.LatestSequence;
      if (v.Items.length > 0 && v.Items.every(confirmed)) return v;
      if (Date.now() >= deadline) return { ...v, TimedOut: true };
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  // A node taken out of the cluster: its row goes (a running node writes it again at its next heartbeat).
  app.delete('/v1/nodes/:name', async (req, reply) => {
    const repo = store.nodes;
    if (!repo) throw new StoreUnavailableError('the node table is not available: this node serves its local snapshot while the database is unreachable');
    const name = param(req, 'name');
    // PostgreSQL text cannot hold U+0000; no node is named so (say so, not "key or value").
    if (name.includes('\u0000')) throw new InvalidArgumentError('name: a node name cannot contain the NUL character U+0000');
    if (!(await repo.remove(name))) throw new EntityNotFoundError(`node "${name}" is not in the node table`);
    return reply.code(204).send();
  });

  // ---- OCSP cache ----
  const cache = (): OcspCacheControl => {
    if (!options.ocspCache) throw new ApiError('NotImplemented', options.ocspCacheUnavailable ?? 'the OCSP cache is not available on this server');
    return options.ocspCache;
  };
  app.get('/v1/ocsp-cache', async () => list(await cache().list()));
  app.delete('/v1/ocsp-cache', async (req) => {
    const q = req.query as Record<string, unknown>;
    const filter: OcspCachePurgeFilter = {};
    for (const k of ['serialNumber', 'responderUrl', 'key'] as const) {
      const v = q[k];
      if (v === undefined) continue;
      if (typeof v !== 'string' || v === '') throw new InvalidArgumentError(`${k}: give one non-empty value`);
      if (k === 'serialNumber' && !/^[0-9a-fA-F:]+$/.test(v)) throw new InvalidArgumentError('serialNumber: expected hex digits, ":" separators allowed');
      filter[k] = v;
    }
    const unknown = Object.keys(q).filter((k) => !['serialNumber', 'responderUrl', 'key'].includes(k));
    if (unknown.length > 0) throw new InvalidArgumentError(unknown.map((k) => `${k}: unknown query parameter`).join('; '));
    return { Purged: await cache().purge(filter), Filter: filter };
  });

  // ---- console tools: certificate inspection, decision matrix (tools.ts) ----
  registerToolRoutes(app, { functions, sandbox, functionLimits, functionName, associatedKvsData });

  return () => sandbox.close();
}
