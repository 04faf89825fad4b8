/**
 * Regression tests for the limit and decision holes found by probing the sandbox:
 * CPU overruns inside one long built-in call, promise jobs left by sync handlers,
 * errors the function can make look like engine failures, and Date at top level.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildConnection, compileFunction, type FunctionResult } from './index.js';

const conn = (ip = '8.8.8.8'): object => buildConnection({ clientIp: ip, clientPort: 1, endpoint: 'e', distributionId: 'd', connectionId: 'c' });

function cpuError(r: FunctionResult, limit: number): void {
  assert.equal(r.decision, 'deny');
  assert.equal(r.failureCode, 'ConnectionFunctionError');
  const m = new RegExp(`^the function exceeded its CPU limit of ${limit} ms \\(took (\\d+\\.\\d) ms\\)$`).exec(r.error ?? '');
  assert.ok(m, r.error);
  assert.ok(r.computeUtilization > 100, String(r.computeUtilization));
  // The same measurement as computeUtilization.
  assert.ok(Math.abs(Number(m[1]) - (r.computeUtilization * limit) / 100) <= 0.06, `${m[1]} ms vs ${r.computeUtilization}%`);
}

test('A: a long built-in call that returns past the CPU limit denies, whatever the function decided', async () => {
  const inc = await compileFunction('function connectionHandler(c) { Array.prototype.includes.call({length: 3e7}, 1); c.allow(); }');
  cpuError(inc.invoke(conn()), 5);
  const big = await compileFunction('async function connectionHandler(c) { c.logCustomData("x"); console.log((3n**200000n).toString().length); c.allow(); }', { cpuLimitMs: 1 });
  const r = big.invoke(conn());
  cpuError(r, 1);
  assert.deepEqual(r.logs, [String((3n ** 200000n).toString().length)]);
  assert.equal(r.customData, 'x');
  const quick = await compileFunction('function connectionHandler(c) { c.allow(); }', { cpuLimitMs: 1000 });
  assert.equal(quick.invoke(conn()).decision, 'allow');
});

test('B: jobs a sync handler leaves run in its own invocation, and a deny there wins', async () => {
  const f = await compileFunction('function connectionHandler(c) { c.allow(); Promise.resolve().then(() => c.deny()); }', { cpuLimitMs: 1000 });
  const r = f.invoke(conn());
  assert.equal(r.decision, 'deny');
  assert.equal(r.implicit, false);
  assert.equal(r.failureCode, 'ConnectionFunctionDenied');
  // Allow from a job counts too; logs from the job belong to the invocation that left it.
  const g = await compileFunction(`let n = 0;
async function later() { return 1; }
function connectionHandler(c) {
  const me = ++n;
  if (c.clientIp === '1.1.1.1') { Promise.resolve().then(() => { console.log('job of ' + me); c.allow(); }); return; }
  return (async () => { await later(); console.log('async ' + me); c.allow(); })();
}`, { cpuLimitMs: 1000 });
  const a = g.invoke(conn('1.1.1.1'));
  assert.equal(a.decision, 'allow');
  assert.deepEqual(a.logs, ['job of 1']);
  const b = g.invoke(conn());
  assert.equal(b.decision, 'allow');
  assert.deepEqual(b.logs, ['async 2']);
});

test('B: leftover jobs do not accumulate; endless jobs hit the CPU limit in their own invocation', async () => {
  const f = await compileFunction('let n = 0; function connectionHandler(c) { n++; const big = "y".repeat(20000) + n; Promise.resolve().then(() => big.length); c.allow(); }', { cpuLimitMs: 1000 });
  f.invoke(conn());
  const before = f.memoryUsageBytes();
  for (let i = 0; i < 2000; i++) assert.equal(f.invoke(conn()).decision, 'allow');
  assert.ok(f.memoryUsageBytes() - before < 64 * 1024, `${before} → ${f.memoryUsageBytes()}`);
  const loop = await compileFunction(`function connectionHandler(c) {
  if (c.clientIp === '6.6.6.6') { const again = () => Promise.resolve().then(again); again(); }
  c.allow();
}`, { cpuLimitMs: 20 });
  const r = loop.invoke(conn('6.6.6.6'));
  assert.equal(r.decision, 'deny');
  assert.match(r.error ?? '', /CPU limit of 20 ms/);
  assert.equal(loop.rebuilds, 0); // rebuilt lazily, before the next invocation
  const next = loop.invoke(conn());
  assert.equal(next.decision, 'allow', next.error);
  assert.equal(loop.rebuilds, 1);
});

test('C: an error the function makes up is a deny, never a memory failure or a rebuild', async () => {
  for (const body of [
    'throw { name: "InternalError", message: "out of memory" };',
    'throw new InternalError("out of memory");',
    'return Promise.reject({ name: "InternalError", message: "stack overflow" });',
    'c.allow(); return { get then() { throw new Error("g"); } };',
  ]) {
    const f = await compileFunction(`function connectionHandler(c) { ${body} }`, { cpuLimitMs: 1000 });
    for (let i = 0; i < 3; i++) {
      const r = f.invoke(conn());
      assert.equal(r.decision, 'deny');
      assert.equal(r.failureCode, 'ConnectionFunctionError');
      assert.doesNotMatch(r.error ?? '', /exceeded its memory limit/);
    }
    assert.equal(f.rebuilds, 0, body);
  }
});

test('E: top-level code sees Date frozen at compile time, not the epoch', async () => {
  const before = Date.now();
  const f = await compileFunction('const loadedAt = Date.now(); const d = new Date().getTime(); function connectionHandler(c) { console.log(loadedAt, d, Date.now()); c.allow(); }', { cpuLimitMs: 1000 });
  const after = Date.now();
  const [loadedAt, d, now] = f.invoke(conn(), { now: 1_700_000_000_000 }).logs[0]?.split(' ').map(Number) ?? [];
  assert.ok(loadedAt !== undefined && loadedAt >= before && loadedAt <= after, `${loadedAt} not in [${before}, ${after}]`);
  assert.equal(d, loadedAt);
  assert.equal(now, 1_700_000_000_000);
});

test('F: strings QuickJS does not count (ropes kept alive) are stopped by the WASM memory budget and the sandbox is rebuilt', async () => {
  const f = await compileFunction("const keep = []; let id = 0; function connectionHandler(c) { keep.push('y'.repeat(16384) + (id++)); c.allow(); }", { memoryLimitBytes: 256 * 1024, cpuLimitMs: 1000 });
  let denied: FunctionResult | undefined;
  for (let i = 0; i < 6000 && !denied; i++) {
    const r = f.invoke(conn());
    if (r.decision !== 'allow') denied = r;
  }
  assert.ok(denied, 'never denied');
  assert.equal(denied.failureCode, 'ConnectionFunctionError');
  assert.match(denied.error ?? '', /exceeded its memory limit of 262144 bytes \(the sandbox memory grew past its budget\)/);
  assert.equal(f.invoke(conn()).decision, 'allow');
  assert.equal(f.rebuilds, 1);
});
