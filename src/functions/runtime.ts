/**
 * The connection-function runtime (SPEC section 4): CloudFront `cloudfront-js-2.0`
 * connection functions run in a QuickJS sandbox (quickjs-emscripten, pure WASM).
 *
 * One {@link FunctionInstance} per function version: its QuickJS runtime and context
 * are created once (prelude + the function's module) and reused for every invocation
 * ("warm"); an invocation costs one call into the sandbox plus one per KVS access (and,
 * for an async handler, one to run its jobs and one to collect the result). After
 * a fatal error (CPU limit, memory limit, stack overflow, a sandbox failure) the
 * sandbox is thrown away and rebuilt before the next invocation, so a misbehaving
 * connection never affects the next one.
 */
import { createHash, createHmac } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import {
  getQuickJS, type QuickJSContext, type QuickJSHandle, type QuickJSRuntime, type QuickJSWASMModule,
} from 'quickjs-emscripten';
import { FunctionCompileError, FunctionSizeLimitExceededError, InvalidArgumentError } from '../errors.js';
import { PRELUDE_SOURCE } from './prelude.js';
import { threadCpuMs, threadCpuSource } from './thread-cpu.js';
import { guardSource, LIMIT_GUARD_PRELUDE, LIMIT_HIT_HOST_FUNCTION } from './limit-guard.js';

/** The runtime prelude with its own catch sites guarded (console.log's JSON.stringify fallback, …). */
const GUARDED_PRELUDE_SOURCE = guardSource(PRELUDE_SOURCE, { label: '(prelude)' }).code;

/**
 * Limits of a connection function (SPEC section 4; config keys `functions.cpuLimitMs`,
 * `functions.memoryLimitBytes`, `functions.maxCodeBytes`).
 */
export interface FunctionLimits {
  /**
   * CPU budget per invocation, milliseconds (default 5). Enforced as a deadline checked
   * by QuickJS's interrupt handler: the wall time spent inside the sandbox for that
   * invocation (the sandbox is synchronous, so this is CPU time of this thread plus
   * host-side KVS and hash calls). The function's top-level code gets the same budget.
   */
  cpuLimitMs: number;
  /**
   * Memory the function may allocate, bytes (default 2 MiB = 2097152). QuickJS's
   * runtime limit is set to the sandbox's baseline after the prelude (≈ 0.5 MB: the
   * built-ins and the Buffer/crypto/querystring shims) plus this amount.
   */
  memoryLimitBytes: number;
  /** Maximum code size, UTF-8 bytes (default 10240). */
  maxCodeBytes: number;
}

/** Defaults of SPEC section 4: 5 ms CPU, 2 MiB memory, 10 KB code. */
export const DEFAULT_FUNCTION_LIMITS: Readonly<FunctionLimits> = Object.freeze({
  cpuLimitMs: 5,
  memoryLimitBytes: 2 * 1024 * 1024,
  maxCodeBytes: 10240,
});

/**
 * Fills in defaults and checks ranges: cpuLimitMs 1–1000, memoryLimitBytes 64 KiB–256 MiB,
 * maxCodeBytes 1–1 MiB.
 * @throws InvalidArgumentError naming the key and the range.
 */
export function resolveFunctionLimits(partial: Partial<FunctionLimits> = {}): FunctionLimits {
  const limits = { ...DEFAULT_FUNCTION_LIMITS, ...Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) };
  const check = (key: keyof FunctionLimits, min: number, max: number): void => {
    const v = limits[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
      throw new InvalidArgumentError(`functions.${key} must be a number from ${min} to ${max}, got ${String(v)}`);
    }
  };
  check('cpuLimitMs', 1, 1000);
  check('memoryLimitBytes', 64 * 1024, 256 * 1024 * 1024);
  check('maxCodeBytes', 1, 1024 * 1024);
  return limits;
}

/** Store-level facts `cf.kvs().meta()` returns (CloudFront field names). */
export interface FunctionKvsMeta {
  /** ISO 8601 UTC. */
  creationDateTime: string;
  /** ISO 8601 UTC. */
  lastUpdatedDateTime: string;
  keyCount: number;
}

/**
 * What a function invocation reads its KeyValueStore through: a consistent snapshot
 * for the whole invocation (kvs/ `KvsReplica.snapshot(name)` satisfies it; tests can
 * use {@link kvsSnapshotFromMap}). Calls are synchronous and do no I/O.
 */
export interface KvsSnapshotLike {
  get(key: string): string | undefined;
  has(key: string): boolean;
  meta(): FunctionKvsMeta;
}

/**
 * A {@link KvsSnapshotLike} over a plain Map (tests, the offline `function test` and
 * `function matrix` commands). `meta` defaults to the epoch for both dates.
 */
export function kvsSnapshotFromMap(
  map: ReadonlyMap<string, string>, meta: Partial<Omit<FunctionKvsMeta, 'keyCount'>> = {},
): KvsSnapshotLike {
  const epoch = '1970-01-01T00:00:00Z';
  return {
    get: (key) => map.get(key),
    has: (key) => map.has(key),
    meta: () => ({
      creationDateTime: meta.creationDateTime ?? epoch,
      lastUpdatedDateTime: meta.lastUpdatedDateTime ?? meta.creationDateTime ?? epoch,
      keyCount: map.size,
    }),
  };
}

/** Failure codes of SPEC section 7 a function can produce. */
export type FunctionFailureCode = 'ConnectionFunctionDenied' | 'ConnectionFunctionError';

/**
 * The outcome of one invocation (SPEC section 4 "Test" output and the connection log).
 * - `decision`: `allow` only when `allow()` was called, `deny()` was not, and the
 *   handler finished without error. Calling `deny()` at any point wins over `allow()`.
 * - `implicit`: true when neither method was called (an implicit deny), or when the
 *   function failed (the deny is then the runtime's, not the function's).
 * - `customData`: the last `logCustomData()` argument, truncated to 800 UTF-8 bytes at
 *   a character boundary; absent when never called.
 * - `logs`: `console.log` lines (at most 100, each at most 2048 characters).
 * - `computeUtilization`: time spent in the sandbox as a percentage of the CPU limit,
 *   one decimal (can exceed 100 when the limit stopped the function). Wall time of the
 *   invocation, not CPU time: Node 20/22 only measure CPU time per process (in the
 *   sandbox worker that includes the other threads) and a per-call getrusage would
 *   add ≈ 1 µs; the CPU limit itself is confirmed with CPU time (see the limits).
 * - `error` / `failureCode`: `ConnectionFunctionError` with the message when the
 *   function threw, timed out, ran out of memory or never settled;
 *   `ConnectionFunctionDenied` for every other deny (explicit or implicit).
 */
export interface FunctionResult {
  decision: 'allow' | 'deny';
  implicit: boolean;
  customData?: string;
  logs: string[];
  computeUtilization: number;
  error?: string;
  failureCode?: FunctionFailureCode;
}

/** Per-invocation inputs besides the connection object. */
export interface InvokeOptions {
  /** The associated KVS snapshot; without it `cf.kvs()` methods reject. */
  kvs?: KvsSnapshotLike;
  /** What `Date.now()` / `new Date()` return during this invocation, ms since the epoch (default: now). */
  now?: number;
}

/** Options of {@link compileFunction}. */
export interface CompileOptions extends Partial<FunctionLimits> {
  /** Shown in messages (`function "name"`). */
  name?: string;
}

const MAX_CUSTOM_DATA_BYTES = 800;
const STACK_BYTES = 256 * 1024;
const PRELUDE_CPU_MS = 2000;
const HANDLER_EXPORT = '__portcullis_handler__';

const WARM_UP_SOURCE = `import cf from 'cloudfront';
const crypto = require('crypto');
async function connectionHandler(connection) {
  const kvs = cf.kvs();
  const leaf = connection.clientCertificate.certificates.leaf;
  const key = leaf.serialNumber.replaceAll(':', '');
  if (await kvs.exists(key)) { connection.logCustomData('hit'); return connection.deny(); }
  try { await kvs.get('absent', { format: 'json' }); } catch (e) { console.log(e.message); }
  const tag = crypto.createHmac('sha256', 'k').update(key).digest('hex');
  connection.logCustomData(Buffer.from(tag, 'hex').subarray(0, 4).toString('base64') + (await kvs.meta()).keyCount);
  if (connection.clientIp === '0.0.0.0') throw new Error('x');
  connection.allow();
}`;

let quickJs: Promise<QuickJSWASMModule> | undefined;
/**
 * Loads the QuickJS WASM module once per process and warms it up (≈ 50 ms the first
 * time): a throwaway function exercising the KVS, crypto, Buffer and error paths runs a
 * few dozen times so that V8 has compiled the WASM code paths before the first real
 * connection is measured against the 5 ms CPU limit.
 */
export function loadQuickJs(): Promise<QuickJSWASMModule> {
  quickJs ??= getQuickJS().then((qjs) => {
    const inst = new FunctionInstance(qjs, WARM_UP_SOURCE, resolveFunctionLimits({ cpuLimitMs: 1000 }), '(warm-up)');
    const kvs = kvsSnapshotFromMap(new Map([['00aa', 'v']]));
    const leaves = [Object.freeze({ serialNumber: '00:aa' }), Object.freeze({ serialNumber: '00:bb' })];
    const conn = (i: number): object => ({
      connectionId: 'warm-up', clientIp: i % 5 === 0 ? '0.0.0.0' : '10.0.0.1', clientPort: 1, endpoint: 'e', distributionId: 'd',
      clientCertificate: { certificates: { leaf: leaves[i % 3 === 0 ? 0 : 1], intermediates: [] }, revocationStatus: { chainValidity: 'Valid' } },
    });
    // Both paths: the connection object split into parts, and JSON text.
    for (let i = 0; i < 40; i++) inst.invoke(i % 4 === 3 ? JSON.stringify(conn(i)) : conn(i), { kvs });
    inst.dispose();
    return qjs;
  });
  return quickJs;
}

/** Truncates to at most `max` UTF-8 bytes without splitting a character. */
export function truncateUtf8(s: string, max = MAX_CUSTOM_DATA_BYTES): string {
  if (s.length * 3 <= max) return s;
  const bytes = Buffer.from(s, 'utf8');
  if (bytes.length <= max) return s;
  let end = max;
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8');
}

interface Sandbox {
  rt: QuickJSRuntime;
  ctx: QuickJSContext;
  invokeFn: QuickJSHandle;
  invokeConnFn: QuickJSHandle;
  defineFn: QuickJSHandle;
  collectFn: QuickJSHandle;
  handler: QuickJSHandle;
  /** Heap after the prelude, bytes. */
  baselineBytes: number;
  /** Shared between the host and the interrupt handler. */
  state: SandboxState;
  /** Certificate views the sandbox holds (deep-frozen), by JSON text → id. */
  certIds: Map<string, number>;
  nextCertId: number;
  /** Heap charged to the certificate cache (estimate), bytes; the memory limit is raised by it. */
  certBytes: number;
  /** What this sandbox adds to the WASM memory budget ({@link WasmMemoryWatch.reserved}), bytes. */
  reserved: number;
  watch: WasmMemoryWatch;
}

/**
 * Most wall time an invocation may take, as a multiple of the CPU limit, while its CPU
 * time is still under the limit (a loaded machine); past it the invocation is stopped.
 */
const WALL_CAP_FACTOR = 20;

/**
 * Allowance for host pauses in the after-the-fact CPU check, ms: a V8 garbage
 * collection of the host during an invocation (measured up to ≈ 7 ms on the 2-core
 * benchmark machine) is process CPU time but not the function's. The interrupt
 * deadline still stops running JavaScript at the limit; this allowance only applies to
 * a single long built-in call, which is therefore denied once it passes limit +
 * allowance.
 */
const HOST_PAUSE_ALLOWANCE_MS = 10;

/** Milliseconds of this thread's CPU time (see thread-cpu.ts) since `start` (a {@link threadCpuMs} reading). */
function cpuMsSince(start: number): number {
  return threadCpuMs() - start;
}

/**
 * Watch over the QuickJS module's WebAssembly memory (one per thread, shared by every
 * sandbox of that thread). QuickJS's own accounting misses some strings (ropes made by
 * concatenation are neither in `memory_used_size` nor, in this build without
 * malloc_usable_size, in the malloc limit), so a function could keep growing the heap
 * under its memory limit. The WASM memory never shrinks and grows in ≈ 20 % steps, so
 * it cannot be attributed byte for byte; instead the thread has a budget: its size
 * when the module was loaded, plus for every live sandbox its baseline, its
 * certificate cache and its memory limit, plus {@link WASM_SLACK_BYTES}. An invocation
 * (or top-level code) during which the memory grows past the budget is failed as over
 * its memory limit and its sandbox is rebuilt, which frees what it held; memory freed
 * that way is reused before the module grows again. What is bounded: the thread's
 * WASM memory stays within about one growth step (≤ 20 %) above the budget, whatever
 * the functions do; a single function may hold more than its own limit in uncounted
 * strings while the budget has room (the room other sandboxes do not use).
 */
type WasmMemory = ReturnType<QuickJSWASMModule['getWasmMemory']>;
class WasmMemoryWatch {
  /** Sum over live sandboxes of baseline + memory limit + certificate cache, bytes. */
  reserved = 0;
  private readonly base: number;
  constructor(private readonly memory: WasmMemory | undefined) {
    this.base = this.size();
  }
  /** Current size of the WASM memory, bytes (0 when the module does not expose it). */
  size(): number {
    return this.memory === undefined ? 0 : this.memory.buffer.byteLength;
  }
  /** Most the WASM memory may reach, bytes. */
  budget(): number {
    return this.base + this.reserved + WASM_SLACK_BYTES;
  }
  /** True when the memory grew since `before` (a {@link size} reading) and is now over the budget. */
  grewPastBudget(before: number): boolean {
    const now = this.size();
    return now > before && now > this.budget();
  }
}

/** Headroom of the WASM memory budget above what the live sandboxes reserve, bytes (8 MiB). */
const WASM_SLACK_BYTES = 8 * 1024 * 1024;
const wasmWatches = new WeakMap<QuickJSWASMModule, WasmMemoryWatch>();
function wasmWatch(qjs: QuickJSWASMModule): WasmMemoryWatch {
  let w = wasmWatches.get(qjs);
  if (!w) {
    let memory: WasmMemory | undefined;
    try {
      memory = qjs.getWasmMemory();
    } catch { /* a variant without it: only QuickJS's own accounting applies */ }
    w = new WasmMemoryWatch(memory);
    wasmWatches.set(qjs, w);
  }
  return w;
}

interface SandboxState {
  /** performance.now() after which the interrupt handler stops the sandbox. */
  deadline: number;
  /** When the current invocation started (performance.now()); Infinity outside invocations. */
  started: number;
  /** Sandbox time since the last heap measurement, not counting the current invocation, ms. */
  sinceHeapCheck: number;
  interrupted: boolean;
  overMemory: boolean;
  /** Set by the sandbox's limit guard (__pcLimitHit): a caught engine limit error; the invocation is fatal. */
  limitHit: string | undefined;
  /** threadCpuMs() at the start of the current invocation; undefined outside invocations. */
  cpuStart: number | undefined;
  /** The invocation CPU limit, ms (0 outside invocations). */
  cpuLimitMs: number;
  /** Heap (QuickJS memory_used_size) above which the interrupt handler stops the sandbox. */
  memoryLimit: number;
}

/**
 * Measuring the heap walks every QuickJS object (≈ 20 µs for an idle sandbox, more for
 * a big one), so the interrupt handler measures it only once this much sandbox time
 * (summed over invocations, so a small leak per invocation is still caught) has passed
 * since the last measurement. QuickJS calls the handler every few thousand operations
 * (≈ 0.2–1 ms of busy code), so a memory bomb is seen about as soon as before, and a
 * short invocation pays nothing.
 */
const HEAP_CHECK_INTERVAL_MS = 0.5;
/** Bounds of the in-sandbox certificate-view cache. */
const MAX_CACHED_CERTS = 64;
const MAX_CACHED_CERT_BYTES = 128 * 1024;
/** Heap charged per cached view: measured ≈ JSON length + 500 bytes; strings may be UTF-16. */
const certCharge = (json: string): number => 2 * json.length + 1024;

function errorPosition(stack: unknown, codeLines: number): { line?: number; column?: number } {
  if (typeof stack !== 'string') return {};
  const m = /function\.js:(\d+):(\d+)/.exec(stack.slice(0, 400));
  if (!m) return {};
  const line = Number(m[1]);
  return line <= codeLines ? { line, column: Number(m[2]) } : {};
}

function dumpError(ctx: QuickJSContext, handle: QuickJSHandle): { name: string; message: string; stack?: string } {
  try {
    const d = ctx.dump(handle) as unknown;
    if (d && typeof d === 'object') {
      const o = d as { name?: unknown; message?: unknown; stack?: unknown };
      return {
        name: typeof o.name === 'string' ? o.name : 'Error',
        message: typeof o.message === 'string' ? o.message.slice(0, 1000) : String(d).slice(0, 1000),
        stack: typeof o.stack === 'string' ? o.stack.slice(0, 400) : undefined,
      };
    }
    return { name: 'Error', message: String(d).slice(0, 1000) };
  } catch {
    return { name: 'Error', message: 'unreadable error' };
  }
}

/** Calls `fn(first?, ...args)` with `this` undefined; `first` is borrowed, `args` are owned (disposed here). */
function callWith(ctx: QuickJSContext, fn: QuickJSHandle, first: QuickJSHandle | undefined, args: QuickJSHandle[]): ReturnType<QuickJSContext['evalCode']> {
  try {
    return first === undefined ? ctx.callFunction(fn, ctx.undefined, args) : ctx.callFunction(fn, ctx.undefined, first, ...args);
  } finally {
    for (const a of args) a.dispose();
  }
}

/** `name: message` of a thrown sandbox value; disposes the handle. */
function describeHandle(ctx: QuickJSContext, h: QuickJSHandle): string {
  const e = dumpError(ctx, h);
  h.dispose();
  return `${e.name}: ${e.message}`;
}

/** A connection object split for {@link FunctionInstance.invoke}'s structured path. */
interface ConnectionParts {
  connectionId: string;
  clientIp: string;
  clientPort: number;
  endpoint: string;
  distributionId: string;
  /** JSON text of each certificate view, leaf first; undefined without clientCertificate. */
  certs?: string[];
  revocationStatusJson?: string;
}

const CONNECTION_KEYS = ['connectionId', 'clientIp', 'clientPort', 'endpoint', 'distributionId', 'clientCertificate'];
/** JSON text of deep-frozen plain data objects (certificate views from pki/ are), by identity. */
const frozenJson = new WeakMap<object, string>();
/** Not representable as a C string through QTS_NewString (NUL) or not as UTF-8 (lone surrogates). */
// eslint-disable-next-line no-control-regex
const UNSAFE_CHARS = /[\u0000\ud800-\udfff]/;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;
}
function hasKeys(o: object, keys: readonly string[], min: number): boolean {
  const k = Object.keys(o);
  if (k.length < min || k.length > keys.length) return false;
  for (let i = 0; i < k.length; i++) if (k[i] !== keys[i]) return false;
  return true;
}
function isDeepFrozenData(v: unknown, depth = 0): boolean {
  if (typeof v !== 'object' || v === null) return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || v === null;
  if (depth > 8 || !Object.isFrozen(v) || Object.getPrototypeOf(v) !== (Array.isArray(v) ? Array.prototype : Object.prototype)) return false;
  for (const d of Object.values(Object.getOwnPropertyDescriptors(v))) {
    if (!('value' in d) || !isDeepFrozenData(d.value, depth + 1)) return false;
  }
  return true;
}
/** JSON text of one certificate view; undefined when it is not plain JSON data (→ the JSON-text path). */
function viewJson(v: unknown): string | undefined {
  if (typeof v === 'object' && v !== null) {
    const cached = frozenJson.get(v);
    if (cached !== undefined) return cached;
    // A toJSON would see another key than inside the whole object's JSON.stringify.
    if (!isPlainObject(v) || 'toJSON' in v) return undefined;
    const json = JSON.stringify(v) as string | undefined;
    if (json !== undefined && isDeepFrozenData(v)) frozenJson.set(v, json);
    return json;
  }
  return JSON.stringify(v) as string | undefined;
}
const isScalarString = (v: unknown): v is string => typeof v === 'string' && !UNSAFE_CHARS.test(v);

/**
 * Splits a connection object of the shape connection.ts builds (those keys in that
 * order, plain objects, strings without lone surrogates, a finite port, every value
 * JSON-representable) into the parts the sandbox's `invokeConn` rebuilds it from —
 * exactly the object JSON.parse(JSON.stringify(conn)) would give. Anything else →
 * undefined, and the caller sends JSON text instead.
 */
function connectionParts(c: object): ConnectionParts | undefined {
  if (!isPlainObject(c) || !hasKeys(c, CONNECTION_KEYS, 5)) return undefined;
  const { connectionId, clientIp, clientPort, endpoint, distributionId, clientCertificate } = c;
  if (!isScalarString(connectionId) || !isScalarString(clientIp) || !isScalarString(endpoint) || !isScalarString(distributionId)) return undefined;
  if (typeof clientPort !== 'number' || !Number.isFinite(clientPort)) return undefined;
  const parts: ConnectionParts = { connectionId, clientIp, clientPort: clientPort === 0 ? 0 : clientPort, endpoint, distributionId };
  if (clientCertificate === undefined && 'clientCertificate' in c) return undefined;
  if (clientCertificate === undefined) return parts;
  if (!isPlainObject(clientCertificate) || !hasKeys(clientCertificate, ['certificates', 'revocationStatus'], 1)) return undefined;
  const { certificates, revocationStatus } = clientCertificate;
  if (!isPlainObject(certificates) || !hasKeys(certificates, ['leaf', 'intermediates'], 2)) return undefined;
  const { leaf, intermediates } = certificates;
  if (!Array.isArray(intermediates) || Object.getPrototypeOf(intermediates) !== Array.prototype) return undefined;
  const leafJson = viewJson(leaf);
  if (leafJson === undefined) return undefined;
  const certs = [leafJson];
  for (let i = 0; i < intermediates.length; i++) {
    const j = viewJson(intermediates[i]);
    if (j === undefined) return undefined;
    certs.push(j);
  }
  parts.certs = certs;
  if ('revocationStatus' in clientCertificate) {
    const rs = JSON.stringify(revocationStatus) as string | undefined;
    if (rs === undefined) return undefined;
    parts.revocationStatusJson = rs;
  }
  return parts;
}

function disposeSandbox(s: Sandbox): void {
  s.watch.reserved -= s.reserved;
  s.reserved = 0;
  try {
    s.invokeFn.dispose();
    s.invokeConnFn.dispose();
    s.defineFn.dispose();
    s.collectFn.dispose();
    s.handler.dispose();
    s.ctx.dispose();
    s.rt.dispose();
  } catch {
    // A sandbox that cannot be torn down cleanly is dropped; its memory stays with the WASM heap.
  }
}

/**
 * A compiled connection function with its warm sandbox. Create with
 * {@link compileFunction}; call {@link invoke} per connection (synchronous, never
 * throws for anything the function does); {@link dispose} when the version is retired.
 * Not safe for re-entrant use (one invocation at a time, which a single-threaded
 * worker guarantees since `invoke` is synchronous).
 */
export class FunctionInstance {
  /** The limits this instance enforces. */
  readonly limits: FunctionLimits;
  /** Size of the code, UTF-8 bytes. */
  readonly codeBytes: number;
  /** How many times the sandbox was rebuilt after a fatal error. */
  rebuilds = 0;
  private sandbox: Sandbox | undefined;
  private snapshot: KvsSnapshotLike | undefined;
  private disposed = false;
  private readonly watch: WasmMemoryWatch;

  /** @internal use {@link compileFunction}. */
  constructor(private readonly qjs: QuickJSWASMModule, readonly code: string, limits: FunctionLimits, private readonly label: string) {
    this.limits = limits;
    this.codeBytes = Buffer.byteLength(code, 'utf8');
    this.watch = wasmWatch(qjs);
    this.sandbox = this.build();
  }

  /** Heap bytes QuickJS reports for this instance's sandbox (0 when it is being rebuilt). */
  memoryUsageBytes(): number {
    const s = this.sandbox;
    if (!s) return 0;
    return heapUsed(s.rt, s.ctx);
  }

  private build(): Sandbox {
    const codeLines = this.code.split('\n').length;
    const rt = this.qjs.newRuntime();
    const watch = this.watch;
    let reserved = 0;
    let ctx: QuickJSContext | undefined;
    const handles: QuickJSHandle[] = [];
    try {
      rt.setMaxStackSize(STACK_BYTES);
      rt.setMemoryLimit(64 * 1024 * 1024);
      rt.setModuleLoader((name) => (name === 'cloudfront'
        ? 'export default globalThis.__portcullis_cloudfront__;'
        : { error: new Error(`Cannot find module '${name}' (connection functions may import only 'cloudfront')`) }));
      const state: SandboxState = {
        deadline: performance.now() + PRELUDE_CPU_MS, started: Infinity, sinceHeapCheck: 0,
        interrupted: false, memoryLimit: Infinity, overMemory: false, limitHit: undefined, cpuStart: undefined, cpuLimitMs: 0,
      };
      const c = rt.newContext();
      ctx = c;
      // QuickJS's own malloc limit only catches large allocations in this build (it has
      // no malloc_usable_size, so each block counts 8 bytes), so the interrupt handler
      // also measures the heap — see HEAP_CHECK_INTERVAL_MS.
      rt.setInterruptHandler(() => {
        // A limit error was caught by the function: stop it (uncatchably) at the next poll.
        if (state.limitHit !== undefined) return true;
        const now = performance.now();
        if (now > state.deadline) {
          // The wall-clock deadline passed. During an invocation, confirm with this
          // thread's CPU time: when the machine is loaded (the thread was descheduled),
          // the function gets the rest of its CPU budget, up to a wall-clock cap.
          if (state.cpuStart !== undefined && now - state.started < state.cpuLimitMs * WALL_CAP_FACTOR) {
            const used = cpuMsSince(state.cpuStart);
            if (used < state.cpuLimitMs) {
              state.deadline = now + Math.max(state.cpuLimitMs - used, 0.25);
              return false;
            }
          }
          state.interrupted = true;
          return true;
        }
        if (state.memoryLimit !== Infinity) {
          const ran = state.started === Infinity ? state.sinceHeapCheck : state.sinceHeapCheck + (now - state.started);
          if (ran >= HEAP_CHECK_INTERVAL_MS) {
            state.sinceHeapCheck = 0;
            if (state.started !== Infinity) state.started = now;
            if (heapUsed(rt, c) > state.memoryLimit) {
              state.overMemory = true;
              return true;
            }
          }
        }
        return false;
      });
      this.installHost(c, state);
      const guardResult = c.evalCode(LIMIT_GUARD_PRELUDE, 'limit-guard.js');
      if (guardResult.error) {
        const e = dumpError(c, guardResult.error);
        guardResult.error.dispose();
        throw new Error(`sandbox limit guard failed: ${e.name}: ${e.message}`);
      }
      guardResult.value.dispose();
      const driverResult = c.evalCode(GUARDED_PRELUDE_SOURCE, 'prelude.js');
      if (driverResult.error) {
        const e = dumpError(c, driverResult.error);
        driverResult.error.dispose();
        throw new Error(`sandbox prelude failed: ${e.name}: ${e.message}`);
      }
      const driver = driverResult.value;
      handles.push(driver);
      const invokeFn = c.getProp(driver, 'invoke');
      handles.push(invokeFn);
      const invokeConnFn = c.getProp(driver, 'invokeConn');
      handles.push(invokeConnFn);
      const defineFn = c.getProp(driver, 'define');
      handles.push(defineFn);
      const collectFn = c.getProp(driver, 'collect');
      handles.push(collectFn);
      const noopFn = c.getProp(driver, 'noop');
      handles.push(noopFn);
      // Top-level code sees Date frozen at the time it runs (compile or rebuild), not the epoch.
      const builtAt = Date.now();
      const setNowFn = c.getProp(driver, 'setNow');
      handles.push(setNowFn);
      const nowH = c.newNumber(builtAt);
      const setNow = c.callFunction(setNowFn, c.undefined, nowH);
      nowH.dispose();
      if (setNow.error) {
        const e = dumpError(c, setNow.error);
        setNow.error.dispose();
        throw new Error(`sandbox prelude failed: ${e.name}: ${e.message}`);
      }
      setNow.value.dispose();
      const baselineBytes = heapUsed(rt, c);
      rt.setMemoryLimit(baselineBytes + this.limits.memoryLimitBytes);
      state.memoryLimit = baselineBytes + this.limits.memoryLimitBytes;
      reserved = baselineBytes + this.limits.memoryLimitBytes;
      watch.reserved += reserved;
      const wasmBefore = watch.size();

      state.deadline = performance.now() + this.limits.cpuLimitMs;
      state.started = performance.now();
      // Syntax errors are reported against the user's code: compile it as written first
      // (plus the export line). An error the parser reports inside that appended line
      // means the user's code ended early (a missing `}`, an unterminated template
      // expression …): compileError reports it at the end of the user's code.
      const checked = c.evalCode(`${this.code}\n;export { connectionHandler as ${HANDLER_EXPORT} };\n`, 'function.js', { type: 'module', compileOnly: true });
      if (checked.error) {
        const e = dumpError(c, checked.error);
        checked.error.dispose();
        throw this.compileError(e, codeLines, state.interrupted, this.code);
      }
      checked.value.dispose();
      const guarded = guardSource(this.code, { label: this.label }).code;
      const mod = c.evalCode(`${guarded}\n;export { connectionHandler as ${HANDLER_EXPORT} };\n`, 'function.js', { type: 'module' });
      if (mod.error) {
        const e = dumpError(c, mod.error);
        mod.error.dispose();
        if (state.limitHit !== undefined) throw new FunctionCompileError(`function ${this.label}: top-level code exceeded the ${state.limitHit} limit`);
        throw this.compileError(e, codeLines, state.interrupted);
      }
      handles.push(mod.value);
      rt.executePendingJobs();
      state.sinceHeapCheck += performance.now() - state.started;
      state.started = Infinity;
      if (state.limitHit !== undefined) throw new FunctionCompileError(`function ${this.label}: top-level code exceeded the ${state.limitHit} limit`);
      if (watch.grewPastBudget(wasmBefore)) {
        throw new FunctionCompileError(`function ${this.label}: top-level code exceeded the memory limit of ${this.limits.memoryLimitBytes} bytes (the sandbox memory grew past its budget)`);
      }
      const settled = c.getPromiseState(mod.value);
      if (settled.type !== 'fulfilled') {
        if (settled.type === 'rejected') {
          const e = dumpError(c, settled.error);
          settled.error.dispose();
          throw this.compileError(e, codeLines, state.interrupted);
        }
        throw new FunctionCompileError(`function ${this.label}: top-level await never settled`);
      }
      const ns = settled.value;
      if (!settled.notAPromise) handles.push(ns);
      const handler = c.getProp(ns, HANDLER_EXPORT);
      if (c.typeof(handler) !== 'function') {
        handler.dispose();
        throw new FunctionCompileError(`function ${this.label}: connectionHandler is not a function`);
      }
      const dflt = c.getProp(ns, 'default');
      const hasDefault = c.typeof(dflt) !== 'undefined';
      dflt.dispose();
      if (hasDefault) {
        handler.dispose();
        throw defaultExportError(this.code, this.label);
      }
      state.deadline = Infinity;
      // Warm-up: one call through the driver with a no-op handler.
      const warmJson = c.newString('{}');
      const warmNow = c.newNumber(builtAt);
      const warm = c.callFunction(invokeFn, c.undefined, noopFn, warmJson, warmNow);
      warmJson.dispose();
      warmNow.dispose();
      if (warm.error) warm.error.dispose(); else warm.value.dispose();
      const sandbox: Sandbox = {
        rt, ctx: c, invokeFn, invokeConnFn, defineFn, collectFn, handler, baselineBytes, state,
        certIds: new Map(), nextCertId: 1, certBytes: 0, reserved, watch,
      };
      const kept = new Set([invokeFn, invokeConnFn, defineFn, collectFn]);
      for (const h of handles) if (!kept.has(h) && h.alive) h.dispose();
      return sandbox;
    } catch (err) {
      watch.reserved -= reserved;
      for (const h of handles) if (h.alive) h.dispose();
      try {
        ctx?.dispose();
        rt.dispose();
      } catch { /* see disposeSandbox */ }
      throw err;
    }
  }

  /**
   * The compile error to report. With `source` (an error from compiling the user's code
   * plus the appended export line), a position past its last line — the parser ran off the
   * end of the user's code into the appended line — is reported at the end of the user's
   * code ("at the end of the code, line N, column C"), and a message naming the appended
   * text (`export`, its `;`) becomes "unexpected end of input".
   */
  private compileError(e: { name: string; message: string; stack?: string }, codeLines: number, interrupted: boolean, source?: string): FunctionCompileError {
    if (interrupted) {
      return new FunctionCompileError(`function ${this.label}: top-level code exceeded the CPU limit of ${this.limits.cpuLimitMs} ms`);
    }
    if (/exported variable 'connectionHandler' does not exist/.test(e.message)) {
      return new FunctionCompileError(`function ${this.label}: the code has no top-level connectionHandler function`);
    }
    let pos = errorPosition(e.stack, codeLines);
    let message = e.message;
    let atEnd = false;
    if (source !== undefined) {
      const lines = source.split('\n');
      const end = { line: lines.length, column: lines[lines.length - 1]!.length + 1 };
      // A position past the user's last line is in the export line the runtime appends: the
      // parser ran off the end of the user's code. Report it there, never the appended text.
      if (pos.line === undefined && /function\.js:\d+/.test(String(e.stack ?? ''))) {
        pos = end;
        if (/\bexport\b|__portcullis|unexpected token in expression: '[;']?'/.test(message)) {
          message = 'unexpected end of input (a closing `}`, `)` or `]` may be missing)';
        }
      }
      atEnd = pos.line === end.line && pos.column === end.column;
    }
    const where = pos.line !== undefined ? ` (${atEnd ? 'at the end of the code, ' : ''}line ${pos.line}, column ${pos.column})` : '';
    return new FunctionCompileError(`function ${this.label}: ${e.name}: ${message}${where}`, pos);
  }

  private installHost(ctx: QuickJSContext, state: SandboxState): void {
    const limitHit = ctx.newFunction(LIMIT_HIT_HOST_FUNCTION, (kindH) => {
      state.limitHit ??= ctx.typeof(kindH) === 'string' ? ctx.getString(kindH) : 'memory';
      return ctx.undefined;
    });
    ctx.setProp(ctx.global, LIMIT_HIT_HOST_FUNCTION, limitHit);
    limitHit.dispose();
    const kvs = ctx.newFunction('__ph_kvs', (opH, keyH) => {
      const snap = this.snapshot;
      if (!snap) return { error: ctx.newError('no KeyValueStore is associated with this function') };
      const op = ctx.getNumber(opH);
      if (op === 2) return ctx.newString(JSON.stringify(snap.meta()));
      const key = ctx.getString(keyH);
      if (op === 1) return snap.has(key) ? ctx.true : ctx.false;
      const v = snap.get(key);
      return v === undefined ? ctx.undefined : ctx.newString(v);
    });
    ctx.setProp(ctx.global, '__ph_kvs', kvs);
    kvs.dispose();
    const hash = ctx.newFunction('__ph_hash', (algH, keyH, dataH) => {
      const alg = ctx.getString(algH);
      if (alg !== 'md5' && alg !== 'sha1' && alg !== 'sha256') return { error: ctx.newError(`Digest method not supported: ${alg}`) };
      const data = Buffer.from(ctx.getString(dataH), 'hex');
      const h = ctx.typeof(keyH) === 'string' ? createHmac(alg, Buffer.from(ctx.getString(keyH), 'hex')) : createHash(alg);
      return ctx.newString(h.update(data).digest('hex'));
    });
    ctx.setProp(ctx.global, '__ph_hash', hash);
    hash.dispose();
  }

  /**
   * Runs `connectionHandler(connection)` once. `connection` is the SPEC section 4
   * object (see connection.ts) or its JSON text; `allow`, `deny` and `logCustomData`
   * are added inside the sandbox. Pass the object (as `buildConnection` makes it) on
   * the hot path: it is sent as its scalars plus the ids of certificate views the
   * sandbox already holds, deep-frozen, from earlier invocations (a bounded cache per
   * sandbox, keyed by the views' JSON text), and only `revocationStatus` is parsed per
   * call. Any other shape, and JSON text, is parsed whole inside the sandbox. Either way
   * the function sees the same object as `JSON.parse(JSON.stringify(connection))`, with
   * the certificate views (`certificates.leaf`, each of `certificates.intermediates`)
   * deep-frozen; everything else is fresh and mutable per invocation. Synchronous: KVS
   * reads are served from the snapshot, and the handler's promise (if any) is driven to
   * completion before returning. Never
   * throws for anything the function does; every failure is a deny with
   * `failureCode: 'ConnectionFunctionError'`.
   * @throws InvalidArgumentError after {@link dispose}.
   */
  invoke(connection: object | string, options: InvokeOptions = {}): FunctionResult {
    if (this.disposed) throw new InvalidArgumentError(`function ${this.label} was disposed`);
    let s = this.sandbox;
    if (!s) {
      try {
        s = this.sandbox = this.build();
        this.rebuilds++;
      } catch (err) {
        return failed(`the sandbox could not be rebuilt: ${(err as Error).message}`, 0, this.limits.cpuLimitMs, []);
      }
    }
    const start = performance.now();
    const wasmBefore = this.watch.size();
    const { ctx, rt, state } = s;
    const parts = typeof connection === 'string' ? undefined : connectionParts(connection);
    this.snapshot = options.kvs;
    state.interrupted = false;
    state.overMemory = false;
    state.limitHit = undefined;
    state.deadline = start + this.limits.cpuLimitMs;
    state.started = start;
    state.cpuStart = threadCpuMs();
    state.cpuLimitMs = this.limits.cpuLimitMs;
    let out: string | undefined;
    let fatal: string | undefined;
    try {
      const now = options.now ?? Date.now();
      let r: ReturnType<QuickJSContext['evalCode']>;
      const certIds = parts?.certs === undefined ? undefined : this.cacheCerts(s, parts.certs);
      if (parts === undefined || certIds === null) {
        const json = typeof connection === 'string' ? connection : JSON.stringify(connection);
        r = callWith(ctx, s.invokeFn, s.handler, [ctx.newString(json), ctx.newNumber(now)]);
      } else {
        r = callWith(ctx, s.invokeConnFn, s.handler, [
          ctx.newNumber(now), ctx.newString(parts.connectionId), ctx.newString(parts.clientIp), ctx.newNumber(parts.clientPort),
          ctx.newString(parts.endpoint), ctx.newString(parts.distributionId),
          certIds === undefined ? ctx.undefined : ctx.newString(certIds),
          parts.revocationStatusJson === undefined ? ctx.undefined : ctx.newString(parts.revocationStatusJson),
        ]);
      }
      if (r.error) {
        fatal = describeHandle(ctx, r.error);
      } else {
        if (ctx.typeof(r.value) === 'string') out = ctx.getString(r.value);
        r.value.dispose();
        // A promise (out undefined), or a sync handler that left jobs behind: run them now,
        // within this invocation's deadline, so they belong to it (their decisions count,
        // their logs are its logs) and never run during a later invocation.
        if (out === undefined || rt.hasPendingJob()) {
          out = undefined;
          const jobs = rt.executePendingJobs();
          if (jobs.error) {
            fatal = describeHandle(ctx, jobs.error);
          } else if (rt.hasPendingJob()) {
            fatal = 'promise jobs were left pending';
          } else {
            const c = ctx.callFunction(s.collectFn, ctx.undefined);
            if (c.error) {
              fatal = describeHandle(ctx, c.error);
            } else {
              out = ctx.getString(c.value);
              c.value.dispose();
            }
          }
        }
      }
    } catch (err) {
      fatal = `sandbox failure: ${(err as Error).message}`;
    } finally {
      state.deadline = Infinity;
      state.sinceHeapCheck += performance.now() - state.started;
      state.started = Infinity;
      this.snapshot = undefined;
    }
    const cpuStart = state.cpuStart as number;
    state.cpuStart = undefined;
    // Wall time of this invocation, and the CPU time this thread spent in it (read once;
    // never more than the wall time). computeUtilization and the after-the-fact limit
    // check use the CPU time, so a loaded machine (the thread descheduled, other threads
    // busy) does not inflate either. With only process CPU time available (see
    // thread-cpu.ts) utilization stays wall time.
    const took = performance.now() - start;
    const used = threadCpuSource() === 'process' ? took : Math.min(took, cpuMsSince(cpuStart));
    const cpuError = used >= this.limits.cpuLimitMs
      ? `the function exceeded its CPU limit of ${this.limits.cpuLimitMs} ms (took ${used.toFixed(1)} ms)`
      : `the function exceeded its CPU limit of ${this.limits.cpuLimitMs} ms (took ${used.toFixed(1)} ms of CPU but ${took.toFixed(1)} ms of wall time, past the cap of ${this.limits.cpuLimitMs * WALL_CAP_FACTOR} ms)`;
    // Fatal conditions come from host-side state only (the interrupt handler's flags, a
    // failure of the driver itself, which catches everything the function throws), never
    // from the text of an error the function could have made up.
    if (state.interrupted) fatal = cpuError;
    else if (state.overMemory) fatal = `the function exceeded its memory limit of ${this.limits.memoryLimitBytes} bytes`;
    else if (state.limitHit !== undefined) {
      fatal = state.limitHit === 'stack'
        ? `the function exceeded its stack limit of ${STACK_BYTES} bytes (stack overflow)`
        : state.limitHit === 'memory'
          ? `the function exceeded its memory limit of ${this.limits.memoryLimitBytes} bytes`
          : 'the function hit an engine limit (InternalError)';
    }
    else if (this.watch.grewPastBudget(wasmBefore)) {
      fatal = `the function exceeded its memory limit of ${this.limits.memoryLimitBytes} bytes (the sandbox memory grew past its budget)`;
    }
    if (fatal !== undefined) {
      const r = failed(fatal, used, this.limits.cpuLimitMs, []);
      this.retire(s);
      return r;
    }
    const result = this.decode(out ?? '3', used);
    if (result.error !== undefined && heapUsed(rt, ctx) > state.memoryLimit) {
      // The function failed with its heap over the limit (measured here, not read from
      // the error text): deny as a memory failure and rebuild.
      const r = failed(`the function exceeded its memory limit of ${this.limits.memoryLimitBytes} bytes (${result.error})`, used, this.limits.cpuLimitMs, result.logs);
      this.retire(s);
      return r;
    }
    // A long built-in call (a huge BigInt, includes on a huge array-like) runs without
    // reaching the interrupt handler: the limit is checked again after the fact, and
    // wins over whatever the function decided.
    // Wall time over the limit is confirmed with this thread's CPU time, so a loaded machine
    // (the process descheduled) or a host GC pause does not deny a well-behaved function.
    if (took > this.limits.cpuLimitMs + HOST_PAUSE_ALLOWANCE_MS && used > this.limits.cpuLimitMs + HOST_PAUSE_ALLOWANCE_MS) {
      const r = failed(cpuError, used, this.limits.cpuLimitMs, result.logs);
      if (result.customData !== undefined) r.customData = result.customData;
      return r;
    }
    return result;
  }

  /**
   * Makes sure the sandbox's certificate cache holds every view of `certs` (leaf
   * first) and returns their ids as "leaf,intermediate,…"; null when the chain is too
   * big to cache (the caller then sends the whole connection as JSON). Calls the
   * sandbox's `define` for the views it does not hold yet; when they do not fit the
   * bounds, the cache starts over. Throws (→ a fatal error) when `define` fails.
   */
  private cacheCerts(s: Sandbox, certs: string[]): string | null {
    let ids = '';
    let missing: string[] | undefined;
    for (let i = 0; i < certs.length; i++) {
      const json = certs[i] as string;
      const id = s.certIds.get(json);
      if (id === undefined) (missing ??= []).push(json);
      else ids = i === 0 ? String(id) : `${ids},${id}`;
    }
    if (missing === undefined) return ids;
    let charge = 0;
    for (const json of missing) charge += certCharge(json);
    if (certs.length > MAX_CACHED_CERTS || charge > MAX_CACHED_CERT_BYTES) return null;
    const reset = s.certIds.size + missing.length > MAX_CACHED_CERTS || s.certBytes + charge > MAX_CACHED_CERT_BYTES;
    if (reset) {
      s.certIds.clear();
      s.certBytes = 0;
      missing = [...new Set(certs)];
      charge = 0;
      for (const json of missing) charge += certCharge(json);
    }
    let defs = '[';
    for (const json of new Set(missing)) {
      const id = s.nextCertId++;
      s.certIds.set(json, id);
      defs += `${defs.length > 1 ? ',' : ''}${id},${json}`;
    }
    defs += ']';
    // The cache is the runtime's, not the function's: the memory limit grows with it.
    s.certBytes += charge;
    this.setMemoryLimit(s);
    const r = callWith(s.ctx, s.defineFn, undefined, [reset ? s.ctx.true : s.ctx.false, s.ctx.newString(defs)]);
    if (r.error) throw new Error(describeHandle(s.ctx, r.error));
    r.value.dispose();
    let out = '';
    for (let i = 0; i < certs.length; i++) out += `${i === 0 ? '' : ','}${s.certIds.get(certs[i] as string) as number}`;
    return out;
  }

  private setMemoryLimit(s: Sandbox): void {
    const limit = s.baselineBytes + this.limits.memoryLimitBytes + s.certBytes;
    s.rt.setMemoryLimit(limit);
    s.state.memoryLimit = limit;
    s.watch.reserved += limit - s.reserved;
    s.reserved = limit;
  }

  private decode(out: string, used: number): FunctionResult {
    const head = out.charCodeAt(0) - 48;
    let customData: string | undefined;
    let error: string | undefined;
    let logs: string[] = [];
    if (out.length > 1) {
      const [cd, err, l] = JSON.parse(out.slice(1)) as [string | null, string | null, string[]];
      if (cd !== null) customData = truncateUtf8(cd);
      if (err !== null) error = err;
      logs = l;
    }
    if (head === 3 && error === undefined) error = 'connectionHandler returned a promise that never settled';
    if (error !== undefined) {
      // What the function threw: a deny, never a reason to rebuild (its text is the function's).
      const r = failed(error, used, this.limits.cpuLimitMs, logs);
      if (customData !== undefined) r.customData = customData;
      return r;
    }
    const result: FunctionResult = {
      decision: head === 1 ? 'allow' : 'deny',
      implicit: head === 0,
      logs,
      computeUtilization: utilization(used, this.limits.cpuLimitMs),
    };
    if (customData !== undefined) result.customData = customData;
    if (head !== 1) result.failureCode = 'ConnectionFunctionDenied';
    return result;
  }

  private retire(s: Sandbox): void {
    if (this.sandbox === s) this.sandbox = undefined;
    disposeSandbox(s);
  }

  /** Frees the sandbox. Idempotent; {@link invoke} throws afterwards. */
  dispose(): void {
    this.disposed = true;
    if (this.sandbox) this.retire(this.sandbox);
  }
}

/**
 * CloudFront runs a connection function as a script and calls its top-level
 * `connectionHandler`; an `export default` (of the handler or anything else) is not part
 * of that model, so it is rejected rather than silently accepted. Line and column point
 * at the `export` keyword.
 */
function defaultExportError(code: string, label: string): FunctionCompileError {
  const m = /\bexport\s+default\b/.exec(code);
  let pos: { line?: number; column?: number } = {};
  if (m) {
    const before = code.slice(0, m.index).split('\n');
    pos = { line: before.length, column: (before[before.length - 1]?.length ?? 0) + 1 };
  }
  const where = pos.line !== undefined ? ` (line ${pos.line}, column ${pos.column})` : '';
  return new FunctionCompileError(
    `function ${label}: \`export default\` is not allowed: declare connectionHandler as a top-level function (CloudFront calls the top-level connectionHandler of the script)${where}`, pos,
  );
}

function utilization(tookMs: number, cpuLimitMs: number): number {
  return Math.round((tookMs / cpuLimitMs) * 1000) / 10;
}

function failed(error: string, tookMs: number, cpuLimitMs: number, logs: string[]): FunctionResult {
  return {
    decision: 'deny', implicit: true, logs, computeUtilization: utilization(tookMs, cpuLimitMs),
    error, failureCode: 'ConnectionFunctionError',
  };
}

/**
 * The sandbox heap in use, bytes: QuickJS's `memory_used_size` (this build has no
 * malloc_usable_size, so `malloc_size` is not reported). Walks the heap (≈ 20 µs for an
 * idle sandbox); reads the one field instead of dumping the whole report (≈ 45 µs).
 */
function heapUsed(rt: QuickJSRuntime, ctx: QuickJSContext): number {
  const h = rt.computeMemoryUsage();
  try {
    const v = ctx.getProp(h, 'memory_used_size');
    const n = ctx.typeof(v) === 'number' ? ctx.getNumber(v) : 0;
    v.dispose();
    return n;
  } finally {
    h.dispose();
  }
}

/**
 * Compiles `code` into a warm {@link FunctionInstance} (SPEC section 4): checks the size
 * (UTF-8 bytes ≤ `maxCodeBytes`), compiles it as an ES module in a fresh sandbox
 * (`import cf from 'cloudfront'` allowed, no other import), runs its top-level code
 * under the CPU and memory limits, and requires a top-level `connectionHandler`
 * function. Then warms the sandbox up once.
 * @throws FunctionSizeLimitExceededError when the code is too large.
 * @throws FunctionCompileError (with `line`/`column` when known) when it does not compile,
 *   has no `connectionHandler`, or its top-level code throws or runs out of time.
 * @throws InvalidArgumentError for out-of-range limits.
 */
export async function compileFunction(code: string, options: CompileOptions = {}): Promise<FunctionInstance> {
  const qjs = await loadQuickJs();
  return compileFunctionWith(qjs, code, options);
}

/**
 * {@link compileFunction} on an already loaded module ({@link loadQuickJs}):
 * synchronous, so a caller can bracket exactly one compile (the sandbox worker's
 * watchdog marker). Same checks and errors.
 */
export function compileFunctionWith(qjs: QuickJSWASMModule, code: string, options: CompileOptions = {}): FunctionInstance {
  const { name, ...partial } = options;
  const limits = resolveFunctionLimits(partial);
  const label = name === undefined ? 'code' : `"${name}"`;
  const bytes = Buffer.byteLength(code, 'utf8');
  if (bytes > limits.maxCodeBytes) {
    throw new FunctionSizeLimitExceededError(`function ${label} is ${bytes} bytes, over the limit of ${limits.maxCodeBytes} bytes`);
  }
  return new FunctionInstance(qjs, code, limits, label);
}
