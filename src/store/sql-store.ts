/**
 * The Store implementation over kysely. Every query here is written in kysely's
 * builder (no raw SQL), so the SQLite backend (sqlite.ts) and the PostgreSQL backend
 * (postgres.ts) share it; a backend supplies only the connection, the
 * transaction modes and the wake-up mechanism ({@link SqlBackend}).
 */
import type { Kysely, Selectable } from 'kysely';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import {
  CannotDeleteEntityWhileInUseError, EntityAlreadyExistsError, EntityNotFoundError, EntityNotReadyError, InvalidArgumentError,
  NodeNameConflictError, PreconditionFailedError, ServiceQuotaExceededError,
} from '../errors.js';
import type { Database, KvStoresTable, NodesTable, ResourceTable } from './schema.js';
import type { StoreDialect } from './migrations.js';
import type {
  ChangePayload, ChangeRecord, ChangesPage, CreateKvsInput, FunctionRepository, FunctionStage, KvsChangeMeta,
  HeartbeatOptions, KvsCrlState, KvsItem, KvsItemSource, KvsRecord, KvsRepository, KvsStatus, KvsWriteOutcome, NodeRecord, NodeRepository, ResourceRecord,
  ResourceRepository, Store, UpdateKvsItemsInput,
} from './types.js';

/** What a SQL backend provides to {@link SqlStore}. */
export interface SqlBackend {
  readonly dialect: StoreDialect;
  /** For messages: the database file or connection target (no secrets). */
  readonly location: string;
  readonly db: Kysely<Database>;
  /**
   * Runs `fn` in a write transaction that holds the database's write lock from its
   * first statement (SQLite `BEGIN IMMEDIATE`; PostgreSQL `SELECT … FOR UPDATE` of the
   * `change_sequence` row), commits durably, then wakes watchers. With `wait: false` it
   * fails at once with StoreUnavailableError instead of waiting for another writer.
   * Rolls back and rethrows when `fn` throws.
   */
  writeTransaction<T>(fn: (tx: Kysely<Database>) => Promise<T>, opts?: { wait?: boolean }): Promise<T>;
  /** Runs `fn` in a read transaction: every read inside sees one snapshot. */
  readTransaction<T>(fn: (tx: Kysely<Database>) => Promise<T>): Promise<T>;
  /** See {@link Store.watch}. */
  watch(listener: () => void): () => void;
  /** Releases the connection(s). */
  close(): Promise<void>;
}

/** Rows per multi-row INSERT: 4 parameters each, well under SQLite's 32,766 and PostgreSQL's 65,535. */
const INSERT_CHUNK = 2000;
/** Keys per `IN (…)` list. */
const IN_CHUNK = 2000;

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Whether an item of this source is listed by the store's current CRL. */
function isCrlListed(source: KvsItemSource | undefined): boolean {
  return source === 'crl' || source === 'crl+manual';
}

/** Shortens a key for a message. */
function short(key: string): string {
  return key.length > 60 ? `${key.slice(0, 60)}…` : key;
}

/**
 * PostgreSQL `text` cannot hold U+0000 (SQLite can): refuse such items up front with a
 * message naming the key, before anything is written.
 * @throws InvalidArgumentError
 */
function refuseNul(dialect: StoreDialect, items: readonly KvsItem[]): void {
  if (dialect !== 'postgres') return;
  for (const it of items) {
    if (it.key.includes('\u0000')) throw new InvalidArgumentError(`key "${short(it.key.split('\u0000').join('\\u0000'))}" contains the NUL character U+0000, which the PostgreSQL store cannot hold`);
    if (it.value.includes('\u0000')) throw new InvalidArgumentError(`the value of key "${short(it.key)}" contains the NUL character U+0000, which the PostgreSQL store cannot hold`);
  }
}

/** UTF-8 byte length of a key + value (the unit of TotalSizeInBytes). */
function itemBytes(key: string, value: string): number {
  return Buffer.byteLength(key, 'utf8') + Buffer.byteLength(value, 'utf8');
}

function toKvsRecord(row: Selectable<KvStoresTable>): KvsRecord {
  return {
    id: row.id,
    name: row.name,
    comment: row.comment,
    status: row.status as KvsStatus,
    failureReason: row.failure_reason,
    etag: row.etag,
    itemCount: Number(row.item_count),
    totalSize: Number(row.total_size),
    createdAt: Number(row.created_at),
    lastModified: Number(row.last_modified),
    crlState: row.crl_state ? (JSON.parse(row.crl_state) as KvsCrlState) : null,
  };
}

function kvsMeta(r: KvsRecord): KvsChangeMeta {
  return { storeId: r.id, etag: r.etag, itemCount: r.itemCount, totalSize: r.totalSize, createdAt: r.createdAt, lastModified: r.lastModified };
}

function toResource<D>(row: Selectable<ResourceTable>): ResourceRecord<D> {
  return {
    id: row.id,
    name: row.name,
    etag: row.etag,
    document: JSON.parse(row.document) as D,
    createdAt: Number(row.created_at),
    lastModified: Number(row.last_modified),
  };
}

/**
 * Appends change records in the caller's transaction. The sequence comes from the
 * single `change_sequence` row, incremented by an UPDATE … RETURNING: that row lock is
 * held until commit, so on every backend commits hand out sequences in commit order
 * (SQLite serialises writers anyway; on PostgreSQL a plain sequence would not).
 */
async function appendChanges(tx: Kysely<Database>, now: number, changes: { name: string; payload: ChangePayload }[]): Promise<number> {
  if (changes.length === 0) return 0;
  const n = changes.length;
  const row = await tx.updateTable('change_sequence')
    .set((eb) => ({ last_seq: eb('last_seq', '+', n) }))
    .where('id', '=', 1)
    .returning('last_seq')
    .executeTakeFirstOrThrow();
  const last = Number(row.last_seq);
  const first = last - n + 1;
  await tx.insertInto('changes').values(changes.map((c, i) => {
    const { entity, op, ...rest } = c.payload;
    return { seq: first + i, committed_at: now, entity, op, name: c.name, payload: JSON.stringify(rest) };
  })).execute();
  return last;
}

class SqlKvsRepository implements KvsRepository {
  constructor(private readonly db: Kysely<Database>, private readonly backend: SqlBackend, private readonly inTx: boolean) {}

  private write<T>(fn: (tx: Kysely<Database>) => Promise<T>, opts?: { wait?: boolean }): Promise<T> {
    if (this.inTx) throw new Error('writes are not allowed inside readConsistent()');
    return this.backend.writeTransaction(fn, opts);
  }

  private async row(tx: Kysely<Database>, name: string): Promise<KvsRecord | undefined> {
    const row = await tx.selectFrom('kv_stores').selectAll().where('name', '=', name).executeTakeFirst();
    return row ? toKvsRecord(row) : undefined;
  }

  private async rowById(tx: Kysely<Database>, id: string): Promise<KvsRecord | undefined> {
    const row = await tx.selectFrom('kv_stores').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toKvsRecord(row) : undefined;
  }

  async createStore(input: CreateKvsInput): Promise<KvsRecord> {
    return this.write(async (tx) => {
      if (await this.row(tx, input.name)) throw new EntityAlreadyExistsError(`key value store "${input.name}" already exists`);
      const record: KvsRecord = {
        id: input.id, name: input.name, comment: input.comment, status: 'PROVISIONING', failureReason: null,
        etag: input.etag, itemCount: 0, totalSize: 0, createdAt: input.now, lastModified: input.now, crlState: null,
      };
      await tx.insertInto('kv_stores').values({
        id: record.id, name: record.name, comment: record.comment, status: record.status, failure_reason: null,
        etag: record.etag, item_count: 0, total_size: 0, created_at: record.createdAt, last_modified: record.lastModified,
        crl_state: null,
      }).execute();
      await appendChanges(tx, input.now, [{ name: record.name, payload: { entity: 'kvs', op: 'store', record } }]);
      return record;
    });
  }

  async completeImport(id: string, items: readonly KvsItem[], opts: { etag: string; now: number; maxStoreBytes: number }): Promise<KvsRecord> {
    refuseNul(this.backend.dialect, items);
    let total = 0;
    for (const it of items) total += itemBytes(it.key, it.value);
    if (total > opts.maxStoreBytes) {
      throw new ServiceQuotaExceededError(`the imported items total ${total} bytes, over the store limit of ${opts.maxStoreBytes} bytes`);
    }
    return this.write(async (tx) => {
      const current = await this.rowById(tx, id);
      if (!current) throw new EntityNotFoundError(`key value store ${id} no longer exists`);
      if (current.status !== 'PROVISIONING') throw new EntityNotReadyError(`key value store "${current.name}" is ${current.status}, not PROVISIONING`);
      // Inserting in key order appends to the B-tree instead of splitting pages all
      // over it, so each page is written once (3-4x faster for 1M random keys).
      const sorted = items.length > INSERT_CHUNK ? [...items].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)) : items;
      for (const part of chunks(sorted, INSERT_CHUNK)) {
        await tx.insertInto('kv_items').values(part.map((it) => ({ store_id: id, key: it.key, value: it.value, source: null }))).execute();
      }
      const record: KvsRecord = {
        ...current, status: 'READY', failureReason: null, etag: opts.etag, itemCount: items.length, totalSize: total,
        lastModified: opts.now,
      };
      await tx.updateTable('kv_stores').set({
        status: 'READY', failure_reason: null, etag: opts.etag, item_count: items.length, total_size: total, last_modified: opts.now,
      }).where('id', '=', id).execute();
      await appendChanges(tx, opts.now, [{
        name: record.name,
        payload: { entity: 'kvs', op: 'store', record, items: items.map((it) => [it.key, it.value]) },
      }]);
      return record;
    });
  }

  async failImport(id: string, reason: string, opts: { etag: string; now: number }): Promise<KvsRecord> {
    return this.write(async (tx) => {
      const current = await this.rowById(tx, id);
      if (!current) throw new EntityNotFoundError(`key value store ${id} no longer exists`);
      const record: KvsRecord = { ...current, status: 'FAILED', failureReason: reason, etag: opts.etag, lastModified: opts.now };
      await tx.updateTable('kv_stores').set({ status: 'FAILED', failure_reason: reason, etag: opts.etag, last_modified: opts.now })
        .where('id', '=', id).execute();
      await appendChanges(tx, opts.now, [{ name: record.name, payload: { entity: 'kvs', op: 'store', record } }]);
      return record;
    });
  }

  async getStore(name: string): Promise<KvsRecord | undefined> {
    return this.row(this.db, name);
  }

  async listStores(): Promise<KvsRecord[]> {
    const rows = await this.db.selectFrom('kv_stores').selectAll().orderBy('name').execute();
    return rows.map(toKvsRecord);
  }

  async getItem(storeId: string, key: string): Promise<string | undefined> {
    const row = await this.db.selectFrom('kv_items').select('value').where('store_id', '=', storeId).where('key', '=', key).executeTakeFirst();
    return row?.value;
  }

  async listItems(storeId: string, opts: { after?: string; limit: number }): Promise<KvsItem[]> {
    let q = this.db.selectFrom('kv_items').select(['key', 'value']).where('store_id', '=', storeId);
    if (opts.after !== undefined) q = q.where('key', '>', opts.after);
    return q.orderBy('key').limit(opts.limit).execute();
  }

  async listKeysBySource(storeId: string, source: Exclude<KvsItemSource, null>): Promise<string[]> {
    const rows = await this.db.selectFrom('kv_items').select('key').where('store_id', '=', storeId).where('source', '=', source)
      .orderBy('key').execute();
    return rows.map((r) => r.key);
  }

  async updateItems(name: string, input: UpdateKvsItemsInput): Promise<KvsWriteOutcome> {
    refuseNul(this.backend.dialect, input.puts);
    return this.write(async (tx) => {
      const current = await this.row(tx, name);
      if (!current) throw new EntityNotFoundError(`key value store "${name}" does not exist`);
      if (current.status !== 'READY') {
        throw new EntityNotReadyError(`key value store "${name}" is ${current.status}${current.failureReason ? ` (${current.failureReason})` : ''}; only a READY store accepts writes`);
      }
      if (current.etag !== input.ifMatch) {
        throw new PreconditionFailedError(`the If-Match ETag "${input.ifMatch}" is not the current ETag of key value store "${name}" (it was changed by another write); read it again and retry`);
      }
      const crlImport = input.replaceSource === 'crl';
      if (crlImport && input.deletes.length) throw new Error('a CRL import takes no deletes');
      const putKeys = new Set(input.puts.map((p) => p.key));
      const deleteKeys = new Set(input.deletes);
      /** Keys whose source changes without their value changing (not in the change feed). */
      const sourceOnly = new Map<string, KvsItemSource>();
      if (crlImport) {
        // Keys the previous CRL listed and this one does not: a CRL-only key goes, a
        // key also put by hand stays as a hand-written key.
        const previous = await tx.selectFrom('kv_items').select(['key', 'source']).where('store_id', '=', current.id)
          .where('source', 'in', ['crl', 'crl+manual']).execute();
        for (const r of previous) {
          if (putKeys.has(r.key)) continue;
          if (r.source === 'crl') deleteKeys.add(r.key);
          else sourceOnly.set(r.key, null);
        }
      }
      // Current sizes and sources of every touched key, to keep ItemCount and
      // TotalSizeInBytes exact and to apply the source rules.
      const touched = [...new Set([...putKeys, ...deleteKeys])];
      const old = new Map<string, number>();
      const oldSource = new Map<string, KvsItemSource>();
      for (const part of chunks(touched, IN_CHUNK)) {
        const rows = await tx.selectFrom('kv_items').select(['key', 'value', 'source']).where('store_id', '=', current.id)
          .where('key', 'in', part).execute();
        for (const r of rows) {
          old.set(r.key, itemBytes(r.key, r.value));
          oldSource.set(r.key, r.source as KvsItemSource);
        }
      }
      if (input.requireExisting) {
        const missing = input.deletes.find((k) => !old.has(k));
        if (missing !== undefined) {
          throw new EntityNotFoundError(`key "${short(missing)}" does not exist in key value store "${name}"`);
        }
      }
      if (!crlImport) {
        // A key the current CRL lists must stay while that CRL lists it: deleting it
        // by hand would un-revoke the serial until the next CRL import.
        const listed = input.deletes.find((k) => isCrlListed(oldSource.get(k)));
        if (listed !== undefined) {
          throw new CannotDeleteEntityWhileInUseError(
            `key "${short(listed)}" of key value store "${name}" is listed by the imported CRL${current.crlState ? ` (${current.crlState.issuer}, thisUpdate ${current.crlState.thisUpdate})` : ''}; it cannot be deleted while that CRL lists it — it goes when a CRL that no longer lists it is imported (a value put by hand is kept until then)`,
          );
        }
      }
      // Which puts are written, and with which source.
      const skipped: string[] = [];
      const puts: (KvsItem & { source: KvsItemSource })[] = [];
      for (const p of input.puts) {
        const had = oldSource.has(p.key);
        const was = oldSource.get(p.key) ?? null;
        if (crlImport) {
          if (had && was !== 'crl') {
            // Put by hand: the value stays, the key is now also CRL-listed.
            skipped.push(p.key);
            if (was !== 'crl+manual') sourceOnly.set(p.key, 'crl+manual');
          } else {
            puts.push({ ...p, source: 'crl' });
          }
        } else {
          puts.push({ ...p, source: isCrlListed(was) ? 'crl+manual' : null });
        }
      }
      let total = current.totalSize;
      let count = current.itemCount;
      const deleted: string[] = [];
      for (const k of deleteKeys) {
        const size = old.get(k);
        if (size !== undefined) {
          total -= size;
          count -= 1;
          deleted.push(k);
        }
      }
      for (const p of puts) {
        const size = old.get(p.key);
        if (size !== undefined) total -= size;
        else count += 1;
        total += itemBytes(p.key, p.value);
      }
      // A store already over a (lowered) limit may still shrink.
      if (total > input.maxStoreBytes && total > current.totalSize) {
        throw new ServiceQuotaExceededError(
          `this write would bring key value store "${name}" to ${total} bytes, over its limit of ${input.maxStoreBytes} bytes`,
        );
      }
      for (const part of chunks(deleted, IN_CHUNK)) {
        await tx.deleteFrom('kv_items').where('store_id', '=', current.id).where('key', 'in', part).execute();
      }
      for (const part of chunks(puts, INSERT_CHUNK)) {
        await tx.insertInto('kv_items')
          .values(part.map((p) => ({ store_id: current.id, key: p.key, value: p.value, source: p.source })))
          .onConflict((oc) => oc.columns(['store_id', 'key']).doUpdateSet((eb) => ({
            value: eb.ref('excluded.value'),
            source: eb.ref('excluded.source'),
          })))
          .execute();
      }
      for (const src of [null, 'crl+manual'] as const) {
        const keys = [...sourceOnly].filter(([, v]) => v === src).map(([k]) => k);
        for (const part of chunks(keys, IN_CHUNK)) {
          await tx.updateTable('kv_items').set({ source: src }).where('store_id', '=', current.id).where('key', 'in', part).execute();
        }
      }
      const record: KvsRecord = {
        ...current, etag: input.newEtag, itemCount: count, totalSize: total, lastModified: input.now,
        crlState: input.crlState ?? current.crlState,
      };
      await tx.updateTable('kv_stores').set({
        etag: record.etag, item_count: count, total_size: total, last_modified: input.now,
        ...(input.crlState ? { crl_state: JSON.stringify(input.crlState) } : {}),
      }).where('id', '=', current.id).execute();
      await appendChanges(tx, input.now, [{
        name,
        payload: { entity: 'kvs', op: 'batch', meta: kvsMeta(record), puts: puts.map((p): [string, string] => [p.key, p.value]), deletes: deleted },
      }]);
      return { record, deleted, skipped };
    });
  }

  async updateStore(name: string, input: { ifMatch: string; newEtag: string; comment: string; now: number }): Promise<KvsRecord> {
    return this.write(async (tx) => {
      const current = await this.row(tx, name);
      if (!current) throw new EntityNotFoundError(`key value store "${name}" does not exist`);
      if (current.etag !== input.ifMatch) {
        throw new PreconditionFailedError(`the If-Match ETag "${input.ifMatch}" is not the current ETag of key value store "${name}"`);
      }
      const record: KvsRecord = { ...current, comment: input.comment, etag: input.newEtag, lastModified: input.now };
      await tx.updateTable('kv_stores').set({ comment: input.comment, etag: input.newEtag, last_modified: input.now })
        .where('id', '=', current.id).execute();
      await appendChanges(tx, input.now, [{ name, payload: { entity: 'kvs', op: 'store', record } }]);
      return record;
    });
  }

  async deleteStore(name: string, ifMatch: string, now: number): Promise<KvsRecord> {
    return this.write(async (tx) => {
      const current = await this.row(tx, name);
      if (!current) throw new EntityNotFoundError(`key value store "${name}" does not exist`);
      if (current.etag !== ifMatch) {
        throw new PreconditionFailedError(`the If-Match ETag "${ifMatch}" is not the current ETag of key value store "${name}"`);
      }
      await tx.deleteFrom('kv_items').where('store_id', '=', current.id).execute();
      await tx.deleteFrom('kv_stores').where('id', '=', current.id).execute();
      await appendChanges(tx, now, [{ name, payload: { entity: 'kvs', op: 'delete-store', storeId: current.id } }]);
      return current;
    });
  }

  async failStaleProvisioning(olderThan: number, opts: { reason: string; now: number; etag: () => string; wait?: boolean }): Promise<string[]> {
    // A plain read first: the common case (nothing stale) takes no write lock.
    const stale = await this.db.selectFrom('kv_stores').select('id').where('status', '=', 'PROVISIONING')
      .where('last_modified', '<', olderThan).executeTakeFirst();
    if (!stale) return [];
    return this.write(async (tx) => {
      const rows = await tx.selectFrom('kv_stores').selectAll().where('status', '=', 'PROVISIONING')
        .where('last_modified', '<', olderThan).execute();
      const changes: { name: string; payload: ChangePayload }[] = [];
      for (const row of rows) {
        const record: KvsRecord = { ...toKvsRecord(row), status: 'FAILED', failureReason: opts.reason, etag: opts.etag(), lastModified: opts.now };
        await tx.updateTable('kv_stores').set({ status: 'FAILED', failure_reason: opts.reason, etag: record.etag, last_modified: opts.now })
          .where('id', '=', row.id).execute();
        changes.push({ name: record.name, payload: { entity: 'kvs', op: 'store', record } });
      }
      await appendChanges(tx, opts.now, changes);
      return rows.map((r) => r.name);
    }, opts.wait === false ? { wait: false } : undefined);
  }
}

type ResourceTableName = 'trust_stores' | 'distributions';

class SqlResourceRepository implements ResourceRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly backend: SqlBackend,
    private readonly table: ResourceTableName,
    private readonly entity: 'trust-store' | 'distribution',
    private readonly label: string,
  ) {}

  // Both tables have the ResourceTable shape; queries are typed against one of them.
  private t(): 'trust_stores' {
    return this.table as 'trust_stores';
  }

  async create(input: { id: string; name: string; etag: string; document: unknown; now: number }): Promise<ResourceRecord> {
    return this.backend.writeTransaction(async (tx) => {
      const existing = await tx.selectFrom(this.t()).select('id').where('name', '=', input.name).executeTakeFirst();
      if (existing) throw new EntityAlreadyExistsError(`${this.label} "${input.name}" already exists`);
      const record: ResourceRecord = {
        id: input.id, name: input.name, etag: input.etag, document: input.document, createdAt: input.now, lastModified: input.now,
      };
      await tx.insertInto(this.t()).values({
        id: record.id, name: record.name, etag: record.etag, document: JSON.stringify(record.document),
        created_at: record.createdAt, last_modified: record.lastModified,
      }).execute();
      await appendChanges(tx, input.now, [{ name: record.name, payload: { entity: this.entity, op: 'upsert', record } }]);
      return record;
    });
  }

  async get(name: string): Promise<ResourceRecord | undefined> {
    const row = await this.db.selectFrom(this.t()).selectAll().where('name', '=', name).executeTakeFirst();
    return row ? toResource(row) : undefined;
  }

  async list(): Promise<ResourceRecord[]> {
    const rows = await this.db.selectFrom(this.t()).selectAll().orderBy('name').execute();
    return rows.map((r) => toResource(r));
  }

  async update(name: string, input: { ifMatch: string; newEtag: string; document: unknown; now: number }): Promise<ResourceRecord> {
    return this.backend.writeTransaction(async (tx) => {
      const row = await tx.selectFrom(this.t()).selectAll().where('name', '=', name).executeTakeFirst();
      if (!row) throw new EntityNotFoundError(`${this.label} "${name}" does not exist`);
      if (row.etag !== input.ifMatch) throw new PreconditionFailedError(`the If-Match ETag "${input.ifMatch}" is not the current ETag of ${this.label} "${name}"`);
      const record: ResourceRecord = { ...toResource(row), etag: input.newEtag, document: input.document, lastModified: input.now };
      await tx.updateTable(this.t()).set({ etag: record.etag, document: JSON.stringify(record.document), last_modified: input.now })
        .where('id', '=', row.id).execute();
      await appendChanges(tx, input.now, [{ name, payload: { entity: this.entity, op: 'upsert', record } }]);
      return record;
    });
  }

  async delete(name: string, ifMatch: string, now: number): Promise<ResourceRecord> {
    return this.backend.writeTransaction(async (tx) => {
      const row = await tx.selectFrom(this.t()).selectAll().where('name', '=', name).executeTakeFirst();
      if (!row) throw new EntityNotFoundError(`${this.label} "${name}" does not exist`);
      if (row.etag !== ifMatch) throw new PreconditionFailedError(`the If-Match ETag "${ifMatch}" is not the current ETag of ${this.label} "${name}"`);
      await tx.deleteFrom(this.t()).where('id', '=', row.id).execute();
      await appendChanges(tx, now, [{ name, payload: { entity: this.entity, op: 'delete', id: row.id } }]);
      return toResource(row);
    });
  }
}

type StagedRecord = ResourceRecord & { stage: FunctionStage };

class SqlFunctionRepository implements FunctionRepository {
  constructor(private readonly db: Kysely<Database>, private readonly backend: SqlBackend) {}

  async create(input: { id: string; name: string; etag: string; document: unknown; now: number }): Promise<StagedRecord> {
    return this.backend.writeTransaction(async (tx) => {
      const existing = await tx.selectFrom('connection_functions').select('id').where('name', '=', input.name).executeTakeFirst();
      if (existing) throw new EntityAlreadyExistsError(`connection function "${input.name}" already exists`);
      const record: StagedRecord = {
        id: input.id, name: input.name, stage: 'DEVELOPMENT', etag: input.etag, document: input.document,
        createdAt: input.now, lastModified: input.now,
      };
      await tx.insertInto('connection_functions').values({
        id: record.id, name: record.name, stage: record.stage, etag: record.etag, document: JSON.stringify(record.document),
        created_at: record.createdAt, last_modified: record.lastModified,
      }).execute();
      await appendChanges(tx, input.now, [{ name: record.name, payload: { entity: 'connection-function', op: 'upsert', record } }]);
      return record;
    });
  }

  async get(name: string, stage: FunctionStage): Promise<StagedRecord | undefined> {
    const row = await this.db.selectFrom('connection_functions').selectAll().where('name', '=', name).where('stage', '=', stage)
      .executeTakeFirst();
    return row ? { ...toResource(row), stage: row.stage as FunctionStage } : undefined;
  }

  async list(): Promise<StagedRecord[]> {
    const rows = await this.db.selectFrom('connection_functions').selectAll().orderBy('name').orderBy('stage').execute();
    return rows.map((row) => ({ ...toResource(row), stage: row.stage as FunctionStage }));
  }

  async put(
    name: string, stage: FunctionStage, input: { ifMatch: string | null; newEtag: string; document: unknown; now: number; id?: string },
  ): Promise<StagedRecord> {
    return this.backend.writeTransaction(async (tx) => {
      const dev = await tx.selectFrom('connection_functions').selectAll().where('name', '=', name).where('stage', '=', 'DEVELOPMENT')
        .executeTakeFirst();
      if (!dev) throw new EntityNotFoundError(`connection function "${name}" does not exist`);
      const row = await tx.selectFrom('connection_functions').selectAll().where('name', '=', name).where('stage', '=', stage)
        .executeTakeFirst();
      if (row && row.etag !== input.ifMatch) {
        throw new PreconditionFailedError(`the If-Match ETag "${input.ifMatch ?? ''}" is not the current ETag of connection function "${name}" (${stage})`);
      }
      const record: StagedRecord = {
        id: row?.id ?? input.id ?? dev.id, name, stage, etag: input.newEtag, document: input.document,
        createdAt: row ? Number(row.created_at) : input.now, lastModified: input.now,
      };
      if (row) {
        await tx.updateTable('connection_functions').set({ etag: record.etag, document: JSON.stringify(record.document), last_modified: input.now })
          .where('name', '=', name).where('stage', '=', stage).execute();
      } else {
        await tx.insertInto('connection_functions').values({
          id: record.id, name, stage, etag: record.etag, document: JSON.stringify(record.document),
          created_at: record.createdAt, last_modified: record.lastModified,
        }).execute();
      }
      await appendChanges(tx, input.now, [{ name, payload: { entity: 'connection-function', op: 'upsert', record } }]);
      return record;
    });
  }

  async delete(name: string, ifMatch: string, now: number): Promise<void> {
    await this.backend.writeTransaction(async (tx) => {
      const dev = await tx.selectFrom('connection_functions').selectAll().where('name', '=', name).where('stage', '=', 'DEVELOPMENT')
        .executeTakeFirst();
      if (!dev) throw new EntityNotFoundError(`connection function "${name}" does not exist`);
      if (dev.etag !== ifMatch) throw new PreconditionFailedError(`the If-Match ETag "${ifMatch}" is not the current ETag of connection function "${name}"`);
      await tx.deleteFrom('connection_functions').where('name', '=', name).execute();
      await appendChanges(tx, now, [{ name, payload: { entity: 'connection-function', op: 'delete', id: dev.id } }]);
    });
  }
}

/**
 * This process's node instance id: random, created when the process loads this module
 * (per process start). What a heartbeat records when its record carries none.
 */
export const NODE_INSTANCE_ID = randomUUID();

/**
 * Whether a process with this pid exists on this machine (signal 0 probes without
 * signalling; EPERM means it exists but belongs to another user). Used to tell a
 * node's predecessor (a dead process) from a live duplicate of its name.
 */
export function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to another user.
    return (err as { code?: string }).code === 'EPERM';
  }
}

/** Default of {@link HeartbeatOptions.staleAfterMs}, ms. */
const DEFAULT_STALE_AFTER_MS = 5000;

function toNodeRecord(row: Selectable<NodesTable>): NodeRecord {
  return {
    name: row.name,
    startedAt: Number(row.started_at),
    heartbeatAt: Number(row.heartbeat_at),
    appliedSeq: Number(row.applied_seq),
    version: row.version,
    pid: Number(row.pid),
    host: row.host,
    adminAddress: row.admin_address,
    listeners: JSON.parse(row.listeners) as NodeRecord['listeners'],
    status: row.status as NodeRecord['status'],
    reasons: JSON.parse(row.reasons) as string[],
    instanceId: row.instance_id,
  };
}

/** The node table (cluster issue): heartbeats are plain upserts, no change record. */
class SqlNodeRepository implements NodeRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async heartbeat(r: NodeRecord, options: HeartbeatOptions = {}): Promise<void> {
    const instanceId = r.instanceId ?? NODE_INSTANCE_ID;
    const staleAfterMs = options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
    const row = {
      name: r.name, started_at: r.startedAt, heartbeat_at: r.heartbeatAt, applied_seq: r.appliedSeq, version: r.version,
      pid: r.pid, host: r.host, admin_address: r.adminAddress, listeners: JSON.stringify(r.listeners), status: r.status,
      reasons: JSON.stringify(r.reasons), instance_id: instanceId,
    };
    const { name: _name, ...update } = row;
    // One atomic statement, outside the backend's write transaction: a heartbeat never
    // takes (or waits for) the configuration write lock. The row is replaced only when
    // it is this instance's, another's gone silent, or from before instance ids.
    const result = await this.db.insertInto('nodes').values(row).onConflict((oc) => oc.column('name').doUpdateSet(update).where((eb) => eb.or([
      eb('nodes.instance_id', '=', instanceId),
      eb('nodes.instance_id', '=', ''),
      eb('nodes.heartbeat_at', '<', r.heartbeatAt - staleAfterMs),
    ]))).executeTakeFirst();
    if (Number(result.numInsertedOrUpdatedRows ?? 0) > 0) return;
    const other = await this.db.selectFrom('nodes').selectAll().where('name', '=', r.name).executeTakeFirst();
    if (!other) return this.heartbeat(r, options); // removed in between: insert again
    // The other instance ran on this very machine and its process is gone: this is the
    // node restarted (after a crash or a stop), not a second node. Take the row over.
    if (other.host === r.host && r.host === hostname() && Number(other.pid) !== r.pid && !processAlive(Number(other.pid))) {
      const taken = await this.db.updateTable('nodes').set(update).where('name', '=', r.name).where('instance_id', '=', other.instance_id).executeTakeFirst();
      if (Number(taken.numUpdatedRows) > 0) return;
      return this.heartbeat(r, options);
    }
    throw new NodeNameConflictError(r.name, {
      instanceId: other.instance_id, host: other.host, pid: Number(other.pid), startedAt: Number(other.started_at), heartbeatAt: Number(other.heartbeat_at),
    });
  }

  async leave(name: string, instanceId: string = NODE_INSTANCE_ID): Promise<boolean> {
    const r = await this.db.deleteFrom('nodes').where('name', '=', name).where('instance_id', '=', instanceId).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async list(): Promise<NodeRecord[]> {
    return (await this.db.selectFrom('nodes').selectAll().orderBy('name').execute()).map(toNodeRecord);
  }

  async remove(name: string): Promise<boolean> {
    const r = await this.db.deleteFrom('nodes').where('name', '=', name).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async sequenceCommittedBefore(time: number): Promise<number> {
    const row = await this.db.selectFrom('changes').select((eb) => eb.fn.max('seq').as('seq')).where('committed_at', '<', time).executeTakeFirst();
    return Number(row?.seq ?? 0);
  }
}

/**
 * {@link Store} over a {@link SqlBackend}. Construct through a backend opener
 * (`openSqliteStore`), not directly.
 */
export class SqlStore implements Store {
  readonly dialect: StoreDialect;
  readonly location: string;
  readonly kvs: KvsRepository;
  readonly trustStores: ResourceRepository;
  readonly distributions: ResourceRepository;
  readonly functions: FunctionRepository;
  readonly nodes: NodeRepository;
  private closed = false;

  constructor(private readonly backend: SqlBackend, private readonly db: Kysely<Database> = backend.db, inTx = false) {
    this.dialect = backend.dialect;
    this.location = backend.location;
    this.kvs = new SqlKvsRepository(db, backend, inTx);
    this.trustStores = new SqlResourceRepository(db, backend, 'trust_stores', 'trust-store', 'trust store');
    this.distributions = new SqlResourceRepository(db, backend, 'distributions', 'distribution', 'distribution');
    this.functions = new SqlFunctionRepository(db, backend);
    this.nodes = new SqlNodeRepository(db);
  }

  async changesAfter(seq: number, limit = 1000): Promise<ChangesPage> {
    // `latest` first: every change ≤ latest is committed (commits are visible in
    // sequence order), so a gap right after `seq` can only mean pruned records.
    // The database's identity in the same statement: a subscriber notices a replaced
    // database on the very page that would otherwise feed it the new database's changes.
    const head = await this.db.selectFrom(['change_sequence', 'cluster_identity'])
      .select(['change_sequence.last_seq as last_seq', 'cluster_identity.cluster_id as cluster_id'])
      .where('change_sequence.id', '=', 1).where('cluster_identity.id', '=', 1).executeTakeFirst();
    const latest = Number(head?.last_seq ?? 0);
    const clusterId = head?.cluster_id ?? 'unknown';
    const rows = await this.db.selectFrom('changes').selectAll().where('seq', '>', seq).orderBy('seq').limit(limit).execute();
    // A subscriber ahead of the database (latest < seq) follows a history the database
    // no longer has (dropped and re-created, restored from an older backup): it must
    // reload, or it would wait forever for sequences that will mean other changes.
    const reset = latest < seq || (rows[0] ? Number(rows[0].seq) !== seq + 1 : latest > seq);
    const changes: ChangeRecord[] = reset ? [] : rows.map((r) => ({
      ...(JSON.parse(r.payload) as object),
      entity: r.entity,
      op: r.op,
      seq: Number(r.seq),
      committedAt: Number(r.committed_at),
      name: r.name,
    }) as ChangeRecord);
    return { changes, reset, latestSeq: latest, clusterId };
  }

  async clusterId(): Promise<string> {
    const row = await this.db.selectFrom('cluster_identity').select('cluster_id').where('id', '=', 1).executeTakeFirst();
    return row?.cluster_id ?? 'unknown';
  }

  async latestSequence(): Promise<number> {
    const row = await this.db.selectFrom('change_sequence').select('last_seq').where('id', '=', 1).executeTakeFirst();
    return Number(row?.last_seq ?? 0);
  }

  async pruneChanges(seq: number): Promise<number> {
    return this.backend.writeTransaction(async (tx) => {
      const r = await tx.deleteFrom('changes').where('seq', '<=', seq).executeTakeFirst();
      return Number(r.numDeletedRows);
    });
  }

  watch(listener: () => void): () => void {
    return this.backend.watch(listener);
  }

  async readConsistent<T>(fn: (store: Store) => Promise<T>): Promise<T> {
    return this.backend.readTransaction((tx) => fn(new SqlStore(this.backend, tx, true)));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.backend.close();
  }
}
