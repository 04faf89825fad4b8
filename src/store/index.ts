/**
 * store/: persistence for all Portcullis state — key value stores and items, trust
 * stores, connection functions (DEVELOPMENT and LIVE stages), distributions — behind
 * one async {@link Store} interface, with in-code schema migrations and a change feed
 * that replicas follow. Embedded backend: SQLite (`openSqliteStore`); cluster backend:
 * PostgreSQL (postgres.ts, opened through `openStore({ kind: 'postgres', url })`, which
 * loads `pg` only then), with the same kysely queries (sql-store.ts).
 * Other folders import only from this file.
 */
export { openStore, redactStoreUrl } from './open.js';
export type { StoreSpec } from './open.js';
export { openNodeStore, fallbackStatus, describeStoreSpec, storeSpecLocation, writeNodeSnapshot } from './node-store.js';
export type { NodeStoreSpec, OpenNodeStoreOptions } from './node-store.js';
export { FallbackStore } from './fallback.js';
export type { FallbackEvent, FallbackStatus, FallbackStoreOptions } from './fallback.js';
export { DEFAULT_POSTGRES_OPTIONS } from './postgres-options.js';
export type { PostgresStoreOptions } from './postgres-options.js';
export { openSqliteStore, DEFAULT_SQLITE_OPTIONS, SQLITE_FILE_NAME } from './sqlite.js';
export type { SqliteStoreOptions } from './sqlite.js';
export { writeSnapshot, openSnapshotStore, readSnapshotInfo, SnapshotStore, SNAPSHOT_FORMAT, SNAPSHOT_VERSION, UNKNOWN_CLUSTER_ID } from './snapshot.js';
export type { SnapshotInfo, SnapshotWriteResult, WriteSnapshotOptions } from './snapshot.js';
export { subscribeChanges, ChangeSubscription } from './change-feed.js';
export type { ChangeSubscriptionOptions } from './change-feed.js';
export { migrationNames } from './migrations.js';
export type { StoreDialect } from './migrations.js';
export type {
  Store, KvsRepository, ResourceRepository, FunctionRepository, FunctionStage, ResourceRecord,
  KvsRecord, KvsStatus, KvsItem, KvsItemSource, KvsCrlState, CreateKvsInput, UpdateKvsItemsInput, KvsWriteOutcome,
  ChangeRecord, ChangePayload, ChangeEntity, ChangesPage, KvsChangeMeta, NodeRecord, NodeRepository, HeartbeatOptions,
} from './types.js';
export { newEtag, requireIfMatch } from './etag.js';
export { NODE_INSTANCE_ID, processAlive } from './sql-store.js';
