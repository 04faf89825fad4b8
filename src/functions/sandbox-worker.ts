/**
 * The sandbox worker thread (node:worker_threads) behind {@link FunctionHost} and
 * {@link SandboxWorker} (host.ts). Every QuickJS sandbox of the process runs here, so a
 * built-in that loops in C (which never reaches QuickJS's interrupt handler) blocks
 * this thread only; the parent's watchdog sees it through the shared job slots and
 * terminates the thread.
 *
 * Two modes, chosen by the first message:
 * - `host`: opens its own store (`openSqliteStore({ dataDir, pollIntervalMs })`), a
 *   kvs/ `KvsReplica` and a {@link FunctionRegistry} (both following the change feed),
 *   and answers invocations by function name with the connection object as JSON text.
 * - `isolated`: compiles code on request and runs one-off invocations of it (the
 *   lifecycle's compile check, the CLI's `function test` and `function matrix`).
 *
 * Watchdog slots (an Int32Array over a SharedArrayBuffer, see host.ts `SLOT`): before
 * each synchronous unit of sandbox work (one invocation, one compile) the worker bumps
 * the job counter, records its kind, the request id and its start time (ms, relative to
 * the parent's epoch) and sets the busy flag; it clears the flag afterwards.
 *
 * Not an API: loaded only as a worker by host.ts.
 */
import { parentPort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { openSqliteStore, type Store } from '../store/index.js';
import { KvsReplica } from '../kvs/index.js';
import { FunctionCompileError } from '../errors.js';
import { FunctionRegistry } from './registry.js';
import {
  compileFunctionWith, kvsSnapshotFromMap, loadQuickJs, type FunctionInstance, type FunctionResult, type KvsSnapshotLike,
} from './runtime.js';
import {
  JOB_COMPILE, JOB_INVOKE, OP_INVOKE, SLOT, serializeError, type FunctionHostEvent, type FunctionHostStatus, type ToWorker,
} from './host-protocol.js';

const port = parentPort;
if (!port) throw new Error('sandbox-worker.ts runs only as a worker thread');

let slots: Int32Array | undefined;
let epoch = 0;

function begin(kind: number, req: number): void {
  const s = slots as Int32Array;
  Atomics.add(s, SLOT.job, 1);
  Atomics.store(s, SLOT.kind, kind);
  Atomics.store(s, SLOT.req, req);
  Atomics.store(s, SLOT.start, Math.floor(performance.timeOrigin + performance.now() - epoch));
  Atomics.store(s, SLOT.busy, 1);
}
function end(): void {
  Atomics.store(slots as Int32Array, SLOT.busy, 0);
}

function event(e: FunctionHostEvent): void {
  port?.postMessage({ t: 'event', e });
}
function reply(id: number, value: unknown): void {
  port?.postMessage({ t: 'reply', id, ok: true, value });
}
function replyError(id: number, err: unknown): void {
  port?.postMessage({ t: 'reply', id, ok: false, error: serializeError(err) });
}
const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

function denied(error: string): FunctionResult {
  return { decision: 'deny', implicit: true, logs: [], computeUtilization: 0, error, failureCode: 'ConnectionFunctionError' };
}

// ---- host mode ------------------------------------------------------------------

interface HostState {
  store: Store;
  kvs: KvsReplica;
  registry: FunctionRegistry;
  counters: Map<string, { invocations: number; errors: number }>;
}
let host: HostState | undefined;
/** Messages that arrived before the host finished loading, in order. */
let backlog: ToWorker[] | undefined = [];

async function startHost(init: Extract<ToWorker, { t: 'init' }>): Promise<void> {
  const refused = new Map((init.refused ?? []).map(([name, etag, why]) => [`${name}\u0000${etag}`, why]));
  const qjs = await loadQuickJs();
  const store = await openSqliteStore({ dataDir: init.dataDir as string, ...(init.pollIntervalMs !== undefined ? { pollIntervalMs: init.pollIntervalMs } : {}) });
  const feedError = (err: unknown): void => event({ type: 'feed-error', error: message(err), message: `change feed: ${message(err)}` });
  const kvs = await KvsReplica.open(store, { onError: feedError });
  /** LIVE etag of the last compile attempt per function (the registry's onError does not say). */
  const attempted = new Map<string, string>();
  // Set once start() returns; onError may run before (during the initial load).
  const ref: { registry?: FunctionRegistry } = {};
  const registry = await FunctionRegistry.start(store, {
    ...(init.limits ? { limits: init.limits } : {}),
    kvs,
    compile: (record, options) => {
      attempted.set(record.name, record.etag);
      const why = refused.get(`${record.name}\u0000${record.etag}`);
      if (why !== undefined) return Promise.reject(new FunctionCompileError(`function "${record.name}": ${why}`));
      port?.postMessage({ t: 'compiling', name: record.name, etag: record.etag });
      begin(JOB_COMPILE, 0);
      try {
        return Promise.resolve(compileFunctionWith(qjs, record.document.code, options));
      } finally {
        end();
      }
    },
    onLoaded: (fn) => event({ type: 'loaded', name: fn.name, etag: fn.etag, id: fn.id, message: `connection function "${fn.name}" (LIVE ${fn.etag}) loaded` }),
    onError: (err, name) => {
      if (name === undefined) return feedError(err);
      const failure = ref.registry?.failures().find((f) => f.name === name);
      const etag = failure?.etag ?? attempted.get(name) ?? '';
      event({
        type: 'load-failed', name, etag, error: message(err),
        message: `connection function "${name}" (LIVE ${etag}) could not be loaded: ${message(err)}${failure?.servingEtag ? `; ${failure.servingEtag} keeps serving` : ''}`,
      });
    },
  });
  ref.registry = registry;
  host = { store, kvs, registry, counters: new Map() };
  const queued = backlog ?? [];
  backlog = undefined;
  port?.postMessage({ t: 'ready' });
  for (const m of queued) handle(m);
}

function invokeHosted(id: number, name: string, json: string, now: number | undefined): void {
  const h = host as HostState;
  const fn = h.registry.get(name);
  if (!fn) {
    const failure = h.registry.failures().find((f) => f.name === name);
    const why = failure ? `its LIVE version ${failure.etag} could not be loaded: ${message(failure.error)}` : 'it does not exist or has no LIVE version';
    port?.postMessage([id, denied(`connection function "${name}" cannot run: ${why}`)]);
    return;
  }
  // Parsed here (V8's JSON.parse is faster than QuickJS's), the object takes the
  // runtime's structured path: scalars plus ids of certificate views the sandbox
  // already holds — the same object the function would get from the text. Text that
  // does not parse goes to the sandbox as is (which then denies with the parse error).
  let conn: object | string = json;
  try {
    const parsed: unknown = JSON.parse(json);
    if (typeof parsed === 'object' && parsed !== null) conn = parsed;
  } catch { /* the sandbox reports it */ }
  begin(JOB_INVOKE, id);
  let r: FunctionResult;
  try {
    r = fn.invoke(conn, now === undefined ? {} : { now });
  } finally {
    end();
  }
  let c = h.counters.get(name);
  if (!c) h.counters.set(name, (c = { invocations: 0, errors: 0 }));
  c.invocations++;
  if (r.failureCode === 'ConnectionFunctionError') c.errors++;
  port?.postMessage([id, r, fn.id, fn.etag]);
}

async function hostStatus(): Promise<FunctionHostStatus> {
  const h = host as HostState;
  const functions = h.registry.names().map((name) => {
    const fn = h.registry.get(name);
    const c = h.counters.get(name);
    return {
      name, id: fn?.id ?? '', etag: fn?.etag ?? '', invocations: c?.invocations ?? 0, errors: c?.errors ?? 0,
      memoryBytes: fn?.memoryUsageBytes() ?? 0,
    };
  });
  const records = new Map((await h.store.kvs.listStores()).map((r) => [r.name, r]));
  const kvs = h.kvs.storeNames().map((name) => {
    const snap = h.kvs.snapshot(name);
    return { name, itemCount: snap?.meta().keyCount ?? 0, totalSize: records.get(name)?.totalSize ?? 0, version: snap?.version ?? 0 };
  });
  return { appliedSequence: Math.min(h.registry.sequence, h.kvs.sequence), functions, kvs, restarts: 0 };
}

// ---- isolated mode --------------------------------------------------------------

const loaded = new Map<number, { inst: FunctionInstance; kvs: Map<string, KvsSnapshotLike> }>();

async function load(m: Extract<ToWorker, { t: 'load' }>): Promise<void> {
  try {
    const qjs = await loadQuickJs();
    begin(JOB_COMPILE, m.id);
    let inst: FunctionInstance;
    try {
      inst = compileFunctionWith(qjs, m.code, m.options);
    } finally {
      end();
    }
    if (m.handle === 0) {
      inst.dispose();
    } else {
      const kvs = new Map<string, KvsSnapshotLike>();
      for (const [k, entries] of Object.entries(m.kvs ?? {})) kvs.set(k, kvsSnapshotFromMap(new Map(entries)));
      loaded.set(m.handle, { inst, kvs });
    }
    reply(m.id, null);
  } catch (err) {
    replyError(m.id, err);
  }
}

function run(m: Extract<ToWorker, { t: 'run' }>): void {
  const h = loaded.get(m.handle);
  if (!h) return replyError(m.id, new Error(`sandbox ${m.handle} is not loaded`));
  begin(JOB_INVOKE, m.id);
  let r: FunctionResult;
  try {
    r = h.inst.invoke(m.json, { ...(m.kvs !== undefined ? { kvs: h.kvs.get(m.kvs) } : {}), ...(m.now !== undefined ? { now: m.now } : {}) });
  } finally {
    end();
  }
  reply(m.id, r);
}

// ---- dispatch -------------------------------------------------------------------

function handle(m: ToWorker): void {
  if (Array.isArray(m)) {
    if (m[0] === OP_INVOKE) invokeHosted(m[1], m[2], m[3], m[4]);
    return;
  }
  switch (m.t) {
    case 'status':
      hostStatus().then((s) => reply(m.id, s), (err: unknown) => replyError(m.id, err));
      return;
    case 'wait': {
      const h = host as HostState;
      Promise.all([h.registry.waitFor(m.seq, m.timeoutMs), h.kvs.waitForSequence(m.seq, m.timeoutMs)])
        .then(() => reply(m.id, null), (err: unknown) => replyError(m.id, err));
      return;
    }
    case 'load':
      void load(m);
      return;
    case 'run':
      run(m);
      return;
    case 'drop':
      loaded.get(m.handle)?.inst.dispose();
      loaded.delete(m.handle);
      return;
    case 'close': {
      const h = host;
      host = undefined;
      for (const l of loaded.values()) l.inst.dispose();
      loaded.clear();
      if (!h) return reply(m.id, null);
      h.registry.stop();
      h.kvs.close();
      h.store.close().then(() => reply(m.id, null), (err: unknown) => replyError(m.id, err));
      return;
    }
    default:
      return;
  }
}

port.on('message', (m: ToWorker) => {
  if (!Array.isArray(m) && m.t === 'init') {
    slots = new Int32Array(m.slots);
    epoch = m.epoch;
    if (m.mode === 'host') {
      startHost(m).catch((err: unknown) => {
        port.postMessage({ t: 'init-failed', error: serializeError(err) });
      });
    } else {
      backlog = undefined;
      port.postMessage({ t: 'ready' });
    }
    return;
  }
  if (backlog) backlog.push(m);
  else handle(m);
});
