/**
 * One opener for every backend, chosen by the node config's `store` value: the
 * embedded SQLite store in the data directory, or a PostgreSQL database shared by the
 * nodes of a cluster. Everything that needs a store (serve, the function worker
 * thread, validate, the offline CLI) opens it through {@link openStore}, so a backend
 * is chosen in one place.
 */
import { redactStoreUrl } from './redact.js';
import { openSqliteStore } from './sqlite.js';
import type { Store } from './types.js';
import type { PostgresStoreOptions } from './postgres-options.js';

/**
 * Where the state lives — plain data, so it can be passed to worker threads and
 * cluster workers. `sqlite`: `<dataDir>/portcullis.db`. `postgres`: a `postgres://`
 * connection URL (credentials included; never log it unredacted).
 */
export type StoreSpec =
  | { kind: 'sqlite'; dataDir: string; pollIntervalMs?: number; busyTimeoutMs?: number }
  /** The options of `openPostgresStore` (postgres-options.ts), with their defaults there. */
  | ({ kind: 'postgres' } & Pick<PostgresStoreOptions, 'url' | 'poolSize' | 'connectTimeoutMs' | 'statementTimeoutMs' | 'lockTimeoutMs' | 'pollIntervalMs'>);

/**
 * Opens the store a {@link StoreSpec} names, bringing its schema up to date.
 * @throws StoreUnavailableError when the database cannot be reached or opened, or a
 *   migration fails (the message names the location, never a password).
 */
export async function openStore(spec: StoreSpec): Promise<Store> {
  if (spec.kind === 'sqlite') {
    const { kind: _sqlite, ...options } = spec;
    return openSqliteStore(options);
  }
  // Loaded on demand: an embedded deployment never loads pg.
  const { openPostgresStore } = await import('./postgres.js');
  const { kind: _postgres, ...options } = spec;
  return openPostgresStore(options);
}

export { redactStoreUrl };
