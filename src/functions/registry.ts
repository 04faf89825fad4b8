/**
 * The registry of warm LIVE connection functions: one {@link FunctionInstance} per
 * function's current LIVE version, loaded at start in one consistent read of the store
 * and kept current from the change feed. `get(name)` does no I/O. A publish compiles the
 * new version in the background and swaps it in; the previous instance is disposed only
 * once no lease on it is left (and a short grace period has passed), so invocations in
 * flight finish on the version they started with. A delete removes the function.
 */
import { subscribeChanges, type ChangeRecord, type ChangeSubscription, type Store } from '../store/index.js';
import type { FunctionDocument, FunctionKvsAssociation, FunctionStageRecord } from './lifecycle.js';
import {
  compileFunction, type CompileOptions, type FunctionInstance, type FunctionLimits, type FunctionResult, type InvokeOptions, type KvsSnapshotLike,
} from './runtime.js';

/** Where invocations get their KVS snapshot (kvs/ `KvsReplica` satisfies it). */
export interface KvsSnapshotSource {
  snapshot(name: string): KvsSnapshotLike | undefined;
}

/** Options of {@link FunctionRegistry.start}. */
export interface FunctionRegistryOptions {
  /** Limits of the instances (defaults of SPEC section 4). */
  limits?: Partial<FunctionLimits>;
  /** KVS snapshots for {@link LiveFunction.invoke}; without it the caller passes `kvs`. */
  kvs?: KvsSnapshotSource;
  /**
   * Told when a LIVE version fails to compile (the previous version, if any, keeps
   * serving) and about change-feed failures (the registry keeps its last state and
   * catches up).
   */
  onError?: (err: unknown, name?: string) => void;
  /** How long a retired instance stays usable after its last lease, ms (default 2000). */
  retireGraceMs?: number;
  /**
   * Compiles a LIVE version (default {@link compileFunction} with `limits` and the
   * function's name). The sandbox worker passes its own to mark each compile for its
   * watchdog and to refuse versions whose top-level code hung an earlier worker.
   * Throws (FunctionCompileError, …) when the version cannot be loaded.
   */
  compile?: (record: FunctionStageRecord, options: CompileOptions) => Promise<FunctionInstance>;
  /** Told when a LIVE version was loaded and now serves (at start and after each publish). */
  onLoaded?: (fn: LiveFunction) => void;
}

/** A LIVE version that could not be loaded. */
export interface FunctionLoadFailure {
  name: string;
  /** LIVE ETag of the version that failed. */
  etag: string;
  error: unknown;
  /** ETag of the version still serving instead, if any. */
  servingEtag?: string;
}

/**
 * One warm LIVE version. `invoke` is synchronous. To use it across an `await` (e.g.
 * get, then check revocation, then invoke), take a lease with
 * {@link FunctionRegistry.acquire} and release it afterwards.
 */
export class LiveFunction {
  private leases = 0;
  private retired = false;
  private disposed = false;
  private timer: NodeJS.Timeout | undefined;

  /** @internal constructed by the registry. */
  constructor(
    readonly name: string,
    readonly id: string,
    /** LIVE ETag of this version. */
    readonly etag: string,
    readonly document: FunctionDocument,
    private readonly instance: FunctionInstance,
    private readonly kvsSource: KvsSnapshotSource | undefined,
    private readonly graceMs: number,
  ) {}

  /** The associated KVS, or null. */
  get keyValueStore(): FunctionKvsAssociation | null {
    return this.document.keyValueStore;
  }

  /** True once this version has been replaced or deleted (it may still finish leased work). */
  get isRetired(): boolean {
    return this.retired;
  }

  /**
   * Runs the function once. Without `options.kvs`, the snapshot of the associated KVS is
   * taken from the registry's {@link KvsSnapshotSource} (when there is one).
   * @throws InvalidArgumentError when the instance was already disposed.
   */
  invoke(connection: object | string, options: InvokeOptions = {}): FunctionResult {
    let opts = options;
    if (!opts.kvs && this.document.keyValueStore && this.kvsSource) {
      const kvs = this.kvsSource.snapshot(this.document.keyValueStore.name);
      if (kvs) opts = { ...opts, kvs };
    }
    return this.instance.invoke(connection, opts);
  }

  /** Heap of the sandbox, bytes. */
  memoryUsageBytes(): number {
    return this.instance.memoryUsageBytes();
  }

  /** @internal */
  lease(): () => void {
    this.leases++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.leases--;
      this.maybeDispose();
    };
  }

  /** @internal marks the version replaced; disposes it once unleased and the grace period passed. */
  retire(): void {
    if (this.retired) return;
    this.retired = true;
    this.maybeDispose();
  }

  /** @internal disposes at once (registry stop). */
  disposeNow(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.disposed) {
      this.disposed = true;
      this.retired = true;
      this.instance.dispose();
    }
  }

  /** True once the sandbox was disposed. */
  get isDisposed(): boolean {
    return this.disposed;
  }

  private maybeDispose(): void {
    if (!this.retired || this.disposed || this.leases > 0 || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.leases === 0 && !this.disposed) {
        this.disposed = true;
        this.instance.dispose();
      }
    }, this.graceMs);
    this.timer.unref();
  }
}

/** A leased {@link LiveFunction}: call `release()` when the invocation is done. */
export interface FunctionLease {
  fn: LiveFunction;
  release(): void;
}

type Wanted = { kind: 'live'; record: FunctionStageRecord } | { kind: 'gone' };

/**
 * One warm instance per LIVE function, current with the store. Create with
 * {@link FunctionRegistry.start}; {@link stop} when done.
 */
export class FunctionRegistry {
  private readonly live = new Map<string, LiveFunction>();
  private readonly failed = new Map<string, FunctionLoadFailure>();
  private subscription: ChangeSubscription | undefined;
  private stopped = false;

  private constructor(private readonly store: Store, private readonly options: FunctionRegistryOptions) {}

  /**
   * Loads every LIVE function in one consistent read, compiles them and follows the
   * change feed from the sequence that read reflects.
   */
  static async start(store: Store, options: FunctionRegistryOptions = {}): Promise<FunctionRegistry> {
    const reg = new FunctionRegistry(store, options);
    const seq = await reg.reload();
    reg.subscription = subscribeChanges(store, {
      fromSeq: seq,
      onChanges: (changes) => reg.apply(changes),
      onReset: () => reg.reload(),
      onError: (err) => options.onError?.(err),
    });
    return reg;
  }

  /** The current LIVE version of `name`, or undefined (not published, deleted, or failed with nothing to fall back on). No I/O. */
  get(name: string): LiveFunction | undefined {
    return this.live.get(name);
  }

  /** Like {@link get}, with a lease that keeps the version alive until `release()`. */
  acquire(name: string): FunctionLease | undefined {
    const fn = this.live.get(name);
    if (!fn) return undefined;
    return { fn, release: fn.lease() };
  }

  /** Names of the loaded functions, ordered. */
  names(): string[] {
    return [...this.live.keys()].sort();
  }

  /** LIVE versions that failed to compile and are not (or no longer) the serving version. */
  failures(): FunctionLoadFailure[] {
    return [...this.failed.values()];
  }

  /** The last change sequence applied. */
  get sequence(): number {
    return this.subscription?.lastSeq ?? 0;
  }

  /** True while the change feed cannot be read (the registry serves its last state). */
  get degraded(): boolean {
    return this.subscription?.degraded ?? false;
  }

  /** Resolves once every change up to `seq` has been applied (tests, admin "wait for publish"). */
  waitFor(seq: number, timeoutMs?: number): Promise<void> {
    if (!this.subscription) return Promise.reject(new Error('registry not started'));
    return this.subscription.waitFor(seq, timeoutMs);
  }

  /** Stops following the store and disposes every instance. Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.subscription?.stop();
    for (const fn of this.live.values()) fn.disposeNow();
    this.live.clear();
  }

  private async reload(): Promise<number> {
    const { seq, rows } = await this.store.readConsistent(async (s) => {
      const latest = await s.latestSequence();
      return { seq: latest, rows: await s.functions.list() };
    });
    const wanted = new Map<string, Wanted>();
    for (const r of rows) if (r.stage === 'LIVE') wanted.set(r.name, { kind: 'live', record: r as FunctionStageRecord });
    for (const name of [...this.live.keys(), ...this.failed.keys()]) if (!wanted.has(name)) wanted.set(name, { kind: 'gone' });
    await this.applyWanted(wanted);
    return seq;
  }

  private async apply(changes: ChangeRecord[]): Promise<void> {
    // Only the last change per function in a batch matters.
    const wanted = new Map<string, Wanted>();
    for (const c of changes) {
      if (c.entity !== 'connection-function') continue;
      if (c.op === 'delete') {
        if (c.stage === undefined || c.stage === 'LIVE') wanted.set(c.name, { kind: 'gone' });
      } else if (c.op === 'upsert' && c.record.stage === 'LIVE') {
        wanted.set(c.name, { kind: 'live', record: c.record as FunctionStageRecord });
      }
    }
    await this.applyWanted(wanted);
  }

  private async applyWanted(wanted: Map<string, Wanted>): Promise<void> {
    await Promise.all([...wanted].map(async ([name, w]) => {
      if (w.kind === 'gone') {
        this.failed.delete(name);
        const old = this.live.get(name);
        this.live.delete(name);
        old?.retire();
        return;
      }
      const rec = w.record;
      const current = this.live.get(name);
      if (current && current.etag === rec.etag) return;
      let instance: FunctionInstance;
      try {
        const options: CompileOptions = { ...this.options.limits, name };
        instance = await (this.options.compile ? this.options.compile(rec, options) : compileFunction(rec.document.code, options));
      } catch (error) {
        const failure: FunctionLoadFailure = { name, etag: rec.etag, error, ...(current ? { servingEtag: current.etag } : {}) };
        this.failed.set(name, failure);
        this.options.onError?.(error, name);
        return;
      }
      if (this.stopped) {
        instance.dispose();
        return;
      }
      this.failed.delete(name);
      const fn = new LiveFunction(name, rec.id, rec.etag, rec.document, instance, this.options.kvs, this.options.retireGraceMs ?? 2000);
      const old = this.live.get(name);
      this.live.set(name, fn);
      old?.retire();
      this.options.onLoaded?.(fn);
    }));
  }
}
