/**
 * One gateway process's data path: the function host (worker thread with the KVS
 * replica and LIVE functions), the revocation checker with its shared OCSP cache, the
 * origin proxy and the edge (listeners + gate), all on one Prometheus registry. Used by
 * `portcullis serve` in a single process and in every cluster worker.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import type { Logger } from 'pino';
import { Registry, Gauge } from 'prom-client';
import {
  functionLimitsFromConfig, nodeStoreSpecFromConfig, ocspCacheOptionsFromConfig, revocationOptionsFromConfig, type NodeConfig,
} from '../config/index.js';
import { FunctionHost } from '../functions/index.js';
import { OcspCache, RevocationChecker } from '../revocation/index.js';
import { ConnectionLogTap, Gateway, OriginProxy } from '../edge/index.js';
import { fallbackStatus, openNodeStore, type Store } from '../store/index.js';
import { ConfigError, StoreUnavailableError } from '../errors.js';

/** A running data path. */
export interface GatewayNode {
  readonly gateway: Gateway;
  readonly functions: FunctionHost;
  readonly revocation: RevocationChecker;
  readonly registry: Registry;
  /** This process's store (the database, or the local snapshot until the database returns). */
  readonly store: Store;
  /**
   * What this process's replicas have applied: the lower of the edge state's and the
   * function host's sequence, and why either may be stale (empty when neither).
   */
  progress(): Promise<{ appliedSeq: number; degraded: string[] }>;
  /** Every connection-log line this node writes, for live viewers (the admin API's stream). */
  readonly connectionLogTap: ConnectionLogTap;
  /** Listeners as bound (distribution, address, port). */
  listeners(): { distribution: string; address: string; port: number }[];
  /** Stops accepting, lets admitted connections finish (bounded), closes everything. */
  close(): Promise<void>;
}

/** Options of {@link startGatewayNode}. */
export interface GatewayNodeOptions {
  config: NodeConfig;
  logger: Logger;
  /** Registry for this node's metrics (default: a new one). */
  registry?: Registry;
  /** Where connection-log lines go when `logging.connectionLog` is `stdout` (default process.stdout). */
  stdout?: NodeJS.WritableStream;
  /**
   * The lowest change sequence this process may serve (cluster: the highest sequence
   * any worker of the node has already applied, told by the primary to a replacement
   * worker). When the database is unreachable and the local snapshot is older, the
   * node does not start (no listener is opened): {@link SnapshotBehindError}. Default 0.
   */
  minSequence?: number;
}

/**
 * The database is unreachable and the local snapshot is older than what this node
 * already enforced (another worker of the node applied sequence `floor`): serving it
 * would re-admit what was revoked since (fail open). The worker waits for the
 * database instead. A StoreUnavailableError (code `StoreUnavailable`).
 */
export class SnapshotBehindError extends StoreUnavailableError {
  constructor(readonly snapshotSeq: number, readonly floor: number) {
    super(`waiting for the database: the snapshot (seq ${snapshotSeq}) is older than what this node already enforced (seq ${floor})`);
  }
}

/**
 * Opens the store (store/ `openNodeStore`: the database, or the local snapshot when the
 * database is unreachable and one is configured), starts the function host, the
 * revocation checker, the proxy and the edge. Expects the declared resources to be
 * applied already (the primary does that once).
 * @throws StoreUnavailableError when the database is unreachable and there is no
 *   usable snapshot; {@link SnapshotBehindError} when it is unreachable and the
 *   snapshot is older than `minSequence`; the edge's errors (e.g. an address in use) with what failed.
 */
export async function startGatewayNode(options: GatewayNodeOptions): Promise<GatewayNode> {
  const { config, logger } = options;
  const registry = options.registry ?? new Registry();
  const closers: (() => Promise<unknown>)[] = [];
  const closeAll = async (): Promise<void> => {
    for (const c of closers.splice(0).reverse()) await c().catch((err: unknown) => logger.warn({ err }, 'error while closing'));
  };
  try {
    const spec = nodeStoreSpecFromConfig(config);
    const store: Store = await openNodeStore(spec, {
      onEvent: (e) => {
        if (e.type === 'connected') logger.info('database reachable: following its change feed from the snapshot\'s sequence');
        else if (e.type === 'snapshot') logger.warn({ err: e.error }, `database unreachable at start: serving the local snapshot ${spec.snapshotFile} at sequence ${e.seq}`);
        else if (e.type === 'cluster-mismatch') logger.error({ snapshotClusterId: e.snapshotClusterId, databaseClusterId: e.databaseClusterId }, `the database has cluster id ${e.databaseClusterId} but the local snapshot served came from cluster id ${e.snapshotClusterId}: reloading the whole state from the database`);
        else logger.debug({ err: e.error }, 'database still unreachable');
      },
    });
    closers.push(() => store.close());
    const floor = options.minSequence ?? 0;
    const fb = fallbackStatus(store);
    if (fb && !fb.connected && fb.snapshotSeq < floor) throw new SnapshotBehindError(fb.snapshotSeq, floor);
    const functions = await FunctionHost.start({
      store: spec,
      limits: functionLimitsFromConfig(config),
      onEvent: (e) => {
        const level = e.type === 'loaded' || e.type === 'worker-restarted' ? 'info' : 'warn';
        logger[level]({ functionEvent: e }, e.message);
      },
    });
    closers.push(() => functions.close());
    if (floor > 0) {
      // The function host (KVS replicas) opened its own store: it may have fallen back
      // to the snapshot if the database went away in between. Checked before any listener.
      const hs = await functions.status();
      if (hs.appliedSequence < floor) throw new SnapshotBehindError(hs.appliedSequence, floor);
    }
    const cache = new OcspCache(ocspCacheOptionsFromConfig(config));
    const revocation = new RevocationChecker({ ...revocationOptionsFromConfig(config), cache });
    const proxy = new OriginProxy({ logger: logger.child({ component: 'proxy' }), metrics: registry });
    closers.push(() => proxy.close());
    let connectionLog: NodeJS.WritableStream;
    if (config.logging.connectionLog === 'stdout') {
      connectionLog = options.stdout ?? process.stdout;
    } else {
      const file: WriteStream = createWriteStream(config.logging.connectionLog, { flags: 'a' });
      await new Promise<void>((resolve, reject) => {
        file.once('open', () => resolve());
        file.once('error', (err) => reject(new ConfigError(`${config.file}: logging.connectionLog: cannot open ${config.logging.connectionLog}: ${err.message}`)));
      });
      connectionLog = file;
      closers.push(() => new Promise<void>((r) => file.end(() => r())));
    }
    registerHostGauges(registry, functions);
    const connectionLogTap = new ConnectionLogTap();
    const gateway = await Gateway.start({
      store, functions, revocation, handler: proxy, connectionLog, connectionLogTap, logger: logger.child({ component: 'edge' }), metrics: registry,
      listenOverrides: config.listenOverrides,
    });
    closers.push(() => gateway.close());
    let lastFunctionSeq = 0;
    const progress = async (): Promise<{ appliedSeq: number; degraded: string[] }> => {
      const degraded: string[] = [];
      const fb = fallbackStatus(store);
      if (fb && !fb.connected) degraded.push(`serving the local snapshot at sequence ${fb.snapshotSeq} (the database was unreachable at start)`);
      const edge = gateway.state;
      if (edge.degraded) degraded.push(`edge: change feed unreachable; serving the last applied state at sequence ${edge.sequence}`);
      const fs = await functions.status().catch((err: unknown) => err as Error);
      if (fs instanceof Error) {
        // Never claim more than the function host last said it applied.
        degraded.push(`function host status unavailable: ${fs.message}`);
        return { appliedSeq: Math.min(edge.sequence, lastFunctionSeq), degraded };
      }
      lastFunctionSeq = fs.appliedSequence;
      if (fs.degraded && !(fb && !fb.connected)) degraded.push(`function host: ${fs.degraded}`);
      return { appliedSeq: Math.min(edge.sequence, fs.appliedSequence), degraded };
    };
    return {
      gateway, functions, revocation, registry, store, progress, connectionLogTap,
      listeners: () => gateway.listeners(),
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/** KVS item counts and the applied change sequence, read from the function host at scrape time. */
function registerHostGauges(registry: Registry, functions: FunctionHost): void {
  type Status = Awaited<ReturnType<FunctionHost['status']>>;
  // One status read per scrape, shared by the three gauges.
  let pending: Promise<Status | undefined> | undefined;
  const status = (): Promise<Status | undefined> => {
    pending ??= functions.status().catch(() => undefined).finally(() => { setImmediate(() => { pending = undefined; }); });
    return pending;
  };
  new Gauge({
    name: 'portcullis_kvs_items', help: 'Items in each KeyValueStore replica (cluster: the lowest among workers)', labelNames: ['kvs'], registers: [registry], aggregator: 'min',
    async collect() {
      const s = await status();
      this.reset();
      for (const k of s?.kvs ?? []) this.set({ kvs: k.name }, k.itemCount);
    },
  });
  new Gauge({
    name: 'portcullis_applied_change_sequence', help: 'Last change-feed sequence applied by the function host (cluster: the lowest among workers, i.e. reached by all)', registers: [registry], aggregator: 'min',
    async collect() { const s = await status(); if (s) this.set(s.appliedSequence); },
  });
  new Gauge({
    name: 'portcullis_function_host_restarts', help: 'Function worker restarts (watchdog or crash)', registers: [registry],
    async collect() { const s = await status(); if (s) this.set(s.restarts); },
  });
}
