/**
 * The connection-function lifecycle over the {@link Store} (SPEC sections 1 and 4):
 * create (DEVELOPMENT, status `UNPUBLISHED`), update (DEVELOPMENT only), publish
 * (DEVELOPMENT → LIVE), describe / get code per stage, list, delete (refused while a
 * distribution references the function). Each stage has its own ETag; every write takes
 * the DEVELOPMENT ETag as `If-Match`. Code is compile-checked (size limit, syntax, a
 * top-level `connectionHandler`, top-level code that runs) before anything is written.
 *
 * Response shapes follow CloudFront's `FunctionSummary` (PascalCase field names).
 */
import { randomUUID } from 'node:crypto';
import {
  CannotDeleteEntityWhileInUseError, EntityNotFoundError, InvalidArgumentError,
  PreconditionFailedError,
} from '../errors.js';
import { newEtag, requireIfMatch, type FunctionStage, type ResourceRecord, type Store } from '../store/index.js';
import { SandboxWorker } from './host.js';
import { resolveFunctionLimits, type FunctionLimits } from './runtime.js';

/** The only runtime Portcullis runs (CloudFront's name). */
export const FUNCTION_RUNTIME = 'cloudfront-js-2.0';

/** Runtime names accepted by {@link FunctionService.create}. */
export type FunctionRuntime = typeof FUNCTION_RUNTIME;

/** Function names: 1–64 characters from `A-Z a-z 0-9 - _` (CloudFront's pattern, the same as KVS names). */
export const FUNCTION_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** Longest comment, characters (CloudFront's limit for function comments). */
export const MAX_FUNCTION_COMMENT_LENGTH = 128;

/**
 * Field of a distribution document that associates a connection function:
 * `{ "connectionFunctionAssociation": { "id": "…" } }` or `{ … { "name": "…" } }`
 * (either or both). A function is in use when any distribution's association names
 * its id or its name.
 */
export const DISTRIBUTION_FUNCTION_FIELD = 'connectionFunctionAssociation';

/**
 * Function-level status (CloudFront's `FunctionSummary.Status`), computed when read:
 * - `UNPUBLISHED`: never published (no LIVE stage);
 * - `UNASSOCIATED`: published, no distribution references it (CloudFront's value for
 *   a published function not attached to anything);
 * - `DEPLOYED`: published and referenced by at least one distribution.
 * The same status is reported for both stages, as CloudFront does.
 */
export type FunctionStatus = 'UNPUBLISHED' | 'UNASSOCIATED' | 'DEPLOYED';

/** The KVS association as stored: the store's name and id when it was associated. */
export interface FunctionKvsAssociation {
  name: string;
  id: string;
}

/** The document stored for each stage of a function (`Store.functions`). */
export interface FunctionDocument {
  code: string;
  comment: string;
  runtime: FunctionRuntime;
  /** The associated key value store, or null (at most one). */
  keyValueStore: FunctionKvsAssociation | null;
}

/** A stored stage of a function with its document typed. */
export type FunctionStageRecord = ResourceRecord<FunctionDocument> & { stage: FunctionStage };

/** Input of {@link FunctionService.create}. */
export interface CreateFunctionInput {
  code: string;
  comment?: string;
  runtime: FunctionRuntime;
  /** Name of an existing key value store to associate (at most one). */
  keyValueStore?: string | null;
}

/**
 * Input of {@link FunctionService.update}: fields left undefined keep their value;
 * `keyValueStore: null` removes the association.
 */
export interface UpdateFunctionInput {
  code?: string;
  comment?: string;
  keyValueStore?: string | null;
}

/** CloudFront-shaped description of one stage of a function. */
export interface FunctionSummary {
  Name: string;
  Id: string;
  Status: FunctionStatus;
  Stage: FunctionStage;
  /** The ETag of this stage. */
  ETag: string;
  FunctionConfig: {
    Comment: string;
    Runtime: FunctionRuntime;
    KeyValueStoreAssociations: { Quantity: number; Items: { KeyValueStoreName: string; KeyValueStoreId: string }[] };
  };
  /** ISO 8601. */
  CreatedTime: string;
  /** ISO 8601. */
  LastModifiedTime: string;
}

/** The code of one stage and its ETag (CloudFront's GetFunction). */
export interface FunctionCode {
  code: string;
  ETag: string;
  Stage: FunctionStage;
}

/** Options of {@link FunctionService}. */
export interface FunctionServiceOptions {
  /** Limits the compile check applies (defaults of SPEC section 4). */
  limits?: Partial<FunctionLimits>;
  /** Clock, ms since the epoch (tests). */
  now?: () => number;
  /** ETag generator (default {@link newFunctionEtag}). */
  newEtag?: () => string;
  /** Id generator (default a random UUID). */
  newId?: () => string;
  /**
   * Where the compile check runs (default `SandboxWorker.shared()`): a worker thread
   * under a watchdog, so top-level code that loops in C fails the check with a
   * FunctionCompileError naming the timeout instead of hanging the caller.
   */
  sandbox?: SandboxWorker;
}

/** A new random ETag: `E` + 13 characters from 0-9A-Z, e.g. `E2QWRUHEXAMPLE`. Opaque: compare for equality only. */
export function newFunctionEtag(): string {
  return newEtag('E');
}

/** @throws InvalidArgumentError when `name` does not match {@link FUNCTION_NAME_PATTERN}. */
export function validateFunctionName(name: string): void {
  if (typeof name !== 'string' || !FUNCTION_NAME_PATTERN.test(name)) {
    throw new InvalidArgumentError(`invalid function name ${JSON.stringify(name)}: 1-64 characters from A-Z a-z 0-9 - _`);
  }
}

function checkComment(comment: unknown): string {
  if (comment === undefined) return '';
  if (typeof comment !== 'string') throw new InvalidArgumentError('comment must be a string');
  if (comment.length > MAX_FUNCTION_COMMENT_LENGTH) {
    throw new InvalidArgumentError(`comment is ${comment.length} characters, over the limit of ${MAX_FUNCTION_COMMENT_LENGTH}`);
  }
  return comment;
}

/**
 * True when distribution document `doc` associates the function with `fn.id` or
 * `fn.name` through {@link DISTRIBUTION_FUNCTION_FIELD}.
 */
export function distributionReferencesFunction(doc: unknown, fn: { id: string; name: string }): boolean {
  if (typeof doc !== 'object' || doc === null) return false;
  const assoc = (doc as Record<string, unknown>)[DISTRIBUTION_FUNCTION_FIELD];
  if (typeof assoc !== 'object' || assoc === null) return false;
  const { id, name } = assoc as { id?: unknown; name?: unknown };
  return id === fn.id || name === fn.name;
}

/** Names of the distributions of `store` that reference the function (ordered). */
export async function distributionsUsingFunction(store: Store, fn: { id: string; name: string }): Promise<string[]> {
  const all = await store.distributions.list();
  return all.filter((d) => distributionReferencesFunction(d.document, fn)).map((d) => d.name);
}

function asStageRecord(r: ResourceRecord & { stage: FunctionStage }): FunctionStageRecord {
  return r as FunctionStageRecord;
}

/** Converts a stored stage to the describe shape. */
export function describeFunctionStage(r: FunctionStageRecord, status: FunctionStatus): FunctionSummary {
  const kvs = r.document.keyValueStore;
  return {
    Name: r.name,
    Id: r.id,
    Status: status,
    Stage: r.stage,
    ETag: r.etag,
    FunctionConfig: {
      Comment: r.document.comment,
      Runtime: r.document.runtime,
      KeyValueStoreAssociations: {
        Quantity: kvs ? 1 : 0,
        Items: kvs ? [{ KeyValueStoreName: kvs.name, KeyValueStoreId: kvs.id }] : [],
      },
    },
    CreatedTime: new Date(r.createdAt).toISOString(),
    LastModifiedTime: new Date(r.lastModified).toISOString(),
  };
}

/**
 * The lifecycle of connection functions over a {@link Store}. Stateless apart from the
 * store: any number of instances (in any number of processes) may share one store; the
 * ETag comparison of every write happens inside the store's write transaction.
 */
export class FunctionService {
  private readonly limits: FunctionLimits;
  private readonly now: () => number;
  private readonly newEtag: () => string;
  private readonly newId: () => string;
  private readonly sandbox: SandboxWorker | undefined;

  constructor(private readonly store: Store, options: FunctionServiceOptions = {}) {
    this.limits = resolveFunctionLimits(options.limits);
    this.now = options.now ?? Date.now;
    this.newEtag = options.newEtag ?? newFunctionEtag;
    this.newId = options.newId ?? randomUUID;
    this.sandbox = options.sandbox;
  }

  /**
   * Compiles `code` in a throwaway sandbox in the sandbox worker and disposes it.
   * @throws FunctionSizeLimitExceededError, FunctionCompileError (with line/column; also
   *   when the top-level code did not finish within the worker's compile bound).
   */
  async checkCode(code: unknown, name?: string): Promise<string> {
    if (typeof code !== 'string') throw new InvalidArgumentError('code must be a string');
    await (this.sandbox ?? SandboxWorker.shared()).check(code, { ...this.limits, ...(name === undefined ? {} : { name }) });
    return code;
  }

  private async resolveKvs(name: string | null | undefined): Promise<FunctionKvsAssociation | null> {
    if (name === undefined || name === null || name === '') return null;
    if (typeof name !== 'string') throw new InvalidArgumentError('keyValueStore must be the name of a key value store');
    const kvs = await this.store.kvs.getStore(name);
    if (!kvs) throw new EntityNotFoundError(`key value store "${name}" does not exist`);
    return { name: kvs.name, id: kvs.id };
  }

  private async status(r: { id: string; name: string }, live: boolean): Promise<FunctionStatus> {
    if (!live) return 'UNPUBLISHED';
    return (await distributionsUsingFunction(this.store, r)).length > 0 ? 'DEPLOYED' : 'UNASSOCIATED';
  }

  private async get(name: string, stage: FunctionStage): Promise<FunctionStageRecord> {
    validateFunctionName(name);
    if (stage !== 'DEVELOPMENT' && stage !== 'LIVE') throw new InvalidArgumentError(`stage must be DEVELOPMENT or LIVE, got ${String(stage)}`);
    const r = await this.store.functions.get(name, stage);
    if (!r) {
      throw new EntityNotFoundError(stage === 'LIVE' && (await this.store.functions.get(name, 'DEVELOPMENT'))
        ? `connection function "${name}" has not been published (no LIVE stage)`
        : `connection function "${name}" does not exist`);
    }
    return asStageRecord(r);
  }

  /**
   * Creates a function in the DEVELOPMENT stage, status `UNPUBLISHED`. The code is
   * compiled and the KVS checked first; when either fails nothing is written.
   * @throws InvalidArgumentError (name, runtime, comment), FunctionSizeLimitExceededError,
   *   FunctionCompileError, EntityNotFoundError (the KVS), EntityAlreadyExistsError.
   */
  async create(name: string, input: CreateFunctionInput): Promise<FunctionSummary> {
    validateFunctionName(name);
    if (input.runtime !== FUNCTION_RUNTIME) {
      throw new InvalidArgumentError(`runtime must be ${FUNCTION_RUNTIME}, got ${JSON.stringify(input.runtime)}`);
    }
    const comment = checkComment(input.comment);
    const code = await this.checkCode(input.code, name);
    const keyValueStore = await this.resolveKvs(input.keyValueStore);
    const document: FunctionDocument = { code, comment, runtime: FUNCTION_RUNTIME, keyValueStore };
    const r = await this.store.functions.create({ id: this.newId(), name, etag: this.newEtag(), document, now: this.now() });
    return describeFunctionStage(asStageRecord(r), 'UNPUBLISHED');
  }

  /**
   * Updates the DEVELOPMENT stage under its ETag; LIVE is unchanged until
   * {@link publish}. Returns the DEVELOPMENT description with the new ETag.
   * @throws InvalidIfMatchVersionError, PreconditionFailedError, EntityNotFoundError
   *   (function or KVS), FunctionCompileError, FunctionSizeLimitExceededError,
   *   InvalidArgumentError — in every case nothing changed.
   */
  async update(name: string, ifMatch: string, input: UpdateFunctionInput): Promise<FunctionSummary> {
    validateFunctionName(name);
    const etag = requireIfMatch(ifMatch);
    const current = await this.get(name, 'DEVELOPMENT');
    if (current.etag !== etag) throw this.stale(name, etag);
    const comment = input.comment === undefined ? current.document.comment : checkComment(input.comment);
    const code = input.code === undefined ? current.document.code : await this.checkCode(input.code, name);
    const keyValueStore = input.keyValueStore === undefined ? current.document.keyValueStore : await this.resolveKvs(input.keyValueStore);
    const document: FunctionDocument = { code, comment, runtime: current.document.runtime, keyValueStore };
    const r = asStageRecord(await this.store.functions.put(name, 'DEVELOPMENT', { ifMatch: etag, newEtag: this.newEtag(), document, now: this.now() }));
    return describeFunctionStage(r, await this.status(r, (await this.store.functions.get(name, 'LIVE')) !== undefined));
  }

  /**
   * Copies DEVELOPMENT to LIVE (`ifMatch` is the DEVELOPMENT ETag). The LIVE stage gets
   * a new ETag; DEVELOPMENT keeps its own. The code is compile-checked again and the
   * associated KVS must still exist. Returns the LIVE description.
   * @throws InvalidIfMatchVersionError, PreconditionFailedError, EntityNotFoundError,
   *   FunctionCompileError.
   */
  async publish(name: string, ifMatch: string): Promise<FunctionSummary> {
    validateFunctionName(name);
    const etag = requireIfMatch(ifMatch);
    for (let attempt = 0; ; attempt++) {
      const dev = await this.get(name, 'DEVELOPMENT');
      if (dev.etag !== etag) throw this.stale(name, etag);
      await this.checkCode(dev.document.code, name);
      if (dev.document.keyValueStore) await this.resolveKvs(dev.document.keyValueStore.name);
      const live = await this.store.functions.get(name, 'LIVE');
      try {
        // The LIVE ETag read above guards against a concurrent publish; the document
        // published is exactly the DEVELOPMENT version whose ETag the caller gave.
        const r = asStageRecord(await this.store.functions.put(name, 'LIVE', {
          ifMatch: live?.etag ?? null, newEtag: this.newEtag(), document: dev.document, now: this.now(), id: dev.id,
        }));
        return describeFunctionStage(r, await this.status(r, true));
      } catch (err) {
        // Another publish won the race: re-check the DEVELOPMENT ETag and retry.
        if (err instanceof PreconditionFailedError && attempt < 3) continue;
        throw err;
      }
    }
  }

  /**
   * Describes one stage (default DEVELOPMENT).
   * @throws EntityNotFoundError (no such function, or LIVE before the first publish).
   */
  async describe(name: string, stage: FunctionStage = 'DEVELOPMENT'): Promise<FunctionSummary> {
    const r = await this.get(name, stage);
    const live = stage === 'LIVE' || (await this.store.functions.get(name, 'LIVE')) !== undefined;
    return describeFunctionStage(r, await this.status(r, live));
  }

  /** The code of one stage (default DEVELOPMENT) with that stage's ETag. @throws EntityNotFoundError. */
  async getCode(name: string, stage: FunctionStage = 'DEVELOPMENT'): Promise<FunctionCode> {
    const r = await this.get(name, stage);
    return { code: r.document.code, ETag: r.etag, Stage: r.stage };
  }

  /**
   * Every function, ordered by name: one entry per function for `stage` (default
   * DEVELOPMENT; with LIVE, only published functions), as CloudFront's ListFunctions.
   * Reads in one consistent transaction.
   */
  async list(stage: FunctionStage = 'DEVELOPMENT'): Promise<FunctionSummary[]> {
    const { rows, dists } = await this.store.readConsistent(async (s) => ({
      rows: (await s.functions.list()).map(asStageRecord),
      dists: await s.distributions.list(),
    }));
    const published = new Set(rows.filter((r) => r.stage === 'LIVE').map((r) => r.name));
    return rows.filter((r) => r.stage === stage).map((r) => {
      const status: FunctionStatus = !published.has(r.name) ? 'UNPUBLISHED'
        : dists.some((d) => distributionReferencesFunction(d.document, r)) ? 'DEPLOYED' : 'UNASSOCIATED';
      return describeFunctionStage(r, status);
    });
  }

  /**
   * Deletes both stages under the DEVELOPMENT ETag.
   * @throws InvalidIfMatchVersionError, EntityNotFoundError, PreconditionFailedError,
   *   CannotDeleteEntityWhileInUseError (a distribution references the function by
   *   id or name; the message names the distributions) — nothing changed.
   */
  async delete(name: string, ifMatch: string): Promise<void> {
    validateFunctionName(name);
    const etag = requireIfMatch(ifMatch);
    const dev = await this.get(name, 'DEVELOPMENT');
    if (dev.etag !== etag) throw this.stale(name, etag);
    const users = await distributionsUsingFunction(this.store, dev);
    if (users.length > 0) {
      throw new CannotDeleteEntityWhileInUseError(
        `connection function "${name}" is associated with distribution${users.length > 1 ? 's' : ''} ${users.map((u) => `"${u}"`).join(', ')}`,
      );
    }
    await this.store.functions.delete(name, etag, this.now());
  }

  private stale(name: string, etag: string): PreconditionFailedError {
    return new PreconditionFailedError(`the If-Match ETag "${etag}" is not the current DEVELOPMENT ETag of connection function "${name}"`);
  }
}
