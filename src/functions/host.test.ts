/**
 * FunctionHost and SandboxWorker: built-ins that loop in C (never reaching QuickJS's
 * interrupt handler) are stopped by the worker watchdog, every invocation in flight on
 * the terminated worker is denied, the host keeps serving; hostile top-level code fails
 * create/publish; publishes and KVS writes reach the worker through the change feed.
 * No timing assertions: only outcomes and messages.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../store/index.js';
import { KeyValueStoreService } from '../kvs/index.js';
import { FunctionCompileError } from '../errors.js';
import {
  FunctionHost, FunctionService, FUNCTION_RUNTIME, SandboxWorker, type FunctionHostEvent, type HostedInvocation,
} from './index.js';
import { SANDBOX_JOB_ATTEMPTS } from './host.js';
import type { FunctionResult } from './runtime.js';

const WATCHDOG_MS = 200;

/** Hostile statements that run inside one C call of QuickJS. */
const HOSTILE: Record<string, string> = {
  includes: 'Array.prototype.includes.call({ length: 2 ** 53 - 1 }, 1);',
  indexOf: 'Array.prototype.indexOf.call({ length: 2 ** 53 - 1 }, 1);',
  lastIndexOf: 'Array.prototype.lastIndexOf.call({ length: 2 ** 53 - 1 }, 1);',
  reverse: 'Array.prototype.reverse.call({ length: 2 ** 53 - 1 });',
  copyWithin: 'Array.prototype.copyWithin.call({ length: 2 ** 53 - 1 }, 1, 0);',
  unshift: 'Array.prototype.unshift.call({ length: 2 ** 53 - 2 }, 1);',
  join: "Array(2 ** 32 - 1).join('');",
  quadraticIndexOf: "'a'.repeat(5e5).indexOf('a'.repeat(2.5e5) + 'b');",
};

const handlerCode = (body: string): string => `function connectionHandler(connection) { ${body} connection.allow(); }`;
const okCode = (tag: string): string => `function connectionHandler(connection) { connection.logCustomData(${JSON.stringify(tag)}); connection.allow(); }`;
const CONN = JSON.stringify({ connectionId: 'c', clientIp: '10.0.0.1', clientPort: 1, endpoint: 'e', distributionId: 'd' });

async function setup(t: { after(fn: () => Promise<void> | void): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-fnhost-'));
  const store = await openSqliteStore({ dataDir: dir });
  const sandbox = new SandboxWorker({ compileWatchdogMs: 500 });
  const svc = new FunctionService(store, { sandbox });
  const events: FunctionHostEvent[] = [];
  let host: FunctionHost | undefined;
  t.after(async () => {
    await host?.close();
    await sandbox.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const publish = async (name: string, code: string): Promise<string> => {
    const existing = await svc.describe(name).catch(() => undefined);
    const d = existing ? await svc.update(name, existing.ETag, { code }) : await svc.create(name, { code, runtime: FUNCTION_RUNTIME });
    return (await svc.publish(name, d.ETag)).ETag;
  };
  const startHost = async (): Promise<FunctionHost> => {
    host = await FunctionHost.start({ dataDir: dir, pollIntervalMs: 20, watchdogMs: WATCHDOG_MS, onEvent: (e) => events.push(e) });
    return host;
  };
  return { dir, store, svc, sandbox, events, publish, startHost };
}

function assertTerminated(r: HostedInvocation, name: string): void {
  assert.equal(r.result.decision, 'deny');
  assert.equal(r.result.failureCode, 'ConnectionFunctionError');
  assert.equal(r.result.error, `connection function "${name}" did not return within ${WATCHDOG_MS} ms; its sandbox was terminated`);
  assert.equal(r.functionId, undefined);
}

test('host: every C-internal loop is stopped by the watchdog; the next invocation of a well-behaved function is allowed', async (t) => {
  const { publish, startHost, events } = await setup(t);
  const okEtag = await publish('ok', okCode('fine'));
  for (const [name, body] of Object.entries(HOSTILE)) await publish(name, handlerCode(body));
  const host = await startHost();
  for (const name of Object.keys(HOSTILE)) {
    assertTerminated(await host.invoke(name, CONN), name);
    const next = await host.invoke('ok', CONN);
    assert.equal(next.result.decision, 'allow', `after ${name}: ${next.result.error}`);
    assert.equal(next.result.customData, 'fine');
    assert.equal(next.etag, okEtag);
  }
  const status = await host.status();
  assert.equal(status.restarts, Object.keys(HOSTILE).length);
  assert.deepEqual(status.functions.map((f) => f.name).sort(), ['ok', ...Object.keys(HOSTILE)].sort());
  const watchdogs = events.filter((e) => e.type === 'watchdog');
  assert.deepEqual(watchdogs.map((e) => e.type === 'watchdog' && e.name), Object.keys(HOSTILE));
  assert.equal(events.filter((e) => e.type === 'worker-restarted').length, Object.keys(HOSTILE).length);
});

test('host: unknown and unpublished functions are denied with a message naming them; invoke never rejects', async (t) => {
  const { svc, startHost } = await setup(t);
  await svc.create('dev-only', { code: okCode('x'), runtime: FUNCTION_RUNTIME });
  const host = await startHost();
  for (const name of ['nope', 'dev-only']) {
    const r = await host.invoke(name, CONN);
    assert.equal(r.result.decision, 'deny');
    assert.equal(r.result.failureCode, 'ConnectionFunctionError');
    assert.match(r.result.error ?? '', new RegExp(`connection function "${name}" cannot run`));
  }
  await host.close();
  const closed = await host.invoke('nope', CONN);
  assert.match(closed.result.error ?? '', /closed/);
});

test('host: invocations in flight on a terminated worker are all settled (before the hang allowed, after it denied)', async (t) => {
  const { publish, startHost } = await setup(t);
  await publish('ok', okCode('fine'));
  await publish('hang', handlerCode(HOSTILE.includes as string));
  const host = await startHost();
  const before = Array.from({ length: 5 }, () => host.invoke('ok', CONN));
  const hang = host.invoke('hang', CONN);
  const after = Array.from({ length: 5 }, () => host.invoke('ok', CONN));
  for (const r of await Promise.all(before)) assert.equal(r.result.decision, 'allow');
  assertTerminated(await hang, 'hang');
  for (const r of await Promise.all(after)) {
    assert.equal(r.result.decision, 'deny');
    assert.equal(r.result.failureCode, 'ConnectionFunctionError');
    assert.equal(r.result.error, 'connection function "ok" did not complete, through no fault of its own (a victim of another job; denied, fail closed): '
      + 'the sandbox worker was terminated because connection function "hang" did not return within 200 ms');
  }
  assert.equal((await host.invoke('ok', CONN)).result.decision, 'allow');
});

test('host: a publish while running swaps versions; a KVS put is visible to the next invocation after waitForSequence', async (t) => {
  const { store, svc, publish, startHost, events } = await setup(t);
  const kvsSvc = new KeyValueStoreService(store);
  const kv = await kvsSvc.create({ name: 'blocked', importData: Buffer.from(JSON.stringify({ data: [{ key: 'x', value: '1' }] })) });
  const d = await svc.create('gate', {
    code: `import cf from 'cloudfront';
async function connectionHandler(connection) {
  connection.logCustomData('v1');
  if (await cf.kvs().exists(connection.clientIp)) return connection.deny();
  connection.allow();
}`,
    runtime: FUNCTION_RUNTIME, keyValueStore: 'blocked',
  });
  const v1 = await svc.publish('gate', d.ETag);
  const host = await startHost();
  const first = await host.invoke('gate', CONN);
  assert.equal(first.result.decision, 'allow');
  assert.equal(first.etag, v1.ETag);
  assert.ok(events.some((e) => e.type === 'loaded' && e.name === 'gate'));

  await kvsSvc.putKey('blocked', { key: '10.0.0.1', value: 'yes', ifMatch: kv.ETag });
  await host.waitForSequence(await store.latestSequence());
  const blocked = await host.invoke('gate', CONN);
  assert.equal(blocked.result.decision, 'deny');
  assert.equal(blocked.result.failureCode, 'ConnectionFunctionDenied');

  const v2 = await publish('gate', okCode('v2'));
  await host.waitForSequence(await store.latestSequence());
  const swapped = await host.invoke('gate', CONN);
  assert.equal(swapped.etag, v2);
  assert.equal(swapped.result.customData, 'v2');
  assert.equal(swapped.result.decision, 'allow');
  const status = await host.status();
  assert.equal(status.appliedSequence, await store.latestSequence());
  assert.deepEqual(status.kvs.map((k) => [k.name, k.itemCount]), [['blocked', 2]]);
  assert.equal(status.functions.find((f) => f.name === 'gate')?.etag, v2);
});

test('lifecycle: hostile top-level code fails create and publish with a FunctionCompileError naming the timeout', async (t) => {
  const { store, svc } = await setup(t);
  for (const [name, body] of Object.entries({ includes: HOSTILE.includes, join: HOSTILE.join })) {
    await assert.rejects(svc.create(name, { code: `${body}\n${okCode('x')}`, runtime: FUNCTION_RUNTIME }), (err: unknown) => {
      assert.ok(err instanceof FunctionCompileError);
      assert.equal(err.message, `function "${name}": top-level code did not finish within 500 ms; its sandbox was terminated`);
      return true;
    });
  }
  // Publish re-checks DEVELOPMENT code: hostile code written behind the lifecycle's back is refused.
  const d = await svc.create('f', { code: okCode('x'), runtime: FUNCTION_RUNTIME });
  const dev = await store.functions.put('f', 'DEVELOPMENT', {
    ifMatch: d.ETag, newEtag: 'EHOSTILE', now: 2,
    document: { code: `${HOSTILE.reverse}\n${okCode('x')}`, comment: '', runtime: FUNCTION_RUNTIME, keyValueStore: null },
  });
  await assert.rejects(svc.publish('f', dev.etag), /top-level code did not finish within 500 ms; its sandbox was terminated/);
  // The service still works afterwards.
  const ok = await svc.create('g', { code: okCode('y'), runtime: FUNCTION_RUNTIME });
  assert.equal((await svc.publish('g', ok.ETag)).Stage, 'LIVE');
});

test('host: a LIVE version whose top-level code hangs the worker is refused after the restart; the others keep serving', async (t) => {
  const { store, publish, startHost, events } = await setup(t);
  await publish('ok', okCode('fine'));
  await publish('later', okCode('v1'));
  const host = await startHost();
  const live = await store.functions.get('later', 'LIVE');
  // Written behind the lifecycle's back (e.g. by an older version without the worker check).
  await store.functions.put('later', 'LIVE', {
    ifMatch: live?.etag ?? null, newEtag: 'EHANGS', now: 3,
    document: { code: `${HOSTILE.includes}\n${okCode('x')}`, comment: '', runtime: FUNCTION_RUNTIME, keyValueStore: null },
  });
  // The worker is terminated while compiling; the new worker refuses that version.
  for (let i = 0; i < 200 && !events.some((e) => e.type === 'load-failed' && e.name === 'later'); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(events.some((e) => e.type === 'watchdog' && e.phase === 'compile' && e.name === 'later'), JSON.stringify(events, null, 1));
  const failed = events.find((e) => e.type === 'load-failed' && e.name === 'later');
  assert.ok(failed && failed.type === 'load-failed' && failed.etag === 'EHANGS');
  const r = await host.invoke('later', CONN);
  assert.equal(r.result.decision, 'deny');
  assert.match(r.result.error ?? '', /connection function "later" cannot run: its LIVE version EHANGS could not be loaded: .*did not finish within/);
  assert.equal((await host.invoke('ok', CONN)).result.decision, 'allow');
});

test('sandbox worker: an isolated run that hangs is denied, the function is recompiled in the next worker', async (t) => {
  const { sandbox } = await setup(t);
  const fn = await sandbox.load(`function connectionHandler(c) { if (c.clientIp === '6.6.6.6') { ${HOSTILE.join} } c.allow(); }`, { name: 'iso' });
  const hung = await fn.invoke({ clientIp: '6.6.6.6' });
  assert.equal(hung.failureCode, 'ConnectionFunctionError');
  assert.equal(hung.error, `connection function "iso" did not return within ${sandbox.watchdogMs} ms; its sandbox was terminated`);
  assert.equal((await fn.invoke({ clientIp: '1.1.1.1' })).decision, 'allow');
});

test('sandbox: SharedArrayBuffer and Atomics are not globals; export default is rejected with line and column', async (t) => {
  const { sandbox } = await setup(t);
  const fn = await sandbox.load('function connectionHandler(c) { console.log(typeof SharedArrayBuffer, typeof Atomics); c.allow(); }');
  assert.deepEqual((await fn.invoke({})).logs, ['undefined undefined']);
  await assert.rejects(sandbox.check('// a comment\n  export default function connectionHandler(c) { c.allow(); }', { name: 'd' }), (err: unknown) => {
    assert.ok(err instanceof FunctionCompileError);
    assert.match(err.message, /^function "d": `export default` is not allowed: declare connectionHandler as a top-level function/);
    assert.deepEqual([err.line, err.column], [2, 3]);
    return true;
  });
});

test('host: the function sees JSON.parse of the connection text, whatever the text (certificate chain cut and cached, or not)', async (t) => {
  const { publish, startHost } = await setup(t);
  await publish('echo', 'function connectionHandler(c) { console.log(JSON.stringify(c)); c.allow(); }');
  const host = await startHost();
  const head = '{"connectionId":"c","clientIp":"10.0.0.1","clientPort":1,"endpoint":"e","distributionId":"d"';
  const leaf = '{"subject":"CN=a\\",\\"revocationStatus\\":{}","serialNumber":"01"}';
  const texts = [
    `${head},"clientCertificate":{"certificates":{"leaf":${leaf},"intermediates":[]},"revocationStatus":{"chainValidity":"Valid"}}}`,
    // The same chain again (cached), another status.
    `${head},"clientCertificate":{"certificates":{"leaf":${leaf},"intermediates":[]},"revocationStatus":{"chainValidity":"Invalid"}}}`,
    // A nested key of that name inside the chain, no status.
    `${head},"clientCertificate":{"certificates":{"leaf":{"x":1,"revocationStatus":2},"intermediates":[{"y":[1,{"revocationStatus":3}]}]}}}`,
    // A duplicate key: the last one wins, as in JSON.parse.
    `${head},"clientCertificate":1,"clientCertificate":{"certificates":{"leaf":${leaf},"intermediates":[]}}}`,
    ` ${head} ,"clientCertificate":{"certificates":{"leaf":${leaf},"intermediates":[]} , "revocationStatus" : null}}`,
    '{"clientCertificate":{"certificates":{"leaf":{},"intermediates":[]},"revocationStatus":{}}}',
  ];
  for (const text of texts) {
    const r = await host.invoke('echo', text);
    assert.equal(r.result.decision, 'allow', `${text}: ${r.result.error}`);
    assert.deepEqual(r.result.logs, [JSON.stringify(JSON.parse(text))], text);
  }
  // Not JSON once put together, although each piece parses: denied as before.
  for (const text of ['{,"clientCertificate":{"certificates":{},"revocationStatus":{}}}', `${head},"clientCertificate":{"certificates":{"leaf":{}},"revocationStatus":{}},}}`]) {
    const r = await host.invoke('echo', text);
    assert.equal(r.result.decision, 'deny', text);
    assert.equal(r.result.failureCode, 'ConnectionFunctionError', text);
  }
});

test('sandbox worker: concurrent hostile and benign one-off runs and compile checks — only the hostile ones fail, each with its own timeout', async (t) => {
  const { sandbox } = await setup(t);
  const hostileRun = (i: number): Promise<FunctionResult> => sandbox.load(handlerCode(HOSTILE.includes as string), { name: `h${i}` }).then(async (fn) => {
    try {
      return await fn.invoke(CONN);
    } finally {
      fn.dispose();
    }
  });
  const benignRun = (i: number): Promise<FunctionResult> => sandbox.load(okCode(`f${i}`), { name: `f${i}` }).then(async (fn) => {
    try {
      return await fn.invoke(CONN);
    } finally {
      fn.dispose();
    }
  });
  // One function loaded before, run while the others come and go (it has to be compiled again in each new worker).
  const warm = await sandbox.load(okCode('warm'), { name: 'warm' });
  const jobs: Promise<unknown>[] = [];
  const hostile: Promise<FunctionResult>[] = [];
  const benign: Promise<FunctionResult>[] = [];
  const warmRuns: Promise<FunctionResult>[] = [];
  const goodChecks: Promise<void>[] = [];
  const badChecks: Promise<void>[] = [];
  const hostileChecks: Promise<void>[] = [];
  for (let i = 0; i < 6; i++) {
    hostile.push(hostileRun(i));
    benign.push(benignRun(i));
    warmRuns.push(warm.invoke(CONN));
    goodChecks.push(sandbox.check(okCode(`c${i}`), { name: `c${i}` }));
    badChecks.push(sandbox.check('function connectionHandler(c) { c.allow( }', { name: `bad${i}` }));
    if (i % 3 === 0) hostileChecks.push(sandbox.check(`${HOSTILE.join}\n${okCode('x')}`, { name: `top${i}` }));
  }
  jobs.push(...hostile, ...benign, ...warmRuns, ...goodChecks, ...badChecks, ...hostileChecks);
  const settled = await Promise.allSettled(jobs);
  const rejectedUnexpectedly = settled.slice(0, hostile.length + benign.length + warmRuns.length + goodChecks.length).filter((s) => s.status === 'rejected');
  assert.deepEqual(rejectedUnexpectedly, []);

  for (const [i, p] of hostile.entries()) {
    const r = await p;
    assert.equal(r.decision, 'deny');
    assert.equal(r.failureCode, 'ConnectionFunctionError');
    assert.equal(r.error, `connection function "h${i}" did not return within ${sandbox.watchdogMs} ms; its sandbox was terminated`);
  }
  for (const [i, p] of benign.entries()) {
    const r = await p;
    assert.equal(r.decision, 'allow', r.error);
    assert.equal(r.customData, `f${i}`);
    assert.equal(r.error, undefined);
  }
  for (const p of warmRuns) {
    const r = await p;
    assert.equal(r.decision, 'allow', r.error);
    assert.equal(r.customData, 'warm');
  }
  for (const p of goodChecks) await p;
  for (const [i, p] of badChecks.entries()) {
    await assert.rejects(p, (err: unknown) => {
      assert.ok(err instanceof FunctionCompileError);
      assert.match(err.message, new RegExp(`^function "bad${i}"`));
      assert.doesNotMatch(err.message, /terminated|did not finish/);
      return true;
    });
  }
  for (const [k, p] of hostileChecks.entries()) {
    await assert.rejects(p, (err: unknown) => {
      assert.ok(err instanceof FunctionCompileError);
      assert.equal(err.message, `function "top${k * 3}": top-level code did not finish within 500 ms; its sandbox was terminated`);
      return true;
    });
  }
  // Still serving afterwards.
  assert.equal((await warm.invoke(CONN)).decision, 'allow');
  warm.dispose();
});

test('sandbox worker: a job whose worker is terminated for another job runs again; after the bounded attempts it fails as a victim, never as bad code', async (t) => {
  const { sandbox } = await setup(t);
  // Each new worker is terminated right after the next compile is sent to it, while
  // `kills` lasts, as the watchdog would for another job (culprit: a request id not this one).
  let kills = 0;
  const acquire = sandbox.acquire.bind(sandbox);
  const patched = new WeakSet<object>();
  sandbox.acquire = () => {
    const r = acquire();
    const link = r.link;
    if (!patched.has(link)) {
      patched.add(link);
      const send = link.request.bind(link);
      link.request = (id, msg, p) => {
        send(id, msg, p);
        if (kills > 0 && msg !== undefined && !Array.isArray(msg) && (msg.t === 'load' || msg.t === 'run')) {
          kills--;
          (link as unknown as { fail(info: object): void }).fail({
            culprit: 1e9, kind: 1, name: 'other', ms: 100,
            reason: 'the sandbox worker was terminated because connection function "other" did not return within 100 ms',
          });
        }
      };
    }
    return r;
  };
  kills = SANDBOX_JOB_ATTEMPTS - 1;
  await sandbox.check(okCode('x'), { name: 'survives' });
  const fn = await (async () => {
    kills = SANDBOX_JOB_ATTEMPTS - 1;
    return sandbox.load(okCode('loaded'), { name: 'loaded' });
  })();
  kills = SANDBOX_JOB_ATTEMPTS - 1; // the run, then its compile again in the new worker
  assert.equal((await fn.invoke(CONN)).customData, 'loaded');
  kills = SANDBOX_JOB_ATTEMPTS;
  await assert.rejects(sandbox.check(okCode('x'), { name: 'victim' }), (err: unknown) => {
    assert.ok(!(err instanceof FunctionCompileError), String(err));
    assert.equal((err as Error).message, 'the compile check of function "victim" did not complete through no fault of its own: it was a victim of other jobs — '
      + `its sandbox worker was terminated ${SANDBOX_JOB_ATTEMPTS} times for them (last: the sandbox worker was terminated because connection function "other" did not return within 100 ms)`);
    return true;
  });
  assert.equal(kills, 0);
  await sandbox.check(okCode('x'), { name: 'after' });
  assert.equal((await fn.invoke(CONN)).customData, 'loaded');
});
