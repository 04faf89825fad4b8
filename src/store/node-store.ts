/**
 * How every process of a serving node opens its store (cluster issue): the database
 * the {@link StoreSpec} names, or — when it cannot be reached at start and a local
 * snapshot of the last applied state is configured — that snapshot until the database
 * returns ({@link FallbackStore}). Without a snapshot, a node that cannot reach its
 * database refuses to start rather than serve empty state.
 */
import { join, resolve } from 'node:path';
import { SnapshotInvalidError, StoreUnavailableError } from '../errors.js';
import { FallbackStore, type FallbackEvent, type FallbackStatus } from './fallback.js';
import { openStore, redactStoreUrl, type StoreSpec } from './open.js';
import { openSnapshotStore, writeSnapshot, type SnapshotStore } from './snapshot.js';
import { SQLITE_FILE_NAME } from './sqlite.js';
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
  onEvent?: (e: { type: 'snapshot'; seq: number; writtenAt?: number; error: unknown } | FallbackEvent) => void;
}

/**
 * Where a spec's data lives, as the opened store's `location` says it: the URL with
 * the password redacted, or the SQLite file's path (what a snapshot records as its
 * `source`).
 */
export function storeSpecLocation(spec: StoreSpec): string {
  return spec.kind === 'sqlite' ? join(resolve(spec.dataDir), SQLITE_FILE_NAME) : redactStoreUrl(spec.url);
}

/**
 * The database a location names, for comparing a snapshot's `source` with the
 * configured store: `postgres://host:port/database` (user, password and parameters
 * dropped, default port 5432, host lowercased), or the resolved file path. Snapshots
 * written by earlier builds recorded "the PostgreSQL database postgres://…": the URL is
 * taken from such text. Undefined when no database can be read from it.
 */
function databaseIdentity(location: string): string | undefined {
  const m = /postgres(?:ql)?:\/\/\S+/i.exec(location);
  if (!m) return location.startsWith('/') ? resolve(location) : undefined;
  const rest = m[0].replace(/^postgres(?:ql)?:\/\//i, '');
  const cut = rest.search(/[/?#]/);
  const authority = cut < 0 ? rest : rest.slice(0, cut);
  const path = cut < 0 || rest[cut] !== '/' ? '' : rest.slice(cut + 1).replace(/[?#].*$/, '');
  const hostPort = authority.slice(authority.lastIndexOf('@') + 1);
  const hm = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(hostPort);
  if (!hm) return undefined;
  const host = (hm[1] ?? '').toLowerCase();
  const port = hm[2] ? String(Number(hm[2])) : '5432';
  let db = path;
  try {
    db = decodeURIComponent(path);
  } catch { /* keep it as written */ }
  return `postgres://${host}:${port}/${db}`;
}

/** For messages: the store a spec names, without secrets. */
export function describeStoreSpec(spec: StoreSpec): string {
  return spec.kind === 'sqlite' ? `the SQLite store in ${spec.dataDir}` : `the PostgreSQL database ${redactStoreUrl(spec.url)}`;
}

/**
 * Opens the node's store. When the database is reachable, that store; otherwise, with
 * a snapshot configured and valid, a {@link FallbackStore} serving it.
 * Only transient unavailability (`StoreUnavailableError.transient`: unreachable,
 * starting, too many connections, timeouts) falls back to the snapshot; a
 * configuration error (refused login, missing database, privileges, invalid URL,
 * failed migration) is thrown as is.
 * @throws StoreUnavailableError when the database cannot be opened for a
 *   non-transient reason, or is unreachable and there is no usable snapshot (the
 *   message gives both reasons).
 */
export async function openNodeStore(spec: NodeStoreSpec, options: OpenNodeStoreOptions = {}): Promise<Store> {
  try {
    return await openStore(spec.store);
  } catch (err) {
    if (!(err instanceof StoreUnavailableError)) throw err;
    // A configuration error (refused login, missing database, privileges, invalid URL)
    // is fatal even with a snapshot: serving possibly very old state while retrying a
    // login that cannot succeed would hide it.
    if (!err.transient) {
      throw new StoreUnavailableError(
        spec.snapshotFile === undefined ? err.message : `${err.message}; the local snapshot is not used for an error that retrying cannot fix — correct the configuration`,
        { cause: err, transient: false },
      );
    }
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
        + `(${snapErr instanceof SnapshotInvalidError ? snapErr.problem : snapErr instanceof Error ? snapErr.message : String(snapErr)}); refusing to serve without state`,
        { cause: err },
      );
    }
    // A snapshot of another database (another cluster's, copied over) must never be
    // served as this one's state.
    const expected = databaseIdentity(storeSpecLocation(spec.store));
    const recorded = databaseIdentity(snapshot.snapshot.source);
    if (expected === undefined || recorded !== expected) {
      await snapshot.close();
      throw new StoreUnavailableError(
        `${describeStoreSpec(spec.store)} is unreachable (${reason}) and the local snapshot ${spec.snapshotFile} was taken from another database `
        + `(${snapshot.snapshot.source}, not ${storeSpecLocation(spec.store)}); refusing to serve another database's state`,
        { cause: err },
      );
    }
    const writtenAt = snapshot.snapshot.writtenAt;
    const fallback = await FallbackStore.start({
      snapshot, connect: () => openStore(spec.store), location: storeSpecLocation(spec.store), snapshotWrittenAt: writtenAt,
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
 * @returns the sequence the snapshot reflects, the cluster id of the database it was
 *   read from, its size in bytes and when it was written (ms).
 */
export async function writeNodeSnapshot(store: Store, path: string): Promise<{ seq: number; clusterId: string; bytes: number; writtenAt: number }> {
  return writeSnapshot(store, path);
}
