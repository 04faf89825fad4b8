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
 * - local snapshot (`cluster.snapshotFile`): soon after every change (checked every
 *   `cluster.snapshotIntervalMs`, default 1 s, off the heartbeat path), and only while
 *   the database is reachable, the state is written atomically to the snapshot a node
 *   can start from while the database is down. A snapshot behind what the node applied
 *   (while the database is down, or for longer than max(2 s, 2 × the interval)) and a
 *   failing write are readiness reasons: the operator sees that a restart during an
 *   outage would not have the latest state;
 * - change-log pruning: change records older than `cluster.changeRetentionSeconds`
 *   are deleted (any node may do it; a replica further behind reloads everything).
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { NodeConfig } from '../config/index.js';
import type { Readiness } from '../admin/index.js';
import { fallbackStatus, processAlive, readSnapshotInfo, writeNodeSnapshot, type NodeRecord, type Store } from '../store/index.js';
import { NodeNameConflictError } from '../errors.js';

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

/** Waits for `p` at most `ms`; true when it settled in time. */
async function raceTimeout(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = await Promise.race([p.then(() => true, () => true), new Promise<false>((r) => { timer = setTimeout(() => r(false), ms); })]);
  clearTimeout(timer);
  return settled;
}

/** The node agent. {@link start} it once the data path runs; {@link close} stops it. */
export class NodeAgent {
  readonly name: string;
  readonly startedAt: number;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #ticking: Promise<void> | undefined;
  /** The heartbeat write in flight (a frozen database may hold it until its query timeout). */
  #heartbeatPending: Promise<void> | undefined;
  /** The progress collection in flight. */
  #progressPending: Promise<void> | undefined;
  /** When a heartbeat last succeeded (ms); readiness is derived from it. */
  #lastHeartbeatOkAt: number | undefined;
  /** Since when heartbeats fail (first failure after the last success), and the last error. */
  #heartbeatFailure: { since: number; error: string } | undefined;
  /** Whether the outage was logged (the log says it once per outage). */
  #downLogged = false;
  #progress: NodeProgress = { appliedSeq: undefined, degraded: [], starting: ['starting'] };
  /** Sequence of the snapshot on disk: -1 none, undefined not read yet. */
  #snapshotSeq: number | undefined;
  /** Cluster id of the database the snapshot on disk was written from (undefined: unknown → rewrite). */
  #snapshotClusterId: string | undefined;
  /** When the last snapshot write was attempted (ms). */
  #snapshotAttemptAt = 0;
  /** Since when the snapshot has been behind the applied sequence (ms), while it is. */
  #snapshotBehindSince: number | undefined;
  /** The snapshot write failing: since when, and why (a readiness reason until a write succeeds). */
  #snapshotError: { since: number; error: string } | undefined;
  #snapshotting: Promise<void> | undefined;
  #snapshotTimer: NodeJS.Timeout | undefined;
  #lastPruneAt = 0;
  #pruning: Promise<void> | undefined;
  /** Another process heartbeating under this node's name: who, and when last seen (ms). */
  #duplicate: { host: string; pid: number; startedAt: number; seenAt: number } | undefined;
  #duplicateCheck: Promise<void> | undefined;
  /** True once one of this process's heartbeats was recorded (a foreign row seen after that was written by a live node). */
  #recordedOnce = false;
  readonly #now: () => number;

  constructor(private readonly opts: NodeAgentOptions) {
    this.name = nodeNameOf(opts.config);
    this.#now = opts.now ?? Date.now;
    this.startedAt = this.#now();
  }

  /** Starts the periodic work (the first heartbeat at once). */
  start(): void {
    this.#schedule(0);
    const { snapshotFile, snapshotIntervalMs } = this.opts.config.cluster;
    if (snapshotFile !== undefined) {
      // The snapshot follows applied changes within snapshotIntervalMs (default 1 s),
      // independently of the heartbeat rounds (a long write never delays a heartbeat).
      this.#snapshotTimer = setInterval(() => { if (!this.#databaseDown()) this.#background(); }, snapshotIntervalMs);
      this.#snapshotTimer.unref();
    }
  }

  /** Starts the snapshot and pruning work when not already running (never awaited by the tick). */
  #background(): void {
    if (this.#closed) return;
    this.#snapshotting ??= this.#snapshot().finally(() => { this.#snapshotting = undefined; });
    this.#pruning ??= this.#prune().finally(() => { this.#pruning = undefined; });
  }

  /** Resolves when the snapshot write and pruning in flight (if any) are done (tests, close). */
  async settled(): Promise<void> {
    await Promise.all([this.#snapshotting, this.#pruning, this.#duplicateCheck]);
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

  /**
   * One round: collect progress, heartbeat, snapshot, prune. Never throws, and never
   * waits longer than the heartbeat timeout (max(2 s, 2 × heartbeatIntervalMs)) for
   * the progress or for its heartbeat; a heartbeat still pending from an earlier round
   * is not waited for at all (no second one is started).
   */
  async tick(): Promise<void> {
    const timeoutMs = heartbeatTimeoutMs(this.opts.config.cluster.heartbeatIntervalMs);
    if (!this.#progressPending) {
      const collecting = this.opts.progress().then(
        (p) => { this.#progress = p; },
        (err: unknown) => { this.opts.logger.warn({ err }, `node agent: could not collect the replicas' progress: ${message(err)}`); },
      ).finally(() => { this.#progressPending = undefined; });
      this.#progressPending = collecting;
      // A hanging collection delays the heartbeat by at most one interval (it then carries the last progress).
      await raceTimeout(collecting, Math.min(timeoutMs, this.opts.config.cluster.heartbeatIntervalMs));
    }
    // Before our heartbeat overwrites the row: who else wrote it (a duplicate nodeName).
    if (!this.#duplicateCheck && !this.#heartbeatPending && !this.#closed) {
      this.#duplicateCheck = this.#checkDuplicate().finally(() => { this.#duplicateCheck = undefined; });
      await raceTimeout(this.#duplicateCheck, timeoutMs);
    }
    await this.#heartbeat(timeoutMs);
    const down = this.#databaseDown();
    if (down && !this.#downLogged && !(fallbackStatus(this.opts.store)?.connected === false)) {
      this.#downLogged = true;
      this.opts.logger.error(`database unreachable (no heartbeat recorded since ${new Date(down.since).toISOString()}: ${down.error}); serving the last applied state, writes are refused`);
    }
    this.#trackSnapshotLag();
    if (!down) this.#background();
  }

  /** Notes since when the snapshot on disk has been behind what the node applied. */
  #trackSnapshotLag(): void {
    const applied = this.#progress.appliedSeq;
    const behind = this.opts.config.cluster.snapshotFile !== undefined && applied !== undefined
      && this.#snapshotSeq !== undefined && applied > this.#snapshotSeq;
    if (!behind) this.#snapshotBehindSince = undefined;
    else this.#snapshotBehindSince ??= this.#now();
  }

  /**
   * Readiness reasons of the local snapshot: its writes failing (until one succeeds),
   * or it being behind what the node applied — while the database is unreachable (it
   * cannot catch up then), or for longer than max(2 s, 2 × snapshotIntervalMs) — as a
   * restart now would serve the older state.
   */
  #snapshotReasons(down: boolean): string[] {
    const { snapshotFile, snapshotIntervalMs } = this.opts.config.cluster;
    if (snapshotFile === undefined) return [];
    const reasons: string[] = [];
    if (this.#snapshotError) {
      reasons.push(`the local snapshot ${snapshotFile} (cluster.snapshotFile) cannot be written (failing since ${new Date(this.#snapshotError.since).toISOString()}: ${this.#snapshotError.error}); a restart while the database is unreachable would not have this node's latest state`);
    }
    const applied = this.#progress.appliedSeq;
    const snap = this.#snapshotSeq;
    if (this.#snapshotBehindSince !== undefined && applied !== undefined && snap !== undefined && applied > snap
      && (down || this.#now() - this.#snapshotBehindSince > Math.max(2000, 2 * snapshotIntervalMs))) {
      reasons.push(snap < 0
        ? `no local snapshot written yet while this node applied sequence ${applied}; a restart while the database is unreachable would refuse to start`
        : `the local snapshot (sequence ${snap}) is behind what this node applied (sequence ${applied}); a restart while the database is unreachable would serve sequence ${snap}`);
    }
    return reasons;
  }

  /**
   * The database counts as unreachable when the last heartbeat failed, or when none
   * succeeded within the heartbeat timeout while one is pending (a frozen database
   * answers nothing, not even an error, until its query timeout). A round merely
   * delayed (a busy event loop, no heartbeat in flight) does not count.
   */
  #databaseDown(): { since: number; error: string } | undefined {
    if (this.#heartbeatFailure) return this.#heartbeatFailure;
    const now = this.#now();
    const windowMs = heartbeatTimeoutMs(this.opts.config.cluster.heartbeatIntervalMs);
    const last = this.#lastHeartbeatOkAt ?? this.startedAt;
    if (this.#heartbeatPending && now - last > windowMs) return { since: last, error: `no heartbeat answered for ${now - last} ms (timeout ${windowMs} ms)` };
    return undefined;
  }

  /** The lowest sequence the node's replicas have applied (last collected), undefined before any report. */
  appliedSequence(): number | undefined {
    return this.#progress.appliedSeq;
  }

  /** `/readyz`: ok, starting (a process not up yet) or degraded (with why), always with the applied sequence. */
  readiness(): Readiness {
    const p = this.#progress;
    const down = this.#databaseDown();
    const reasons = [...new Set([...this.#duplicateReasons(), ...this.#dbReasons(down), ...this.#snapshotReasons(down !== undefined), ...p.degraded])];
    const details = {
      node: this.name, appliedSequence: p.appliedSeq ?? null, ...(p.details ?? {}),
      ...(down ? { databaseUnreachableSince: new Date(down.since).toISOString() } : {}),
    };
    if (p.starting.length > 0) {
      // Some process is not serving yet; with at least one serving, the node is degraded.
      const up = p.appliedSeq !== undefined || (p.details?.workersReady as number | undefined ?? 0) > 0;
      return { ready: up, status: up ? 'degraded' : 'starting', reasons: [...p.starting, ...reasons], details };
    }
    if (reasons.length > 0) return { ready: true, status: 'degraded', reasons, details };
    return { ready: true, status: 'ok', reasons: [], details };
  }

  #dbReasons(down: { since: number; error: string } | undefined): string[] {
    const applied = this.#progress.appliedSeq;
    const fb = fallbackStatus(this.opts.store);
    if (fb && !fb.connected) {
      const written = fb.snapshotWrittenAt !== undefined ? ` written at ${new Date(fb.snapshotWrittenAt).toISOString()}` : '';
      return [`the database has been unreachable since this node started (${new Date(fb.since).toISOString()}${fb.lastError ? `: ${fb.lastError}` : ''}); serving the local snapshot at sequence ${fb.snapshotSeq}${written}`];
    }
    if (down) {
      return [`the database has been unreachable since ${new Date(down.since).toISOString()} (${down.error}); serving the last applied state at sequence ${applied ?? 'unknown'}; writes are refused`];
    }
    return [];
  }

  async #heartbeat(timeoutMs: number): Promise<void> {
    if (this.#heartbeatPending) return; // the previous one still hangs on the database: readiness ages it out
    const ready = this.readiness();
    const nodes = this.opts.store.nodes;
    const record: NodeRecord = {
      name: this.name, startedAt: this.startedAt, heartbeatAt: this.#now(), appliedSeq: this.#progress.appliedSeq ?? 0,
      version: PORTCULLIS_VERSION, pid: process.pid, host: hostname(), adminAddress: this.opts.adminAddress() ?? null,
      listeners: this.opts.listeners(), status: ready.status, reasons: ready.reasons,
    };
    const write: Promise<unknown> = nodes
      ? nodes.heartbeat(record, { staleAfterMs: this.opts.config.cluster.staleAfterMs }).catch((err: unknown) => {
        // The store refused to overwrite another live process's row of this name: the
        // database answered (it is reachable); the conflict is a readiness reason.
        if (err instanceof NodeNameConflictError) return { conflict: err.existing };
        throw err;
      })
      : Promise.reject(new Error('serving the local snapshot; the database has not been reached yet'));
    const pending = write.then((result) => {
      this.#noteHeartbeatConflict(result);
      // Our row is recorded unless the store refused it (a conflict); the database answered either way.
      if (!(result as { conflict?: unknown } | undefined)?.conflict) this.#recordedOnce = true;
      const failure = this.#heartbeatFailure ?? this.#databaseDown();
      this.#lastHeartbeatOkAt = this.#now();
      this.#heartbeatFailure = undefined;
      if (this.#downLogged) {
        this.opts.logger.info({ downSince: failure ? new Date(failure.since).toISOString() : undefined }, `database reachable again (heartbeat of node "${this.name}" recorded); replicas catch up from the change feed`);
      }
      this.#downLogged = false;
    }, (err: unknown) => {
      if (this.#heartbeatFailure) {
        this.#heartbeatFailure.error = message(err);
        this.opts.logger.debug({ err }, 'heartbeat failed again');
      } else {
        this.#heartbeatFailure = { since: this.#now(), error: message(err) };
      }
    }).finally(() => { this.#heartbeatPending = undefined; });
    this.#heartbeatPending = pending;
    if (!(await raceTimeout(pending, timeoutMs)) && !this.#heartbeatFailure) {
      this.#heartbeatFailure = { since: this.#lastHeartbeatOkAt ?? this.startedAt, error: `no answer within ${timeoutMs} ms` };
    }
  }

  /**
   * Duplicate `nodeName` detection (two processes heartbeating under one name make
   * `GET /v1/nodes` lie): the row of this name written by another process (host, pid,
   * start time) is a conflict when it was written after one of ours (the other one is
   * alive), or — before our first heartbeat, where it may be a predecessor's last
   * row — when it is fresh (younger than staleAfterMs) and its process runs on this
   * host. Logged as an error; a readiness reason while seen within staleAfterMs.
   */
  async #checkDuplicate(): Promise<void> {
    const nodes = this.opts.store.nodes;
    if (!nodes) return;
    let row: NodeRecord | undefined;
    try {
      row = (await nodes.list()).find((r) => r.name === this.name);
    } catch {
      return; // the heartbeat reports the database
    }
    if (!row || (row.host === hostname() && row.pid === process.pid && row.startedAt === this.startedAt)) return;
    const now = this.#now();
    const fresh = now - row.heartbeatAt < this.opts.config.cluster.staleAfterMs;
    if (this.#recordedOnce || (fresh && row.host === hostname() && processAlive(row.pid))) {
      this.#noteDuplicate({ host: row.host, pid: row.pid, startedAt: row.startedAt });
    }
  }

  /**
   * A conflict result of the heartbeat upsert (the store's NodeNameConflictError: a
   * fresh row of this name written by another instance): `{ conflict: { host, pid, startedAt } }`.
   * Stores returning nothing leave detection to {@link #checkDuplicate}.
   */
  #noteHeartbeatConflict(result: unknown): void {
    const c = (result as { conflict?: { host?: unknown; pid?: unknown; startedAt?: unknown } } | undefined)?.conflict;
    if (!c || typeof c !== 'object') return;
    this.#noteDuplicate({ host: String(c.host ?? 'unknown host'), pid: Number(c.pid ?? 0), startedAt: Number(c.startedAt ?? 0) });
  }

  #noteDuplicate(other: { host: string; pid: number; startedAt: number }): void {
    const same = this.#duplicate && this.#duplicate.host === other.host && this.#duplicate.pid === other.pid && this.#duplicate.startedAt === other.startedAt;
    if (!same) {
      this.opts.logger.error({ other }, `another node is heartbeating as ${this.name} (${other.host}, pid ${other.pid}); give every node its own nodeName`);
    }
    this.#duplicate = { ...other, seenAt: this.#now() };
  }

  #duplicateReasons(): string[] {
    const d = this.#duplicate;
    if (!d || this.#now() - d.seenAt > this.opts.config.cluster.staleAfterMs) return [];
    return [`another node is heartbeating as ${this.name} (${d.host}, pid ${d.pid})`];
  }

  async #snapshot(): Promise<void> {
    const { snapshotFile, snapshotIntervalMs } = this.opts.config.cluster;
    if (snapshotFile === undefined) return;
    const fb = fallbackStatus(this.opts.store);
    if (this.#snapshotSeq === undefined) {
      // What is on disk already (a restart): the baseline of "behind".
      const info = fb ? undefined : await readSnapshotInfo(snapshotFile).catch(() => undefined);
      this.#snapshotSeq = fb ? fb.snapshotSeq : info?.seq ?? -1;
      this.#snapshotClusterId = fb ? fb.snapshotClusterId : info?.clusterId;
    }
    if (fb && !fb.connected) return; // only from the database, never from the snapshot itself
    const now = this.#now();
    if (now - this.#snapshotAttemptAt < snapshotIntervalMs) return;
    this.#snapshotAttemptAt = now;
    try {
      const latest = await this.opts.store.latestSequence();
      // Unchanged only when the same database is at the same sequence: a database that
      // was replaced or restored may be at a lower (or equal) sequence with other state.
      const clusterId = await this.opts.store.clusterId();
      if (!this.#snapshotError && latest === this.#snapshotSeq && clusterId === this.#snapshotClusterId) return;
      const r = await writeNodeSnapshot(this.opts.store, snapshotFile);
      this.#snapshotSeq = r.seq;
      this.#snapshotClusterId = r.clusterId;
      if (this.#snapshotError) this.opts.logger.info({ snapshotFile }, `local snapshot ${snapshotFile} written again (sequence ${r.seq})`);
      this.#snapshotError = undefined;
      this.#trackSnapshotLag();
      this.opts.logger.debug({ snapshotFile, seq: r.seq, bytes: r.bytes }, `local snapshot at sequence ${r.seq} written (${r.bytes} bytes)`);
    } catch (err) {
      // Retried at the next interval; the previous snapshot stays in place (atomic writes).
      if (!this.#snapshotError) this.opts.logger.error({ err, snapshotFile }, `could not write the local snapshot ${snapshotFile} (cluster.snapshotFile): ${message(err)}`);
      this.#snapshotError = { since: this.#snapshotError?.since ?? now, error: message(err) };
    }
  }

  async #prune(): Promise<void> {
    const retentionMs = this.opts.config.cluster.changeRetentionSeconds * 1000;
    const now = this.#now();
    // Checked ten times per retention period, at most every 10 minutes.
    if (now - this.#lastPruneAt < Math.min(retentionMs / 10, 600_000)) return;
    const nodes = this.opts.store.nodes;
    if (!nodes) return;
    this.#lastPruneAt = now;
    try {
      const seq = await nodes.sequenceCommittedBefore(now - retentionMs);
      if (seq > 0) {
        const n = await this.opts.store.pruneChanges(seq);
        if (n > 0) this.opts.logger.info({ prunedThrough: seq, removed: n }, `change log: ${n} record${n === 1 ? '' : 's'} older than ${this.opts.config.cluster.changeRetentionSeconds} s pruned (through sequence ${seq})`);
      }
    } catch (err) {
      this.opts.logger.warn({ err }, `change-log pruning failed: ${message(err)}`);
    }
  }

  /** Stops the periodic work (waits for a running round). Leaves the node's row in place (it turns stale). */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#snapshotTimer) clearInterval(this.#snapshotTimer);
    // A round hanging on an unreachable database does not hold the shutdown for long.
    await Promise.race([Promise.all([this.#ticking, this.settled()]), new Promise((r) => setTimeout(r, 3000).unref())]);
  }
}
