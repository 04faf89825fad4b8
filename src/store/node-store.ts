/**
 * How every process of a serving node opens its store (cluster issue): the database
 * the {@link StoreSpec} names, or — when it cannot be reached at start and a local
 * snapshot of the last applied state is configured — that snapshot until the database
 * returns ({@link FallbackStore}). Without a snapshot, a node that cannot reach its
 * database refuses to start rather than serve empty state.
 */
import { stat } from 'node:fs/promises';
import { StoreUnavailableError } from '../errors.js';
import { FallbackStore, type FallbackStatus } from './fallback.js';
import { openStore, redactStoreUrl, type StoreSpec } from './open.js';
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
    if (spec.snapshotFile === undefined || !(err instanceof StoreUnavailableError)) throw err;
    const reason = err.message;
    let snapshot: Store;
    try {
      snapshot = await openSnapshot(spec.snapshotFile);
    } catch (snapErr) {
      throw new StoreUnavailableError(
        `${describeStoreSpec(spec.store)} is unreachable (${reason}) and the local snapshot ${spec.snapshotFile} cannot be used `
        + `(${snapErr instanceof Error ? snapErr.message : String(snapErr)}); refusing to serve without state`,
        { cause: err },
      );
    }
    const writtenAt = await stat(spec.snapshotFile).then((s) => s.mtimeMs, () => undefined);
    const fallback = await FallbackStore.start({
      snapshot, connect: () => openStore(spec.store), location: describeStoreSpec(spec.store),
      ...(writtenAt !== undefined ? { snapshotWrittenAt: Math.round(writtenAt) } : {}),
      ...(spec.retryMs !== undefined ? { retryMs: spec.retryMs } : {}),
      ...(options.onEvent ? { onEvent: options.onEvent } : {}),
    });
    options.onEvent?.({ type: 'snapshot', seq: fallback.status().snapshotSeq, ...(writtenAt !== undefined ? { writtenAt } : {}), error: err });
    return fallback;
  }
}

/** What a node store serves: undefined for a plain database store. */
export function fallbackStatus(store: Store): FallbackStatus | undefined {
  return store instanceof FallbackStore ? store.status() : undefined;
}

/** The read-only snapshot store (store/snapshot.ts of the cluster issue). */
async function openSnapshot(path: string): Promise<Store> {
  // Replaced by store/snapshot.ts `openSnapshotStore` when the PostgreSQL backend lands.
  throw new StoreUnavailableError(`cannot open the snapshot ${path}: local snapshots are not part of this build`);
}

/**
 * Writes the local snapshot of `store`'s current state to `path` atomically (store/
 * snapshot.ts `writeSnapshot`); what {@link openNodeStore} serves from when the
 * database is unreachable at start.
 * @returns the sequence the snapshot reflects, its size in bytes and when it was written (ms).
 */
export async function writeNodeSnapshot(store: Store, path: string): Promise<{ seq: number; bytes: number; writtenAt: number }> {
  // Replaced by store/snapshot.ts `writeSnapshot` when the PostgreSQL backend lands.
  void store;
  throw new StoreUnavailableError(`cannot write the snapshot ${path}: local snapshots are not part of this build`);
}
