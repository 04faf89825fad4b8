/**
 * KeyValueStore semantics (SPEC section 5, CloudFront KeyValueStore behaviour) on top
 * of the {@link Store}: create with import, describe, list, get, ListKeys with
 * NextToken pagination, put, delete, batch update, delete store — every write under
 * the store's current ETag (`If-Match`), returning the new one.
 *
 * Response objects use CloudFront's field names (`ItemCount`, `TotalSizeInBytes`,
 * `ETag`, …); inputs are camelCase options objects.
 */
import { randomUUID } from 'node:crypto';
import {
  CannotDeleteEntityWhileInUseError, EntityNotFoundError, InvalidArgumentError, PortcullisError,
  ServiceQuotaExceededError, StoreUnavailableError,
} from '../errors.js';
import { newEtag, requireIfMatch as requireStoreIfMatch, type KvsItem, type KvsRecord, type KvsStatus, type Store } from '../store/index.js';
import { resolveKvsLimits, type KvsLimits } from './limits.js';
import { readImportSource, type ImportFetcher } from './import-source.js';
import { importCrlIntoStore, type ImportCrlOptions, type ImportCrlResult } from './crl-import.js';
import {
  decodeNextToken, encodeNextToken, parseKvsImport, shorten, validateKey, validateKvsName, validateValue,
} from './validation.js';

/** DescribeKeyValueStore (control- and data-plane fields merged). Times are ISO 8601 UTC. */
export interface KvsDescription {
  Name: string;
  Id: string;
  Comment: string;
  Status: KvsStatus;
  /** Why the import failed (status `FAILED`), naming the first bad entry. */
  FailureReason?: string;
  ItemCount: number;
  /** Sum of the UTF-8 byte lengths of every key and value. */
  TotalSizeInBytes: number;
  ETag: string;
  Created: string;
  LastModified: string;
  /** Portcullis extension: the last CRL imported with `importCrl`, if any. */
  CrlImport?: {
    Issuer: string;
    ThisUpdate: string;
    NextUpdate?: string;
    CrlNumber?: string;
    Entries: number;
    ImportedAt: string;
  };
}

/** Result of every data write (CloudFront PutKey/DeleteKey/UpdateKeys response). */
export interface KvsWriteResult {
  /** The store's new ETag: pass it as `ifMatch` to the next write. */
  ETag: string;
  ItemCount: number;
  TotalSizeInBytes: number;
}

/** GetKey response. */
export interface KvsGetKeyResult {
  Key: string;
  Value: string;
  ItemCount: number;
  TotalSizeInBytes: number;
}

/** ListKeys response: items in byte order of their keys; `NextToken` when more follow. */
export interface KvsListKeysResult {
  Items: { Key: string; Value: string }[];
  NextToken?: string;
}

/** Input of {@link KeyValueStoreService.create}. */
export interface CreateKvsOptions {
  name: string;
  /** Up to `maxCommentLength` characters (default ''). */
  comment?: string;
  /** Import source: a file path or an `http(s)://` URL of a `{"data":[…]}` file. */
  importSource?: string;
  /** Import content given directly (instead of `importSource`). */
  importData?: Uint8Array;
}

/** Options of {@link KeyValueStoreService}; everything is injectable for tests. */
export interface KeyValueStoreServiceOptions {
  limits?: Partial<KvsLimits>;
  /** Clock, ms since the epoch (default Date.now). */
  now?: () => number;
  /** ETag generator (default {@link newKvsEtag}). */
  newEtag?: () => string;
  /** Store id generator (default a random UUID). */
  newId?: () => string;
  /** URL fetcher for imports (default undici). */
  fetcher?: ImportFetcher;
}

/**
 * A new random ETag in CloudFront's style: `KV` + 13 characters from 0-9A-Z (≈67 bits
 * of randomness), e.g. `KV1F83G8C2ARO7P`. ETags are opaque: compare them only for equality.
 */
export function newKvsEtag(): string {
  return newEtag('KV');
}

/** Converts a stored record to the describe shape. */
export function describeRecord(r: KvsRecord): KvsDescription {
  const d: KvsDescription = {
    Name: r.name,
    Id: r.id,
    Comment: r.comment,
    Status: r.status,
    ItemCount: r.itemCount,
    TotalSizeInBytes: r.totalSize,
    ETag: r.etag,
    Created: new Date(r.createdAt).toISOString(),
    LastModified: new Date(r.lastModified).toISOString(),
  };
  if (r.failureReason) d.FailureReason = r.failureReason;
  if (r.crlState) {
    d.CrlImport = {
      Issuer: r.crlState.issuer,
      ThisUpdate: r.crlState.thisUpdate,
      ...(r.crlState.nextUpdate ? { NextUpdate: r.crlState.nextUpdate } : {}),
      ...(r.crlState.crlNumber ? { CrlNumber: r.crlState.crlNumber } : {}),
      Entries: r.crlState.entries,
      ImportedAt: r.crlState.importedAt,
    };
  }
  return d;
}

function writeResult(r: KvsRecord): KvsWriteResult {
  return { ETag: r.etag, ItemCount: r.itemCount, TotalSizeInBytes: r.totalSize };
}

/** store/ `requireIfMatch`: the trimmed If-Match ETag. @throws InvalidIfMatchVersionError when missing or empty. */
export const requireIfMatch = requireStoreIfMatch;

/** @throws InvalidArgumentError naming the field unless `puts` is absent or an array of `{key: string, value: string}`. */
/** True when `s` has no lone surrogate (so it has a UTF-8 encoding). */
function isWellFormed(s: string): boolean {
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
}

/** Compares two strings in UTF-8 byte order (the order of the store's listing), not UTF-16 code units. */
function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function checkPuts(puts: unknown): readonly KvsItem[] {
  if (puts === undefined || puts === null) return [];
  if (!Array.isArray(puts)) throw new InvalidArgumentError(`puts must be an array of {key, value} objects, got ${typeName(puts)}`);
  puts.forEach((p: unknown, i) => {
    if (typeof p !== 'object' || p === null || Array.isArray(p)) throw new InvalidArgumentError(`puts[${i}] must be a {key, value} object, got ${typeName(p)}`);
    const { key, value } = p as { key?: unknown; value?: unknown };
    if (typeof key !== 'string') throw new InvalidArgumentError(`puts[${i}].key must be a string, got ${typeName(key)}`);
    if (typeof value !== 'string') throw new InvalidArgumentError(`puts[${i}].value must be a string, got ${typeName(value)}`);
  });
  return puts as KvsItem[];
}

/** @throws InvalidArgumentError naming the field unless `deletes` is absent or an array of strings. */
function checkDeletes(deletes: unknown): readonly string[] {
  if (deletes === undefined || deletes === null) return [];
  if (!Array.isArray(deletes)) throw new InvalidArgumentError(`deletes must be an array of key strings, got ${typeName(deletes)}`);
  deletes.forEach((k: unknown, i) => {
    if (typeof k !== 'string') throw new InvalidArgumentError(`deletes[${i}] must be a key string, got ${typeName(k)}`);
  });
  return deletes as string[];
}

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/** Attempts at marking a failed import FAILED (each waits up to the store's busy timeout). */
const FAIL_MARK_ATTEMPTS = 3;

/** Reason text of an unexpected error during an import: code and message, without "nothing was changed". */
function importErrorText(err: unknown): string {
  if (err instanceof PortcullisError) return `${err.code}: ${err.message.replace(/; nothing was changed$/, '')}`;
  return err instanceof Error ? err.message : String(err);
}

/** FailureReason of a store whose importing process stopped. */
export const INTERRUPTED_IMPORT_REASON = 'import interrupted: the process importing this store stopped before finishing; delete the store and create it again';

/**
 * The stale-import sweep: marks stores `PROVISIONING` for longer than
 * `staleProvisioningMs` as `FAILED` ({@link INTERRUPTED_IMPORT_REASON}). Reads first;
 * takes the write lock only when something is stale. With `wait: false`, a database
 * whose write lock another process holds is left alone (returns `[]`, never waits).
 * Run by `kvs create` (waiting), by every other `kvs` command and by
 * {@link KvsReplica.open} (not waiting).
 */
export async function sweepInterruptedImports(
  store: Store, opts: { staleProvisioningMs: number; now?: number; newEtag?: () => string; wait?: boolean },
): Promise<string[]> {
  const now = opts.now ?? Date.now();
  try {
    return await store.kvs.failStaleProvisioning(now - opts.staleProvisioningMs, {
      reason: INTERRUPTED_IMPORT_REASON, now, etag: opts.newEtag ?? newKvsEtag, ...(opts.wait === false ? { wait: false } : {}),
    });
  } catch (err) {
    if (opts.wait === false && err instanceof StoreUnavailableError) return [];
    throw err;
  }
}

/**
 * The KeyValueStore API over a {@link Store}. Stateless apart from its options: any
 * number of services (in any number of processes) may share one store; concurrency
 * control is the ETag, checked inside each write transaction.
 */
export class KeyValueStoreService {
  /** The limits in force (defaults merged with the overrides). */
  readonly limits: KvsLimits;
  private readonly now: () => number;
  private readonly newEtag: () => string;
  private readonly newId: () => string;
  private readonly fetcher: ImportFetcher | undefined;

  constructor(readonly store: Store, options: KeyValueStoreServiceOptions = {}) {
    this.limits = resolveKvsLimits(options.limits);
    this.now = options.now ?? Date.now;
    this.newEtag = options.newEtag ?? newKvsEtag;
    this.newId = options.newId ?? randomUUID;
    this.fetcher = options.fetcher;
  }

  /**
   * Creates a store and runs its import; resolves when the store is `READY` or
   * `FAILED` (see {@link startCreate} to get the `PROVISIONING` description first).
   * A failed import is not an error: the description has status `FAILED` and a
   * `FailureReason` naming the first bad entry, and the store holds no items.
   * @throws InvalidArgumentError (bad name or comment, both importSource and
   *   importData), EntityAlreadyExistsError (name taken).
   */
  async create(options: CreateKvsOptions): Promise<KvsDescription> {
    const started = await this.startCreate(options);
    return started.completion;
  }

  /**
   * Creates the store in status `PROVISIONING` (committed and visible to others) and
   * starts the import. `completion` resolves with the final description (`READY` or
   * `FAILED`; any failure after the store row exists — bad content, quota, a locked
   * or failing database — ends `FAILED` with a reason). It rejects only when even
   * marking the store FAILED fails (StoreUnavailableError saying the store is left
   * `PROVISIONING` for the stale-import sweep), or the store was deleted meanwhile.
   * @throws as {@link create}, before anything is stored.
   */
  async startCreate(options: CreateKvsOptions): Promise<{ description: KvsDescription; completion: Promise<KvsDescription> }> {
    validateKvsName(options.name);
    const comment = options.comment ?? '';
    if (comment.length > this.limits.maxCommentLength) {
      throw new InvalidArgumentError(`the comment is ${comment.length} characters, over the limit of ${this.limits.maxCommentLength}`);
    }
    if (options.importSource !== undefined && options.importData !== undefined) {
      throw new InvalidArgumentError('give either an import source or import data, not both');
    }
    const record = await this.store.kvs.createStore({ id: this.newId(), name: options.name, comment, etag: this.newEtag(), now: this.now() });
    const completion = this.runImport(record, options);
    return { description: describeRecord(record), completion };
  }

  private async runImport(record: KvsRecord, options: CreateKvsOptions): Promise<KvsDescription> {
    let reason: string;
    try {
      let items: KvsItem[] = [];
      let problem: string | undefined;
      if (options.importSource !== undefined || options.importData !== undefined) {
        let bytes: Uint8Array | undefined;
        if (options.importData !== undefined) {
          bytes = options.importData;
        } else {
          const read = await readImportSource(options.importSource!, {
            maxBytes: this.limits.maxImportBytes, timeoutMs: this.limits.importFetchTimeoutMs, ...(this.fetcher ? { fetcher: this.fetcher } : {}),
          });
          if (read.ok) bytes = read.bytes;
          else problem = read.reason;
        }
        if (bytes) {
          const parsed = parseKvsImport(bytes, this.limits);
          if (parsed.ok) items = parsed.items;
          else problem = parsed.reason;
        }
      }
      if (problem === undefined) {
        return describeRecord(await this.store.kvs.completeImport(record.id, items, {
          etag: this.newEtag(), now: this.now(), maxStoreBytes: this.limits.maxStoreBytes,
        }));
      }
      reason = problem;
    } catch (err) {
      // Whatever went wrong after the store row exists (quota, lock timeout, SQLite
      // error, disk full, a bug), the store must not stay PROVISIONING.
      reason = err instanceof ServiceQuotaExceededError ? err.message : `the import could not be stored: ${importErrorText(err)}`;
    }
    return this.markImportFailed(record, reason);
  }

  /**
   * Marks a store whose import failed as FAILED, retrying while the database is busy.
   * @throws StoreUnavailableError saying the store is left PROVISIONING (and that the
   *   stale-import sweep will mark it FAILED) when even that write fails.
   */
  private async markImportFailed(record: KvsRecord, reason: string): Promise<KvsDescription> {
    let lastErr: unknown;
    for (let attempt = 1; attempt <= FAIL_MARK_ATTEMPTS; attempt++) {
      try {
        return describeRecord(await this.store.kvs.failImport(record.id, reason, { etag: this.newEtag(), now: this.now() }));
      } catch (err) {
        if (err instanceof EntityNotFoundError) throw err; // deleted meanwhile: nothing left PROVISIONING
        lastErr = err;
        if (!(err instanceof StoreUnavailableError)) break;
      }
    }
    const minutes = Math.ceil(this.limits.staleProvisioningMs / 60_000);
    throw new StoreUnavailableError(
      `the import into key value store "${record.name}" failed (${reason}), and marking the store FAILED failed too (${importErrorText(lastErr)}): `
      + `the store is left PROVISIONING and will be marked FAILED by the stale-import sweep (${minutes} minutes after it was created, `
      + 'at the next kvs command, node start or create); then delete it and create it again',
      { cause: lastErr },
    );
  }

  /**
   * Marks stores left `PROVISIONING` longer than `limits.staleProvisioningMs` (their
   * importing process died) as `FAILED` with reason "import interrupted". Returns the
   * names changed. Safe to run from any process at any time; reads first and takes
   * the write lock only when a store is stale. With `wait: false` it does not wait for
   * another process's write lock (a busy database: nothing is done, `[]`), so read-only
   * callers never wait for a writer.
   */
  async recoverInterruptedImports(opts: { wait?: boolean } = {}): Promise<string[]> {
    return sweepInterruptedImports(this.store, {
      staleProvisioningMs: this.limits.staleProvisioningMs, now: this.now(), newEtag: this.newEtag, ...opts,
    });
  }

  private async record(name: string): Promise<KvsRecord> {
    validateKvsName(name);
    const r = await this.store.kvs.getStore(name);
    if (!r) throw new EntityNotFoundError(`key value store "${name}" does not exist`);
    return r;
  }

  /** DescribeKeyValueStore. @throws EntityNotFoundError, InvalidArgumentError (bad name). */
  async describe(name: string): Promise<KvsDescription> {
    return describeRecord(await this.record(name));
  }

  /** ListKeyValueStores: every store, ordered by name. */
  async list(): Promise<KvsDescription[]> {
    return (await this.store.kvs.listStores()).map(describeRecord);
  }

  /**
   * GetKey. @throws EntityNotFoundError when the store or the key does not exist;
   * InvalidArgumentError / EntitySizeLimitExceededError for an invalid key.
   */
  async getKey(name: string, key: string): Promise<KvsGetKeyResult> {
    validateKey(key, this.limits);
    const r = await this.record(name);
    const value = await this.store.kvs.getItem(r.id, key);
    if (value === undefined) throw new EntityNotFoundError(`key "${shorten(key)}" does not exist in key value store "${name}"`);
    return { Key: key, Value: value, ItemCount: r.itemCount, TotalSizeInBytes: r.totalSize };
  }

  /**
   * ListKeys: up to `maxResults` (default `limits.defaultListKeys`, at most
   * `limits.maxListKeys`) items with keys after the position of `nextToken`, in byte
   * order (UTF-8). `NextToken` is present when more items may follow.
   *
   * With `prefix` (a Portcullis extension; CloudFront's ListKeys has none) only keys that
   * start with it are listed, one page per call: the listing starts at the prefix (the key
   * equal to the prefix, then the keys after it) and stops at the first key without it.
   * This is exact in UTF-8 byte order for any Unicode, including characters outside the
   * BMP (surrogate pairs in JS strings): for well-formed strings, `key.startsWith(prefix)`
   * holds exactly when key's UTF-8 bytes start with prefix's bytes (UTF-8 is prefix-free
   * per code point, and a well-formed prefix never ends inside a character), and the keys
   * with a given byte prefix are contiguous in byte order. A `nextToken` from a prefixed
   * page continues that listing (pass the same prefix).
   * @throws InvalidArgumentError for a bad maxResults, nextToken or prefix (not
   *   well-formed UTF-16 — a lone surrogate —, or longer than `limits.maxKeyBytes`);
   *   EntityNotFoundError.
   */
  async listKeys(name: string, opts: { maxResults?: number; nextToken?: string; prefix?: string } = {}): Promise<KvsListKeysResult> {
    const max = opts.maxResults ?? this.limits.defaultListKeys;
    if (!Number.isInteger(max) || max < 1 || max > this.limits.maxListKeys) {
      throw new InvalidArgumentError(`MaxResults must be an integer from 1 to ${this.limits.maxListKeys}, got ${String(opts.maxResults)}`);
    }
    const prefix = opts.prefix ?? '';
    if (prefix !== '') {
      if (!isWellFormed(prefix)) throw new InvalidArgumentError('prefix: not well-formed Unicode (a lone surrogate); keys are UTF-8 strings');
      if (Buffer.byteLength(prefix, 'utf8') > this.limits.maxKeyBytes) {
        throw new InvalidArgumentError(`prefix: ${Buffer.byteLength(prefix, 'utf8')} bytes (UTF-8), longer than the longest key (${this.limits.maxKeyBytes} bytes)`);
      }
    }
    const r = await this.record(name);
    let after = opts.nextToken !== undefined ? decodeNextToken(opts.nextToken, r.id) : undefined;
    const head: KvsItem[] = [];
    if (prefix !== '' && (after === undefined || compareUtf8(after, prefix) < 0)) {
      // Start at the prefix: the key equal to it (if any), then the keys after it.
      const v = await this.store.kvs.getItem(r.id, prefix);
      if (v !== undefined) head.push({ key: prefix, value: v });
      after = prefix;
    }
    const rest = await this.store.kvs.listItems(r.id, { ...(after !== undefined ? { after } : {}), limit: max + 1 - head.length });
    const rows: KvsItem[] = [];
    let ended = false;
    for (const it of [...head, ...rest]) {
      if (prefix !== '' && !it.key.startsWith(prefix)) { ended = true; break; }
      rows.push(it);
    }
    const page = rows.slice(0, max);
    const out: KvsListKeysResult = { Items: page.map((it) => ({ Key: it.key, Value: it.value })) };
    if (!ended && rows.length > max) out.NextToken = encodeNextToken(r.id, page[page.length - 1]!.key);
    return out;
  }

  /**
   * PutKey: creates or replaces one key.
   * @throws InvalidIfMatchVersionError (no ifMatch), PreconditionFailedError (stale),
   *   InvalidArgumentError / EntitySizeLimitExceededError (key or value),
   *   ServiceQuotaExceededError (store over maxStoreBytes), EntityNotFoundError,
   *   EntityNotReadyError — nothing changed in every case.
   */
  async putKey(name: string, opts: { key: string; value: string; ifMatch: string | undefined }): Promise<KvsWriteResult> {
    return this.updateKeys(name, { ifMatch: opts.ifMatch, puts: [{ key: opts.key, value: opts.value }] });
  }

  /**
   * DeleteKey. @throws EntityNotFoundError when the key does not exist (nothing
   * changed, the ETag stays), and everything {@link putKey} throws.
   */
  async deleteKey(name: string, opts: { key: string; ifMatch: string | undefined }): Promise<KvsWriteResult> {
    const ifMatch = requireIfMatch(opts.ifMatch);
    if (typeof opts.key !== 'string') throw new InvalidArgumentError(`key must be a string, got ${typeName(opts.key)}`);
    validateKey(opts.key, this.limits);
    const outcome = await this.store.kvs.updateItems(name, {
      ifMatch, newEtag: this.newEtag(), puts: [], deletes: [opts.key], maxStoreBytes: this.limits.maxStoreBytes, now: this.now(),
      requireExisting: true,
    });
    return writeResult(outcome.record);
  }

  /**
   * UpdateKeys: puts and deletes applied all-or-nothing. At most `limits.maxBatchKeys`
   * keys in total; no key twice; a key may not be both put and deleted; at least one
   * key. Deleting a key that does not exist is not an error (it is skipped).
   * @throws InvalidArgumentError for those rules, and everything {@link putKey} throws.
   */
  async updateKeys(
    name: string, opts: { ifMatch: string | undefined; puts?: readonly KvsItem[]; deletes?: readonly string[] },
  ): Promise<KvsWriteResult> {
    const ifMatch = requireIfMatch(opts.ifMatch);
    validateKvsName(name);
    // The admin API passes request bodies through: check the shapes, not just the types.
    const puts = checkPuts(opts.puts);
    const deletes = checkDeletes(opts.deletes);
    const n = puts.length + deletes.length;
    if (n === 0) throw new InvalidArgumentError('an update needs at least one put or delete');
    if (n > this.limits.maxBatchKeys) {
      throw new InvalidArgumentError(`an update may touch at most ${this.limits.maxBatchKeys} keys, this one has ${n} (${puts.length} puts, ${deletes.length} deletes)`);
    }
    const seen = new Set<string>();
    for (const p of puts) {
      validateKey(p.key, this.limits);
      validateValue(p.key, p.value, this.limits);
      if (seen.has(p.key)) throw new InvalidArgumentError(`key "${shorten(p.key)}" appears more than once in the puts`);
      seen.add(p.key);
    }
    const deleteSet = new Set<string>();
    for (const k of deletes) {
      validateKey(k, this.limits);
      if (seen.has(k)) throw new InvalidArgumentError(`key "${shorten(k)}" is both put and deleted in one update`);
      if (deleteSet.has(k)) throw new InvalidArgumentError(`key "${shorten(k)}" appears more than once in the deletes`);
      deleteSet.add(k);
    }
    const outcome = await this.store.kvs.updateItems(name, {
      ifMatch, newEtag: this.newEtag(), puts, deletes, maxStoreBytes: this.limits.maxStoreBytes, now: this.now(),
    });
    return writeResult(outcome.record);
  }

  /**
   * Verifies an X.509 CRL against `trustStore` and makes the store's CRL-sourced keys
   * exactly its revoked serials, atomically (rules in crl-import.ts and the README).
   * Not limited to `maxBatchKeys`.
   * @throws CrlError (`InvalidCrl`), InvalidIfMatchVersionError, PreconditionFailedError,
   *   EntityNotFoundError, EntityNotReadyError, ServiceQuotaExceededError — nothing
   *   changed in every case.
   */
  async importCrl(
    name: string, opts: Omit<ImportCrlOptions, 'ifMatch'> & { ifMatch: string | undefined },
  ): Promise<ImportCrlResult> {
    const ifMatch = requireIfMatch(opts.ifMatch);
    return importCrlIntoStore(this.store, name, { ...opts, ifMatch, limits: this.limits, newEtag: this.newEtag(), nowMs: this.now() });
  }

  /**
   * UpdateKeyValueStore: sets the store's comment under its ETag; returns the new
   * description (new ETag). Allowed in any status (the data is not touched).
   * @throws InvalidIfMatchVersionError, PreconditionFailedError, EntityNotFoundError,
   *   InvalidArgumentError (name, comment over `maxCommentLength`) — nothing changed.
   */
  async update(name: string, opts: { comment: string; ifMatch: string | undefined }): Promise<KvsDescription> {
    const ifMatch = requireIfMatch(opts.ifMatch);
    validateKvsName(name);
    if (typeof opts.comment !== 'string') throw new InvalidArgumentError(`comment must be a string, got ${typeName(opts.comment)}`);
    if (opts.comment.length > this.limits.maxCommentLength) {
      throw new InvalidArgumentError(`the comment is ${opts.comment.length} characters, over the limit of ${this.limits.maxCommentLength}`);
    }
    return describeRecord(await this.store.kvs.updateStore(name, { ifMatch, newEtag: this.newEtag(), comment: opts.comment, now: this.now() }));
  }

  /**
   * DeleteKeyValueStore: removes the store and all its items. Refused while a
   * connection function (either stage) is associated with the store (SPEC 1).
   * @throws InvalidIfMatchVersionError, PreconditionFailedError, EntityNotFoundError,
   *   CannotDeleteEntityWhileInUseError.
   */
  async deleteStore(name: string, opts: { ifMatch: string | undefined }): Promise<void> {
    const ifMatch = requireIfMatch(opts.ifMatch);
    validateKvsName(name);
    const record = await this.record(name);
    const users = await this.functionsUsing(record);
    if (users.length > 0) {
      throw new CannotDeleteEntityWhileInUseError(
        `key value store "${name}" is associated with connection function ${users.join(', ')}; ` +
        'remove the association (and publish) before deleting the store',
      );
    }
    await this.store.kvs.deleteStore(name, ifMatch, this.now());
  }

  /**
   * Connection functions (either stage) whose document associates this store, as
   * `"name" (STAGE)` strings. Functions store the association as
   * `keyValueStore: { id, name }` (src/functions); read generically here, since kvs/
   * must not depend on functions/.
   */
  private async functionsUsing(record: KvsRecord): Promise<string[]> {
    const out: string[] = [];
    for (const f of await this.store.functions.list()) {
      const assoc = (f.document as { keyValueStore?: { id?: unknown; name?: unknown } | null } | null)?.keyValueStore;
      if (assoc && (assoc.id === record.id || (assoc.id === undefined && assoc.name === record.name))) out.push(`"${f.name}" (${f.stage})`);
    }
    return out;
  }
}
