/**
 * The sandbox worker thread (node:worker_threads) behind {@link FunctionHost} and
 * {@link SandboxWorker} (host.ts). Every QuickJS sandbox of the process runs here, so a
 * built-in that loops in C (which never reaches QuickJS's interrupt handler) blocks
 * this thread only; the parent's watchdog sees it through the shared job slots and
 * terminates the thread.
 *
 * Two modes, chosen by the first message:
 * - `host`: opens its own store (store/ `openNodeStore(spec)`), a
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
import { fallbackStatus, openNodeStore, type Store } from '../store/index.js';
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
  if (!init.store) throw new Error('host mode needs a store spec');
  const feedError = (err: unknown): void => event({ type: 'feed-error', error: message(err), message: `change feed: ${message(err)}` });
  // The parent's node logs the snapshot and reconnection events; only failures are told here.
  const store = await openNodeStore(init.store);
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

/** How connection.ts `connectionJson` writes the client certificate: last, after the scalars. */
const CC_MARK = ',"clientCertificate":{"certificates":';
const RS_MARK = ',"revocationStatus":';
/**
 * Parsed, deep-frozen certificate chains by a short key (length and first 256
 * characters of their JSON text; hashing the whole text costs more than parsing most of
 * it), each with its full text, compared before use. Bounded; the oldest goes first.
 */
const chainCache = new Map<string, [string, unknown]>();
/** Parsed, deep-frozen revocation statuses by their JSON text (they change with OCSP refreshes, not per connection). */
const statusCache = new Map<string, unknown>();
const PARSE_CACHE_MAX = 256;

function deepFreeze(v: unknown): unknown {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
    Object.freeze(v);
  }
  return v;
}

function remember<V>(cache: Map<string, V>, key: string, value: V): V {
  if (cache.size >= PARSE_CACHE_MAX && !cache.has(key)) cache.delete(cache.keys().next().value as string);
  cache.set(key, value);
  return value;
}

/**
 * JSON.parse(json) for the text connection.ts `connectionJson` writes, `{scalars,
 * "clientCertificate":{"certificates":CHAIN,"revocationStatus":STATUS}}`, without
 * parsing CHAIN again when it was seen before: the text is cut at the two markers
 * (which can only be structural there: a quote inside a JSON string is escaped) and
 * each piece is parsed on its own; when every piece is a complete JSON value the
 * whole text is valid and parses to the same object, with CHAIN from a cache of
 * deep-frozen chains (the runtime's structured path then finds their JSON by
 * identity; the function sees certificate views deep-frozen either way). Any other
 * text (a cut that does not parse, no certificate, a duplicate key): JSON.parse of the
 * whole. Throws as JSON.parse.
 */
function parseConnection(json: string): unknown {
  const i = json.indexOf(CC_MARK);
  const n = json.length;
  if (i > 0 && json.charCodeAt(n - 1) === 125 && json.charCodeAt(n - 2) === 125) {
    try {
      const j = json.lastIndexOf(RS_MARK);
      const chainEnd = j > i ? j : n - 2;
      const head: unknown = JSON.parse(`${json.slice(0, i)}}`);
      if (typeof head === 'object' && head !== null && !Array.isArray(head) && Object.keys(head).length > 0 && !Object.hasOwn(head, 'clientCertificate')) {
        const from = i + CC_MARK.length;
        const chainText = json.slice(from, chainEnd);
        const key = `${chainEnd - from}:${json.slice(from, from + 256)}`;
        const hit = chainCache.get(key);
        const chain = hit !== undefined && hit[0] === chainText ? hit[1] : remember(chainCache, key, [chainText, deepFreeze(JSON.parse(chainText))])[1];
        const cc: Record<string, unknown> = { certificates: chain };
        if (j > i) {
          const statusText = json.slice(j + RS_MARK.length, n - 2);
          cc.revocationStatus = statusCache.get(statusText) ?? remember(statusCache, statusText, deepFreeze(JSON.parse(statusText)));
        }
        (head as Record<string, unknown>).clientCertificate = cc;
        return head;
      }
    } catch { /* not cut as expected: the whole text decides */ }
  }
  return JSON.parse(json);
}

/**
 * The reply to an invocation, `[id, flags, computeUtilization, logs, customData, error,
 * failureCode, functionId, etag]` (flags: 1 allow, 2 implicit), absent fields
 * undefined; host.ts rebuilds the FunctionResult.
 */
function invokeReply(id: number, r: FunctionResult, functionId?: string, etag?: string): void {
  port?.postMessage([
    id, (r.decision === 'allow' ? 1 : 0) | (r.implicit ? 2 : 0), r.computeUtilization, r.logs,
    r.customData, r.error, r.failureCode, functionId, etag,
  ]);
}

function invokeHosted(id: number, name: string, json: string, now: number | undefined): void {
  const h = host as HostState;
  const fn = h.registry.get(name);
  if (!fn) {
    const failure = h.registry.failures().find((f) => f.name === name);
    const why = failure ? `its LIVE version ${failure.etag} could not be loaded: ${message(failure.error)}` : 'it does not exist or has no LIVE version';
    invokeReply(id, denied(`connection function "${name}" cannot run: ${why}`));
    return;
  }
  // Parsed here (V8's JSON.parse is faster than QuickJS's), the object takes the
  // runtime's structured path: scalars plus ids of certificate views the sandbox
  // already holds — the same object the function would get from the text. Text that
  // does not parse goes to the sandbox as is (which then denies with the parse error).
  let conn: object | string = json;
  try {
    const parsed: unknown = parseConnection(json);
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
  invokeReply(id, r, fn.id, fn.etag);
}

/** KVS name → TotalSizeInBytes as last read from the store. */
const lastTotalSize = new Map<string, number>();

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
  // The status must answer while the database is down: totalSize then is the last one read.
  for (const r of (await h.store.kvs.listStores().catch(() => undefined)) ?? []) lastTotalSize.set(r.name, r.totalSize);
  const kvs = h.kvs.storeNames().map((name) => {
    const snap = h.kvs.snapshot(name);
    return { name, itemCount: snap?.meta().keyCount ?? 0, totalSize: lastTotalSize.get(name) ?? 0, version: snap?.version ?? 0 };
  });
  const fb = fallbackStatus(h.store);
  const degraded = fb && !fb.connected
    ? `serving the local snapshot at sequence ${fb.snapshotSeq} (the database was unreachable at start)`
    : h.kvs.degraded || h.registry.degraded ? 'change feed unreachable; serving the last applied state' : undefined;
  return { appliedSequence: Math.min(h.registry.sequence, h.kvs.sequence), ...(degraded ? { degraded } : {}), functions, kvs, restarts: 0 };
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
    if (m[0] === OP_INVOKE) {
      for (let i = 1; i + 3 < m.length; i += 4) invokeHosted(m[i] as number, m[i + 1] as string, m[i + 2] as string, m[i + 3] as number | undefined);
    }
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
