/**
 * `portcullis serve`: loads and applies the config, then runs the data path either in
 * this process (`workers: 1`) or in `workers` cluster processes sharing the listeners
 * (node:cluster hands accepted connections to the workers), and the admin listener
 * (health, readiness, metrics) in the primary. Each worker keeps its own replica and
 * follows the store's change feed.
 */
import cluster, { type Worker } from 'node:cluster';
import { pino, type Logger } from 'pino';
import { AggregatorRegistry, Registry } from 'prom-client';
import { resolve } from 'node:path';
import {
  applyResources, configFromTree, functionLimitsFromConfig, kvsLimitsFromConfig, loadConfig, nodeStoreSpecFromConfig, validateConfig,
  type NodeConfig,
} from '../config/index.js';
import {
  resolveAdminToken, startAdminServer, type AdminApiOptions, type AdminServer, type OcspCacheControl, type Readiness,
} from '../admin/index.js';
import type { OcspCache, OcspCacheEntryInfo, OcspCachePurgeFilter } from '../revocation/index.js';
import { ConnectionLogTap, type ConnectionLogLine } from '../edge/index.js';
import { fallbackStatus, openNodeStore, type Store } from '../store/index.js';
import { startGatewayNode, type GatewayNode } from './node.js';
import { NodeAgent, type NodeProgress } from './cluster.js';
import { startWhenStoreAvailable } from './worker-start.js';
import { ConfigError, PortcullisError } from '../errors.js';

/** Options of {@link serve}. */
export interface ServeOptions {
  /** The config file (YAML or JSON); undefined runs on the embedded defaults (no resources, data in ./data). */
  configFile?: string;
  env?: NodeJS.ProcessEnv;
  /** Connection log when it goes to stdout (default process.stdout). */
  stdout?: NodeJS.WritableStream;
  /** Application log destination (default stderr). */
  logger?: Logger;
}

/** A running `serve`. */
export interface RunningServe {
  config: NodeConfig;
  logger: Logger;
  admin: AdminServer;
  /** Listeners (single-process mode) or those reported by the first worker. */
  listeners(): { distribution: string; address: string; port: number }[];
  /** Graceful stop: listeners closed, workers stopped, admin closed. */
  close(): Promise<void>;
}

/** Message a worker sends the primary once its data path is up. */
interface WorkerReady { type: 'portcullis:ready'; listeners: { distribution: string; address: string; port: number }[] }

/** Admin API → worker: list or purge the worker's OCSP cache; the worker answers {@link OcspCacheReply}. */
interface OcspCacheRequest { type: 'portcullis:ocsp-cache'; id: number; op: 'list' | 'purge'; filter?: OcspCachePurgeFilter }
interface OcspCacheReply { type: 'portcullis:ocsp-cache-reply'; id: number; entries?: OcspCacheEntryInfo[]; purged?: number }

/** Primary → worker: forward connection-log lines (someone watches the stream) or stop. */
interface LogTapControl { type: 'portcullis:log-tap'; on: boolean }
/** Worker → primary: one connection-log line (its JSON text) while the tap is on. */
interface LogTapLine { type: 'portcullis:log-line'; json: string }
/** Lines a worker may have sent and not yet seen leave its IPC channel; beyond, lines are dropped for the viewers (never for the log file). */
const LOG_TAP_MAX_IN_FLIGHT = 512;

/** How long the admin API waits for each worker's OCSP cache answer, ms. */
const OCSP_CACHE_IPC_TIMEOUT_MS = 5000;

/** The admin API's view of one process's OCSP cache (single-process mode). */
function localOcspCache(cache: OcspCache): OcspCacheControl {
  return { list: async () => cache.list(), purge: async (filter) => cache.purge(filter) };
}

/**
 * Worker → primary: not serving yet — its store is unreachable or its snapshot older
 * than what the node enforced; it retries (replacement workers only, see worker-start.ts).
 */
interface WorkerWaiting { type: 'portcullis:waiting'; reason: string }

/** A worker's report of what its replicas have applied (sent every {@link PROGRESS_INTERVAL_MS}). */
interface WorkerProgress { type: 'portcullis:progress'; appliedSeq: number; degraded: string[] }

/** How often a cluster worker reports its progress to the primary, ms. */
const PROGRESS_INTERVAL_MS = 250;

/** The admin API's dependencies: its own store handle (closed by the caller), the config's limits. */
function adminApi(config: NodeConfig, store: Store, ocspCache: OcspCacheControl): AdminApiOptions {
  return {
    store, kvsLimits: kvsLimitsFromConfig(config), functionLimits: functionLimitsFromConfig(config), ocspCache,
    nodeStaleAfterMs: config.cluster.staleAfterMs,
  };
}

/** Codes of a write that lost a race with another node applying the same declaration. */
const RACE_CODES = new Set(['EntityAlreadyExists', 'PreconditionFailed', 'CNAMEAlreadyExists']);

function raceCode(err: unknown): string | undefined {
  for (let e: unknown = err, i = 0; e && i < 5; e = (e as { cause?: unknown }).cause, i++) {
    if (e instanceof PortcullisError && RACE_CODES.has(e.code)) return e.code;
  }
  return undefined;
}

/**
 * Applies the declared resources; when another node applies the same declarations at
 * the same moment (cluster start), a lost race is retried: the second pass finds them
 * created and compares.
 */
async function applyDeclared(store: Store, config: NodeConfig, logger: Logger): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      const report = await applyResources(store, config);
      for (const e of report.entries) logger.info({ resource: e }, `${e.kind} "${e.name}": ${e.action}${e.published ? ' (published)' : ''}${e.warning ? ` — ${e.warning}` : ''}`);
      return;
    } catch (err) {
      const code = raceCode(err);
      if (code === undefined || attempt >= 5) throw err;
      logger.info({ code }, `resources: another node applied a declaration at the same time (${code}); applying again`);
      await new Promise((r) => setTimeout(r, 50 * attempt + Math.random() * 100));
    }
  }
}

const WORKER_CONFIG_ENV = 'PORTCULLIS_WORKER_CONFIG';
/** The highest sequence any worker of the node applied when this worker was forked: it never serves older state. */
const WORKER_FLOOR_ENV = 'PORTCULLIS_WORKER_FLOOR';
/** `1` when the node already served before this worker was forked (a replacement: waits out an unreachable store). */
const WORKER_REPLACEMENT_ENV = 'PORTCULLIS_WORKER_REPLACEMENT';
/** {@link WORKER_CONFIG_ENV} value meaning "the embedded defaults". */
const EMBEDDED_DEFAULTS = '-';

/** The config of `serve`: the file's, or the embedded defaults (paths relative to the working directory). */
async function readConfig(file: string | undefined, env: NodeJS.ProcessEnv): Promise<NodeConfig> {
  if (file === undefined || file === EMBEDDED_DEFAULTS) return configFromTree(resolve('portcullis (embedded defaults)'), {}, env);
  return loadConfig(file, env);
}

/** Builds the application logger (pino, JSON lines to stderr). */
export function createLogger(level: string): Logger {
  return pino({ level, base: { pid: process.pid } }, pino.destination(2));
}

/**
 * Starts everything the config describes. In a cluster worker (started by this
 * function in the primary) it runs only the data path and reports readiness.
 * @throws ConfigError for an invalid config (every problem listed) or resources that
 *   cannot be applied; Error when a listener or the admin address cannot be bound.
 */
export async function serve(options: ServeOptions): Promise<RunningServe | undefined> {
  if (cluster.isWorker && process.env[WORKER_CONFIG_ENV]) {
    await runWorker(process.env[WORKER_CONFIG_ENV]!, options);
    return undefined;
  }
  const env = options.env ?? process.env;
  if (options.configFile !== undefined) {
    // The same checks as `portcullis validate`, before anything is written: a config
    // that validate rejects never starts and never half-applies its resources.
    const v = await validateConfig(options.configFile, env);
    if (v.problems.length > 0) {
      const file = v.config?.file ?? options.configFile;
      throw new ConfigError(`${file}: ${v.problems.length} problem${v.problems.length === 1 ? '' : 's'}; nothing was started or changed:\n`
        + v.problems.map((p) => `  ${p.path ? `${p.path}: ` : ''}${p.message}`).join('\n'), { problems: v.problems });
    }
  }
  const config = await readConfig(options.configFile, env);
  const logger = options.logger ?? createLogger(config.logging.level);
  if (options.configFile === undefined) logger.info('no --config given: running on the embedded defaults (see examples/portcullis.yaml)');
  // The serving process's store: the admin API's and the node agent's. The database,
  // or — unreachable, with a local snapshot configured — the snapshot until it returns;
  // unreachable without one: refuse to start rather than serve empty state.
  const spec = nodeStoreSpecFromConfig(config);
  const store = await openNodeStore(spec, {
    onEvent: (e) => {
      if (e.type === 'snapshot') logger.warn({ err: e.error, snapshotFile: spec.snapshotFile }, `database unreachable at start: serving the local snapshot at sequence ${e.seq}; retrying the database every ${config.cluster.storeRetryMs} ms`);
      else if (e.type === 'connected') logger.info('database reachable: the node follows its change feed again');
    },
  });
  try {
    if (fallbackStatus(store)) logger.warn('resources: not applied (the database is unreachable); they are applied at the next start');
    else await applyDeclared(store, config, logger);
  } catch (err) {
    await store.close();
    throw err;
  }
  return serveWith(config, logger, store, options);
}

async function serveWith(config: NodeConfig, logger: Logger, store: Store, options: ServeOptions): Promise<RunningServe> {
  let token: Awaited<ReturnType<typeof resolveAdminToken>>;
  try {
    token = await resolveAdminToken(config.admin.token, config.dataDir);
  } catch (err) {
    await store.close();
    throw err;
  }
  if (token.origin === 'generated') logger.warn({ tokenFile: token.file }, `admin token generated into ${token.file} (mode 0600); send it as "Authorization: Bearer <token>"`);
  else if (token.origin === 'file') logger.info({ tokenFile: token.file }, `admin token read from ${token.file}`);
  if (token.repairedMode !== undefined) logger.warn({ tokenFile: token.file }, `admin token file ${token.file} was readable by others (mode ${token.repairedMode.toString(8)}); set to 0600`);

  try {
    if (config.workers <= 1) return await runSingle(config, logger, token.token, store, options);
    return await runPrimary(config, logger, token.token, store, options);
  } catch (err) {
    await store.close();
    throw err;
  }
}

async function runSingle(config: NodeConfig, logger: Logger, token: string, store: Store, options: ServeOptions): Promise<RunningServe> {
  const registry = new Registry();
  const node: GatewayNode = await startGatewayNode({ config, logger, registry, ...(options.stdout ? { stdout: options.stdout } : {}) });
  let admin: AdminServer | undefined;
  const agent = new NodeAgent({
    config, logger, store,
    progress: async (): Promise<NodeProgress> => {
      const p = await node.progress();
      return { appliedSeq: p.appliedSeq, degraded: p.degraded, starting: [], details: { listeners: node.listeners() } };
    },
    listeners: () => node.listeners(),
    adminAddress: () => (admin ? `${admin.address.host}:${admin.address.port}` : undefined),
  });
  try {
    await agent.tick();
    admin = await startAdminServer({
      listen: config.admin.listen, token,
      metrics: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
      readiness: () => agent.readiness(),
      ...(config.store.kind === 'postgres' ? { appliedSequence: () => agent.appliedSequence() } : {}),
      onError: (err, route) => logger.error({ err, route }, 'admin route failed'),
      api: adminApi(config, store, localOcspCache(node.revocation.cache)),
      connectionLog: node.connectionLogTap,
    });
  } catch (err) {
    await agent.close();
    await node.close();
    throw err;
  }
  const adminServer = admin;
  agent.start();
  logStarted(logger, node.listeners(), adminServer);
  return {
    config, logger, admin: adminServer,
    listeners: () => node.listeners(),
    close: async () => { await agent.close(); await adminServer.close(); await store.close(); await node.close(); },
  };
}

function logStarted(logger: Logger, listeners: { distribution: string; address: string; port: number }[], admin: AdminServer): void {
  for (const l of listeners) logger.info({ listener: l }, `distribution "${l.distribution}" listening on ${l.address.replace(/:\d+$/, `:${l.port}`)}`);
  if (listeners.length === 0) logger.warn('no distributions declared: nothing to serve yet (declare them under resources.distributions)');
  logger.info({ admin: admin.address }, `admin listener on ${admin.address.host}:${admin.address.port}`);
}

async function runWorker(configFile: string, options: ServeOptions): Promise<void> {
  const config = await readConfig(configFile, options.env ?? process.env);
  const logger = options.logger ?? createLogger(config.logging.level).child({ worker: cluster.worker?.id });
  const registry = new Registry();
  AggregatorRegistry.setRegistries([registry]);
  // Constructing one installs prom-client's worker-side listener that answers the
  // primary's metric requests (setRegistries alone does not).
  new AggregatorRegistry();
  const env = options.env ?? process.env;
  const floor = Number(env[WORKER_FLOOR_ENV] ?? '0') || 0;
  const replacement = env[WORKER_REPLACEMENT_ENV] === '1';
  let node: GatewayNode;
  let stopRequested = false;
  const earlyStop = (m: unknown): void => { if ((m as { type?: string })?.type === 'portcullis:stop') stopRequested = true; };
  process.on('message', earlyStop);
  let lastReason: string | undefined;
  try {
    node = await startWhenStoreAvailable({
      start: () => startGatewayNode({ config, logger, registry, minSequence: floor, ...(options.stdout ? { stdout: options.stdout } : {}) }),
      replacement,
      maxDelayMs: Math.max(config.cluster.storeRetryMs, 250),
      stopped: () => stopRequested,
      onWaiting: (reason, attempt, delayMs) => {
        if (reason !== lastReason) logger.warn({ attempt }, `worker not serving: ${reason}; retrying (next attempt in ${delayMs} ms)`);
        else logger.debug({ attempt }, `still ${reason}`);
        lastReason = reason;
        const m: WorkerWaiting = { type: 'portcullis:waiting', reason };
        if (process.connected) process.send?.(m);
      },
    });
  } catch (err) {
    if (stopRequested) process.exit(0);
    logger.fatal({ err }, `worker could not start: ${(err as Error).message}`);
    process.exit(1);
  }
  process.off('message', earlyStop);
  if (stopRequested) { await node.close(); process.exit(0); }
  if (lastReason !== undefined) logger.info(`worker serving again (was: ${lastReason})`);
  const ready: WorkerReady = { type: 'portcullis:ready', listeners: node.listeners() };
  process.send?.(ready);
  // What this worker's replicas have applied, for the primary's heartbeat.
  let reporting = false;
  const progressTimer = setInterval(() => {
    if (reporting) return;
    reporting = true;
    node.progress()
      .then((p) => { const m: WorkerProgress = { type: 'portcullis:progress', ...p }; process.send?.(m); })
      .catch((err: unknown) => logger.warn({ err }, 'could not collect the replicas\' progress'))
      .finally(() => { reporting = false; });
  }, PROGRESS_INTERVAL_MS);
  progressTimer.unref();
  const stop = (): void => {
    clearInterval(progressTimer);
    node.close().finally(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', () => { /* the primary decides */ });
  // Connection-log lines go to the primary only while a viewer is subscribed there,
  // with a bound on lines in flight: a slow channel drops lines, never blocks the gate.
  let untap: (() => void) | undefined;
  let inFlight = 0;
  const forward = (_line: unknown, json: string): void => {
    if (inFlight >= LOG_TAP_MAX_IN_FLIGHT || !process.connected) return;
    inFlight++;
    const msg: LogTapLine = { type: 'portcullis:log-line', json };
    try {
      process.send?.(msg, undefined, {}, () => { inFlight--; });
    } catch {
      inFlight--;
    }
  };
  process.on('message', (m: unknown) => {
    const type = (m as { type?: string })?.type;
    if (type === 'portcullis:stop') stop();
    if (type === 'portcullis:log-tap') {
      const on = (m as LogTapControl).on;
      if (on && !untap) untap = node.connectionLogTap.subscribe(forward);
      if (!on && untap) { untap(); untap = undefined; }
    }
    if (type === 'portcullis:ocsp-cache') {
      const req = m as OcspCacheRequest;
      const cache = node.revocation.cache;
      const reply: OcspCacheReply = req.op === 'list'
        ? { type: 'portcullis:ocsp-cache-reply', id: req.id, entries: cache.list() }
        : { type: 'portcullis:ocsp-cache-reply', id: req.id, purged: cache.purge(req.filter ?? {}) };
      process.send?.(reply);
    }
  });
}

async function runPrimary(config: NodeConfig, logger: Logger, token: string, store: Store, options: ServeOptions): Promise<RunningServe> {
  const aggregator = new AggregatorRegistry();
  const ready = new Map<number, WorkerReady>();
  const progress = new Map<number, WorkerProgress>();
  /** Workers not serving yet because their store is unreachable, and why. */
  const waiting = new Map<number, string>();
  /** The highest sequence any worker has applied: a worker forked now never serves older state. */
  let floor = 0;
  /** True once the node served (every first worker ready): later forks are replacements. */
  let served = false;
  let stopping = false;
  const recentDeaths: number[] = [];
  const cacheReplies = new Map<number, (r: OcspCacheReply) => void>();
  let nextCacheRequest = 1;
  // The admin API's connection-log stream: workers forward lines only while it has subscribers.
  const tellWorkers = (w: Worker, on: boolean): void => {
    const msg: LogTapControl = { type: 'portcullis:log-tap', on };
    if (!w.isDead() && w.isConnected()) w.send(msg);
  };
  const logTap = new ConnectionLogTap((active) => {
    for (const w of Object.values(cluster.workers ?? {})) if (w && ready.has(w.id)) tellWorkers(w, active);
  });
  // Workers run the same entry point (the CLI) as `serve --config FILE`; the
  // environment variable tells them to start only the data path.
  cluster.setupPrimary({ args: options.configFile === undefined ? ['serve'] : ['serve', '--config', config.file] });
  const fork = (): Worker => {
    const w = cluster.fork({
      ...(options.env ?? process.env),
      [WORKER_CONFIG_ENV]: options.configFile === undefined ? EMBEDDED_DEFAULTS : config.file,
      [WORKER_FLOOR_ENV]: String(floor),
      [WORKER_REPLACEMENT_ENV]: served ? '1' : '0',
    });
    w.on('message', (m: unknown) => {
      if ((m as WorkerReady)?.type === 'portcullis:ready') {
        ready.set(w.id, m as WorkerReady);
        waiting.delete(w.id);
        if (logTap.active) tellWorkers(w, true);
      }
      if ((m as WorkerWaiting)?.type === 'portcullis:waiting') {
        const reason = (m as WorkerWaiting).reason;
        if (waiting.get(w.id) !== reason) logger.warn({ worker: w.id }, `worker ${w.id} not serving: ${reason}`);
        waiting.set(w.id, reason);
      }
      if ((m as WorkerProgress)?.type === 'portcullis:progress') {
        const p = m as WorkerProgress;
        progress.set(w.id, p);
        if (p.appliedSeq > floor) floor = p.appliedSeq;
      }
      if ((m as LogTapLine)?.type === 'portcullis:log-line' && logTap.active) {
        try {
          const json = (m as LogTapLine).json;
          logTap.publish(JSON.parse(json) as ConnectionLogLine, json);
        } catch {
          // not a line: ignore
        }
      }
      if ((m as OcspCacheReply)?.type === 'portcullis:ocsp-cache-reply') cacheReplies.get((m as OcspCacheReply).id)?.((m as OcspCacheReply));
    });
    w.on('exit', (code, signal) => {
      ready.delete(w.id);
      progress.delete(w.id);
      waiting.delete(w.id);
      if (stopping) return;
      const now = Date.now();
      recentDeaths.push(now);
      while (recentDeaths.length && recentDeaths[0]! < now - 30_000) recentDeaths.shift();
      logger.error({ worker: w.id, code, signal }, `worker ${w.id} exited (${signal ?? code}); starting a replacement`);
      if (recentDeaths.length > config.workers * 3) {
        logger.fatal('workers keep exiting; giving up');
        process.exit(1);
      }
      setTimeout(() => { if (!stopping) fork(); }, 250);
    });
    return w;
  };
  for (let i = 0; i < config.workers; i++) fork();
  // Wait until every worker is up (or one fails at start).
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (ready.size >= config.workers) { clearInterval(timer); resolve(); }
      if (recentDeaths.length >= config.workers) { clearInterval(timer); reject(new Error('workers failed to start; see the log above')); }
    }, 50);
  });
  served = true;
  // The node's progress: the lowest sequence over every worker (a worker that has not
  // reported yet counts as not there), and every worker's reasons.
  const nodeProgress = async (): Promise<NodeProgress> => {
    const up = ready.size;
    const reports = [...ready.keys()].map((id) => progress.get(id));
    const known = reports.filter((r): r is WorkerProgress => r !== undefined);
    const starting = up >= config.workers ? [] : [`${config.workers - up} of ${config.workers} workers not ready`];
    for (const [id, reason] of waiting) starting.push(`worker ${id}: ${reason}`);
    if (known.length < reports.length) starting.push(`${reports.length - known.length} worker${reports.length - known.length === 1 ? '' : 's'} not reporting progress yet`);
    return {
      appliedSeq: known.length > 0 && known.length === reports.length ? Math.min(...known.map((r) => r.appliedSeq)) : undefined,
      degraded: [...new Set(known.flatMap((r) => r.degraded))],
      starting,
      details: { workersReady: up, workers: config.workers },
    };
  };
  const bound: { admin?: AdminServer } = {};
  const agent = new NodeAgent({
    config, logger, store, progress: nodeProgress,
    listeners: () => [...ready.values()][0]?.listeners ?? [],
    adminAddress: () => (bound.admin ? `${bound.admin.address.host}:${bound.admin.address.port}` : undefined),
  });
  const readiness = (): Readiness => agent.readiness();
  // The OCSP cache lives in each worker: ask every ready worker over cluster IPC.
  const askWorkers = (op: OcspCacheRequest['op'], filter?: OcspCachePurgeFilter): Promise<{ worker: number; reply: OcspCacheReply }[]> =>
    Promise.all(Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w && !w.isDead() && ready.has(w.id)).map((w) =>
      new Promise<{ worker: number; reply: OcspCacheReply }>((resolve, reject) => {
        const id = nextCacheRequest++;
        const timer = setTimeout(() => {
          cacheReplies.delete(id);
          reject(new Error(`worker ${w.id} did not answer the OCSP cache ${op} within ${OCSP_CACHE_IPC_TIMEOUT_MS} ms`));
        }, OCSP_CACHE_IPC_TIMEOUT_MS);
        cacheReplies.set(id, (reply) => { clearTimeout(timer); cacheReplies.delete(id); resolve({ worker: w.id, reply }); });
        const req: OcspCacheRequest = { type: 'portcullis:ocsp-cache', id, op, ...(filter ? { filter } : {}) };
        w.send(req);
      })));
  const clusterCache: OcspCacheControl = {
    list: async () => (await askWorkers('list')).flatMap(({ worker, reply }) => (reply.entries ?? []).map((e) => ({ ...e, worker }))),
    purge: async (filter) => (await askWorkers('purge', filter)).reduce((n, { reply }) => n + (reply.purged ?? 0), 0),
  };
  // The first heartbeat once every worker has reported what it applied.
  const reportedBy = Date.now() + 5000;
  while (progress.size < ready.size && Date.now() < reportedBy) await new Promise((r) => setTimeout(r, 25));
  await agent.tick();
  const adminServer = await startAdminServer({
    listen: config.admin.listen, token,
    metrics: async () => ({ contentType: aggregator.contentType, body: await aggregator.clusterMetrics() }),
    readiness,
    ...(config.store.kind === 'postgres' ? { appliedSequence: () => agent.appliedSequence() } : {}),
    onError: (err, route) => logger.error({ err, route }, 'admin route failed'),
    api: adminApi(config, store, clusterCache),
    connectionLog: logTap,
  });
  bound.admin = adminServer;
  agent.start();
  const first = (): WorkerReady['listeners'] => [...ready.values()][0]?.listeners ?? [];
  logStarted(logger, first(), adminServer);
  logger.info(`${config.workers} workers running`);
  return {
    config, logger, admin: adminServer, listeners: first,
    close: async () => {
      stopping = true;
      await agent.close();
      await adminServer.close();
      await store.close();
      await Promise.all(Object.values(cluster.workers ?? {}).map((w) => new Promise<void>((resolve) => {
        if (!w || w.isDead()) return resolve();
        w.once('exit', () => resolve());
        w.send({ type: 'portcullis:stop' });
        setTimeout(() => { if (!w.isDead()) w.kill('SIGKILL'); }, 15_000).unref();
      })));
    },
  };
}
