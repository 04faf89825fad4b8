/**
 * The node agent of cluster mode (issue 8), run by the serving process (the single
 * process, or the primary of node:cluster workers):
 * - heartbeat: every `cluster.heartbeatIntervalMs` it upserts the node's row in the
 *   node table with the change sequence every replica of the node has applied (the
 *   minimum over the edge state and the function host's replicas of every process),
 *   its readiness and reasons; `GET /v1/nodes` lists the rows. A failed heartbeat is
 *   how the node notices that the database is unreachable: `/readyz` turns `degraded`
 *   with the reason while the replicas keep serving their last applied state, and the
 *   heartbeats resume when the database returns;
 * - local snapshot (`cluster.snapshotFile`): after changes, at most every
 *   `cluster.snapshotIntervalMs`, and only while the database is reachable, the state
 *   is written atomically to the snapshot a node can start from while the database is
 *   down;
 * - change-log pruning: change records older than `cluster.changeRetentionSeconds`
 *   are deleted (any node may do it; a replica further behind reloads everything).
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { NodeConfig } from '../config/index.js';
import type { Readiness } from '../admin/index.js';
import { fallbackStatus, writeNodeSnapshot, type NodeRecord, type Store } from '../store/index.js';

/** What the node's replicas have applied, as collected from its processes. */
export interface NodeProgress {
  /** The lowest applied change sequence over every replica; undefined while some process has not reported. */
  appliedSeq: number | undefined;
  /** Why some replica may be stale (change feed unreachable, serving the snapshot). */
  degraded: string[];
  /** Why the node is not fully up yet (workers starting). */
  starting: string[];
  /** Facts for `/readyz` details. */
  details?: Record<string, unknown>;
}

/** Options of {@link NodeAgent}. */
export interface NodeAgentOptions {
  config: NodeConfig;
  logger: Logger;
  /** The serving process's store handle (the admin API's); not closed by the agent. */
  store: Store;
  /** Collects the node's progress (the processes' replicas). */
  progress: () => Promise<NodeProgress>;
  /** The edge listeners as bound. */
  listeners: () => { distribution: string; address: string; port: number }[];
  /** The admin listener as `host:port`, when bound. */
  adminAddress: () => string | undefined;
  /** Clock, ms (tests). */
  now?: () => number;
}

/** Version of this build (package.json), for the node table. */
export const PORTCULLIS_VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
})();

/** The node's name in the cluster: `nodeName`, else the host name. */
export function nodeNameOf(config: Pick<NodeConfig, 'nodeName'>): string {
  return config.nodeName ?? hostname();
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** How long a heartbeat write may take before the database counts as unreachable, ms. */
function heartbeatTimeoutMs(intervalMs: number): number {
  return Math.max(2000, 2 * intervalMs);
}

/** The node agent. {@link start} it once the data path runs; {@link close} stops it. */
export class NodeAgent {
  readonly name: string;
  readonly startedAt: number;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #ticking: Promise<void> | undefined;
  #heartbeatPending = false;
  /** When heartbeats started failing (the database unreachable), and why. */
  #dbDown: { since: number; error: string } | undefined;
  #progress: NodeProgress = { appliedSeq: undefined, degraded: [], starting: ['starting'] };
  #lastSnapshot: { seq: number; clusterId: string; at: number } | undefined;
  #snapshotFailing = false;
  #lastPruneAt = 0;
  #pruning = false;
  readonly #now: () => number;

  constructor(private readonly opts: NodeAgentOptions) {
    this.name = nodeNameOf(opts.config);
    this.#now = opts.now ?? Date.now;
    this.startedAt = this.#now();
  }

  /** Starts the periodic work (the first heartbeat at once). */
  start(): void {
    this.#schedule(0);
  }

  #schedule(delay: number): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#ticking = this.tick().finally(() => {
        this.#ticking = undefined;
        this.#schedule(this.opts.config.cluster.heartbeatIntervalMs);
      });
    }, delay);
    this.#timer.unref();
  }

  /** One round: collect progress, heartbeat, snapshot, prune. Never throws. */
  async tick(): Promise<void> {
    try {
      this.#progress = await this.opts.progress();
    } catch (err) {
      this.opts.logger.warn({ err }, `node agent: could not collect the replicas' progress: ${message(err)}`);
    }
    await this.#heartbeat();
    if (this.#dbDown === undefined && !this.#closed) {
      await this.#snapshot();
      await this.#prune();
    }
  }

  /** `/readyz`: ok, starting (a process not up yet) or degraded (with why), always with the applied sequence. */
  readiness(): Readiness {
    const p = this.#progress;
    const reasons = [...new Set([...this.#dbReasons(), ...p.degraded])];
    const details = {
      node: this.name, appliedSequence: p.appliedSeq ?? null, ...(p.details ?? {}),
      ...(this.#dbDown ? { databaseUnreachableSince: new Date(this.#dbDown.since).toISOString() } : {}),
    };
    if (p.starting.length > 0) {
      // Some process is not serving yet; with at least one serving, the node is degraded.
      const up = p.appliedSeq !== undefined || (p.details?.workersReady as number | undefined ?? 0) > 0;
      return { ready: up, status: up ? 'degraded' : 'starting', reasons: [...p.starting, ...reasons], details };
    }
    if (reasons.length > 0) return { ready: true, status: 'degraded', reasons, details };
    return { ready: true, status: 'ok', reasons: [], details };
  }

  #dbReasons(): string[] {
    const applied = this.#progress.appliedSeq;
    const fb = fallbackStatus(this.opts.store);
    if (fb && !fb.connected) {
      const written = fb.snapshotWrittenAt !== undefined ? ` written at ${new Date(fb.snapshotWrittenAt).toISOString()}` : '';
      return [`the database has been unreachable since this node started (${new Date(fb.since).toISOString()}${fb.lastError ? `: ${fb.lastError}` : ''}); serving the local snapshot at sequence ${fb.snapshotSeq}${written}`];
    }
    if (this.#dbDown) {
      return [`the database has been unreachable since ${new Date(this.#dbDown.since).toISOString()} (${this.#dbDown.error}); serving the last applied state at sequence ${applied ?? 'unknown'}; writes are refused`];
    }
    return [];
  }

  async #heartbeat(): Promise<void> {
    if (this.#heartbeatPending) return; // the previous one still hangs on the database
    const ready = this.readiness();
    const nodes = this.opts.store.nodes;
    const record: NodeRecord = {
      name: this.name, startedAt: this.startedAt, heartbeatAt: this.#now(), appliedSeq: this.#progress.appliedSeq ?? 0,
      version: PORTCULLIS_VERSION, pid: process.pid, host: hostname(), adminAddress: this.opts.adminAddress() ?? null,
      listeners: this.opts.listeners(), status: ready.status, reasons: ready.reasons,
    };
    this.#heartbeatPending = true;
    const write = nodes ? nodes.heartbeat(record) : Promise.reject(new Error('serving the local snapshot; the database has not been reached yet'));
    const settled = write.then(() => undefined, (err: unknown) => err).finally(() => { this.#heartbeatPending = false; });
    let timer: NodeJS.Timeout | undefined;
    const timeoutMs = heartbeatTimeoutMs(this.opts.config.cluster.heartbeatIntervalMs);
    const result = await Promise.race([
      settled,
      new Promise<Error>((resolve) => { timer = setTimeout(() => resolve(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs); }),
    ]);
    clearTimeout(timer);
    if (result === undefined) {
      if (this.#dbDown) {
        this.opts.logger.info({ downSince: new Date(this.#dbDown.since).toISOString() }, `database reachable again (heartbeat of node "${this.name}" recorded); replicas catch up from the change feed`);
        this.#dbDown = undefined;
      }
      return;
    }
    if (fallbackStatus(this.opts.store)?.connected === false) return; // reported by #dbReasons
    if (!this.#dbDown) {
      this.#dbDown = { since: this.#now(), error: message(result) };
      this.opts.logger.error({ err: result }, `database unreachable (heartbeat failed: ${message(result)}); serving the last applied state, writes are refused`);
    } else {
      this.#dbDown.error = message(result);
      this.opts.logger.debug({ err: result }, 'heartbeat failed again');
    }
  }

  async #snapshot(): Promise<void> {
    const { snapshotFile, snapshotIntervalMs } = this.opts.config.cluster;
    if (snapshotFile === undefined) return;
    const fb = fallbackStatus(this.opts.store);
    if (fb && !fb.connected) return; // only from the database, never from the snapshot itself
    const now = this.#now();
    if (this.#lastSnapshot && now - this.#lastSnapshot.at < snapshotIntervalMs) return;
    try {
      const latest = await this.opts.store.latestSequence();
      // Unchanged only when the same database is at the same sequence: a database that
      // was replaced or restored may be at a lower (or equal) sequence with other state.
      const clusterId = await this.opts.store.clusterId();
      if (this.#lastSnapshot && latest === this.#lastSnapshot.seq && clusterId === this.#lastSnapshot.clusterId) return;
      const r = await writeNodeSnapshot(this.opts.store, snapshotFile);
      this.#lastSnapshot = { seq: r.seq, clusterId: r.clusterId, at: now };
      if (this.#snapshotFailing) this.opts.logger.info({ snapshotFile }, 'local snapshot written again');
      this.#snapshotFailing = false;
      this.opts.logger.debug({ snapshotFile, seq: r.seq, bytes: r.bytes }, `local snapshot at sequence ${r.seq} written (${r.bytes} bytes)`);
    } catch (err) {
      // Retried at the next interval; the previous snapshot stays in place (atomic writes).
      this.#lastSnapshot = { seq: this.#lastSnapshot?.seq ?? -1, clusterId: this.#lastSnapshot?.clusterId ?? '', at: now };
      if (!this.#snapshotFailing) this.opts.logger.warn({ err, snapshotFile }, `could not write the local snapshot ${snapshotFile}: ${message(err)}`);
      this.#snapshotFailing = true;
    }
  }

  async #prune(): Promise<void> {
    const retentionMs = this.opts.config.cluster.changeRetentionSeconds * 1000;
    const now = this.#now();
    // Checked ten times per retention period, at most every 10 minutes.
    if (this.#pruning || now - this.#lastPruneAt < Math.min(retentionMs / 10, 600_000)) return;
    const nodes = this.opts.store.nodes;
    if (!nodes) return;
    this.#pruning = true;
    this.#lastPruneAt = now;
    try {
      const seq = await nodes.sequenceCommittedBefore(now - retentionMs);
      if (seq > 0) {
        const n = await this.opts.store.pruneChanges(seq);
        if (n > 0) this.opts.logger.info({ prunedThrough: seq, removed: n }, `change log: ${n} record${n === 1 ? '' : 's'} older than ${this.opts.config.cluster.changeRetentionSeconds} s pruned (through sequence ${seq})`);
      }
    } catch (err) {
      this.opts.logger.warn({ err }, `change-log pruning failed: ${message(err)}`);
    } finally {
      this.#pruning = false;
    }
  }

  /** Stops the periodic work (waits for a running round). Leaves the node's row in place (it turns stale). */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    // A round hanging on an unreachable database does not hold the shutdown for long.
    await Promise.race([this.#ticking, new Promise((r) => setTimeout(r, 3000).unref())]);
  }
}
