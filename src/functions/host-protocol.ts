/**
 * What the parent (host.ts) and the sandbox worker (sandbox-worker.ts) exchange: the
 * message shapes, the watchdog slots they share, the public event and status shapes of
 * {@link FunctionHost}, and errors as plain data (a worker cannot post an Error
 * subclass with its fields; the parent rebuilds the catalogue class from `code`).
 */
import { FunctionCompileError, FunctionSizeLimitExceededError, InvalidArgumentError, PortcullisError } from '../errors.js';
import type { CompileOptions, FunctionLimits } from './runtime.js';
import type { NodeStoreSpec } from '../store/index.js';

/**
 * Indexes into the shared Int32Array the watchdog reads: `job` counts units of
 * sandbox work started; `busy` is 1 while one runs; `kind` is {@link JOB_INVOKE} or
 * {@link JOB_COMPILE}; `req` the request id it serves (0: a compile the registry
 * started, announced by a `compiling` message); `start` when it started, ms after the
 * parent's epoch (`performance.timeOrigin + performance.now()` on both threads).
 */
export const SLOT = { job: 0, busy: 1, kind: 2, req: 3, start: 4 } as const;
/** Number of slots. */
export const SLOT_COUNT = 5;
/** `kind` of an invocation. */
export const JOB_INVOKE = 1;
/** `kind` of a compile (top-level code and warm-up). */
export const JOB_COMPILE = 2;
/**
 * First element of the array-shaped invoke message `[OP_INVOKE, id, name, json, now, id,
 * name, json, now, …]`: the invocations the parent queued in one turn, in order.
 */
export const OP_INVOKE = 0;

/**
 * An event of {@link FunctionHost} (`onEvent`): plain, serialisable, with a `type` and
 * a human-readable `message`.
 * - `loaded`: a LIVE version now serves (at start, after a publish, after a restart);
 * - `load-failed`: a LIVE version could not be compiled (the previous one, if any, keeps serving);
 * - `watchdog`: an invocation or compile ran past its wall-clock bound (`ms`) and the worker was terminated;
 * - `worker-restarted`: a new worker replaced a terminated or crashed one (`restarts` so far);
 * - `feed-error`: the change feed could not be read or applied (the worker serves its last state and retries).
 */
export type FunctionHostEvent =
  | { type: 'loaded'; name: string; etag: string; id: string; message: string }
  | { type: 'load-failed'; name: string; etag: string; error: string; message: string }
  | { type: 'watchdog'; name: string; ms: number; phase: 'invoke' | 'compile'; message: string }
  | { type: 'worker-restarted'; restarts: number; reason: string; message: string }
  | { type: 'feed-error'; error: string; message: string };

/**
 * {@link FunctionHost.status}: the change-feed sequence the worker has applied (the
 * lower of its registry's and its KVS replica's), each loaded LIVE function with its
 * invocation and error counts (`errors`: results with failureCode
 * ConnectionFunctionError; counts start again with each worker) and the heap QuickJS
 * reports for its sandbox (bytes), each READY KVS (items, total UTF-8 bytes of keys and
 * values, replica version), and how many times the worker was restarted.
 */
export interface FunctionHostStatus {
  appliedSequence: number;
  /**
   * Why the worker's replicas may be stale (cluster issue): its change feed cannot be
   * read or applied, or its store serves the local snapshot because the database was
   * unreachable at start. Absent when neither.
   */
  degraded?: string;
  functions: { name: string; id: string; etag: string; invocations: number; errors: number; memoryBytes: number }[];
  kvs: { name: string; itemCount: number; totalSize: number; version: number }[];
  restarts: number;
}

/** Parent → worker messages. The hot path (invoke) is a small array. */
export type ToWorker =
  | [typeof OP_INVOKE, ...(number | string | undefined)[]]
  | {
    t: 'init'; mode: 'host' | 'isolated'; slots: SharedArrayBuffer; epoch: number;
    /** Host mode: the store the worker opens (store/ `openNodeStore`). */
    store?: NodeStoreSpec; limits?: Partial<FunctionLimits>;
    /** [name, LIVE etag, reason]: versions not to compile (their top-level code hung a worker). */
    refused?: [string, string, string][];
  }
  | { t: 'status'; id: number }
  | { t: 'wait'; id: number; seq: number; timeoutMs?: number }
  /** Compile `code`; handle 0 = check only (dispose at once). `kvs`: named snapshots for later runs. */
  | { t: 'load'; id: number; handle: number; code: string; options: CompileOptions; kvs?: Record<string, [string, string][]> }
  | { t: 'run'; id: number; handle: number; json: string; kvs?: string; now?: number }
  | { t: 'drop'; handle: number }
  | { t: 'close'; id: number };

/** An error as plain data. */
export interface SerializedError {
  code?: string;
  message: string;
  line?: number;
  column?: number;
}

/** Error → plain data (code, message, position of a FunctionCompileError). */
export function serializeError(err: unknown): SerializedError {
  if (err instanceof FunctionCompileError) {
    return { code: err.code, message: err.message, ...(err.line !== undefined ? { line: err.line } : {}), ...(err.column !== undefined ? { column: err.column } : {}) };
  }
  if (err instanceof PortcullisError) return { code: err.code, message: err.message };
  return { message: err instanceof Error ? err.message : String(err) };
}

/** Plain data → the catalogue class of its code (FunctionCompileError, FunctionSizeLimitExceededError, InvalidArgumentError), else Error. */
export function deserializeError(e: SerializedError): Error {
  switch (e.code) {
    case 'InvalidFunctionCode':
      return new FunctionCompileError(e.message, { ...(e.line !== undefined ? { line: e.line } : {}), ...(e.column !== undefined ? { column: e.column } : {}) });
    case 'FunctionSizeLimitExceeded':
      return new FunctionSizeLimitExceededError(e.message);
    case 'InvalidArgument':
      return new InvalidArgumentError(e.message);
    default:
      return new Error(e.message);
  }
}
