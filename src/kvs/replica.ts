/**
 * The in-memory KVS replica the data path reads (DESIGN: no database call during a
 * handshake). One `Map<string, string>` per READY store, loaded from the store at
 * start and kept current from the change feed; lookups do no I/O.
 *
 * Snapshots (SPEC section 4: "values are a consistent snapshot for the whole
 * invocation"): {@link KvsReplica.snapshot} returns a view fixed at the replica's
 * current version; a change applied while an invocation runs is not seen by that
 * invocation, only by the next one. How, cheaply:
 * - the live Map is mutated in place (no copying of a 1M-key map per write);
 * - one snapshot object per store version is shared by every invocation that starts
 *   at that version (taking a snapshot allocates nothing after the first);
 * - when a change is applied and a snapshot of an older version may still be in use,
 *   the previous value of every key it touches is kept in a per-key history, tagged
 *   with the version that overwrote it; a snapshot of version v reading key k returns
 *   the previous value recorded by the first change after v, else the live value;
 * - "may still be in use" is decided by the garbage collector: old snapshots are held
 *   through WeakRefs, and history is dropped as soon as no snapshot older than it is
 *   alive (in practice after the next GC; with no reader in between, none is kept).
 * A snapshot at the current version — the normal case — costs one integer comparison
 * and one Map lookup per `get`.
 *
 * A store replaced as a whole (created, import finished) gets a new Map; deleting a
 * store drops it from the replica. Old snapshots keep working on what they saw.
 */
import { DEFAULT_KVS_LIMITS } from './limits.js';
import { sweepInterruptedImports } from './service.js';
import { subscribeChanges, type ChangeRecord, type ChangeSubscription, type KvsChangeMeta, type KvsRecord, type Store } from '../store/index.js';

/** `meta()` of a snapshot: CloudFront's `cf.kvs().meta()` shape; dates ISO 8601 UTC. */
export interface KvsMeta {
  creationDateTime: string;
  lastUpdatedDateTime: string;
  keyCount: number;
}

/** A consistent read-only view of one store for one function invocation. */
export interface KvsSnapshot {
  /** Store name. */
  readonly name: string;
  /** The store version this snapshot shows (increments with every applied change). */
  readonly version: number;
  /** The value, or undefined when the key is absent. No I/O. */
  get(key: string): string | undefined;
  /** Whether the key exists. No I/O. */
  has(key: string): boolean;
  /** Creation time, last update time and key count as of this snapshot. */
  meta(): KvsMeta;
}

interface HistoryEntry {
  /** The version whose change replaced `prev`. */
  v: number;
  prev: string | undefined;
}

/** Replica state of one store. */
class StoreState {
  version = 0;
  etag: string;
  createdAt: number;
  lastModified: number;
  /** Snapshot of the current version, shared by all readers at that version. */
  current: Snapshot | undefined;
  /** Older snapshots that may still be in use. */
  tracked: { ref: WeakRef<Snapshot>; v: number }[] = [];
  /** Per key: values replaced since the oldest live snapshot, oldest first. */
  history = new Map<string, HistoryEntry[]>();

  constructor(readonly id: string, readonly name: string, readonly map: Map<string, string>, meta: { etag: string; createdAt: number; lastModified: number }) {
    this.etag = meta.etag;
    this.createdAt = meta.createdAt;
    this.lastModified = meta.lastModified;
  }

  snapshot(): Snapshot {
    if (!this.current) this.current = new Snapshot(this, this.version, this.map.size, this.createdAt, this.lastModified);
    return this.current;
  }

  /** Oldest version still readable by a live snapshot, or undefined when none is alive. */
  private oldestLiveVersion(): number | undefined {
    let min: number | undefined;
    const alive: { ref: WeakRef<Snapshot>; v: number }[] = [];
    for (const t of this.tracked) {
      if (t.ref.deref() !== undefined) {
        alive.push(t);
        if (min === undefined || t.v < min) min = t.v;
      }
    }
    this.tracked = alive;
    return min;
  }

  /** Applies one change (puts then deletes) as the next version. */
  apply(puts: readonly [string, string][], deletes: readonly string[], meta: Pick<KvsChangeMeta, 'etag' | 'lastModified' | 'createdAt'>): void {
    if (this.current) {
      this.tracked.push({ ref: new WeakRef(this.current), v: this.current.version });
      this.current = undefined;
    }
    const oldest = this.tracked.length ? this.oldestLiveVersion() : undefined;
    if (oldest === undefined) {
      if (this.history.size) this.history = new Map();
    } else if (this.history.size > 1024) {
      this.pruneHistory(oldest);
    }
    const v = this.version + 1;
    const keep = oldest !== undefined;
    for (const k of deletes) {
      if (keep) this.record(k, v);
      this.map.delete(k);
    }
    for (const [k, val] of puts) {
      if (keep) this.record(k, v);
      this.map.set(k, val);
    }
    this.version = v;
    this.etag = meta.etag;
    this.createdAt = meta.createdAt;
    this.lastModified = meta.lastModified;
  }

  private record(key: string, v: number): void {
    const entry: HistoryEntry = { v, prev: this.map.get(key) };
    const list = this.history.get(key);
    if (list) {
      if (list[list.length - 1]!.v !== v) list.push(entry);
    } else {
      this.history.set(key, [entry]);
    }
  }

  /** Drops history no live snapshot can need: entries with v ≤ oldest live version. */
  private pruneHistory(oldest: number): void {
    for (const [k, list] of this.history) {
      let i = 0;
      while (i < list.length && list[i]!.v <= oldest) i++;
      if (i === list.length) this.history.delete(k);
      else if (i > 0) list.splice(0, i);
    }
  }
}

class Snapshot implements KvsSnapshot {
  readonly name: string;
  constructor(
    private readonly state: StoreState,
    readonly version: number,
    private readonly keyCount: number,
    private readonly createdAt: number,
    private readonly lastModified: number,
  ) {
    this.name = state.name;
  }

  get(key: string): string | undefined {
    const s = this.state;
    if (s.version !== this.version) {
      const list = s.history.get(key);
      if (list) {
        for (let i = 0; i < list.length; i++) {
          const e = list[i]!;
          if (e.v > this.version) return e.prev;
        }
      }
    }
    return s.map.get(key);
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  meta(): KvsMeta {
    return {
      creationDateTime: new Date(this.createdAt).toISOString(),
      lastUpdatedDateTime: new Date(this.lastModified).toISOString(),
      keyCount: this.keyCount,
    };
  }
}

/** Options of {@link KvsReplica.open}. */
export interface KvsReplicaOptions {
  /** Items read per query while loading (default 10,000). */
  loadPageSize?: number;
  /** Told about feed failures; the replica keeps serving its last state meanwhile. */
  onError?(err: unknown): void;
  /** Called after each batch of changes is applied (for metrics and benchmarks). */
  onApplied?(changes: ChangeRecord[]): void;
  /**
   * At open, stores `PROVISIONING` for longer than this (ms, default the KVS limit
   * `staleProvisioningMs`, 10 minutes) are marked FAILED (an import whose process
   * died), in the background and without waiting for another process's write lock.
   */
  staleProvisioningMs?: number;
}

/**
 * The replica of every READY key value store. Create with {@link KvsReplica.open};
 * it follows the change feed until {@link close}. If the database becomes
 * unreachable, the replica keeps serving the last state it applied (never an empty
 * one; SPEC section 8), `degraded` turns true, and it catches up when the database
 * returns.
 */
export class KvsReplica {
  private stores = new Map<string, StoreState>();
  private subscription: ChangeSubscription | undefined;
  private stoppedAt = 0;

  private constructor(private readonly store: Store, private readonly options: KvsReplicaOptions) {}

  /**
   * Loads every READY store (names, metadata, all items) in one consistent read, then
   * follows the change feed from the sequence that read reflects.
   * @throws StoreUnavailableError when the initial load fails.
   */
  static async open(store: Store, options: KvsReplicaOptions = {}): Promise<KvsReplica> {
    const replica = new KvsReplica(store, options);
    // The stale-import sweep, in the background: open never waits for a writer.
    void sweepInterruptedImports(store, { staleProvisioningMs: options.staleProvisioningMs ?? DEFAULT_KVS_LIMITS.staleProvisioningMs, wait: false })
      .catch((err: unknown) => options.onError?.(err));
    const seq = await replica.load();
    replica.subscription = subscribeChanges(store, {
      fromSeq: seq,
      onChanges: (changes) => replica.applyChanges(changes),
      onReset: () => replica.load(),
      ...(options.onError ? { onError: options.onError } : {}),
    });
    return replica;
  }

  /** Loads everything in one read transaction; returns the sequence it reflects. */
  private async load(): Promise<number> {
    const pageSize = this.options.loadPageSize ?? 10_000;
    const { seq, states } = await this.store.readConsistent(async (s) => {
      const seq = await s.latestSequence();
      const states = new Map<string, StoreState>();
      for (const rec of await s.kvs.listStores()) {
        if (rec.status !== 'READY') continue;
        const map = new Map<string, string>();
        let after: string | undefined;
        for (;;) {
          const page = await s.kvs.listItems(rec.id, { ...(after !== undefined ? { after } : {}), limit: pageSize });
          for (const it of page) map.set(it.key, it.value);
          if (page.length < pageSize) break;
          after = page[page.length - 1]!.key;
        }
        states.set(rec.name, new StoreState(rec.id, rec.name, map, rec));
      }
      return { seq, states };
    });
    this.stores = states;
    return seq;
  }

  private replaceStore(rec: KvsRecord, items: [string, string][] | undefined): void {
    if (rec.status !== 'READY') {
      const existing = this.stores.get(rec.name);
      if (existing && existing.id === rec.id) this.stores.delete(rec.name);
      return;
    }
    const existing = this.stores.get(rec.name);
    if (!items && existing && existing.id === rec.id) {
      existing.apply([], [], rec);
      return;
    }
    this.stores.set(rec.name, new StoreState(rec.id, rec.name, new Map(items ?? []), rec));
  }

  /** Applies changes in order (called by the change feed). */
  private applyChanges(changes: ChangeRecord[]): void {
    for (const c of changes) {
      if (c.entity !== 'kvs') continue;
      if (c.op === 'store') {
        this.replaceStore(c.record, c.items);
      } else if (c.op === 'batch') {
        const st = this.stores.get(c.name);
        // A batch for a store the replica does not hold as READY cannot happen in a
        // consistent feed; ignore rather than invent a store.
        if (st && st.id === c.meta.storeId) st.apply(c.puts, c.deletes, c.meta);
      } else if (c.op === 'delete-store') {
        const st = this.stores.get(c.name);
        if (st && st.id === c.storeId) this.stores.delete(c.name);
      }
    }
    this.options.onApplied?.(changes);
  }

  /**
   * A consistent view of store `name` for one function invocation, or undefined when
   * no READY store has that name. Cheap: the same object for every caller until the
   * next change to that store.
   */
  snapshot(name: string): KvsSnapshot | undefined {
    return this.stores.get(name)?.snapshot();
  }

  /** Names of the READY stores held, sorted. */
  storeNames(): string[] {
    return [...this.stores.keys()].sort();
  }

  /** The last change-feed sequence applied. */
  get sequence(): number {
    return this.subscription?.lastSeq ?? this.stoppedAt;
  }

  /** True while the change feed cannot be read or applied (the replica serves its last state). */
  get degraded(): boolean {
    return this.subscription?.degraded ?? false;
  }

  /**
   * Resolves once every change up to `seq` has been applied (e.g. the sequence read
   * after a write). Rejects after `timeoutMs` (default 10 s).
   */
  waitForSequence(seq: number, timeoutMs?: number): Promise<void> {
    if (!this.subscription) return Promise.reject(new Error('replica is closed'));
    return this.subscription.waitFor(seq, timeoutMs);
  }

  /** Stops following the change feed (the data stays readable). Does not close the store. */
  close(): void {
    if (!this.subscription) return;
    this.stoppedAt = this.subscription.lastSeq;
    this.subscription.stop();
    this.subscription = undefined;
  }
}
