/**
 * The Store interface: every piece of persistent state (key value stores and their
 * items, trust stores, connection functions with both stages, distributions) and the
 * change feed, behind one async interface, implemented by the SQLite backend
 * (sqlite.ts), the PostgreSQL backend (postgres.ts) with the same kysely queries
 * (sql-store.ts), and read-only by a verified local snapshot (snapshot.ts).
 *
 * Semantics every backend guarantees:
 * - every write is one transaction; conditional writes compare the `If-Match` ETag
 *   inside that transaction, so of two concurrent writers holding the same ETag exactly
 *   one succeeds and the other gets `PreconditionFailed` with nothing changed;
 * - every committed write appends its change record(s) to the change feed in the same
 *   transaction, with a sequence number strictly greater than every earlier commit's
 *   (sequence order = commit order; no gaps are ever observed out of order);
 * - a write is acknowledged (its promise resolves) only after the commit is durable.
 */

/** Status of a key value store (CloudFront's `Status`). */
export type KvsStatus = 'PROVISIONING' | 'READY' | 'FAILED';

/** Metadata of the last CRL imported into a KVS (see `kvs import-crl`). */
export interface KvsCrlState {
  /** Issuer DN (RFC 4514) of the imported CRL. */
  issuer: string;
  /** thisUpdate of the imported CRL, ISO 8601. */
  thisUpdate: string;
  /** nextUpdate of the imported CRL, ISO 8601, when present. */
  nextUpdate?: string;
  /** cRLNumber as a decimal string, when present. */
  crlNumber?: string;
  /** How many revoked-serial keys the import wrote. */
  entries: number;
  /** When the import happened, ISO 8601. */
  importedAt: string;
  /**
   * SHA-256 (lowercase hex) of the imported CRL's DER: tells a re-import of the same
   * CRL (allowed) from a different CRL with the same thisUpdate or cRLNumber (refused).
   */
  derSha256?: string;
}

/** One key value store row as stored. Sizes in bytes, times in ms since the epoch. */
export interface KvsRecord {
  id: string;
  name: string;
  comment: string;
  status: KvsStatus;
  failureReason: string | null;
  etag: string;
  itemCount: number;
  /** Sum of the UTF-8 byte lengths of every key and every value. */
  totalSize: number;
  createdAt: number;
  lastModified: number;
  crlState: KvsCrlState | null;
}

/** One item: a key and its value. */
export interface KvsItem {
  key: string;
  value: string;
}

/**
 * Where an item came from:
 * - null: put by hand (PutKey, UpdateKeys, an import at create);
 * - `crl`: listed by the store's current CRL (`import-crl`), value from the CRL;
 * - `crl+manual`: put by hand *and* listed by the current CRL; the value is the
 *   hand-written one. A key listed by the current CRL (`crl` or `crl+manual`) cannot be
 *   deleted by hand while that CRL lists it (deleting it would un-revoke the serial
 *   until the next CRL import); a CRL that no longer lists a `crl+manual` key turns it
 *   back into a hand-written key (null), a `crl` key is removed.
 */
export type KvsItemSource = 'crl' | 'crl+manual' | null;

/** Input of {@link KvsRepository.createStore}. */
export interface CreateKvsInput {
  id: string;
  name: string;
  comment: string;
  etag: string;
  now: number;
}

/**
 * Input of {@link KvsRepository.updateItems}: an all-or-nothing batch of puts and
 * deletes under an `If-Match` ETag.
 */
export interface UpdateKvsItemsInput {
  /** The ETag the caller read; compared inside the transaction. */
  ifMatch: string;
  /** The store's ETag after this write. */
  newEtag: string;
  puts: readonly KvsItem[];
  /**
   * Keys to remove; keys that do not exist are ignored unless `requireExisting`. A key
   * the current CRL lists (source `crl` or `crl+manual`) is refused with
   * CannotDeleteEntityWhileInUseError, nothing changed.
   */
  deletes: readonly string[];
  /** When true, a delete of a key that does not exist fails with EntityNotFound (DeleteKey). */
  requireExisting?: boolean;
  /**
   * `crl`: this write is a CRL import (`puts` are the CRL's serials, `deletes` must be
   * empty): every `crl` key not among `puts` is removed and every `crl+manual` key not
   * among them becomes a hand-written key again; a put onto a hand-written key keeps
   * its value and marks it `crl+manual` (reported in `skipped`); other puts are
   * written with source `crl`. All in the same transaction.
   * Unset: a hand-written write (a put onto a key the CRL lists marks it `crl+manual`).
   */
  replaceSource?: 'crl';
  /** New CRL metadata to record (only with `replaceSource: 'crl'`). */
  crlState?: KvsCrlState;
  /** The store's size quota in bytes; a write that ends above it (and grows the store) is refused. */
  maxStoreBytes: number;
  now: number;
}

/** Result of a KVS data write: the new ETag and the store's new counters. */
export interface KvsWriteOutcome {
  record: KvsRecord;
  /** Keys actually removed (deletes of absent keys and replaced CRL keys included only when they existed). */
  deleted: string[];
  /** Puts not applied because the key exists with another source (only with `replaceSource`). */
  skipped: string[];
}

/** Persistence of key value stores and their items. */
export interface KvsRepository {
  /**
   * Inserts a store in status `PROVISIONING` with no items.
   * @throws EntityAlreadyExistsError when the name is taken.
   */
  createStore(input: CreateKvsInput): Promise<KvsRecord>;
  /**
   * Finishes a create: inserts `items` (already validated: no duplicates, sizes within
   * limits) and sets status `READY` with `etag`, in one transaction.
   * @throws EntityNotFoundError when the store is gone; ServiceQuotaExceededError when
   *   the items exceed `maxStoreBytes` (the store is left untouched).
   */
  completeImport(id: string, items: readonly KvsItem[], opts: { etag: string; now: number; maxStoreBytes: number }): Promise<KvsRecord>;
  /** Sets status `FAILED` with `reason` (no items are stored). @throws EntityNotFoundError. */
  failImport(id: string, reason: string, opts: { etag: string; now: number }): Promise<KvsRecord>;
  /** The store with that name, or undefined. */
  getStore(name: string): Promise<KvsRecord | undefined>;
  /** Every store, ordered by name. */
  listStores(): Promise<KvsRecord[]>;
  /** One item's value, or undefined. */
  getItem(storeId: string, key: string): Promise<string | undefined>;
  /** Items with key > `after` (byte order), at most `limit`, ordered by key. */
  listItems(storeId: string, opts: { after?: string; limit: number }): Promise<KvsItem[]>;
  /** The keys of a store that carry `source`, ordered. */
  listKeysBySource(storeId: string, source: Exclude<KvsItemSource, null>): Promise<string[]>;
  /**
   * Applies puts and deletes atomically under `ifMatch`.
   * @throws EntityNotFoundError (no such store), EntityNotReadyError (status not READY),
   *   PreconditionFailedError (stale ETag), ServiceQuotaExceededError (over
   *   `maxStoreBytes`) — in every case nothing changed.
   */
  updateItems(name: string, input: UpdateKvsItemsInput): Promise<KvsWriteOutcome>;
  /**
   * Sets the comment of a store under `ifMatch` (CloudFront's UpdateKeyValueStore); the
   * store gets `newEtag`. @throws EntityNotFoundError, PreconditionFailedError.
   */
  updateStore(name: string, input: { ifMatch: string; newEtag: string; comment: string; now: number }): Promise<KvsRecord>;
  /**
   * Deletes the store and all its items under `ifMatch`.
   * @throws EntityNotFoundError, PreconditionFailedError.
   */
  deleteStore(name: string, ifMatch: string, now: number): Promise<KvsRecord>;
  /**
   * Marks stores stuck in `PROVISIONING` since before `olderThan` (ms) as `FAILED`
   * (an import whose process died). Returns the names changed. Checks with a plain
   * read first and takes the write lock only when there is something to mark. With
   * `wait: false` it does not wait for another process's write lock (fails at once
   * with StoreUnavailableError instead), for callers that must never wait for writers.
   */
  failStaleProvisioning(olderThan: number, opts: { reason: string; now: number; etag: () => string; wait?: boolean }): Promise<string[]>;
}

/** A minimal stored resource (trust store, distribution, one stage of a function). */
export interface ResourceRecord<D = unknown> {
  id: string;
  name: string;
  etag: string;
  document: D;
  createdAt: number;
  lastModified: number;
}

/** Stages of a connection function (SPEC section 4). */
export type FunctionStage = 'DEVELOPMENT' | 'LIVE';

/**
 * Basic CRUD for a resource table (trust stores, distributions). Later issues add the
 * resource-specific rules on top; this layer gives ETags, uniqueness and change records.
 */
export interface ResourceRepository<D = unknown> {
  /** @throws EntityAlreadyExistsError */
  create(input: { id: string; name: string; etag: string; document: D; now: number }): Promise<ResourceRecord<D>>;
  get(name: string): Promise<ResourceRecord<D> | undefined>;
  list(): Promise<ResourceRecord<D>[]>;
  /** @throws EntityNotFoundError, PreconditionFailedError */
  update(name: string, input: { ifMatch: string; newEtag: string; document: D; now: number }): Promise<ResourceRecord<D>>;
  /** @throws EntityNotFoundError, PreconditionFailedError */
  delete(name: string, ifMatch: string, now: number): Promise<ResourceRecord<D>>;
}

/** Connection functions: like {@link ResourceRepository} but every row is one stage. */
export interface FunctionRepository<D = unknown> {
  /** Creates the DEVELOPMENT stage. @throws EntityAlreadyExistsError */
  create(input: { id: string; name: string; etag: string; document: D; now: number }): Promise<ResourceRecord<D> & { stage: FunctionStage }>;
  get(name: string, stage: FunctionStage): Promise<(ResourceRecord<D> & { stage: FunctionStage }) | undefined>;
  /** Every function's stages, ordered by name then stage. */
  list(): Promise<(ResourceRecord<D> & { stage: FunctionStage })[]>;
  /** Updates one stage (creating LIVE on first publish when `ifMatch` is the DEVELOPMENT ETag is the caller's rule, not this layer's). @throws EntityNotFoundError, PreconditionFailedError */
  put(name: string, stage: FunctionStage, input: { ifMatch: string | null; newEtag: string; document: D; now: number; id?: string }): Promise<ResourceRecord<D> & { stage: FunctionStage }>;
  /** Deletes both stages under the DEVELOPMENT ETag. @throws EntityNotFoundError, PreconditionFailedError */
  delete(name: string, ifMatch: string, now: number): Promise<void>;
}

/** Entities that produce change records. */
export type ChangeEntity = 'kvs' | 'trust-store' | 'connection-function' | 'distribution';

/** Store-level fields carried by every KVS change, enough to update the replica's `meta()`. */
export interface KvsChangeMeta {
  storeId: string;
  etag: string;
  itemCount: number;
  totalSize: number;
  createdAt: number;
  lastModified: number;
}

/**
 * The payload of a change, by `entity`/`op`. Every record carries what a replica needs
 * to apply it without reading the store again.
 *
 * - `kvs`/`store`: a store was created or its status changed; `record` is the store
 *   row. When `items` is present (an import finished) it is the store's entire
 *   content as `[key, value]` pairs and replaces whatever the replica held.
 * - `kvs`/`batch`: puts (`[key, value]` pairs) and deletes of one write (put key,
 *   delete key, batch update, CRL import), plus the new ETag and counters.
 * - `kvs`/`delete-store`: the store and all its items are gone.
 * - other entities, `upsert`: the resource document after the write; `delete`: gone.
 */
export type ChangePayload =
  | { entity: 'kvs'; op: 'store'; record: KvsRecord; items?: [string, string][] }
  | { entity: 'kvs'; op: 'batch'; meta: KvsChangeMeta; puts: [string, string][]; deletes: string[] }
  | { entity: 'kvs'; op: 'delete-store'; storeId: string }
  | { entity: Exclude<ChangeEntity, 'kvs'>; op: 'upsert'; record: ResourceRecord & { stage?: FunctionStage } }
  | { entity: Exclude<ChangeEntity, 'kvs'>; op: 'delete'; id: string; stage?: FunctionStage };

/** One committed change as read back from the feed. */
export type ChangeRecord = ChangePayload & {
  /** Sequence number: strictly increasing in commit order, never reused. */
  seq: number;
  /** Commit time, ms since the epoch. */
  committedAt: number;
  /** Name of the affected resource. */
  name: string;
};

/**
 * Result of {@link Store.changesAfter}. `reset` is true when the subscriber must reload
 * the full state and continue from the sequence that reload reflects: changes after
 * `seq` were pruned, or `seq` is beyond the database's latest sequence (the database
 * was replaced or restored from an older backup — the database is the truth).
 */
export interface ChangesPage {
  changes: ChangeRecord[];
  reset: boolean;
  /** The last sequence committed when the page was read. */
  latestSeq: number;
  /**
   * The identity of the database the page was read from ({@link Store.clusterId}). A
   * subscriber whose state came from a database with another id must reload.
   */
  clusterId: string;
}

/** One cluster node as recorded by its heartbeat (issue 8). Times in ms since the epoch. */
export interface NodeRecord {
  /** The node's `nodeName` (unique in the cluster). */
  name: string;
  /** When the node's current process started. */
  startedAt: number;
  /** When the node last reported. */
  heartbeatAt: number;
  /** The change sequence every replica of the node has applied (the lowest among them). */
  appliedSeq: number;
  /** Portcullis version. */
  version: string;
  /** Process id of the node's serving (primary) process. */
  pid: number;
  /** Host name of the machine. */
  host: string;
  /** The admin listener as `host:port`, or null when unknown. */
  adminAddress: string | null;
  /** The edge listeners as bound. */
  listeners: { distribution: string; address: string; port: number }[];
  /** The node's own readiness at the heartbeat (`/readyz` status). */
  status: 'ok' | 'starting' | 'degraded';
  /** Why the node is not `ok` (empty when it is). */
  reasons: string[];
  /**
   * Random id of the process that heartbeats (per process start). Unset in a
   * heartbeat: the id of this process ({@link NODE_INSTANCE_ID}). Always set in `list()`
   * ('' for a row written before instance ids).
   */
  instanceId?: string;
}

/** Options of {@link NodeRepository.heartbeat}. */
export interface HeartbeatOptions {
  /**
   * A row of the same name written by another instance with a heartbeat younger than
   * this (ms before `record.heartbeatAt`) belongs to a running node: conflict. Default
   * 5000 (config `cluster.staleAfterMs`).
   */
  staleAfterMs?: number;
}

/**
 * The cluster's node table (issue 8): every node upserts its row with
 * {@link NodeRepository.heartbeat}; `GET /v1/nodes` lists them. Heartbeats append no
 * change record (they are not configuration).
 */
export interface NodeRepository {
  /**
   * Inserts or replaces the row of `record.name`, in one atomic statement — unless that
   * row was written by another instance (process) whose last heartbeat is younger than
   * `staleAfterMs`: two running nodes share the name; the row is left alone. A row of
   * another instance is taken over when it went silent longer than that, or when it
   * was written on this same machine (same host name) by a process that no longer
   * exists (the node restarted); a clean stop can also {@link leave}.
   * @throws NodeNameConflictError (code `NodeNameConflict`, with the other process's
   *   host, pid, instance id and heartbeat) on such a conflict; StoreUnavailableError
   *   when the database cannot be written.
   */
  heartbeat(record: NodeRecord, options?: HeartbeatOptions): Promise<void>;
  /**
   * Removes the row of `name` only if this instance (`instanceId`, default this
   * process's) wrote it: a node stopping cleanly, so that its restart under the same
   * name is not a conflict. Returns whether a row was removed.
   */
  leave(name: string, instanceId?: string): Promise<boolean>;
  /** Every node, ordered by name. */
  list(): Promise<NodeRecord[]>;
  /** Removes the row of `name` (a node taken out of the cluster); returns whether it existed. */
  remove(name: string): Promise<boolean>;
  /**
   * The highest change sequence committed before `time` (ms since the epoch), 0 when
   * none: what change-log pruning by age passes to {@link Store.pruneChanges}.
   */
  sequenceCommittedBefore(time: number): Promise<number>;
}

/** The one interface over all persistent state. Every method is async. */
export interface Store {
  /** Which backend: `sqlite` (embedded; also a loaded local snapshot) or `postgres` (cluster). */
  readonly dialect: 'sqlite' | 'postgres';
  /** Where the data lives (file path for SQLite), for messages. */
  readonly location: string;
  readonly kvs: KvsRepository;
  readonly trustStores: ResourceRepository;
  readonly distributions: ResourceRepository;
  readonly functions: FunctionRepository;
  /**
   * The cluster's node table (issue 8). Absent on stores that have none (a read-only
   * local snapshot of the last applied state).
   */
  readonly nodes?: NodeRepository;
  /**
   * Changes with sequence > `seq`, in order, at most `limit` (default 1000).
   * `reset` when some of them were pruned away (see {@link pruneChanges}).
   */
  changesAfter(seq: number, limit?: number): Promise<ChangesPage>;
  /** The sequence of the last committed change (0 when none). */
  latestSequence(): Promise<number>;
  /**
   * The identity of the database: a random id created once with the database (schema
   * migration `0003_cluster_identity`) and kept by backups; a dropped and re-created
   * database, or another cluster's, has another. A local snapshot answers the id
   * recorded when it was written (`unknown` for a snapshot written before ids existed).
   * @throws StoreUnavailableError when the database cannot be read.
   */
  clusterId(): Promise<string>;
  /**
   * Deletes change records with sequence ≤ `seq` (they are no longer needed by any
   * subscriber). A subscriber that asks for changes after a pruned sequence gets
   * `reset: true`. Returns how many were removed.
   */
  pruneChanges(seq: number): Promise<number>;
  /**
   * Registers `listener` to be called (without arguments) whenever new changes may
   * have been committed: at once for writes through any Store instance of this process
   * on the same database; for writes by other processes, within the poll interval
   * (SQLite: 50 ms by default) or, on PostgreSQL, on the commit's NOTIFY (the 1 s
   * safety poll and every reconnection of the LISTEN connection also fire it, so a
   * lost notification never loses a change). PostgreSQL also fires it when the
   * database stops or starts answering, so subscribers notice an outage. Calls may be
   * spurious. A snapshot store never fires. Returns an unsubscribe function.
   */
  watch(listener: () => void): () => void;
  /**
   * Runs `fn` in one read transaction so that several reads see one consistent
   * state (used by replicas loading everything at start). `fn` receives this store.
   */
  readConsistent<T>(fn: (store: Store) => Promise<T>): Promise<T>;
  /** Stops the watcher and closes the database. Idempotent. */
  close(): Promise<void>;
}
