/**
 * Connection functions in a worker thread with a watchdog (SPEC section 4 limits,
 * enforced even against built-ins that loop in C). QuickJS's interrupt handler stops
 * JavaScript at the CPU limit, but a built-in such as `Array.prototype.includes` on a
 * huge array-like, `Array(2**32-1).join('')` or a quadratic `indexOf` runs inside one C
 * call and never reaches it. So sandboxes run in a worker (sandbox-worker.ts), and the
 * parent terminates the worker when one unit of sandbox work (an invocation, a compile)
 * has run longer than a wall-clock bound, and a new worker takes over. The job that ran
 * past the bound (the culprit) fails with "did not return within N ms; its sandbox was
 * terminated". What happens to the others in flight (the victims) depends on the owner:
 * {@link FunctionHost} denies them, fail closed, with a message saying they were victims
 * of another job; {@link SandboxWorker} runs its jobs one at a time, so a hostile job
 * delays the others but never fails them (and re-runs any job whose worker still went
 * away through no fault of its own, a bounded number of times).
 *
 * - {@link FunctionHost}: the data path's view — a worker holding the KVS replica and
 *   the registry of LIVE functions (both following the change feed); invoke by name with
 *   the connection object as JSON text.
 * - {@link SandboxWorker}: one-off compile checks and offline runs (lifecycle compile
 *   check, `function test`, `function matrix`) under the same watchdog.
 *
 * The worker is loaded from `./sandbox-worker.js` next to this file (`.ts` with
 * `--import tsx` when running from source).
 */
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import { FunctionCompileError } from '../errors.js';
import type { NodeStoreSpec } from '../store/index.js';
import {
  deserializeError, JOB_COMPILE, OP_INVOKE, SLOT, SLOT_COUNT,
  type FunctionHostEvent, type FunctionHostStatus, type SerializedError, type ToWorker,
} from './host-protocol.js';
import { resolveFunctionLimits, type CompileOptions, type FunctionLimits, type FunctionResult } from './runtime.js';

export type { FunctionHostEvent, FunctionHostStatus } from './host-protocol.js';

/**
 * Default wall-clock bound of one invocation, ms, for a CPU limit of `cpuLimitMs`:
 * max(100, 20 × cpuLimitMs) — 100 ms at the default 5 ms. The runtime itself lets a
 * well-behaved invocation run up to 20 × its CPU limit in wall time on a loaded machine
 * (and rebuilding a sandbox after a fatal error takes a few ms), so the watchdog only
 * fires for work QuickJS could not stop.
 */
export function defaultWatchdogMs(cpuLimitMs: number): number {
  return Math.max(100, 20 * cpuLimitMs);
}

/**
 * Default wall-clock bound of one compile (prelude, top-level code, warm-up), ms: 2000.
 * A compile normally takes a few ms; the bound is generous because a worker that is
 * killed while loading a legitimate version would refuse that version until its next
 * publish.
 */
export const DEFAULT_COMPILE_WATCHDOG_MS = 2000;

/**
 * Starts the worker script: `./sandbox-worker.js` next to this file when running
 * compiled; from source (this file is `.ts`), an ESM bootstrap registers tsx's loader
 * in the worker and imports `./sandbox-worker.ts` (Node 20 does not carry the parent's
 * `--import tsx` hooks into workers).
 */
function startWorker(): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./sandbox-worker.js', import.meta.url));
  const target = new URL('./sandbox-worker.ts', import.meta.url).href;
  const api = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/index\.cjs$/, 'index.mjs')).href;
  const boot = `import { register } from ${JSON.stringify(api)}; register(); await import(${JSON.stringify(target)});`;
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(boot)}`));
}

const now = (): number => performance.timeOrigin + performance.now();

/** Why a link's worker went away, as told to each request in flight. */
interface AbortInfo {
  /** The request whose work ran past the bound (0: a registry compile; -1: none, the worker crashed or was closed). */
  culprit: number;
  kind: number;
  /** The function name the culprit ran. */
  name: string;
  ms: number;
  /** Human-readable reason for the others. */
  reason: string;
  /**
   * Set per request by {@link WorkerLink.fail}: true for the request whose own work ran
   * past the bound (the culprit); false for every other request in flight (a victim when
   * `culprit` is not -1, i.e. the watchdog stopped someone else's work).
   */
  self?: boolean;
}

interface Pending {
  name: string;
  resolve(value: unknown): void;
  reject(err: Error): void;
  /** The worker is gone: settle this request (never leave it hanging). */
  abort(info: AbortInfo): void;
}

interface LinkOptions {
  mode: 'host' | 'isolated';
  init: Omit<Extract<ToWorker, { t: 'init' }>, 't' | 'mode' | 'slots' | 'epoch'>;
  watchdogMs: number;
  compileWatchdogMs: number;
  onMessage(m: unknown): void;
  /** The worker is gone (terminated by the watchdog, crashed, or closed). Called once. */
  onDown(info: AbortInfo): void;
}

let nextRequestId = 1;

/** One worker thread with its watchdog and its requests in flight. */
class WorkerLink {
  readonly worker: Worker;
  readonly pending = new Map<number, Pending>();
  readonly ready: Promise<void>;
  private readonly slots: Int32Array;
  private readonly epoch = Math.floor(now());
  private readonly timer: NodeJS.Timeout;
  private down = false;
  private closing = false;
  /** Name and etag of the registry compile announced last (`compiling`). */
  private compiling = { name: '', etag: '' };
  private refs = 0;
  /** Invocations queued this turn (see {@link invoke}). */
  private batch: [typeof OP_INVOKE, ...(number | string | undefined)[]] = [OP_INVOKE];

  constructor(private readonly options: LinkOptions) {
    const sab = new SharedArrayBuffer(SLOT_COUNT * 4);
    this.slots = new Int32Array(sab);
    this.worker = startWorker();
    let readyResolve!: () => void;
    let readyReject!: (err: Error) => void;
    this.ready = new Promise((res, rej) => { readyResolve = res; readyReject = rej; });
    this.ready.catch(() => { /* observed by the owner */ });
    this.worker.on('message', (m: unknown) => {
      if (Array.isArray(m)) {
        const p = this.pending.get(m[0] as number);
        if (p) {
          this.pending.delete(m[0] as number);
          this.unrefIfIdle();
          p.resolve(m);
        }
        return;
      }
      const msg = m as { t: string; id?: number; ok?: boolean; value?: unknown; error?: SerializedError; name?: string; etag?: string };
      if (msg.t === 'reply') {
        const p = this.pending.get(msg.id as number);
        if (!p) return;
        this.pending.delete(msg.id as number);
        this.unrefIfIdle();
        if (msg.ok) p.resolve(msg.value);
        else p.reject(deserializeError(msg.error as SerializedError));
      } else if (msg.t === 'ready') {
        readyResolve();
        this.unrefIfIdle();
      } else if (msg.t === 'init-failed') {
        readyReject(deserializeError(msg.error as SerializedError));
        this.fail({ culprit: -1, kind: 0, name: '', ms: 0, reason: `the sandbox worker could not start: ${msg.error?.message ?? ''}` });
      } else if (msg.t === 'compiling') {
        this.compiling = { name: msg.name ?? '', etag: msg.etag ?? '' };
      } else {
        options.onMessage(m);
      }
    });
    this.worker.on('error', (err) => {
      readyReject(err);
      this.fail({ culprit: -1, kind: 0, name: '', ms: 0, reason: `the sandbox worker crashed: ${err.message}` });
    });
    this.worker.on('exit', (code) => {
      readyReject(new Error(`the sandbox worker exited (code ${code})`));
      this.fail({ culprit: -1, kind: 0, name: '', ms: 0, reason: `the sandbox worker exited (code ${code})` });
    });
    const tick = Math.max(5, Math.min(options.watchdogMs, options.compileWatchdogMs) / 4);
    this.timer = setInterval(() => this.check(), tick);
    this.timer.unref();
    // Referenced until ready (the init counts as one request), then only while requests are in flight.
    this.refs = 1;
    this.worker.postMessage({ t: 'init', mode: options.mode, slots: sab, epoch: this.epoch, ...options.init });
  }

  /** Name and etag of the registry compile that ran last. */
  get lastCompile(): { name: string; etag: string } {
    return this.compiling;
  }

  get isDown(): boolean {
    return this.down;
  }

  /** Sends `msg` (unless undefined: queued by {@link invoke}) as request `id` (the worker's reply settles `p`). */
  request(id: number, msg: ToWorker | undefined, p: Pending): void {
    if (this.down) {
      p.abort({ culprit: -1, kind: 0, name: '', ms: 0, reason: 'the sandbox worker is not running' });
      return;
    }
    this.pending.set(id, p);
    if (this.refs++ === 0) this.worker.ref();
    if (msg === undefined) return;
    this.flush(); // invocations queued before stay before
    this.worker.postMessage(msg);
  }

  /**
   * Queues invocation `id`; the invocations queued in one turn go to the worker as one
   * message (flushed in a microtask, so none waits for a later turn).
   */
  invoke(id: number, name: string, json: string, now: number | undefined, p: Pending): void {
    if (this.batch.length === 1) queueMicrotask(this.flush);
    this.batch.push(id, name, json, now);
    this.request(id, undefined, p);
  }

  private readonly flush = (): void => {
    if (this.batch.length === 1 || this.down) return;
    const batch = this.batch;
    this.batch = [OP_INVOKE];
    this.worker.postMessage(batch);
  };

  post(msg: ToWorker): void {
    if (this.down) return;
    this.flush();
    this.worker.postMessage(msg);
  }

  private unrefIfIdle(): void {
    if (--this.refs === 0 && !this.down) this.worker.unref();
  }

  private check(): void {
    if (this.down) return;
    const s = this.slots;
    if (Atomics.load(s, SLOT.busy) !== 1) return;
    const kind = Atomics.load(s, SLOT.kind);
    const bound = kind === JOB_COMPILE ? this.options.compileWatchdogMs : this.options.watchdogMs;
    const ran = now() - this.epoch - Atomics.load(s, SLOT.start);
    if (ran < bound) return;
    const req = Atomics.load(s, SLOT.req);
    const name = req === 0 ? this.compiling.name : (this.pending.get(req)?.name ?? '');
    const what = kind === JOB_COMPILE ? `the top-level code of connection function "${name}"` : `connection function "${name}"`;
    this.fail({
      culprit: req, kind, name, ms: bound,
      reason: `the sandbox worker was terminated because ${what} did not return within ${bound} ms`,
    });
  }

  /** Terminates the worker and settles every request in flight. Idempotent. */
  private fail(info: AbortInfo): void {
    if (this.down) return;
    this.down = true;
    clearInterval(this.timer);
    void this.worker.terminate();
    const pending = [...this.pending.values()];
    const ids = [...this.pending.keys()];
    this.pending.clear();
    for (let i = 0; i < pending.length; i++) {
      const p = pending[i] as Pending;
      p.abort({ ...info, self: ids[i] === info.culprit });
    }
    if (!this.closing) this.options.onDown(info);
  }

  /** Stops the worker (the owner's close): requests in flight are settled as aborted. */
  async close(): Promise<void> {
    if (this.down) return;
    this.closing = true;
    const id = nextRequestId++;
    await Promise.race([
      new Promise<void>((resolve) => this.request(id, { t: 'close', id }, {
        name: '', resolve: () => resolve(), reject: () => resolve(), abort: () => resolve(),
      })),
      new Promise<void>((resolve) => setTimeout(resolve, 2000).unref()),
    ]);
    this.fail({ culprit: -1, kind: 0, name: '', ms: 0, reason: 'the function host was closed' });
  }
}

function deniedResult(error: string): FunctionResult {
  return { decision: 'deny', implicit: true, logs: [], computeUtilization: 0, error, failureCode: 'ConnectionFunctionError' };
}

/**
 * The deny of an invocation its worker did not finish: the culprit's own ("did not
 * return within N ms; its sandbox was terminated"), a victim's (another job ran past the
 * bound; this one was merely in flight on the same worker and is denied, fail closed,
 * through no fault of its own), or a crash/close of the worker.
 */
function abortedResult(name: string, info: AbortInfo): FunctionResult {
  if (info.self === true && info.kind !== JOB_COMPILE) {
    return deniedResult(`connection function "${name}" did not return within ${info.ms} ms; its sandbox was terminated`);
  }
  if (info.culprit !== -1) {
    return deniedResult(`connection function "${name}" did not complete, through no fault of its own (a victim of another job; denied, fail closed): ${info.reason}`);
  }
  return deniedResult(`connection function "${name}" did not complete: ${info.reason}`);
}

/** Options of {@link FunctionHost.start}. */
export interface FunctionHostOptions {
  /**
   * The store the worker opens for itself (store/ `openNodeStore`: the database, or
   * the node's local snapshot while the database is unreachable). Give this or `dataDir`.
   */
  store?: NodeStoreSpec;
  /** Shorthand for `store: { store: { kind: 'sqlite', dataDir, pollIntervalMs } }`. */
  dataDir?: string;
  /** Change-feed poll interval of the worker's SQLite store given by `dataDir`, ms (default the store's, 50). */
  pollIntervalMs?: number;
  /** Limits of every sandbox (SPEC section 4 defaults). */
  limits?: Partial<FunctionLimits>;
  /**
   * Wall-clock bound of one invocation before the worker is terminated, ms (default
   * {@link defaultWatchdogMs} of the CPU limit: max(100, 20 × cpuLimitMs)). The watchdog
   * checks every quarter of the bound, so a hung invocation is stopped after 1–1.25 ×
   * this (plus the time to terminate the thread).
   */
  watchdogMs?: number;
  /** Wall-clock bound of one compile of a LIVE version, ms (default {@link DEFAULT_COMPILE_WATCHDOG_MS}). */
  compileWatchdogMs?: number;
  /** Told about loads, load failures, watchdog terminations, restarts and change-feed errors. */
  onEvent?: (e: FunctionHostEvent) => void;
}

/** The outcome of {@link FunctionHost.invoke}. */
export interface HostedInvocation {
  /** As {@link FunctionInstance.invoke} returns it (or the host's deny when the function could not run). */
  result: FunctionResult;
  /** Id of the LIVE version that ran; absent when it could not run. */
  functionId?: string;
  /** LIVE ETag of that version. */
  etag?: string;
  /** Parent-side round trip (post, worker, reply), microseconds. */
  durationUs: number;
}

/** sandbox-worker.ts `invokeReply`: [id, flags (1 allow, 2 implicit), computeUtilization, logs, customData, error, failureCode, functionId, etag]. */
type InvokeReply = [number, number, number, string[], string?, string?, FunctionResult['failureCode']?, string?, string?];

function resultOf(m: InvokeReply): FunctionResult {
  const r: FunctionResult = { decision: (m[1] & 1) === 1 ? 'allow' : 'deny', implicit: (m[1] & 2) === 2, logs: m[3], computeUtilization: m[2] };
  if (m[4] !== undefined) r.customData = m[4];
  if (m[5] !== undefined) r.error = m[5];
  if (m[6] !== undefined) r.failureCode = m[6];
  return r;
}

/**
 * The connection functions of a node, run in a worker thread under a watchdog. The
 * worker holds the KVS replica and the registry of LIVE functions, both following the
 * store's change feed, so a publish or a KVS write reaches it without a restart; the
 * parent sends the connection object as JSON text (functions/ `connectionJson`) and
 * gets the result back as a compact array, one message each way (the invocations
 * queued in one turn go in one message; the worker keeps parsed certificate chains,
 * deep-frozen, by their text, so a returning client's chain is not parsed again).
 * Invocations are served in order, one at a time (the worker is one thread).
 *
 * Watchdog: when one invocation (or the compile of a LIVE version) runs past its bound,
 * the worker is terminated, that invocation (the culprit: "did not return within N ms;
 * its sandbox was terminated") and every other one in flight (victims: "did not
 * complete, through no fault of its own (a victim of another job; denied, fail closed)")
 * is denied with `ConnectionFunctionError` — by design, a connection is never held
 * for a re-run — a `watchdog` event is emitted and a new worker loads
 * the store again (`worker-restarted`). A LIVE version whose top-level code hung a
 * worker is refused by later workers (`load-failed`) until it is published again.
 */
export class FunctionHost {
  private link: WorkerLink | undefined;
  private restarts = 0;
  private closed = false;
  private readonly refused = new Map<string, [string, string, string]>();
  private readonly watchdogMs: number;
  private readonly compileWatchdogMs: number;
  private crashes = 0;
  private restartTimer: NodeJS.Timeout | undefined;

  private constructor(private readonly options: FunctionHostOptions) {
    const limits = resolveFunctionLimits(options.limits);
    this.watchdogMs = options.watchdogMs ?? defaultWatchdogMs(limits.cpuLimitMs);
    this.compileWatchdogMs = options.compileWatchdogMs ?? Math.max(DEFAULT_COMPILE_WATCHDOG_MS, this.watchdogMs);
  }

  /**
   * Starts the worker; resolves once it has loaded the store's LIVE functions and KVS
   * replicas.
   * @throws InvalidArgumentError for out-of-range limits; the store's errors
   *   (StoreUnavailableError, …) when the worker cannot open it.
   */
  static async start(options: FunctionHostOptions): Promise<FunctionHost> {
    const host = new FunctionHost(options);
    const link = host.spawn();
    try {
      await link.ready;
    } catch (err) {
      host.closed = true;
      await link.close();
      throw err;
    }
    return host;
  }

  /** The worker's {@link NodeStoreSpec}. @throws Error when neither `store` nor `dataDir` is given. */
  private storeSpec(): NodeStoreSpec {
    if (this.options.store) return this.options.store;
    if (this.options.dataDir === undefined) throw new Error('FunctionHost: give `store` or `dataDir`');
    return {
      store: {
        kind: 'sqlite', dataDir: this.options.dataDir,
        ...(this.options.pollIntervalMs !== undefined ? { pollIntervalMs: this.options.pollIntervalMs } : {}),
      },
    };
  }

  private spawn(): WorkerLink {
    const link = new WorkerLink({
      mode: 'host',
      init: {
        store: this.storeSpec(),
        ...(this.options.limits ? { limits: this.options.limits } : {}),
        refused: [...this.refused.values()],
      },
      watchdogMs: this.watchdogMs,
      compileWatchdogMs: this.compileWatchdogMs,
      onMessage: (m) => {
        const msg = m as { t: string; e?: FunctionHostEvent };
        if (msg.t === 'event' && msg.e) this.emit(msg.e);
      },
      onDown: (info) => this.onDown(link, info),
    });
    link.ready.then(() => { this.crashes = 0; }, () => { /* onDown restarts */ });
    this.link = link;
    return link;
  }

  private emit(e: FunctionHostEvent): void {
    try {
      this.options.onEvent?.(e);
    } catch { /* a listener's failure is not the host's */ }
  }

  private onDown(link: WorkerLink, info: AbortInfo): void {
    if (this.link !== link || this.closed) return;
    this.link = undefined;
    let delay = 0;
    if (info.culprit !== -1) {
      const phase = info.kind === JOB_COMPILE ? 'compile' : 'invoke';
      if (phase === 'compile' && info.culprit === 0) {
        const { name, etag } = link.lastCompile;
        this.refused.set(`${name}\u0000${etag}`, [name, etag, `its top-level code did not finish within ${info.ms} ms (an earlier sandbox worker was terminated)`]);
      }
      this.emit({
        type: 'watchdog', name: info.name, ms: info.ms, phase,
        message: phase === 'compile'
          ? `the top-level code of connection function "${info.name}" did not finish within ${info.ms} ms; the sandbox worker was terminated`
          : `connection function "${info.name}" did not return within ${info.ms} ms; its sandbox was terminated`,
      });
    } else {
      // A crash (not the watchdog): back off when it keeps happening.
      delay = Math.min(5000, 100 * 2 ** this.crashes);
      this.crashes++;
    }
    const restart = (): void => {
      this.restartTimer = undefined;
      if (this.closed) return;
      this.restarts++;
      this.spawn();
      this.emit({ type: 'worker-restarted', restarts: this.restarts, reason: info.reason, message: `sandbox worker restarted (${this.restarts} so far): ${info.reason}` });
    };
    if (delay === 0) restart();
    else {
      this.restartTimer = setTimeout(restart, delay);
      this.restartTimer.unref();
    }
  }

  /**
   * Runs LIVE function `functionName` once with `connectionJsonText` (the SPEC section 4
   * connection object as JSON text). `options.now`: what Date returns in the function,
   * ms since the epoch (default now). Never rejects: an unknown function, one without a
   * loadable LIVE version, a worker that is down or restarting, and an invocation the
   * watchdog stopped all resolve to a deny with failureCode `ConnectionFunctionError`
   * and a message naming the function.
   */
  invoke(functionName: string, connectionJsonText: string, options?: { now?: number }): Promise<HostedInvocation> {
    const start = performance.now();
    const link = this.link;
    if (!link || this.closed) {
      return Promise.resolve({
        result: deniedResult(`connection function "${functionName}" cannot run: the sandbox worker is ${this.closed ? 'closed' : 'restarting'}`),
        durationUs: (performance.now() - start) * 1000,
      });
    }
    return new Promise<HostedInvocation>((resolve) => {
      const id = nextRequestId++;
      link.invoke(id, functionName, connectionJsonText, options?.now, {
        name: functionName,
        resolve: (m) => {
          const reply = m as InvokeReply;
          const out: HostedInvocation = { result: resultOf(reply), durationUs: (performance.now() - start) * 1000 };
          if (reply[7] !== undefined) out.functionId = reply[7];
          if (reply[8] !== undefined) out.etag = reply[8];
          resolve(out);
        },
        reject: (err) => resolve({ result: deniedResult(`connection function "${functionName}" cannot run: ${err.message}`), durationUs: (performance.now() - start) * 1000 }),
        abort: (info) => resolve({ result: abortedResult(functionName, info), durationUs: (performance.now() - start) * 1000 }),
      });
    });
  }

  private call<T>(msg: (id: number) => ToWorker): Promise<T> {
    const link = this.link;
    if (!link || this.closed) return Promise.reject(new Error(`the sandbox worker is ${this.closed ? 'closed' : 'restarting'}`));
    return new Promise<T>((resolve, reject) => {
      const id = nextRequestId++;
      link.request(id, msg(id), {
        name: '', resolve: (v) => resolve(v as T), reject,
        abort: (info) => reject(new Error(info.reason)),
      });
    });
  }

  /**
   * What the worker holds: applied sequence, loaded functions with counters, KVS
   * replicas, restarts.
   * @throws Error when the worker is restarting or closed, or was terminated meanwhile.
   */
  async status(): Promise<FunctionHostStatus> {
    const s = await this.call<FunctionHostStatus>((id) => ({ t: 'status', id }));
    return { ...s, restarts: this.restarts };
  }

  /**
   * Resolves once the worker has applied change-feed sequence `seq` to both its KVS
   * replica and its function registry (a publish is then live, a KVS write visible to
   * the next invocation).
   * @throws Error after `timeoutMs` (default 10 s), or when the worker is restarting,
   *   closed or terminated meanwhile.
   */
  waitForSequence(seq: number, timeoutMs?: number): Promise<void> {
    return this.call<void>((id) => ({ t: 'wait', id, seq, ...(timeoutMs !== undefined ? { timeoutMs } : {}) }));
  }

  /** Restarts of the worker so far (watchdog terminations and crashes). */
  get restartCount(): number {
    return this.restarts;
  }

  /** Stops the worker (closing its store); invocations in flight are denied. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const link = this.link;
    this.link = undefined;
    await link?.close();
  }
}

/** Options of {@link SandboxWorker}. */
export interface SandboxWorkerOptions {
  /** Wall-clock bound of one invocation, ms (default {@link defaultWatchdogMs} of the default CPU limit, 100). */
  watchdogMs?: number;
  /** Wall-clock bound of one compile, ms (default {@link DEFAULT_COMPILE_WATCHDOG_MS}). */
  compileWatchdogMs?: number;
}

/**
 * How many times one job of a {@link SandboxWorker} is started on a worker that then goes
 * away through no fault of its own (terminated for another job, crashed) before it fails.
 */
export const SANDBOX_JOB_ATTEMPTS = 3;

/** A request's worker went away before it replied (see {@link AbortInfo}). */
class WorkerAborted extends Error {
  constructor(readonly info: AbortInfo) {
    super(info.reason);
  }
}

/**
 * A worker thread for one-off sandbox work under the watchdog: compile checks
 * (lifecycle create/update/publish) and offline runs (`function test`, `function
 * matrix`, the admin API's test), so top-level code or a handler that loops in C fails
 * with a clear error instead of hanging the process. Started lazily; a terminated worker
 * is replaced on the next request. The worker does not keep the process alive while idle.
 *
 * Jobs (a compile check, a load, one run — with the load it needs in a new worker) run
 * one at a time, in the order they were asked for: a job the watchdog has to stop delays
 * the jobs queued behind it but never fails them; only the job that ran past its bound
 * fails ("did not return within N ms" / "top-level code did not finish within N ms").
 * Should a worker still go away under a job that was not at fault (it crashed, or was
 * terminated for another job), that job runs again on the replacement worker, up to
 * {@link SANDBOX_JOB_ATTEMPTS} times in all, and then fails with a plain Error saying so
 * (never a FunctionCompileError: its code was not at fault).
 */
export class SandboxWorker {
  private link: WorkerLink | undefined;
  private generation = 0;
  private nextHandle = 1;
  private closed = false;
  /** A job is running; the others wait in {@link waiting}, first come first served. */
  private busy = false;
  private readonly waiting: (() => void)[] = [];
  private static sharedWorker: SandboxWorker | undefined;

  constructor(private readonly options: SandboxWorkerOptions = {}) {}

  /** One process-wide instance with the default bounds (used by FunctionService's compile check). */
  static shared(): SandboxWorker {
    SandboxWorker.sharedWorker ??= new SandboxWorker();
    return SandboxWorker.sharedWorker;
  }

  /** The watchdog bound of invocations, ms. */
  get watchdogMs(): number {
    return this.options.watchdogMs ?? defaultWatchdogMs(5);
  }

  /** The watchdog bound of compiles, ms. */
  get compileWatchdogMs(): number {
    return this.options.compileWatchdogMs ?? DEFAULT_COMPILE_WATCHDOG_MS;
  }

  /** @internal the current worker (started if needed) and its generation. */
  acquire(): { link: WorkerLink; generation: number } {
    if (this.closed) throw new Error('the sandbox worker was closed');
    if (!this.link || this.link.isDown) {
      this.generation++;
      this.link = new WorkerLink({
        mode: 'isolated', init: {}, watchdogMs: this.watchdogMs, compileWatchdogMs: this.compileWatchdogMs,
        onMessage: () => {}, onDown: () => {},
      });
    }
    return { link: this.link, generation: this.generation };
  }

  /** @internal the worker of `generation` if it is still the running one (nothing is started). */
  current(generation: number): WorkerLink | undefined {
    return this.link && !this.link.isDown && this.generation === generation ? this.link : undefined;
  }

  /** @internal one request on `link`; rejects with {@link WorkerAborted} when the worker goes away first. */
  request<T>(link: WorkerLink, msg: (id: number) => ToWorker, name: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const id = nextRequestId++;
      link.request(id, msg(id), { name, resolve: (v) => resolve(v as T), reject, abort: (info) => reject(new WorkerAborted(info)) });
    });
  }

  private async turn(): Promise<void> {
    if (!this.busy) {
      this.busy = true;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.busy = false;
  }

  /**
   * @internal runs `job` when no other job runs (first come first served). When the
   * worker goes away under it: if the job's own request ran past the bound, `culprit`
   * maps that to its result or error; otherwise the job runs again on a new worker, up
   * to {@link SANDBOX_JOB_ATTEMPTS} times in all.
   */
  async exclusive<T>(label: string, job: (link: WorkerLink, generation: number) => Promise<T>, culprit: (info: AbortInfo) => T | Error): Promise<T> {
    await this.turn();
    try {
      for (let attempt = 1; ; attempt++) {
        const { link, generation } = this.acquire();
        try {
          return await job(link, generation);
        } catch (err) {
          if (!(err instanceof WorkerAborted)) throw err;
          const { info } = err;
          if (info.self === true) {
            const r = culprit(info);
            if (r instanceof Error) throw r;
            return r;
          }
          if (this.closed) throw new Error(`${label} did not complete: the sandbox worker was closed`);
          if (attempt >= SANDBOX_JOB_ATTEMPTS) {
            throw new Error(info.culprit !== -1
              ? `${label} did not complete through no fault of its own: it was a victim of other jobs — its sandbox worker was terminated ${attempt} times for them (last: ${info.reason})`
              : `${label} did not complete: its sandbox worker went away ${attempt} times (last: ${info.reason})`);
          }
        }
      }
    } finally {
      this.release();
    }
  }

  /**
   * Compiles `code` as {@link compileFunction} does, in the worker, and discards it.
   * @throws FunctionSizeLimitExceededError, FunctionCompileError (with line/column; also
   *   when the top-level code did not finish within the compile bound — the worker was
   *   terminated), InvalidArgumentError for bad limits; Error when the sandbox worker was
   *   closed, or kept going away for other reasons (see {@link SandboxWorker}).
   */
  async check(code: string, options: CompileOptions = {}): Promise<void> {
    const name = options.name ?? 'code';
    await this.exclusive<null>(
      `the compile check of function ${quoted(options.name)}`,
      (link) => this.request<null>(link, (id) => ({ t: 'load', id, handle: 0, code, options }), name),
      (info) => compileTimeout(options.name, info),
    );
  }

  /**
   * Compiles `code` in the worker and keeps it warm for {@link IsolatedFunction.invoke}.
   * `kvs`: named KVS contents the invocations may select (e.g. `hit`/`miss` of the matrix).
   * @throws as {@link check}.
   */
  async load(code: string, options: CompileOptions = {}, kvs: Record<string, ReadonlyMap<string, string>> = {}): Promise<IsolatedFunction> {
    const fn = new IsolatedFunction(this, code, options, kvs, this.nextHandle++);
    await fn.ensureLoaded();
    return fn;
  }

  /** Stops the worker; jobs in flight or queued fail with an Error. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    const link = this.link;
    this.link = undefined;
    await link?.close();
    if (SandboxWorker.sharedWorker === this) SandboxWorker.sharedWorker = undefined;
  }
}

const quoted = (name: string | undefined): string => (name === undefined ? 'code' : `"${name}"`);

/** The error of a compile whose own top-level code ran past the compile bound. */
function compileTimeout(name: string | undefined, info: AbortInfo): Error {
  return new FunctionCompileError(`function ${quoted(name)}: top-level code did not finish within ${info.ms} ms; its sandbox was terminated`);
}

/**
 * A function compiled in a {@link SandboxWorker}. When the worker was replaced (the
 * watchdog stopped an earlier invocation), the next {@link invoke} compiles it again
 * in the new worker first.
 */
export class IsolatedFunction {
  private loadedIn = -1;
  private readonly kvsEntries: Record<string, [string, string][]>;

  /** @internal use {@link SandboxWorker.load}. */
  constructor(
    private readonly sandbox: SandboxWorker,
    readonly code: string,
    private readonly options: CompileOptions,
    kvs: Record<string, ReadonlyMap<string, string>>,
    private readonly handle: number,
  ) {
    this.kvsEntries = Object.fromEntries(Object.entries(kvs).map(([k, m]) => [k, [...m]]));
  }

  private get label(): string {
    return this.options.name ?? 'code';
  }

  /** Compiles in worker `link` (of `generation`) unless already there. Inside a job of {@link SandboxWorker.exclusive}. */
  private async loadIn(link: WorkerLink, generation: number): Promise<void> {
    if (this.loadedIn === generation) return;
    await this.sandbox.request<null>(
      link, (id) => ({ t: 'load', id, handle: this.handle, code: this.code, options: this.options, kvs: this.kvsEntries }), this.label,
    );
    this.loadedIn = generation;
  }

  /** @internal compiles in the current worker unless already there. @throws as {@link SandboxWorker.check}. */
  async ensureLoaded(): Promise<void> {
    await this.sandbox.exclusive<void>(
      `the compile of function ${quoted(this.options.name)}`,
      (link, generation) => this.loadIn(link, generation),
      (info) => compileTimeout(this.options.name, info),
    );
  }

  /**
   * Runs the function once on `connection` (an object, sent as its JSON text, or the JSON
   * text). `kvs` names one of the KVS contents given to {@link SandboxWorker.load}.
   * Never rejects for anything the function does: a run the watchdog stopped resolves to
   * a deny with failureCode ConnectionFunctionError ("did not return within N ms; its
   * sandbox was terminated"). A run whose worker went away for another job's fault runs
   * again (see {@link SandboxWorker}).
   * @throws FunctionCompileError when the function has to be compiled again (new worker)
   *   and fails; Error when the sandbox worker was closed or kept going away through no
   *   fault of this run.
   */
  async invoke(connection: object | string, options: { kvs?: string; now?: number } = {}): Promise<FunctionResult> {
    const json = typeof connection === 'string' ? connection : JSON.stringify(connection);
    const msg = (id: number): ToWorker => ({
      t: 'run', id, handle: this.handle, json,
      ...(options.kvs !== undefined ? { kvs: options.kvs } : {}), ...(options.now !== undefined ? { now: options.now } : {}),
    });
    return this.sandbox.exclusive<FunctionResult>(
      `the run of connection function "${this.label}"`,
      async (link, generation) => {
        await this.loadIn(link, generation);
        return this.sandbox.request<FunctionResult>(link, msg, this.label);
      },
      (info) => (info.kind === JOB_COMPILE ? compileTimeout(this.options.name, info) : abortedResult(this.label, info)),
    );
  }

  /** Frees the sandbox in the worker (nothing to do when that worker is gone). */
  dispose(): void {
    if (this.loadedIn !== -1) this.sandbox.current(this.loadedIn)?.post({ t: 'drop', handle: this.handle });
    this.loadedIn = -1;
  }
}
