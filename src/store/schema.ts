/**
 * The database schema as kysely table types (one interface per table). The same
 * schema is created by {@link ./migrations.ts} on SQLite and on PostgreSQL (int8
 * columns, `COLLATE "C"` keys), so every query in {@link ./sql-store.ts} runs on both.
 *
 * Conventions: timestamps are INTEGER milliseconds since the Unix epoch (UTC);
 * JSON documents are TEXT; booleans are not used (SQLite has none).
 */
/** Single row (`id` = 1) holding the last sequence number handed to a change. */
export interface ChangeSequenceTable {
  id: number;
  last_seq: number;
}

/** The change feed: one row per committed change, `seq` strictly increasing in commit order. */
export interface ChangesTable {
  seq: number;
  /** Commit time, ms since the epoch. */
  committed_at: number;
  /** `kvs`, `trust-store`, `connection-function`, `distribution`. */
  entity: string;
  /** Operation, e.g. `put`, `batch`, `store`, `delete-store`, `upsert`, `delete`. */
  op: string;
  /** Name of the affected resource (KVS name, trust-store name, …). */
  name: string;
  /** JSON of the change's payload (see `ChangePayload` in types.ts). */
  payload: string;
}

/** One key value store (KVS) and its store-level metadata. */
export interface KvStoresTable {
  id: string;
  name: string;
  comment: string;
  /** `PROVISIONING`, `READY` or `FAILED`. */
  status: string;
  failure_reason: string | null;
  etag: string;
  item_count: number;
  /** Sum of UTF-8 bytes of every key and value. */
  total_size: number;
  created_at: number;
  last_modified: number;
  /** JSON of the last imported CRL's metadata (issuer, thisUpdate, …), or null. */
  crl_state: string | null;
}

/** The items of every KVS. Primary key (store_id, key); keys sort by byte order. */
export interface KvItemsTable {
  store_id: string;
  key: string;
  value: string;
  /** Where the item came from: null for API/CLI writes and imports, `crl` for CRL import. */
  source: string | null;
}

/** Minimal resource row shared by trust stores and distributions. */
export interface ResourceTable {
  id: string;
  name: string;
  etag: string;
  /** The resource document as JSON. */
  document: string;
  created_at: number;
  last_modified: number;
}

/** Connection functions: one row per (name, stage); each stage has its own ETag. */
export interface ConnectionFunctionsTable extends ResourceTable {
  /** `DEVELOPMENT` or `LIVE`. */
  stage: string;
}

/**
 * One row per cluster node (issue 8), upserted by the node's heartbeat: what
 * `GET /v1/nodes` shows. `listeners` and `reasons` are JSON arrays.
 */
export interface NodesTable {
  /** The node's `nodeName` (or host name). Primary key. */
  name: string;
  /** When the node's current process started, ms since the epoch. */
  started_at: number;
  /** Last heartbeat, ms since the epoch. */
  heartbeat_at: number;
  /** Change sequence every replica of the node has applied (the minimum over them). */
  applied_seq: number;
  /** Portcullis version of the node. */
  version: string;
  /** Process id of the node's serving (primary) process. */
  pid: number;
  /** Host name of the machine. */
  host: string;
  /** The admin listener `host:port`, or null. */
  admin_address: string | null;
  /** JSON `[{"distribution","address","port"}]`: the edge listeners as bound. */
  listeners: string;
  /** `ok`, `degraded` or `starting`, as the node's `/readyz` said at the heartbeat. */
  status: string;
  /** JSON array of strings: why the node is not `ok`. */
  reasons: string;
  /** Random id of the process that wrote the row (per process start); '' in rows written before migration 0004. */
  instance_id: string;
}

/**
 * Single row (`id` = 1): the database's identity, a random UUID created by the
 * migration that created the table (so once per database). A database restored from a
 * backup keeps its id; a re-created or another cluster's database has another.
 */
export interface ClusterIdentityTable {
  id: number;
  cluster_id: string;
  /** When the id was created, ms since the epoch. */
  created_at: number;
}

/** The whole database, for `Kysely<Database>`. */
export interface Database {
  change_sequence: ChangeSequenceTable;
  changes: ChangesTable;
  kv_stores: KvStoresTable;
  kv_items: KvItemsTable;
  trust_stores: ResourceTable;
  connection_functions: ConnectionFunctionsTable;
  distributions: ResourceTable;
  nodes: NodesTable;
  cluster_identity: ClusterIdentityTable;
}
