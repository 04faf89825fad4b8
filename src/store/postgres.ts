/**
 * The cluster backend: one PostgreSQL database shared by every node, through `pg`
 * (node-postgres 8) and kysely's PostgresDialect, with the same schema (migrations.ts,
 * dialect `postgres`) and the same queries (sql-store.ts) as the SQLite backend.
 * Config: `store: postgres://user:password@host:5432/db`.
 *
 * Write transactions and sequence order:
 * - Every write transaction (READ COMMITTED) starts with
 *   `SELECT last_seq FROM change_sequence WHERE id = 1 FOR UPDATE`: the one row of
 *   `change_sequence` is the cluster-wide write lock, taken before the first read, like
 *   SQLite's `BEGIN IMMEDIATE`. Writers therefore run one after the other. That is what
 *   makes If-Match exact: under plain READ COMMITTED two writers could both read ETag E1,
 *   and the second UPDATE would wait for the first and then overwrite it (a lost
 *   update); with the lock taken first, the second writer's reads are new statements
 *   whose snapshots are taken after the first writer committed (PostgreSQL makes a
 *   commit visible before it releases the transaction's locks), so it sees the new ETag
 *   and fails with PreconditionFailed, nothing changed.
 * - Sequence numbers come from `UPDATE change_sequence SET last_seq = last_seq + n`
 *   in the same transaction (appendChanges in sql-store.ts). A writer gets its numbers
 *   only while holding the lock, i.e. after every earlier writer committed or rolled
 *   back, so sequences are handed out in commit order, and a rolled-back write's
 *   increment is rolled back with it: no gaps. Hence a reader that sees `last_seq = N`
 *   committed sees every change ≤ N committed too (`changesAfter` relies on it).
 *   Writes are infrequent control-plane operations (one transaction per API call; a
 *   whole KVS import is one transaction), so serialising them costs nothing that
 *   matters; reads never take the lock (MVCC).
 * - `readConsistent` runs in `REPEATABLE READ READ ONLY`: every read inside sees one
 *   snapshot (a replica's full load and the sequence it reflects match exactly).
 *
 * Change wake-ups (see {@link Store.watch}):
 * - Each write transaction that appended changes sends
 *   `pg_notify('portcullis_changes', <last seq>)` before committing; PostgreSQL
 *   delivers it at commit (never for a rolled-back write). Every backend instance that
 *   has watchers holds one dedicated connection that `LISTEN`s on that channel and
 *   wakes the watchers on each notification. Watchers of the writing instance are woken
 *   at once after the commit, without waiting for the notification.
 * - The listening connection reconnects with exponential backoff (100 ms doubling to
 *   `reconnectMaxMs`) after any error, and wakes the watchers when it drops and again
 *   when it is back: subscribers re-read `changesAfter(lastApplied)`, so a notification
 *   missed while it was down is never a missed change.
 * - A safety poll reads `change_sequence.last_seq` every `pollIntervalMs` (default
 *   1000 ms) while someone watches and wakes the watchers when it moved, so even a
 *   silently dropped notification delays a change by at most one poll interval. The
 *   poll also wakes the watchers when the database stops or starts answering, so
 *   subscriptions notice an outage (they go degraded and retry) and catch up after it.
 *   Every 10 s the listening connection is pinged (`select 1`), so a connection that
 *   died without an error (network black hole) is replaced.
 *
 * Timeouts (all configurable, see {@link PostgresStoreOptions}):
 * - `connectTimeoutMs` (5 s): establishing a connection, and waiting for a free
 *   connection when all `poolSize` are busy.
 * - `statementTimeoutMs` (30 s, server side `statement_timeout`): any one statement.
 *   The client also gives up on a statement 5 s after that (`query_timeout`; after
 *   twice the statement timeout when that is shorter than 5 s), for a server that
 *   stopped answering altogether (network black hole, frozen host); that connection
 *   is then discarded instead of going back to the pool.
 * - `lockTimeoutMs` (10 s, `lock_timeout`): how long a write waits for the write lock
 *   held by another writer (e.g. a large import) before failing with
 *   StoreUnavailable, nothing changed.
 * - `idle_in_transaction_session_timeout` (60 s): the server ends a session that left
 *   a transaction open (a node that vanished mid-write), releasing the write lock.
 * - TCP keepalive on every connection (first probe after 10 s idle).
 * - Schema migration at open runs on a connection of its own: it waits up to 120 s
 *   for another node's migration (advisory lock) and allows 10 min per statement.
 * So a write never hangs forever: it succeeds, fails with StoreUnavailableError, or —
 * when the connection is lost during COMMIT itself — fails with a StoreUnavailableError
 * saying that the outcome is unknown.
 *
 * Pool size: `poolSize` (default 10) connections per Store instance. A node serves
 * handshakes from memory; the pool carries admin API reads and writes, change-feed
 * reads and the poll. Keep it ≥ 2 (a replica's full load holds one connection for its
 * whole consistent read). Each watched instance adds one LISTEN connection, and the
 * first open one short-lived migration connection. Plan `max_connections` ≥ Σ over
 * processes/threads that open a store of (poolSize + 1), plus headroom.
 *
 * Connection poolers: LISTEN needs a session — with PgBouncer use session pooling (or
 * connect directly); transaction pooling would silently drop the LISTEN and leave only
 * the safety poll. The timeouts are sent as startup parameters (`statement_timeout`,
 * `lock_timeout`, `idle_in_transaction_session_timeout`), which PgBouncer must be told
 * to accept or ignore (`ignore_startup_parameters`).
 *
 * Failover of the primary: connections drop or the old primary turns read-only
 * (SQLSTATE 25006); every store call fails with StoreUnavailableError while nodes keep
 * serving the state they applied (their replicas live in memory). Pool connections are
 * replaced on next use and the listening connection reconnects with backoff; when the
 * URL's host resolves to the new primary, the watchers are woken and every node catches
 * up from its last applied sequence. Connect to the primary (or a proxy/VIP that
 * follows it), never to a standby: a standby's reads may lag, and writes fail there.
 *
 * Errors: every error raised by the driver or the server is mapped to
 * StoreUnavailableError with a message naming the database (URL with the password
 * redacted) and the cause (SQLSTATE when the server sent one); Portcullis errors thrown
 * inside a transaction pass through. The one exception is text PostgreSQL cannot store
 * (U+0000), which is InvalidArgumentError.
 */
import pg from 'pg';
import { Kysely, PostgresDialect, sql, type PostgresPool, type PostgresPoolClient } from 'kysely';
import { InvalidArgumentError, PortcullisError, StoreUnavailableError } from '../errors.js';
import { migrateToLatest } from './migrations.js';
import { DEFAULT_POSTGRES_OPTIONS, type PostgresStoreOptions } from './postgres-options.js';
import { redactStoreUrl } from './redact.js';
import type { Database } from './schema.js';
import { SqlStore, type SqlBackend } from './sql-store.js';
import type { Store } from './types.js';

export { DEFAULT_POSTGRES_OPTIONS, type PostgresStoreOptions };

/** The NOTIFY channel of committed changes; the payload is the last sequence of the commit. */
export const CHANGE_CHANNEL = 'portcullis_changes';

/** Key of the transaction-level advisory lock that serialises schema migrations between nodes. */
export const MIGRATION_ADVISORY_LOCK_KEY = 7_078_923_441_002_391n;

/** How long a starting node waits for another node's migration, ms. */
const MIGRATION_LOCK_WAIT_MS = 120_000;
/** Statement limit while migrating (a migration may rewrite a large table), ms. */
const MIGRATION_STATEMENT_MS = 600_000;
/** Server ends sessions idle inside a transaction this long, ms. */
const IDLE_IN_TRANSACTION_MS = 60_000;
/** Extra client-side wait beyond statement_timeout before giving up on a silent server, ms (at most). */
const QUERY_TIMEOUT_MARGIN_MS = 5000;

/** The client-side limit for one statement: statement_timeout plus a margin (5 s, or statement_timeout when shorter). */
function queryTimeoutMs(statementTimeoutMs: number): number {
  return statementTimeoutMs + Math.min(QUERY_TIMEOUT_MARGIN_MS, statementTimeoutMs);
}
/** Interval of the LISTEN connection health check, ms. */
const LISTEN_PING_MS = 10_000;
/** First reconnection delay of the LISTEN connection, ms. */
const RECONNECT_MIN_MS = 100;

/** OID of PostgreSQL's int8 (bigint). */
const INT8_OID = 20;

/**
 * int8 columns (sequences, sizes, ms timestamps — all far below 2^53) are returned as
 * JavaScript numbers, like SQLite's integers; pg's default would be strings. Applied
 * per connection (pg's global parser table is left alone).
 */
const TYPES = {
  getTypeParser(oid: number, format?: 'text' | 'binary'): unknown {
    if (oid === INT8_OID && format !== 'binary') {
      return (v: string) => {
        const n = Number(v);
        if (!Number.isSafeInteger(n)) throw new RangeError(`int8 value ${v} is beyond 2^53`);
        return n;
      };
    }
    return (pg.types.getTypeParser as (oid: number, format?: string) => unknown)(oid, format);
  },
};

/** Node network errors that mean "cannot reach the server". */
const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ECONNABORTED',
]);

/** Whether `err` leaves a connection unusable (it must not go back to the pool). */
function isConnectionFailure(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  if (typeof e.code === 'string' && (NETWORK_CODES.has(e.code) || e.code.startsWith('08') || e.code.startsWith('57P'))) return true;
  return /Connection terminated|Query read timeout|not queryable|timeout exceeded when trying to connect/i.test(String(e.message ?? ''));
}

interface MapContext {
  location: string;
  /** The failing statement was COMMIT: the outcome of the write is unknown. */
  commit?: boolean;
  lockTimeoutMs: number;
  statementTimeoutMs: number;
  connectTimeoutMs: number;
  poolSize: number;
}

/**
 * Maps an error raised by pg (or the server) to the catalogue. Portcullis errors pass
 * through. Exported for tests.
 */
export function mapPostgresError(err: unknown, ctx: MapContext): unknown {
  if (err instanceof PortcullisError) return err;
  const e = err as { code?: unknown; message?: unknown; severity?: unknown };
  const msg = String(e.message ?? err);
  const code = typeof e.code === 'string' ? e.code : undefined;
  const loc = ctx.location;
  const sqlState = code !== undefined && /^[0-9A-Z]{5}$/.test(code) && e.severity !== undefined ? code : undefined;
  const tail = ctx.commit
    ? ' — this happened while committing a write: it may or may not have been applied; read the current state before retrying'
    : '';
  let text: string;
  // Whether retrying may succeed without a configuration change (see StoreUnavailableError).
  let transient = true;
  if (sqlState === '22021' || sqlState === '22P05') {
    return new InvalidArgumentError(`PostgreSQL cannot store this text (${msg}); the NUL character U+0000 is not allowed in keys or values`, { cause: err });
  } else if (sqlState === '55P03') {
    text = `another write held the write lock of ${loc} past the lock timeout (${ctx.lockTimeoutMs} ms, or at once for a write that must not wait); nothing was changed`;
  } else if (sqlState === '57014') {
    text = `a statement on ${loc} ran past the statement timeout (${ctx.statementTimeoutMs} ms) and was cancelled; nothing was changed`;
  } else if (sqlState === '25006') {
    text = `${loc} is read-only (a standby, or a primary that was demoted by a failover): point the store at the current primary`;
  } else if (sqlState === '28P01' || sqlState === '28000') {
    text = `PostgreSQL at ${loc} refused the login: ${msg} (SQLSTATE ${sqlState})`;
    transient = false;
  } else if (sqlState === '3D000') {
    text = `PostgreSQL at ${loc}: ${msg} (SQLSTATE ${sqlState}); create it (CREATE DATABASE) or fix the URL`;
    transient = false;
  } else if (sqlState !== undefined && (sqlState.startsWith('08') || sqlState.startsWith('57P') || sqlState.startsWith('53'))) {
    text = `PostgreSQL at ${loc} is unavailable: ${msg} (SQLSTATE ${sqlState})`;
  } else if (sqlState === '40001' || sqlState === '40P01') {
    text = `database error on ${loc}: ${msg} (SQLSTATE ${sqlState}); nothing was changed`;
  } else if (sqlState !== undefined) {
    // Privileges (42501), a damaged or foreign schema, …: retrying cannot fix it.
    text = `database error on ${loc}: ${msg} (SQLSTATE ${sqlState})`;
    transient = false;
  } else if (/timeout exceeded when trying to connect/i.test(msg)) {
    text = `cannot reach PostgreSQL at ${loc}: no connection within ${ctx.connectTimeoutMs} ms (the server did not answer, or all ${ctx.poolSize} pool connections stayed busy)`;
  } else if (/Query read timeout/i.test(msg)) {
    text = `PostgreSQL at ${loc} did not answer within ${queryTimeoutMs(ctx.statementTimeoutMs)} ms; the connection was dropped`;
  } else if (code !== undefined && NETWORK_CODES.has(code)) {
    text = `cannot reach PostgreSQL at ${loc}: ${msg}`;
  } else if (code === 'ERR_INVALID_URL' || /Invalid URL/i.test(msg)) {
    text = `${loc} is not a valid URL (check the host and port, and percent-encode special characters such as @ / : # ? % in the user and password)`;
    transient = false;
  } else if (/SSL|SASL|password must be|certificate/i.test(msg)) {
    // Client-side configuration: the URL, TLS settings, the password's form.
    text = `cannot connect to PostgreSQL at ${loc}: ${msg}`;
    transient = false;
  } else {
    text = `PostgreSQL at ${loc} is unavailable: ${msg}`;
  }
  return new StoreUnavailableError(text + tail, { cause: err, transient });
}

type Config = Required<Omit<PostgresStoreOptions, 'url'>> & { url: string };

function clientConfig(c: Config, applicationName: string): pg.ClientConfig {
  return {
    connectionString: c.url,
    connectionTimeoutMillis: c.connectTimeoutMs,
    statement_timeout: c.statementTimeoutMs,
    lock_timeout: c.lockTimeoutMs,
    idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_MS,
    query_timeout: queryTimeoutMs(c.statementTimeoutMs),
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    application_name: applicationName,
    types: TYPES as pg.ClientConfig['types'],
  };
}

class PostgresBackend implements SqlBackend {
  readonly dialect = 'postgres' as const;
  readonly db: Kysely<Database>;
  readonly location: string;
  private readonly pool: pg.Pool;
  private readonly ctx: Omit<MapContext, 'commit'>;
  private readonly listeners = new Set<() => void>();
  private listenClient: pg.Client | undefined;
  private listenConnected = false;
  private lastListenPing = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectDelay = RECONNECT_MIN_MS;
  private pollTimer: NodeJS.Timeout | undefined;
  private polling = false;
  private pollFailing = false;
  private lastSeenSeq = -1;
  private closed = false;
  /** The last error of an idle pool connection (kept for diagnostics; never thrown). */
  lastPoolError: unknown;

  constructor(private readonly config: Config) {
    this.location = redactStoreUrl(config.url);
    this.ctx = {
      location: this.location, lockTimeoutMs: config.lockTimeoutMs, statementTimeoutMs: config.statementTimeoutMs,
      connectTimeoutMs: config.connectTimeoutMs, poolSize: config.poolSize,
    };
    this.pool = this.newPool(clientConfig(config, config.applicationName), config.poolSize);
    this.db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: this.guardedPool(this.pool) }) });
  }

  /** A pg pool whose connection errors never crash the process. */
  private newPool(cfg: pg.ClientConfig, max: number): pg.Pool {
    const pool = new pg.Pool({ ...cfg, max, idleTimeoutMillis: 30_000, allowExitOnIdle: true });
    // An idle connection that dies (server restart, failover) must not crash the process.
    pool.on('error', (err) => { this.lastPoolError = err; });
    // Nor one that dies while checked out between two queries.
    pool.on('connect', (client) => { client.on('error', () => {}); });
    return pool;
  }

  /**
   * The pool as kysely sees it: every driver error becomes a catalogue error (so plain
   * reads outside transactions are mapped too), and a connection that failed (timeout,
   * socket error) is destroyed on release instead of going back to the pool.
   */
  private guardedPool(pool: pg.Pool, onQueryError?: (err: unknown) => void): PostgresPool {
    const map = (err: unknown, commit = false): unknown => mapPostgresError(err, { ...this.ctx, commit });
    return {
      connect: async (): Promise<PostgresPoolClient> => {
        let client: pg.PoolClient;
        try {
          client = await pool.connect();
        } catch (err) {
          throw map(err);
        }
        let broken = false;
        const wrapped = {
          query: async (text: string, params: unknown[]) => {
            try {
              return await client.query(text, params);
            } catch (err) {
              onQueryError?.(err);
              if (isConnectionFailure(err)) broken = true;
              throw map(err, text.trim().toLowerCase() === 'commit');
            }
          },
          release: (destroy?: boolean) => client.release(destroy || broken ? true : undefined),
        };
        return wrapped as unknown as PostgresPoolClient;
      },
      end: () => pool.end(),
    };
  }

  private readonly wake = (): void => {
    for (const l of [...this.listeners]) {
      try {
        l();
      } catch { /* a listener's failure is its own business */ }
    }
  };

  async writeTransaction<T>(fn: (tx: Kysely<Database>) => Promise<T>, opts: { wait?: boolean } = {}): Promise<T> {
    let notified: number | undefined;
    const result = await this.db.transaction().execute(async (trx) => {
      // The write lock: see the doc comment at the top.
      let lock = trx.selectFrom('change_sequence').select('last_seq').where('id', '=', 1).forUpdate();
      if (opts.wait === false) lock = lock.noWait();
      const start = await lock.executeTakeFirst();
      if (!start) throw new StoreUnavailableError(`the schema of ${this.location} is damaged: the change_sequence row is missing`);
      const r = await fn(trx);
      const n = await sql<{ seq: number }>`select pg_notify(${CHANGE_CHANNEL}, last_seq::text), last_seq as seq from change_sequence where id = 1 and last_seq <> ${start.last_seq}`
        .execute(trx);
      notified = n.rows[0]?.seq;
      return r;
    });
    if (notified !== undefined) {
      if (notified > this.lastSeenSeq) this.lastSeenSeq = notified;
      this.wake();
    }
    return result;
  }

  async readTransaction<T>(fn: (tx: Kysely<Database>) => Promise<T>): Promise<T> {
    return this.db.transaction().setIsolationLevel('repeatable read').setAccessMode('read only').execute(fn);
  }

  /**
   * Brings the schema up to date under a transaction-level advisory lock: nodes
   * starting at once on an empty database migrate one after the other, and the later
   * ones find nothing to do. DDL is transactional on PostgreSQL, so a failed migration
   * leaves nothing behind.
   */
  async migrate(): Promise<void> {
    // A connection of its own: waiting for another node's migration, or a migration
    // that rewrites a large table, may take longer than the statement limits of the
    // pool (server-side statement_timeout, client-side query_timeout).
    const cfg: pg.ClientConfig = {
      ...clientConfig(this.config, `${this.config.applicationName}-migrate`),
      statement_timeout: MIGRATION_STATEMENT_MS, lock_timeout: MIGRATION_LOCK_WAIT_MS, query_timeout: MIGRATION_STATEMENT_MS + QUERY_TIMEOUT_MARGIN_MS,
    };
    // The first statement that failed is the cause: once it failed, every later
    // statement of the transaction (kysely's own checks included) fails with 25P02
    // "current transaction is aborted", which says nothing.
    let firstError: unknown;
    const db = new Kysely<Database>({
      dialect: new PostgresDialect({ pool: this.guardedPool(this.newPool(cfg, 1), (err) => { firstError ??= err; }) }),
    });
    try {
      await this.migrateOn(db);
    } catch (err) {
      throw this.migrationError(err, firstError);
    } finally {
      await db.destroy();
    }
  }

  /** The error a failed migration reports: the first failed statement's, with a hint for missing privileges. */
  private migrationError(err: unknown, first: unknown): unknown {
    const cause = first !== undefined && (first as { code?: unknown }).code !== '25P02' ? first : undefined;
    if (cause === undefined) return err;
    const mapped = mapPostgresError(cause, this.ctx);
    if (!(mapped instanceof StoreUnavailableError)) return mapped;
    const hint = (cause as { code?: unknown }).code === '42501'
      ? '; the role needs CREATE on the database\'s public schema for the first start (and for a start that applies a new migration); see README "Running a cluster"'
      : '';
    return new StoreUnavailableError(`schema migration failed: ${mapped.message}${hint}`, { cause, transient: mapped.transient });
  }

  private async migrateOn(db: Kysely<Database>): Promise<void> {
    await db.connection().execute(async (conn) => {
      await sql`begin`.execute(conn);
      try {
        await sql`select pg_advisory_xact_lock(${String(MIGRATION_ADVISORY_LOCK_KEY)}::bigint)`.execute(conn);
        await migrateToLatest(conn as unknown as Kysely<unknown>, 'postgres', { inCallerTransaction: true });
        await sql`commit`.execute(conn);
      } catch (err) {
        try {
          await sql`rollback`.execute(conn);
        } catch { /* the connection may be gone */ }
        throw err;
      }
    });
  }

  watch(listener: () => void): () => void {
    this.listeners.add(listener);
    if (!this.closed && !this.pollTimer) {
      this.pollTimer = setInterval(() => void this.poll(), this.config.pollIntervalMs);
      this.pollTimer.unref();
      void this.poll();
      this.listen();
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stopWatching();
    };
  }

  private stopWatching(): void {
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = undefined;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const c = this.listenClient;
    this.listenClient = undefined;
    this.listenConnected = false;
    if (c) {
      c.removeAllListeners('notification');
      c.removeAllListeners('end');
      c.on('error', () => {});
      c.end().catch(() => {});
    }
  }

  private watching(): boolean {
    return !this.closed && this.listeners.size > 0;
  }

  /** Opens the LISTEN connection; on any failure schedules a reconnect. */
  private listen(): void {
    if (!this.watching() || this.listenClient) return;
    const client = new pg.Client(clientConfig(this.config, `${this.config.applicationName}-listen`));
    this.listenClient = client;
    let failed = false;
    const fail = (): void => {
      if (failed) return;
      failed = true;
      client.removeAllListeners('notification');
      client.end().catch(() => {});
      if (this.listenClient !== client) return;
      this.listenClient = undefined;
      this.listenConnected = false;
      if (!this.watching()) return;
      // Subscribers re-read now: they report the outage (degraded) instead of
      // silently serving, and retry until the database is back.
      this.wake();
      const delay = this.reconnectDelay;
      this.reconnectDelay = Math.min(this.reconnectDelay * 2, this.config.reconnectMaxMs);
      this.reconnectTimer = setTimeout(() => {
        this.reconnectTimer = undefined;
        this.listen();
      }, delay);
      this.reconnectTimer.unref();
    };
    client.on('error', fail);
    client.on('end', fail);
    client.on('notification', (n) => {
      if (n.channel !== CHANGE_CHANNEL) return;
      const seq = Number(n.payload);
      if (Number.isSafeInteger(seq) && seq > this.lastSeenSeq) this.lastSeenSeq = seq;
      this.wake();
    });
    client.connect()
      .then(() => client.query(`listen ${CHANGE_CHANNEL}`))
      .then(() => {
        if (failed || this.listenClient !== client) return;
        this.listenConnected = true;
        this.lastListenPing = Date.now();
        this.reconnectDelay = RECONNECT_MIN_MS;
        // Catch up on anything committed while we were not listening.
        this.wake();
      }, fail);
  }

  /** The safety poll (see the doc comment at the top). */
  private async poll(): Promise<void> {
    if (this.polling || !this.watching()) return;
    this.polling = true;
    try {
      const row = await this.db.selectFrom('change_sequence').select('last_seq').where('id', '=', 1).executeTakeFirst();
      const seq = Number(row?.last_seq ?? 0);
      if (this.pollFailing || seq !== this.lastSeenSeq) {
        this.pollFailing = false;
        this.lastSeenSeq = seq;
        this.wake();
      }
    } catch {
      if (!this.pollFailing) {
        this.pollFailing = true;
        this.wake();
      }
    } finally {
      this.polling = false;
    }
    const c = this.listenClient;
    if (c && this.listenConnected && Date.now() - this.lastListenPing >= LISTEN_PING_MS) {
      this.lastListenPing = Date.now();
      c.query({ text: 'select 1', query_timeout: this.config.connectTimeoutMs } as pg.QueryConfig).catch(() => {
        // No answer: the connection is dead without having said so. Replace it.
        c.emit('error', new Error('the LISTEN connection did not answer a ping'));
      });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    this.stopWatching();
    await this.db.destroy();
  }
}

/**
 * Checks a `postgres://` URL before the driver sees it, saying what is wrong (the
 * driver's own message is a bare "Invalid URL"). Never echoes the password.
 * @throws StoreUnavailableError (transient false) naming the problem.
 */
function checkPostgresUrl(url: string, location: string): void {
  const bad = (problem: string): StoreUnavailableError => new StoreUnavailableError(`${location} is not a valid PostgreSQL URL: ${problem}`, { transient: false });
  const rest = url.replace(/^postgres(?:ql)?:\/\//i, '');
  const cut = rest.search(/[/?#]/);
  const authority = cut < 0 ? rest : rest.slice(0, cut);
  const at = authority.lastIndexOf('@');
  const userInfo = at >= 0 ? authority.slice(0, at) : '';
  const hostPort = authority.slice(at + 1);
  if (userInfo.includes('@')) throw bad('the user or password contains "@": percent-encode it as %40');
  // An "@" after the authority: the user info holds an unencoded "/", "?" or "#".
  if (cut >= 0 && rest.slice(cut).includes('@')) throw bad('the user or password contains "/", "?" or "#": percent-encode special characters (e.g. / as %2F)');
  try {
    decodeURIComponent(userInfo);
  } catch {
    throw bad('the user or password has a "%" that is not a percent-encoded byte: write "%" as %25');
  }
  const hm = /^(\[[^\]]*\]|[^:[\]]*)(?::(.*))?$/.exec(hostPort);
  if (!hm) throw bad(`the host "${hostPort}" is malformed`);
  const port = hm[2];
  if (port !== undefined && port !== '') {
    if (!/^\d+$/.test(port)) throw bad('the port is not a number');
    if (Number(port) < 1 || Number(port) > 65535) throw bad(`the port ${port} is out of range (1-65535)`);
  }
  try {
    new URL(url);
  } catch {
    throw bad('it does not parse as a URL (percent-encode special characters such as / : # ? % in the user and password)');
  }
}

function positive(name: string, v: number | undefined, dflt: number): number {
  const n = v ?? dflt;
  if (!Number.isSafeInteger(n) || n <= 0) throw new StoreUnavailableError(`store option ${name} must be a positive integer, got ${String(v)}`, { transient: false });
  return n;
}

/**
 * Opens the PostgreSQL store at `options.url`: connects, brings the schema up to date
 * (safe when several nodes start at once, see `migrate` above) and returns the Store.
 * The database must exist; the user needs CREATE on its `public` schema for the first
 * start (and for a start that applies a new migration), then SELECT/INSERT/UPDATE/DELETE
 * on the tables.
 * @throws StoreUnavailableError when the URL is not a PostgreSQL URL, an option is not a
 *   positive integer, the server cannot be reached or refuses the login, or a migration
 *   fails — the message names the database with its password redacted.
 */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<Store> {
  const location = redactStoreUrl(options.url);
  if (!/^postgres(ql)?:\/\//i.test(options.url)) {
    throw new StoreUnavailableError(`${location} is not a PostgreSQL URL (expected postgres://user:password@host:port/database)`, { transient: false });
  }
  checkPostgresUrl(options.url, location);
  const d = DEFAULT_POSTGRES_OPTIONS;
  const config: Config = {
    url: options.url,
    poolSize: positive('poolSize', options.poolSize, d.poolSize),
    connectTimeoutMs: positive('connectTimeoutMs', options.connectTimeoutMs, d.connectTimeoutMs),
    statementTimeoutMs: positive('statementTimeoutMs', options.statementTimeoutMs, d.statementTimeoutMs),
    lockTimeoutMs: positive('lockTimeoutMs', options.lockTimeoutMs, d.lockTimeoutMs),
    pollIntervalMs: positive('pollIntervalMs', options.pollIntervalMs, d.pollIntervalMs),
    reconnectMaxMs: positive('reconnectMaxMs', options.reconnectMaxMs, d.reconnectMaxMs),
    applicationName: options.applicationName ?? d.applicationName,
  };
  let backend: PostgresBackend;
  try {
    backend = new PostgresBackend(config);
  } catch (err) {
    throw new StoreUnavailableError(`cannot open the store ${location}: ${(err as Error).message}`, { cause: err, transient: false });
  }
  try {
    await backend.migrate();
  } catch (err) {
    await backend.close().catch(() => {});
    const mapped = mapPostgresError(err, { location, lockTimeoutMs: config.lockTimeoutMs, statementTimeoutMs: config.statementTimeoutMs, connectTimeoutMs: config.connectTimeoutMs, poolSize: config.poolSize });
    if (mapped instanceof StoreUnavailableError) {
      throw new StoreUnavailableError(`cannot open the store: ${mapped.message}`, { cause: err, transient: mapped.transient });
    }
    throw mapped;
  }
  return new SqlStore(backend);
}
