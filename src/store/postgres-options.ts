/**
 * Options of the PostgreSQL backend and their defaults, apart from postgres.ts so that
 * config code can read them without loading `pg` (postgres.ts documents what each
 * timeout protects against).
 */

/** Options of `openPostgresStore` (postgres.ts). Defaults in {@link DEFAULT_POSTGRES_OPTIONS}. */
export interface PostgresStoreOptions {
  /** `postgres://` or `postgresql://` connection URL (libpq-style query parameters such as `sslmode` allowed). */
  url: string;
  /** Connections in the pool of this node (not counting the LISTEN connection). */
  poolSize?: number;
  /** Connection establishment / pool wait timeout, ms. */
  connectTimeoutMs?: number;
  /** Server-side limit for one statement, ms. */
  statementTimeoutMs?: number;
  /** How long a write waits for another writer's lock, ms. */
  lockTimeoutMs?: number;
  /** Safety poll of the last committed sequence while watched, ms. */
  pollIntervalMs?: number;
  /** Longest delay between reconnection attempts of the LISTEN connection, ms. */
  reconnectMaxMs?: number;
  /** `application_name` of the pool connections (the LISTEN connection adds `-listen`). */
  applicationName?: string;
}

/** Defaults of {@link PostgresStoreOptions}. */
export const DEFAULT_POSTGRES_OPTIONS = {
  poolSize: 10,
  connectTimeoutMs: 5000,
  statementTimeoutMs: 30_000,
  lockTimeoutMs: 10_000,
  pollIntervalMs: 1000,
  reconnectMaxMs: 5000,
  applicationName: 'portcullis',
} as const;

