/**
 * The limit guard end to end (runtime + limit-guard): an engine limit error (out of
 * memory, stack overflow) the function catches still denies the connection with
 * ConnectionFunctionError, by every route a thrown value can be observed, and the
 * sandbox keeps serving the next invocation. Ordinary errors a function catches keep
 * working as before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildConnection, compileFunction, type FunctionResult } from './index.js';

const conn = (ip = '8.8.8.8'): object => buildConnection({ clientIp: ip, clientPort: 1, endpoint: 'e', distributionId: 'd', connectionId: 'c' });
const LIMITS = { cpuLimitMs: 1000 };

function limitDenied(r: FunctionResult, what: string): void {
  assert.equal(r.decision, 'deny', `${what}: ${JSON.stringify(r)}`);
  assert.equal(r.failureCode, 'ConnectionFunctionError', what);
  assert.match(r.error ?? '', /memory limit|stack limit|stack overflow|engine limit/, what);
}

const CASES: Record<string, string> = {
  'try/catch around a huge ArrayBuffer': 'function connectionHandler(c) { try { new ArrayBuffer(8e6) } catch (e) {} c.allow(); }',
  'catch without binding': "function connectionHandler(c) { try { 'x'.repeat(1 << 24) } catch {} c.allow(); }",
  'doubling string': "function connectionHandler(c) { let s = 'x'; try { while (true) s += s; } catch (e) {} c.allow(); }",
  'infinite recursion': 'function connectionHandler(c) { const r = (n) => r(n + 1) + 1; try { r(0) } catch (e) {} c.allow(); }',
  'finally with return': 'function connectionHandler(c) { c.allow(); try { new ArrayBuffer(8e6) } finally { return; } }',
  'destructuring catch': 'function connectionHandler(c) { try { new ArrayBuffer(8e6) } catch ({ message }) { c.logCustomData(message); } c.allow(); }',
  'nested try in catch': 'function connectionHandler(c) { try { try { new ArrayBuffer(8e6) } catch (e) { throw e } } catch (e2) {} c.allow(); }',
  'promise .catch': 'async function connectionHandler(c) { await (async () => { new ArrayBuffer(8e6) })().catch(() => {}); c.allow(); }',
  'await in try': 'async function connectionHandler(c) { try { await (async () => { new ArrayBuffer(8e6) })(); } catch (e) {} c.allow(); }',
  'Promise.allSettled': 'async function connectionHandler(c) { await Promise.allSettled([(async () => { new ArrayBuffer(8e6) })()]); c.allow(); }',
  'class method': 'class K { m() { try { new ArrayBuffer(8e6) } catch (e) { return 1 } } } function connectionHandler(c) { new K().m(); c.allow(); }',
};

for (const [name, code] of Object.entries(CASES)) {
  test(`a caught limit error still denies: ${name}`, async () => {
    const f = await compileFunction(code, LIMITS);
    limitDenied(f.invoke(conn()), name);
    f.dispose();
  });
}

test('ordinary caught errors behave as before, and the sandbox serves the next invocation after a limit hit', async () => {
  const f = await compileFunction(`function connectionHandler(c) {
  if (c.clientIp === '1.1.1.1') { try { new ArrayBuffer(8e6) } catch (e) {} }
  try { JSON.parse('{bad'); } catch (e) { c.logCustomData(e.name); }
  try { null.x; } catch { }
  c.allow();
}`, LIMITS);
  limitDenied(f.invoke(conn('1.1.1.1')), 'first invocation');
  const r = f.invoke(conn());
  assert.equal(r.decision, 'allow', JSON.stringify(r));
  assert.equal(r.customData, 'SyntaxError');
  f.dispose();
});

test('the word catch in strings, templates, regexes and property names is untouched', async () => {
  const f = await compileFunction("function connectionHandler(c) { const o = { catch: 1 }; const s = 'try { } catch (e) {}' + `catch ${o.catch}` + /catch/.source; c.logCustomData(s); c.allow(); }", LIMITS);
  const r = f.invoke(conn());
  assert.equal(r.decision, 'allow');
  assert.equal(r.customData, 'try { } catch (e) {}catch 1catch');
  f.dispose();
});

test('top-level code that catches a limit error is refused at compile', async () => {
  await assert.rejects(compileFunction("try { new ArrayBuffer(8e6) } catch (e) {}\nfunction connectionHandler(c) { c.allow(); }", LIMITS), /top-level code exceeded/);
});
