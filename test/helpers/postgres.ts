/**
 * A throwaway PostgreSQL server for tests: `initdb` into a temp directory, `postgres`
 * on 127.0.0.1 at a free port (Unix socket in the same temp directory), trust
 * authentication, fsync off (the data is thrown away). Uses the binaries of the Debian
 * PostgreSQL packages (`/usr/lib/postgresql/<major>/bin`; `.ci/run` installs them
 * when absent) or `PG_BIN_DIR` when set.
 *
 * When we are root (CI, dev machines), initdb and the server run as the `postgres`
 * user through `runuser` (initdb refuses root); the temp directory is chowned to it.
 * Otherwise they run as the current user.
 *
 * The cluster is initialised with the ICU collation `en-US` as its default when the
 * build supports it, so that a column missing `COLLATE "C"` sorts differently from
 * byte order and tests of key order can fail.
 *
 * ```ts
 * const pg = await startPostgres();          // undefined: binaries absent (see postgresSkipReason())
 * const url = await pg.createDatabase('t1'); // postgres://postgres@127.0.0.1:PORT/t1
 * await pg.stop(); await pg.start();         // same data, same port: outage tests
 * await pg.freeze(); await pg.thaw();        // SIGSTOP/SIGCONT: a hung (not down) database
 * await pg.sql('select 1');                  // admin SQL on the `postgres` database
 * await pg.destroy();                        // stops the server and deletes everything
 * ```
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/** A running throwaway server. */
export interface TestPostgres {
  /** Connection URL of the `postgres` database (superuser `postgres`, no password needed). */
  readonly url: string;
  readonly port: number;
  /** The temp directory holding the data directory, socket and log. */
  readonly dir: string;
  /** Creates a database (name: letters, digits, `_`) and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Runs SQL on the `postgres` database as superuser; returns the rows. */
  sql<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<R[]>;
  /** Stops the server (fast shutdown: open connections are closed). Data stays. */
  stop(): Promise<void>;
  /** Starts the stopped server again on the same port. */
  start(): Promise<void>;
  /**
   * Freezes the server: SIGSTOP to the postmaster and every backend (a hung database:
   * connections stay open, nothing answers, no error). {@link thaw} resumes it; stop
   * and destroy thaw first.
   */
  freeze(): Promise<void>;
  /** Resumes a frozen server (SIGCONT). */
  thaw(): Promise<void>;
  /** Stops the server when running and deletes the temp directory. Idempotent. */
  destroy(): Promise<void>;
}

/** The directory holding initdb/pg_ctl/postgres, or undefined when none is installed. */
export function findPostgresBinDir(): string | undefined {
  const env = process.env.PG_BIN_DIR;
  if (env && existsSync(join(env, 'initdb'))) return env;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const majors = readdirSync(root).filter((d) => /^\d+$/.test(d)).sort((a, b) => Number(b) - Number(a));
  for (const m of majors) {
    const dir = join(root, m, 'bin');
    if (existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl')) && existsSync(join(dir, 'postgres'))) return dir;
  }
  return undefined;
}

/** Why PostgreSQL tests cannot run here, or undefined when they can. */
export function postgresSkipReason(): string | undefined {
  return findPostgresBinDir()
    ? undefined
    : 'PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb; install the Debian package `postgresql`, as .ci/run does, or set PG_BIN_DIR)';
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Runs a PostgreSQL binary, as the `postgres` user when we are root. */
function run(bin: string, args: string[]): SpawnSyncReturns<string> {
  const cmd = isRoot ? 'runuser' : bin;
  const argv = isRoot ? ['-u', 'postgres', '--', bin, ...args] : args;
  return spawnSync(cmd, argv, { encoding: 'utf8', timeout: 120_000 });
}

function check(r: SpawnSyncReturns<string>, what: string, logFile?: string): void {
  if (r.status === 0) return;
  let log = '';
  if (logFile && existsSync(logFile)) log = `\n--- server log ---\n${readFileSync(logFile, 'utf8').slice(-4000)}`;
  throw new Error(`${what} failed (exit ${String(r.status)}${r.error ? `, ${r.error.message}` : ''}):\n${r.stdout}\n${r.stderr}${log}`);
}

function userIds(name: string): { uid: number; gid: number } {
  const r = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  if (r.status !== 0 || g.status !== 0) throw new Error(`we are root but there is no "${name}" user to run PostgreSQL as (install the postgresql package)`);
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/**
 * Initialises and starts a throwaway server. Returns undefined when the binaries are
 * absent ({@link postgresSkipReason} says why); throws when they exist but the server
 * cannot be started (a real failure, never a skip).
 */
export async function startPostgres(): Promise<TestPostgres | undefined> {
  const bin = findPostgresBinDir();
  if (!bin) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-pg-'));
  const data = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  if (isRoot) {
    const { uid, gid } = userIds('postgres');
    chownSync(dir, uid, gid);
  }
  const base = ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync', '--no-instructions'];
  let r = run(join(bin, 'initdb'), [...base, '--locale=C.UTF-8', '--locale-provider=icu', '--icu-locale=en-US']);
  if (r.status !== 0) {
    rmSync(data, { recursive: true, force: true });
    r = run(join(bin, 'initdb'), base);
  }
  check(r, 'initdb');

  let port = 0;
  let running = false;
  let destroyed = false;
  const startServer = (): void => {
    const opts = [
      `-p ${port}`, `-k ${dir}`, '-c listen_addresses=127.0.0.1', '-c fsync=off', '-c full_page_writes=off',
      '-c synchronous_commit=off', '-c max_connections=200', '-c shared_buffers=32MB',
    ].join(' ');
    check(run(join(bin, 'pg_ctl'), ['-D', data, '-l', logFile, '-o', opts, '-w', '-t', '60', 'start']), 'pg_ctl start', logFile);
    running = true;
  };
  const stopServer = (mode: 'fast' | 'immediate' = 'fast'): void => {
    if (!running) return;
    check(run(join(bin, 'pg_ctl'), ['-D', data, '-m', mode, '-w', '-t', '60', 'stop']), 'pg_ctl stop', logFile);
    running = false;
  };
  // A port found free may be taken before the server binds it: try a few.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      startServer();
      break;
    } catch (err) {
      if (attempt >= 3) {
        rmSync(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }
  // Never leave a server behind, even when the test process exits abruptly.
  const onExit = (): void => {
    thawServer();
    try {
      stopServer('immediate');
    } catch { /* best effort */ }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);

  // freeze/thaw: the server's processes (postmaster first line of postmaster.pid, its children).
  let frozen: number[] = [];
  const serverPids = (): number[] => {
    const main = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    const kids = spawnSync('pgrep', ['-P', String(main)], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
    return [main, ...kids];
  };
  const thawServer = (): void => {
    for (const pid of frozen) {
      try { process.kill(pid, 'SIGCONT'); } catch { /* gone */ }
    }
    frozen = [];
  };

  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const sql = async <R>(text: string, params: unknown[] = []): Promise<R[]> => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query(text, params)).rows as R[];
    } finally {
      await client.end();
    }
  };
  return {
    url,
    port,
    dir,
    sql,
    async createDatabase(name: string): Promise<string> {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`);
      await sql(`create database "${name}"`);
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    async stop(): Promise<void> {
      thawServer();
      stopServer('fast');
    },
    async freeze(): Promise<void> {
      if (!running || frozen.length > 0) return;
      const pids = serverPids();
      // The postmaster first: it forks no new backend meanwhile.
      for (const pid of pids) {
        try { process.kill(pid, 'SIGSTOP'); frozen.push(pid); } catch { /* exited */ }
      }
    },
    async thaw(): Promise<void> {
      thawServer();
    },
    async start(): Promise<void> {
      if (!running) startServer();
    },
    async destroy(): Promise<void> {
      if (destroyed) return;
      destroyed = true;
      process.off('exit', onExit);
      thawServer();
      try {
        stopServer('fast');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
