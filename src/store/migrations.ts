/**
 * Schema migrations, in code (no folder globbing, so they work from `dist/` and from
 * `tsx` alike), run by kysely's `Migrator` in name order. A migration is never edited
 * after it has shipped: a schema change is a new entry with the next number.
 *
 * Migrations receive the dialect so the few dialect-specific details (SQLite `WITHOUT
 * ROWID`, PostgreSQL `COLLATE "C"` for byte-order key sorting) stay here and the
 * queries in sql-store.ts stay portable.
 */
import { randomUUID } from 'node:crypto';
import { Migrator, sql, type Kysely, type Migration, type MigrationProvider, type MigrationResultSet } from 'kysely';
import { StoreUnavailableError } from '../errors.js';

/** SQL dialects the store supports. */
export type StoreDialect = 'sqlite' | 'postgres';

/** Name of kysely's bookkeeping table for applied migrations. */
export const MIGRATION_TABLE = 'portcullis_migration';
/** Name of kysely's migration lock table. */
export const MIGRATION_LOCK_TABLE = 'portcullis_migration_lock';

function migrations(dialect: StoreDialect): Record<string, Migration> {
  const bigint = dialect === 'postgres' ? 'bigint' : 'integer';
  return {
    '0001_initial': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema.createTable('change_sequence')
          .addColumn('id', 'integer', (c) => c.primaryKey())
          .addColumn('last_seq', bigint, (c) => c.notNull())
          .execute();
        await db.insertInto('change_sequence' as never).values({ id: 1, last_seq: 0 } as never).execute();

        await db.schema.createTable('changes')
          .addColumn('seq', bigint, (c) => c.primaryKey())
          .addColumn('committed_at', bigint, (c) => c.notNull())
          .addColumn('entity', 'text', (c) => c.notNull())
          .addColumn('op', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('payload', 'text', (c) => c.notNull())
          .execute();

        await db.schema.createTable('kv_stores')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull().unique())
          .addColumn('comment', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('failure_reason', 'text')
          .addColumn('etag', 'text', (c) => c.notNull())
          .addColumn('item_count', bigint, (c) => c.notNull())
          .addColumn('total_size', bigint, (c) => c.notNull())
          .addColumn('created_at', bigint, (c) => c.notNull())
          .addColumn('last_modified', bigint, (c) => c.notNull())
          .addColumn('crl_state', 'text')
          .execute();

        // Keys must sort by byte order for stable NextToken pagination: SQLite's BINARY
        // collation compares UTF-8 bytes; PostgreSQL needs COLLATE "C".
        let items = db.schema.createTable('kv_items')
          .addColumn('store_id', 'text', (c) => c.notNull())
          .addColumn('key', 'text', (c) => (dialect === 'postgres' ? c.notNull().modifyEnd(sql`collate "C"`) : c.notNull()))
          .addColumn('value', 'text', (c) => c.notNull())
          .addColumn('source', 'text')
          .addPrimaryKeyConstraint('kv_items_pk', ['store_id', 'key']);
        // The items are only ever reached through (store_id, key): a clustered table
        // halves the file size and the 1M-key import time on SQLite.
        if (dialect === 'sqlite') items = items.modifyEnd(sql`without rowid`);
        await items.execute();
        await db.schema.createIndex('kv_items_source').on('kv_items').columns(['store_id', 'source']).execute();

        for (const table of ['trust_stores', 'distributions']) {
          await db.schema.createTable(table)
            .addColumn('id', 'text', (c) => c.primaryKey())
            .addColumn('name', 'text', (c) => c.notNull().unique())
            .addColumn('etag', 'text', (c) => c.notNull())
            .addColumn('document', 'text', (c) => c.notNull())
            .addColumn('created_at', bigint, (c) => c.notNull())
            .addColumn('last_modified', bigint, (c) => c.notNull())
            .execute();
        }
        await db.schema.createTable('connection_functions')
          .addColumn('id', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('stage', 'text', (c) => c.notNull())
          .addColumn('etag', 'text', (c) => c.notNull())
          .addColumn('document', 'text', (c) => c.notNull())
          .addColumn('created_at', bigint, (c) => c.notNull())
          .addColumn('last_modified', bigint, (c) => c.notNull())
          .addPrimaryKeyConstraint('connection_functions_pk', ['name', 'stage'])
          .execute();
      },
    },
    // Cluster mode (issue 8): one row per node, upserted by its heartbeat; and an
    // index for change-log pruning by age.
    '0002_nodes': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema.createTable('nodes')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('started_at', bigint, (c) => c.notNull())
          .addColumn('heartbeat_at', bigint, (c) => c.notNull())
          .addColumn('applied_seq', bigint, (c) => c.notNull())
          .addColumn('version', 'text', (c) => c.notNull())
          .addColumn('pid', 'integer', (c) => c.notNull())
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('admin_address', 'text')
          .addColumn('listeners', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('reasons', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('changes_committed_at').on('changes').column('committed_at').execute();
      },
    },
    // The database's identity: a random id created once, with the database. A replica
    // (or a local snapshot) remembers the id of the database its state came from; a
    // different id means the database was replaced (dropped and re-created, another
    // cluster's) and the replica must reload instead of following the new feed.
    '0003_cluster_identity': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema.createTable('cluster_identity')
          .addColumn('id', 'integer', (c) => c.primaryKey())
          .addColumn('cluster_id', 'text', (c) => c.notNull())
          .addColumn('created_at', bigint, (c) => c.notNull())
          .execute();
        await db.insertInto('cluster_identity' as never).values({ id: 1, cluster_id: randomUUID(), created_at: Date.now() } as never).execute();
      },
    },
    // Which process wrote a node's row (random per process start): two nodes with the
    // same nodeName are told apart instead of silently sharing one row.
    '0004_node_instance': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema.alterTable('nodes').addColumn('instance_id', 'text', (c) => c.notNull().defaultTo('')).execute();
      },
    },
  };
}

/** Names of every migration this build knows, in order (for diagnostics and tests). */
export function migrationNames(dialect: StoreDialect = 'sqlite'): string[] {
  return Object.keys(migrations(dialect)).sort();
}

class InCodeMigrationProvider implements MigrationProvider {
  constructor(private readonly dialect: StoreDialect) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    return migrations(this.dialect);
  }
}

/**
 * Brings the schema up to date (kysely `Migrator.migrateToLatest`).
 *
 * With `inCallerTransaction`, `db` must be bound to a connection that is already in a
 * write transaction (the SQLite backend's `BEGIN IMMEDIATE`): kysely then opens no
 * transaction of its own, the whole check-and-migrate is atomic, and processes that
 * start at once on a new file migrate one after the other (the second finds nothing to
 * do). Without it, kysely runs the migrations in its own transaction under its lock.
 * @throws StoreUnavailableError when a migration fails or the database has migrations
 *   this build does not know (a newer Portcullis wrote it).
 */
export async function migrateToLatest(
  db: Kysely<unknown>, dialect: StoreDialect, options: { inCallerTransaction?: boolean } = {},
): Promise<MigrationResultSet> {
  const migrator = new Migrator({
    db,
    provider: new InCodeMigrationProvider(dialect),
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: MIGRATION_LOCK_TABLE,
    disableTransactions: options.inCallerTransaction === true,
  });
  const result = await migrator.migrateToLatest();
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error')?.migrationName;
    const msg = (result.error as Error).message ?? String(result.error);
    // A connection lost mid-migration may pass; anything else (privileges, a schema
    // that is not ours) will fail again the same way.
    const transient = result.error instanceof StoreUnavailableError && result.error.transient;
    throw new StoreUnavailableError(
      failed ? `schema migration ${failed} failed: ${msg}` : `schema migration failed: ${msg}`,
      { cause: result.error, transient },
    );
  }
  return result;
}
