/**
 * The embedded backend: one SQLite file (`portcullis.db`) under the data directory,
 * through better-sqlite3 12 and kysely's SqliteDialect. Created with its schema on
 * first open; nothing to install.
 *
 * Durability and concurrency settings (applied on every open):
 * - `journal_mode=WAL`: readers never block the writer and vice versa, so replicas in
 *   other processes can poll while a CLI writes.
 * - `synchronous=FULL`: every commit fsyncs the WAL before it returns, so an
 *   acknowledged write survives `kill -9` *and* an OS crash or power loss. (NORMAL
 *   would already survive `kill -9` — the WAL is in the OS page cache — but could lose
 *   the last commits on power loss; control-plane writes are rare enough that the
 *   fsync per commit costs nothing that matters: one transaction per API call, and a
 *   whole import is one transaction.)
 * - Write transactions start with `BEGIN IMMEDIATE`, taking the write lock before the
 *   first read, so the If-Match comparison and the write are atomic across processes
 *   (a deferred transaction could read, then fail to upgrade to a writer).
 * - Waiting for the write lock never blocks the event loop for long: better-sqlite3 is
 *   synchronous, so SQLite's own busy handler would freeze the whole thread (and, with
 *   two connections in one process, deadlock: the lock holder cannot run while the
 *   waiter spins). So the connection's `busy_timeout` is only {@link BUSY_SPIN_MS}, and
 *   `BEGIN IMMEDIATE` is retried asynchronously until `busyTimeoutMs` (default
 *   5000 ms) has passed; then the write fails with StoreUnavailable, nothing changed.
 *   Within one process, write transactions on the same file are additionally
 *   serialised by an in-process lock, so instances never contend through SQLite.
 *
 * Change wake-ups: writes through any instance in this process wake every watcher at
 * once (an in-process event per database file); writes by other processes are noticed
 * by polling `PRAGMA data_version` (a counter SQLite bumps when another connection
 * commits; reading it touches no table) every `pollIntervalMs` (default 50 ms, so
 * other processes see a commit within ~50 ms plus the time to read the change).
 * Polling runs only while someone watches, on an unref'd timer.
 */
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import { PortcullisError, StoreUnavailableError } from '../errors.js';
import { MIGRATION_TABLE, migrateToLatest, migrationNames } from './migrations.js';
import type { Database } from './schema.js';
import { SqlStore, type SqlBackend } from './sql-store.js';
import type { Store } from './types.js';

/** File name of the embedded database inside the data directory. */
export const SQLITE_FILE_NAME = 'portcullis.db';

/** Options of {@link openSqliteStore}. Defaults in {@link DEFAULT_SQLITE_OPTIONS}. */
export interface SqliteStoreOptions {
  /** Data directory; created (recursively) when missing. The database is `<dataDir>/portcullis.db`. */
  dataDir: string;
  /** Interval of the cross-process change poll, ms (config `store.sqlite.pollIntervalMs`). */
  pollIntervalMs?: number;
  /** How long a write waits for another process's write lock, ms (config `store.sqlite.busyTimeoutMs`). */
  busyTimeoutMs?: number;
}

/** Defaults of {@link SqliteStoreOptions}. */
export const DEFAULT_SQLITE_OPTIONS = { pollIntervalMs: 50, busyTimeoutMs: 5000 } as const;

/** SQLite's synchronous busy wait per attempt, ms; longer waits are async retries. */
export const BUSY_SPIN_MS = 10;

/** A FIFO async mutex. */
class AsyncLock {
  private tail: Promise<void> = Promise.resolve();
  acquire(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((r) => { release = r; });
    const ready = this.tail.then(() => release);
    this.tail = this.tail.then(() => next);
    return ready;
  }
}

interface FileShared { emitter: EventEmitter; writeLock: AsyncLock; users: number }

/**
 * Per database file in this process: an event bus (instances wake each other at once)
 * and the write lock (instances never contend through SQLite's busy handler).
 */
const shared = new Map<string, FileShared>();

function sharedFor(file: string): FileShared {
  let entry = shared.get(file);
  if (!entry) {
    entry = { emitter: new EventEmitter(), writeLock: new AsyncLock(), users: 0 };
    entry.emitter.setMaxListeners(0);
    shared.set(file, entry);
  }
  entry.users += 1;
  return entry;
}

function releaseShared(file: string): void {
  const entry = shared.get(file);
  if (entry && --entry.users <= 0) shared.delete(file);
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

/** Marks a failure of `BEGIN IMMEDIATE` itself (safe to retry: nothing ran). */
class BeginFailed extends Error {
  constructor(readonly original: unknown) {
    super('begin failed');
  }
}

/** Maps driver errors to the catalogue; Portcullis errors pass through. */
function mapError(err: unknown, file: string): unknown {
  if (err instanceof PortcullisError) return err;
  const code = (err as { code?: string }).code;
  if (typeof code === 'string' && code.startsWith('SQLITE_')) {
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
      return new StoreUnavailableError(`the database ${file} stayed locked by another writer past the busy timeout; nothing was changed`, { cause: err });
    }
    return new StoreUnavailableError(`database error on ${file}: ${(err as Error).message} (${code})`, { cause: err });
  }
  return err;
}

class SqliteBackend implements SqlBackend {
  readonly dialect = 'sqlite' as const;
  readonly db: Kysely<Database>;
  private readonly bus: EventEmitter;
  private readonly writeLock: AsyncLock;
  private readonly listeners = new Set<() => void>();
  private timer: NodeJS.Timeout | undefined;
  private lastDataVersion = -1;
  private readonly dataVersion: BetterSqlite3.Statement;
  private closed = false;

  constructor(
    readonly location: string,
    raw: BetterSqlite3.Database,
    private readonly pollIntervalMs: number,
    private readonly busyTimeoutMs: number,
  ) {
    this.db = new Kysely<Database>({ dialect: new SqliteDialect({ database: raw }) });
    const s = sharedFor(location);
    this.bus = s.emitter;
    this.writeLock = s.writeLock;
    this.dataVersion = raw.prepare('PRAGMA data_version').pluck();
    this.bus.on('commit', this.wake);
  }

  private readonly wake = (): void => {
    for (const l of [...this.listeners]) {
      try {
        l();
      } catch { /* a listener's failure is its own business */ }
    }
  };

  async writeTransaction<T>(fn: (tx: Kysely<Database>) => Promise<T>, opts: { wait?: boolean } = {}): Promise<T> {
    let committed = false;
    const release = await this.writeLock.acquire();
    const deadline = opts.wait === false ? 0 : Date.now() + this.busyTimeoutMs;
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.db.connection().execute(async (conn) => {
            try {
              await sql`begin immediate`.execute(conn);
            } catch (err) {
              throw new BeginFailed(err);
            }
            try {
              const r = await fn(conn);
              await sql`commit`.execute(conn);
              committed = true;
              return r;
            } catch (err) {
              try {
                await sql`rollback`.execute(conn);
              } catch { /* the transaction may already be gone */ }
              throw err;
            }
          });
        } catch (err) {
          if (err instanceof BeginFailed) {
            if (isBusy(err.original) && Date.now() < deadline) {
              await new Promise((r) => setTimeout(r, Math.min(50, 5 * attempt)));
              continue;
            }
            throw err.original;
          }
          throw err;
        }
      }
    } catch (err) {
      throw mapError(err, this.location);
    } finally {
      release();
      if (committed) this.bus.emit('commit');
    }
  }

  async readTransaction<T>(fn: (tx: Kysely<Database>) => Promise<T>): Promise<T> {
    try {
      return await this.db.connection().execute(async (conn) => {
        await sql`begin`.execute(conn);
        try {
          return await fn(conn);
        } finally {
          try {
            await sql`commit`.execute(conn);
          } catch { /* read-only: nothing to lose */ }
        }
      });
    } catch (err) {
      throw mapError(err, this.location);
    }
  }

  watch(listener: () => void): () => void {
    this.listeners.add(listener);
    if (!this.timer && !this.closed) {
      this.lastDataVersion = this.readDataVersion();
      this.timer = setInterval(this.poll, this.pollIntervalMs);
      this.timer.unref();
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    };
  }

  private readDataVersion(): number {
    try {
      return Number(this.dataVersion.get());
    } catch {
      return this.lastDataVersion;
    }
  }

  private readonly poll = (): void => {
    const v = this.readDataVersion();
    if (v !== this.lastDataVersion) {
      this.lastDataVersion = v;
      this.wake();
    }
  };

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.listeners.clear();
    this.bus.off('commit', this.wake);
    releaseShared(this.location);
    await this.db.destroy();
  }
}

/**
 * Whether the schema is behind this build (or the file is new), read without any
 * write lock: the migration table is missing, or it lacks a migration this build knows.
 * Unknown (newer) migrations also answer true, so the migrator reports them.
 */
export function schemaNeedsMigration(raw: BetterSqlite3.Database): boolean {
  const table = raw.prepare('select name from sqlite_master where type = ? and name = ?').get('table', MIGRATION_TABLE);
  if (!table) return true;
  const applied = new Set(raw.prepare(`select name from "${MIGRATION_TABLE}"`).pluck().all() as string[]);
  const known = migrationNames('sqlite');
  return applied.size !== known.length || known.some((m) => !applied.has(m));
}

/**
 * Runs a read that may briefly meet SQLITE_BUSY (a WAL file being recovered or
 * switched by a process that is opening it at the same moment); never a writer's lock.
 */
function readWithRetry<T>(raw: BetterSqlite3.Database, read: () => T, deadline: number): T {
  for (;;) {
    try {
      return read();
    } catch (err) {
      if (!isBusy(err) || Date.now() >= deadline) throw err;
      // Synchronous open path: a short blocking wait (rare: only a concurrent first open).
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
}

/**
 * Opens (creating when missing) the embedded store `<dataDir>/portcullis.db`, applies
 * the pragmas described above and brings the schema up to date.
 * @throws StoreUnavailableError when the directory or file cannot be created or
 *   opened, is not a SQLite database, or a migration fails.
 */
export async function openSqliteStore(options: SqliteStoreOptions): Promise<Store> {
  const dataDir = resolve(options.dataDir);
  const file = join(dataDir, SQLITE_FILE_NAME);
  const busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_SQLITE_OPTIONS.busyTimeoutMs;
  let raw: BetterSqlite3.Database | undefined;
  const deadline = Date.now() + busyTimeoutMs;
  try {
    mkdirSync(dataDir, { recursive: true });
    raw = new BetterSqlite3(file, { timeout: BUSY_SPIN_MS });
    // Switching a new file to WAL needs a moment of exclusive access: retry while
    // another process starting at the same time holds it.
    // Reading the mode takes no lock; only a file not yet in WAL is switched.
    let mode: unknown = readWithRetry(raw, () => raw!.pragma('journal_mode', { simple: true }), deadline);
    for (;;) {
      if (String(mode).toLowerCase() === 'wal') break;
      try {
        mode = raw.pragma('journal_mode = WAL', { simple: true });
        break;
      } catch (err) {
        if (!isBusy(err) || Date.now() >= deadline) throw err;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    if (String(mode).toLowerCase() !== 'wal') throw new Error(`could not switch to WAL journal mode (got ${String(mode)})`);
    raw.pragma('synchronous = FULL');
  } catch (err) {
    raw?.close();
    throw new StoreUnavailableError(`cannot open the store ${file}: ${(err as Error).message}`, { cause: err });
  }
  const backend = new SqliteBackend(file, raw, options.pollIntervalMs ?? DEFAULT_SQLITE_OPTIONS.pollIntervalMs, busyTimeoutMs);
  try {
    // A plain read first: when the schema is current (every start but the first after
    // an upgrade) no write lock is taken, so opening never waits for a writer (a CLI
    // read or a node start-up while an import commits). Only when a migration is
    // needed: inside one BEGIN IMMEDIATE, so processes starting at once on a new file
    // migrate one after the other, and the second finds nothing left to do.
    if (readWithRetry(raw, () => schemaNeedsMigration(raw), Date.now() + busyTimeoutMs)) {
      await backend.writeTransaction((tx) => migrateToLatest(tx as unknown as Kysely<unknown>, 'sqlite', { inCallerTransaction: true }));
    }
  } catch (err) {
    await backend.close();
    throw err;
  }
  return new SqlStore(backend);
}
