/**
 * Local snapshots of the state a node serves, for a cluster node that starts while
 * PostgreSQL is unreachable: rather than refuse to serve, it may serve the last state
 * it applied — only from a snapshot that is complete and intact.
 *
 * File format (UTF-8, one JSON value per line, `\n`-terminated):
 * 1. header `{"format":"portcullis-snapshot","version":1,"seq":N,"writtenAt":MS,"source":"…","clusterId":"…"}`
 *    — `seq` is the last change sequence the content reflects, `source` the store's
 *    location (URL with the password redacted), `clusterId` the identity of the
 *    database it was read from (`Store.clusterId`; absent in snapshots written before
 *    cluster ids existed, which load with the id {@link UNKNOWN_CLUSTER_ID});
 * 2. body records, read in one consistent read (`Store.readConsistent`):
 *    `{"t":"kvs","r":KvsRecord}` for every key value store (any status), followed by
 *    `{"t":"items","id":STORE_ID,"i":[[key,value,source],…]}` chunks of its items
 *    (`source` null, `crl` or `crl+manual`); `{"t":"trust-store","r":…}`,
 *    `{"t":"distribution","r":…}`, `{"t":"function","r":…}` (one per stage);
 * 3. trailer `{"t":"end","lines":L,"sha256":HEX}`: L lines before it, and the SHA-256
 *    of every byte before it.
 *
 * Writing is atomic: a temporary file in the same directory, fsync'd, renamed over the
 * old snapshot, then the directory fsync'd — a crash at any point leaves either the old
 * snapshot or the new one, never a mix. Loading verifies the format version, the
 * trailer (so a truncated file is refused), the SHA-256 (so a flipped bit is refused)
 * and each store's item count; any failure refuses the whole file with
 * SnapshotInvalidError. A verified snapshot is loaded into an in-memory SQLite database
 * and served through the same queries as the real store (sql-store.ts), read-only.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { PortcullisError, SnapshotInvalidError, SnapshotWriteError, StoreUnavailableError } from '../errors.js';
import { migrateToLatest } from './migrations.js';
import { redactStoreUrl } from './redact.js';
import type { Database } from './schema.js';
import { SqlStore, type SqlBackend } from './sql-store.js';
import type { FunctionStage, KvsItemSource, KvsRecord, ResourceRecord, Store } from './types.js';

/** The `format` value of a snapshot header. */
export const SNAPSHOT_FORMAT = 'portcullis-snapshot';
/** The format version this build writes and reads. */
export const SNAPSHOT_VERSION = 1;

/**
 * The cluster id a snapshot without one (written before cluster ids) answers: it
 * matches no database, so a node that served such a snapshot reloads from the
 * database once it is reachable.
 */
export const UNKNOWN_CLUSTER_ID = 'unknown (snapshot written before cluster ids)';

/** Items per `items` record. */
const ITEMS_PER_LINE = 1000;
/** Items per page when reading the store. */
const READ_PAGE = 10_000;

/** What a snapshot holds, from its header (and, once verified, its size and hash). */
export interface SnapshotInfo {
  /** Absolute path of the file. */
  path: string;
  version: number;
  /** The last change sequence the snapshot reflects. */
  seq: number;
  /** When it was written, ms since the epoch. */
  writtenAt: number;
  /** The store it was taken from (URL with the password redacted, or a file path). */
  source: string;
  /** The identity of the database it was taken from (`Store.clusterId`); absent in older snapshots. */
  clusterId?: string;
  /** Size of the file, bytes. */
  bytes: number;
  /** SHA-256 (hex) of the content before the trailer. */
  sha256: string;
}

/** Result of {@link writeSnapshot}. */
export interface SnapshotWriteResult {
  seq: number;
  /** The identity of the database the snapshot was read from. */
  clusterId: string;
  /** Size of the file written, bytes. */
  bytes: number;
  /** ms since the epoch. */
  writtenAt: number;
}

/** Options of {@link writeSnapshot}. */
export interface WriteSnapshotOptions {
  /** Bytes gathered before each write to the file (default 1 MiB). */
  bufferBytes?: number;
  /** Clock, ms since the epoch (default Date.now). */
  now?: () => number;
}

type StagedRecord = ResourceRecord & { stage: FunctionStage };

type BodyRecord =
  | { t: 'kvs'; r: KvsRecord }
  | { t: 'items'; id: string; i: [string, string, KvsItemSource][] }
  | { t: 'trust-store' | 'distribution'; r: ResourceRecord }
  | { t: 'function'; r: StagedRecord };

/**
 * Writes a snapshot of everything `store` serves — every KVS with its items (and their
 * CRL sources), trust stores, distributions and both stages of every connection
 * function — read in one consistent read, to `path` (atomically, see above). The
 * directory is created when missing; the file is created with mode 0600.
 * @throws SnapshotWriteError when the store cannot be read or the file cannot be
 *   written; the previous snapshot at `path` is then untouched and no temporary file
 *   is left behind.
 */
export async function writeSnapshot(store: Store, path: string, options: WriteSnapshotOptions = {}): Promise<SnapshotWriteResult> {
  const file = resolve(path);
  const dir = dirname(file);
  const threshold = options.bufferBytes ?? 1024 * 1024;
  const now = options.now ?? Date.now;
  const tmp = join(dir, `.${basename(file)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    await mkdir(dir, { recursive: true });
    fh = await open(tmp, 'wx', 0o600);
    const out = fh;
    const hash = createHash('sha256');
    let bytes = 0;
    let lines = 0;
    let pending: string[] = [];
    let pendingLength = 0;
    const flush = async (): Promise<void> => {
      if (pending.length === 0) return;
      const buf = Buffer.from(pending.join(''), 'utf8');
      pending = [];
      pendingLength = 0;
      hash.update(buf);
      await out.write(buf);
      bytes += buf.length;
    };
    const emit = async (value: unknown): Promise<void> => {
      const line = `${JSON.stringify(value)}\n`;
      pending.push(line);
      pendingLength += line.length;
      lines += 1;
      if (pendingLength >= threshold) await flush();
    };
    const writtenAt = now();
    const { seq, clusterId } = await store.readConsistent(async (s) => {
      const seq = await s.latestSequence();
      const clusterId = await s.clusterId();
      await emit({ format: SNAPSHOT_FORMAT, version: SNAPSHOT_VERSION, seq, writtenAt, source: redactStoreUrl(store.location), clusterId });
      for (const r of await s.kvs.listStores()) {
        await emit({ t: 'kvs', r } satisfies BodyRecord);
        const sources = new Map<string, KvsItemSource>();
        for (const src of ['crl', 'crl+manual'] as const) for (const k of await s.kvs.listKeysBySource(r.id, src)) sources.set(k, src);
        let after: string | undefined;
        for (;;) {
          const page = await s.kvs.listItems(r.id, { ...(after !== undefined ? { after } : {}), limit: READ_PAGE });
          for (let i = 0; i < page.length; i += ITEMS_PER_LINE) {
            const part = page.slice(i, i + ITEMS_PER_LINE).map((it): [string, string, KvsItemSource] => [it.key, it.value, sources.get(it.key) ?? null]);
            await emit({ t: 'items', id: r.id, i: part } satisfies BodyRecord);
          }
          if (page.length < READ_PAGE) break;
          after = page[page.length - 1]!.key;
        }
      }
      for (const r of await s.trustStores.list()) await emit({ t: 'trust-store', r } satisfies BodyRecord);
      for (const r of await s.distributions.list()) await emit({ t: 'distribution', r } satisfies BodyRecord);
      for (const r of await s.functions.list()) await emit({ t: 'function', r } satisfies BodyRecord);
      return { seq, clusterId };
    });
    await flush();
    const trailer = Buffer.from(`${JSON.stringify({ t: 'end', lines, sha256: hash.digest('hex') })}\n`, 'utf8');
    await out.write(trailer);
    bytes += trailer.length;
    await out.sync();
    await out.close();
    fh = undefined;
    await rename(tmp, file);
    // The rename itself must survive a crash: fsync the directory entry.
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
    return { seq, clusterId, bytes, writtenAt };
  } catch (err) {
    await fh?.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    if (err instanceof SnapshotWriteError) throw err;
    throw new SnapshotWriteError(file, (err as Error).message, { cause: err });
  }
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isResource(r: unknown): r is ResourceRecord {
  return isObj(r) && typeof r.id === 'string' && typeof r.name === 'string' && typeof r.etag === 'string'
    && typeof r.createdAt === 'number' && typeof r.lastModified === 'number' && 'document' in r;
}

function isKvsRecord(r: unknown): r is KvsRecord {
  return isObj(r) && typeof r.id === 'string' && typeof r.name === 'string' && typeof r.comment === 'string'
    && typeof r.status === 'string' && typeof r.etag === 'string' && typeof r.itemCount === 'number'
    && typeof r.totalSize === 'number' && typeof r.createdAt === 'number' && typeof r.lastModified === 'number';
}

/** The verified header, body lines and trailer of a snapshot file. */
function verify(file: string, data: Buffer): { info: SnapshotInfo; body: Buffer[] } {
  const bad = (problem: string): SnapshotInvalidError => new SnapshotInvalidError(file, problem);
  if (data.length === 0) throw bad('the file is empty');
  const firstNl = data.indexOf(0x0a);
  if (firstNl < 0) throw bad('the file is truncated (no complete header line)');
  let header: unknown;
  try {
    header = JSON.parse(data.subarray(0, firstNl).toString('utf8'));
  } catch {
    throw bad('the first line is not a snapshot header (not JSON): corrupted, or not a snapshot file');
  }
  if (!isObj(header) || header.format !== SNAPSHOT_FORMAT) throw bad(`it is not a Portcullis store snapshot (format "${String(isObj(header) ? header.format : '')}")`);
  if (header.version !== SNAPSHOT_VERSION) {
    throw bad(`it has format version ${String(header.version)}; this build reads version ${SNAPSHOT_VERSION} only`);
  }
  if (typeof header.seq !== 'number' || !Number.isSafeInteger(header.seq) || header.seq < 0
    || typeof header.writtenAt !== 'number' || typeof header.source !== 'string'
    || (header.clusterId !== undefined && (typeof header.clusterId !== 'string' || header.clusterId === ''))) {
    throw bad('the header is malformed (seq, writtenAt, source or clusterId missing or invalid)');
  }
  if (data[data.length - 1] !== 0x0a) throw bad('the file is truncated (it does not end with the end record)');
  const trailerStart = data.lastIndexOf(0x0a, data.length - 2) + 1;
  let trailer: unknown;
  try {
    trailer = JSON.parse(data.subarray(trailerStart, data.length - 1).toString('utf8'));
  } catch {
    trailer = undefined;
  }
  if (!isObj(trailer) || trailer.t !== 'end' || typeof trailer.sha256 !== 'string' || typeof trailer.lines !== 'number') {
    throw bad('the file is truncated or corrupted (the end record is missing)');
  }
  const content = data.subarray(0, trailerStart);
  const sha256 = createHash('sha256').update(content).digest('hex');
  if (sha256 !== trailer.sha256) throw bad(`the content is corrupted (SHA-256 ${sha256} does not match the recorded ${trailer.sha256})`);
  const body: Buffer[] = [];
  let pos = firstNl + 1;
  while (pos < trailerStart) {
    const nl = data.indexOf(0x0a, pos);
    body.push(data.subarray(pos, nl));
    pos = nl + 1;
  }
  if (body.length + 1 !== trailer.lines) throw bad(`the end record counts ${trailer.lines} lines but there are ${body.length + 1}`);
  return {
    info: {
      path: file, version: SNAPSHOT_VERSION, seq: header.seq, writtenAt: header.writtenAt, source: header.source,
      ...(typeof header.clusterId === 'string' ? { clusterId: header.clusterId } : {}),
      bytes: data.length, sha256,
    },
    body,
  };
}

/** The read-only backend over the in-memory copy of a snapshot. */
class SnapshotBackend implements SqlBackend {
  readonly dialect = 'sqlite' as const;
  readonly db: Kysely<Database>;
  readonly location: string;
  private closed = false;

  constructor(raw: BetterSqlite3.Database, private readonly info: SnapshotInfo) {
    this.db = new Kysely<Database>({ dialect: new SqliteDialect({ database: raw }) });
    this.location = `snapshot ${info.path}`;
  }

  async writeTransaction<T>(): Promise<T> {
    throw new StoreUnavailableError(
      `serving from the local snapshot ${this.info.path} (sequence ${this.info.seq}, written ${new Date(this.info.writtenAt).toISOString()}, of ${this.info.source}) because the database is unreachable; writes are refused until it is back`,
    );
  }

  async readTransaction<T>(fn: (tx: Kysely<Database>) => Promise<T>): Promise<T> {
    // Nothing ever writes to this database: every read sees the same state.
    return fn(this.db);
  }

  watch(): () => void {
    return () => {};
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.db.destroy();
  }
}

/** A read-only {@link Store} with the state of a snapshot, and the snapshot's metadata. */
export class SnapshotStore extends SqlStore {
  constructor(backend: SqlBackend, readonly snapshot: SnapshotInfo) {
    super(backend);
  }
}

/** Reads a snapshot file, mapping a missing or unreadable file to SnapshotInvalidError. */
async function readSnapshotFile(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw new SnapshotInvalidError(file, code === 'ENOENT' ? 'the file does not exist' : `it cannot be read (${(err as Error).message})`, { cause: err });
  }
}

/**
 * The metadata of the snapshot at `path` (sequence, when written, source), after
 * verifying its version, completeness and SHA-256 — without loading it.
 * @throws SnapshotInvalidError as {@link openSnapshotStore} does.
 */
export async function readSnapshotInfo(path: string): Promise<SnapshotInfo> {
  const file = resolve(path);
  return verify(file, await readSnapshotFile(file)).info;
}

/**
 * Loads the snapshot at `path` after verifying it completely, and returns a read-only
 * Store with its state: `latestSequence()` is the snapshot's sequence, `changesAfter`
 * returns nothing beyond it (an earlier sequence gets `reset: true`: reload),
 * `watch` never fires, and every write (and `pruneChanges`) throws
 * StoreUnavailableError ("serving from the local snapshot …").
 * @throws SnapshotInvalidError naming the file and the problem when it is missing,
 *   unreadable, truncated, corrupted, of another format version or inconsistent —
 *   nothing is loaded then.
 */
export async function openSnapshotStore(path: string): Promise<SnapshotStore> {
  const file = resolve(path);
  const { info, body } = verify(file, await readSnapshotFile(file));
  const raw = new BetterSqlite3(':memory:');
  const backend = new SnapshotBackend(raw, info);
  try {
    await migrateToLatest(backend.db as unknown as Kysely<unknown>, 'sqlite');
    const insKvs = raw.prepare(`insert into kv_stores (id, name, comment, status, failure_reason, etag, item_count, total_size, created_at, last_modified, crl_state)
      values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    const insItem = raw.prepare('insert into kv_items (store_id, key, value, source) values (?, ?, ?, ?)');
    const insRes = (table: 'trust_stores' | 'distributions') => raw.prepare(`insert into ${table} (id, name, etag, document, created_at, last_modified) values (?, ?, ?, ?, ?, ?)`);
    const insTs = insRes('trust_stores');
    const insDist = insRes('distributions');
    const insFn = raw.prepare('insert into connection_functions (id, name, stage, etag, document, created_at, last_modified) values (?, ?, ?, ?, ?, ?, ?)');
    const counts = new Map<string, { expected: number; name: string; seen: number }>();
    raw.transaction(() => {
      raw.prepare('update change_sequence set last_seq = ? where id = 1').run(info.seq);
      raw.prepare('update cluster_identity set cluster_id = ? where id = 1').run(info.clusterId ?? UNKNOWN_CLUSTER_ID);
      body.forEach((line, index) => {
        const where = `line ${index + 2}`;
        let rec: BodyRecord;
        try {
          rec = JSON.parse(line.toString('utf8')) as BodyRecord;
        } catch {
          throw new SnapshotInvalidError(file, `${where} is not JSON`);
        }
        if (!isObj(rec)) throw new SnapshotInvalidError(file, `${where} is not a record`);
        switch (rec.t) {
          case 'kvs': {
            const r = rec.r;
            if (!isKvsRecord(r)) throw new SnapshotInvalidError(file, `${where}: malformed key value store record`);
            insKvs.run(r.id, r.name, r.comment, r.status, r.failureReason ?? null, r.etag, r.itemCount, r.totalSize, r.createdAt, r.lastModified,
              r.crlState ? JSON.stringify(r.crlState) : null);
            counts.set(r.id, { expected: r.itemCount, name: r.name, seen: 0 });
            break;
          }
          case 'items': {
            const c = counts.get(rec.id);
            if (!c || !Array.isArray(rec.i)) throw new SnapshotInvalidError(file, `${where}: items of an unknown key value store`);
            for (const it of rec.i) {
              if (!Array.isArray(it) || typeof it[0] !== 'string' || typeof it[1] !== 'string') throw new SnapshotInvalidError(file, `${where}: malformed item`);
              insItem.run(rec.id, it[0], it[1], it[2] ?? null);
            }
            c.seen += rec.i.length;
            break;
          }
          case 'trust-store':
          case 'distribution': {
            const r = rec.r;
            if (!isResource(r)) throw new SnapshotInvalidError(file, `${where}: malformed ${rec.t} record`);
            (rec.t === 'trust-store' ? insTs : insDist).run(r.id, r.name, r.etag, JSON.stringify(r.document), r.createdAt, r.lastModified);
            break;
          }
          case 'function': {
            const r = rec.r;
            if (!isResource(r) || (r.stage !== 'DEVELOPMENT' && r.stage !== 'LIVE')) throw new SnapshotInvalidError(file, `${where}: malformed function record`);
            insFn.run(r.id, r.name, r.stage, r.etag, JSON.stringify(r.document), r.createdAt, r.lastModified);
            break;
          }
          default:
            throw new SnapshotInvalidError(file, `${where}: unknown record type "${String((rec as { t?: unknown }).t)}"`);
        }
      });
    })();
    for (const c of counts.values()) {
      if (c.seen !== c.expected) {
        throw new SnapshotInvalidError(file, `key value store "${c.name}" records ${c.expected} items but the snapshot holds ${c.seen}`);
      }
    }
  } catch (err) {
    await backend.close();
    if (err instanceof SnapshotInvalidError) throw err;
    // A well-formed, hash-verified file whose rows do not fit the schema (duplicate
    // names, …) was not written by this build's writer.
    const problem = err instanceof PortcullisError ? err.message : `its content does not load (${(err as Error).message})`;
    throw new SnapshotInvalidError(file, problem, { cause: err });
  }
  return new SnapshotStore(backend, info);
}
