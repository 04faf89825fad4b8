/**
 * A node's store when its database was unreachable at start but a local snapshot of
 * the last applied state exists (cluster issue): every read is answered from the
 * snapshot (a read-only Store at the snapshot's sequence) until the database can be
 * opened, then from the database. The change feed is the database's as soon as it is
 * reachable: a replica loaded from the snapshot at sequence S and subscribed from S
 * receives exactly the changes after S (or a reset when they were pruned, and reloads
 * from the database), so nothing committed between the snapshot and the reconnection
 * is lost. Writes before the reconnection fail with StoreUnavailableError.
 *
 * The snapshot records the identity of the database it was read from
 * ({@link Store.clusterId}). Pages of the change feed carry the id of the store that
 * answered (the snapshot's, then the database's): when the database turns out to have
 * another id (re-created, or another cluster's snapshot), every subscription reloads
 * the whole state from the database instead of applying its feed to the snapshot's
 * state, and `onEvent` reports `cluster-mismatch` naming both ids.
 */
import { StoreUnavailableError } from '../errors.js';
import type { ChangesPage, FunctionRepository, KvsRepository, NodeRepository, ResourceRepository, Store } from './types.js';

/** What a {@link FallbackStore} reports through `onEvent`. */
export type FallbackEvent =
  /** An attempt failed; `final`: for a reason retrying cannot fix — no more attempts (see {@link FallbackStatus.fatalError}). */
  | { type: 'connect-failed'; error: unknown; final?: boolean }
  | { type: 'connected' }
  /** The database has another identity than the snapshot served: subscribers reload from the database. */
  | { type: 'cluster-mismatch'; snapshotClusterId: string; databaseClusterId: string };

/** How long after the reconnection the snapshot store is closed, ms. */
const SNAPSHOT_RELEASE_MS = 30_000;

/** Options of {@link FallbackStore}. */
export interface FallbackStoreOptions {
  /** The read-only snapshot store served until the database is reachable. */
  snapshot: Store;
  /** When the snapshot was written, ms since the epoch (for messages), if known. */
  snapshotWrittenAt?: number;
  /** Opens the database (throws while it is unreachable). */
  connect: () => Promise<Store>;
  /** For messages: where the database is (no secrets). */
  location: string;
  /** Delay between connection attempts, ms (default 1000). */
  retryMs?: number;
  /** Told about each failed attempt, the reconnection, and a database of another identity. */
  onEvent?: (e: FallbackEvent) => void;
}

/** What a {@link FallbackStore} is serving. */
export interface FallbackStatus {
  /** True once the database has been opened (everything goes to it since). */
  connected: boolean;
  /** Sequence of the snapshot served before that. */
  snapshotSeq: number;
  /** When the snapshot was written (ms since the epoch), when known. */
  snapshotWrittenAt?: number;
  /** When the node started serving the snapshot (ms since the epoch). */
  since: number;
  /** The last connection failure's message, while not connected. */
  lastError?: string;
  /**
   * Set when an attempt failed for a reason retrying cannot fix (a non-transient
   * StoreUnavailableError: refused login, missing database, privileges, …): its
   * message. The store no longer retries; the node keeps serving the snapshot and must
   * be reported degraded until the configuration is fixed and it is restarted.
   */
  fatalError?: string;
  /** The identity of the database the snapshot was read from. */
  snapshotClusterId: string;
  /** Set once connected to a database whose identity differs from the snapshot's (its id). */
  clusterMismatch?: string;
}

/** Methods of a repository, delegated to the current store. */
function delegate<T extends object>(pick: () => T, wrapErr: (err: unknown) => unknown): T {
  return new Proxy({} as T, {
    get(_t, prop) {
      const target = pick();
      const v = (target as Record<string | symbol, unknown>)[prop];
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        try {
          const r = (v as (...a: unknown[]) => unknown).apply(target, args);
          return r instanceof Promise ? r.catch((err: unknown) => { throw wrapErr(err); }) : r;
        } catch (err) {
          throw wrapErr(err);
        }
      };
    },
  });
}

/**
 * A {@link Store} that serves a snapshot until the database connects. Create with
 * {@link FallbackStore.start} (it begins retrying the database at once).
 */
export class FallbackStore implements Store {
  readonly dialect: Store['dialect'];
  readonly location: string;
  readonly kvs: KvsRepository;
  readonly trustStores: ResourceRepository;
  readonly distributions: ResourceRepository;
  readonly functions: FunctionRepository;
  #real: Store | undefined;
  readonly #snapshot: Store;
  readonly #snapshotSeq: number;
  readonly #snapshotClusterId: string;
  #clusterMismatch: string | undefined;
  readonly #since = Date.now();
  #lastError: string | undefined;
  #fatalError: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #listeners = new Map<() => void, (() => void) | undefined>();

  private constructor(private readonly opts: FallbackStoreOptions, snapshotSeq: number, snapshotClusterId: string) {
    this.#snapshot = opts.snapshot;
    this.#snapshotSeq = snapshotSeq;
    this.#snapshotClusterId = snapshotClusterId;
    this.dialect = opts.snapshot.dialect;
    this.location = opts.location;
    const wrap = (err: unknown): unknown => this.#wrap(err);
    this.kvs = delegate(() => this.#current().kvs, wrap);
    this.trustStores = delegate(() => this.#current().trustStores, wrap);
    this.distributions = delegate(() => this.#current().distributions, wrap);
    this.functions = delegate(() => this.#current().functions, wrap);
  }

  /** Wraps `snapshot` and starts trying `connect` every `retryMs`. */
  static async start(opts: FallbackStoreOptions): Promise<FallbackStore> {
    const s = new FallbackStore(opts, await opts.snapshot.latestSequence(), await opts.snapshot.clusterId());
    s.#schedule(0);
    return s;
  }

  /** What is being served. */
  status(): FallbackStatus {
    return {
      connected: this.#real !== undefined,
      snapshotSeq: this.#snapshotSeq,
      ...(this.opts.snapshotWrittenAt !== undefined ? { snapshotWrittenAt: this.opts.snapshotWrittenAt } : {}),
      since: this.#since,
      snapshotClusterId: this.#snapshotClusterId,
      ...(this.#clusterMismatch !== undefined ? { clusterMismatch: this.#clusterMismatch } : {}),
      ...(this.#real === undefined && this.#lastError !== undefined ? { lastError: this.#lastError } : {}),
      ...(this.#fatalError !== undefined ? { fatalError: this.#fatalError } : {}),
    };
  }

  /** The node table: the database's once connected; a snapshot has none. */
  get nodes(): NodeRepository | undefined {
    return this.#real?.nodes;
  }

  #current(): Store {
    return this.#real ?? this.#snapshot;
  }

  #wrap(err: unknown): unknown {
    if (this.#real || !(err instanceof StoreUnavailableError)) return err;
    return new StoreUnavailableError(
      `the database ${this.location} is unreachable (since this node started at ${new Date(this.#since).toISOString()}): `
      + `this node serves its local snapshot at sequence ${this.#snapshotSeq} and refuses writes until the database returns`,
      { cause: err },
    );
  }

  #schedule(delay: number): void {
    if (this.#closed || this.#real) return;
    this.#timer = setTimeout(() => { void this.#attempt(); }, delay);
    this.#timer.unref();
  }

  /** A failed attempt that retrying can fix: remember why, tell, try again after retryMs. */
  #retryLater(err: unknown): void {
    this.#lastError = err instanceof Error ? err.message : String(err);
    this.opts.onEvent?.({ type: 'connect-failed', error: err });
    this.#schedule(this.opts.retryMs ?? 1000);
  }

  async #attempt(): Promise<void> {
    this.#timer = undefined;
    let real: Store;
    try {
      real = await this.opts.connect();
    } catch (err) {
      if (err instanceof StoreUnavailableError && !err.transient) {
        // A login that will fail again the same way: no retry every second.
        this.#lastError = err.message;
        this.#fatalError = err.message;
        this.opts.onEvent?.({ type: 'connect-failed', error: err, final: true });
        return;
      }
      this.#retryLater(err);
      return;
    }
    if (this.#closed) {
      await real.close();
      return;
    }
    let databaseClusterId: string | undefined;
    try {
      databaseClusterId = await real.clusterId();
    } catch (err) {
      // Reachable a moment ago; try again later rather than guess the identity.
      await real.close().catch(() => {});
      this.#retryLater(err);
      return;
    }
    if (this.#closed) {
      await real.close();
      return;
    }
    this.#real = real;
    this.#lastError = undefined;
    this.opts.onEvent?.({ type: 'connected' });
    if (databaseClusterId !== this.#snapshotClusterId) {
      // Never keep serving another database's state: every subscription sees the new
      // id on its next page and reloads from the database.
      this.#clusterMismatch = databaseClusterId;
      this.opts.onEvent?.({ type: 'cluster-mismatch', snapshotClusterId: this.#snapshotClusterId, databaseClusterId });
    }
    // The snapshot's memory is released once reads in flight on it have surely finished.
    setTimeout(() => { void this.#snapshot.close().catch(() => {}); }, SNAPSHOT_RELEASE_MS).unref();
    for (const listener of [...this.#listeners.keys()]) {
      this.#listeners.set(listener, real.watch(listener));
      listener();
    }
  }

  changesAfter(seq: number, limit?: number): Promise<ChangesPage> {
    if (this.#real) return this.#real.changesAfter(seq, limit);
    // Until the database returns, the feed has nothing after the snapshot.
    return Promise.resolve({ changes: [], reset: false, latestSeq: Math.max(seq, this.#snapshotSeq), clusterId: this.#snapshotClusterId });
  }

  latestSequence(): Promise<number> {
    return this.#current().latestSequence();
  }

  clusterId(): Promise<string> {
    return this.#current().clusterId();
  }

  pruneChanges(seq: number): Promise<number> {
    if (this.#real) return this.#real.pruneChanges(seq);
    return Promise.reject(this.#wrap(new StoreUnavailableError('not connected')));
  }

  watch(listener: () => void): () => void {
    this.#listeners.set(listener, this.#real?.watch(listener));
    return () => {
      this.#listeners.get(listener)?.();
      this.#listeners.delete(listener);
    };
  }

  readConsistent<T>(fn: (store: Store) => Promise<T>): Promise<T> {
    return this.#current().readConsistent(fn);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    for (const unwatch of this.#listeners.values()) unwatch?.();
    this.#listeners.clear();
    await this.#real?.close();
    await this.#snapshot.close();
  }
}
