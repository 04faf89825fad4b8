/**
 * How every process of a serving node opens its store (cluster issue): the database
 * the {@link StoreSpec} names, or — when it cannot be reached at start and a local
 * snapshot of the last applied state is configured — that snapshot until the database
 * returns ({@link FallbackStore}). Without a snapshot, a node that cannot reach its
 * database refuses to start rather than serve empty state.
 */
import { StoreUnavailableError } from '../errors.js';
import { FallbackStore, type FallbackStatus } from './fallback.js';
import { openStore, redactStoreUrl, type StoreSpec } from './open.js';
import { openSnapshotStore, writeSnapshot, type SnapshotStore } from './snapshot.js';
import type { Store } from './types.js';

/** Plain data (passed to cluster workers and function worker threads). */
export interface NodeStoreSpec {
  store: StoreSpec;
  /** Absolute path of the local snapshot (config `cluster.snapshotFile`); unset: none. */
  snapshotFile?: string;
  /** Delay between database attempts while serving the snapshot, ms (default 1000). */
  retryMs?: number;
}

/** Options of {@link openNodeStore}. */
export interface OpenNodeStoreOptions {
  /** Told about failed database attempts while serving the snapshot, and about the reconnection. */
  onEvent?: (e: { type: 'snapshot'; seq: number; writtenAt?: number; error: unknown } | { type: 'connect-failed'; error: unknown } | { type: 'connected' }) => void;
}

/** For messages: the store a spec names, without secrets. */
export function describeStoreSpec(spec: StoreSpec): string {
  return spec.kind === 'sqlite' ? `the SQLite store in ${spec.dataDir}` : `the PostgreSQL database ${redactStoreUrl(spec.url)}`;
}

/**
 * Opens the node's store. When the database is reachable, that store; otherwise, with
 * a snapshot configured and valid, a {@link FallbackStore} serving it.
 * @throws StoreUnavailableError when the database is unreachable and there is no
 *   usable snapshot (the message gives both reasons).
 */
export async function openNodeStore(spec: NodeStoreSpec, options: OpenNodeStoreOptions = {}): Promise<Store> {
  try {
    return await openStore(spec.store);
  } catch (err) {
    if (!(err instanceof StoreUnavailableError)) throw err;
    if (spec.snapshotFile === undefined) {
      throw new StoreUnavailableError(
        `${err.message}; refusing to serve without state (set cluster.snapshotFile to let a node start from its local snapshot while the database is down)`,
        { cause: err },
      );
    }
    const reason = err.message;
    let snapshot: SnapshotStore;
    try {
      snapshot = await openSnapshotStore(spec.snapshotFile);
    } catch (snapErr) {
      throw new StoreUnavailableError(
        `${describeStoreSpec(spec.store)} is unreachable (${reason}) and the local snapshot ${spec.snapshotFile} cannot be used `
        + `(${snapErr instanceof Error ? snapErr.message : String(snapErr)}); refusing to serve without state`,
        { cause: err },
      );
    }
    const writtenAt = snapshot.snapshot.writtenAt;
    const fallback = await FallbackStore.start({
      snapshot, connect: () => openStore(spec.store), location: describeStoreSpec(spec.store), snapshotWrittenAt: writtenAt,
      ...(spec.retryMs !== undefined ? { retryMs: spec.retryMs } : {}),
      ...(options.onEvent ? { onEvent: options.onEvent } : {}),
    });
    options.onEvent?.({ type: 'snapshot', seq: fallback.status().snapshotSeq, writtenAt, error: err });
    return fallback;
  }
}

/** What a node store serves: undefined for a plain database store. */
export function fallbackStatus(store: Store): FallbackStatus | undefined {
  return store instanceof FallbackStore ? store.status() : undefined;
}

/**
 * Writes the local snapshot of `store`'s current state to `path` atomically (store/
 * snapshot.ts `writeSnapshot`); what {@link openNodeStore} serves from when the
 * database is unreachable at start.
 * @returns the sequence the snapshot reflects, its size in bytes and when it was written (ms).
 */
export async function writeNodeSnapshot(store: Store, path: string): Promise<{ seq: number; bytes: number; writtenAt: number }> {
  return writeSnapshot(store, path);
}
