import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FunctionCompileError, FunctionSizeLimitExceededError } from '../errors.js';
import { chainView, ParsedCertificate, splitCertificates } from '../pki/index.js';
import type { RevocationStatusValue } from '../revocation/index.js';
import {
  buildConnection, compileFunction, connectionJson, kvsSnapshotFromMap, newConnectionId, runDecisionMatrix,
  syntheticRevocationStatus, SAMPLE_CHAIN_PEM, type ConnectionObject, type FunctionInstance, type FunctionResult, type InvokeOptions,
} from './index.js';

const EXAMPLES = fileURLToPath(new URL('../../examples/functions/', import.meta.url));
const chain = chainView(splitCertificates(Buffer.from(SAMPLE_CHAIN_PEM)).map((b) => ParsedCertificate.fromDer(b.der, b.where)));
const SERIAL = chain.leaf.serialNumber;
const SERIAL_KEY = SERIAL.replaceAll(':', '');

// The gateway's path: the connection object itself (split into parts, certificate views
// cached in the sandbox). invoke-paths.test.ts compares it with the JSON-text path.
function conn(opts: { ip?: string; leaf?: RevocationStatusValue; intermediate?: RevocationStatusValue; noCert?: boolean } = {}): ConnectionObject {
  return buildConnection({
    clientIp: opts.ip ?? '8.8.8.8', clientPort: 40000, endpoint: 'api.example.test', distributionId: 'd1',
    ...(opts.noCert ? {} : { certificates: chain, revocationStatus: syntheticRevocationStatus(chain, opts.leaf ?? 'Good', opts.intermediate ?? 'Good') }),
  });
}
const kvs = (entries: [string, string][] = []): InvokeOptions => ({ kvs: kvsSnapshotFromMap(new Map(entries)) });
// The CPU limit is wall time in the sandbox, checked after every invocation too: the
// examples get a generous one so a loaded test machine cannot turn their decisions into
// CPU-limit denies; runaway-loop keeps the default 5 ms.
const example = (name: string, cpuLimitMs = 1000): Promise<FunctionInstance> =>
  compileFunction(readFileSync(`${EXAMPLES}${name}.js`, 'utf8'), { name, cpuLimitMs });
const fn = (body: string, limits: { cpuLimitMs?: number; memoryLimitBytes?: number } = {}): Promise<FunctionInstance> => compileFunction(body, limits);

function allowed(r: FunctionResult, customData?: string): void {
  assert.equal(r.error, undefined, r.error);
  assert.equal(r.decision, 'allow');
  assert.equal(r.implicit, false);
  assert.equal(r.customData, customData);
}
function denied(r: FunctionResult, customData?: string, implicit = false): void {
  assert.equal(r.error, undefined, r.error);
  assert.equal(r.decision, 'deny');
  assert.equal(r.implicit, implicit);
  assert.equal(r.failureCode, 'ConnectionFunctionDenied');
  assert.equal(r.customData, customData);
}
function errored(r: FunctionResult, pattern: RegExp): void {
  assert.equal(r.decision, 'deny');
  assert.equal(r.failureCode, 'ConnectionFunctionError');
  assert.match(r.error ?? '', pattern);
}

// ---- every example runs unchanged and decides as its comment says ----

test('example device-registry-json', async () => {
  const f = await example('device-registry-json');
  allowed(f.invoke(conn(), kvs([['device:device-0042', '{"state":"active"}']])));
  denied(f.invoke(conn(), kvs([['device:device-0042', '{"state":"suspended"}']])), 'device-state:suspended');
  denied(f.invoke(conn(), kvs([['device:other', '{"state":"active"}']])), 'device-unknown');
});

test('example fingerprint-tag', async () => {
  const f = await example('fingerprint-tag');
  const message = chain.leaf.sha256Fingerprint.replaceAll(':', '').toLowerCase();
  const tag = createHmac('sha256', 'portcullis').update(message).digest().subarray(0, 8).toString('hex');
  allowed(f.invoke(conn(), kvs([['k', 'v']])), `tag:${tag}`);
  assert.match(tag, /^[0-9a-f]{16}$/);
  denied(f.invoke(conn(), kvs()), 'empty-revocation-list');
});

test('example kvs-serial-revocation', async () => {
  const f = await example('kvs-serial-revocation');
  denied(f.invoke(conn(), kvs([[SERIAL_KEY, '']])), `revoked-by-kvs:${SERIAL}`);
  allowed(f.invoke(conn(), kvs([['00ff', '']])));
});

test('example kvs-then-ocsp-grace', async () => {
  const f = await example('kvs-then-ocsp-grace');
  denied(f.invoke(conn({ ip: '10.0.3.7', leaf: 'Revoked' }), kvs([[SERIAL_KEY, '']])), `kvs:${SERIAL}`);
  allowed(f.invoke(conn({ ip: '10.0.3.7', leaf: 'Revoked' }), kvs()), `grace:${SERIAL}:10.0.3.7`);
  denied(f.invoke(conn({ ip: '8.8.8.8', leaf: 'Revoked' }), kvs()), `ocsp:${SERIAL}`);
  allowed(f.invoke(conn({ ip: '8.8.8.8', leaf: 'Good' }), kvs()));
  allowed(f.invoke(conn({ ip: '8.8.8.8', leaf: 'Error' }), kvs()));
});

test('example ocsp-break-glass-ip', async () => {
  const f = await example('ocsp-break-glass-ip');
  allowed(f.invoke(conn({ ip: '192.0.2.10', leaf: 'Revoked' })));
  allowed(f.invoke(conn({ ip: '192.0.2.10', intermediate: 'Revoked' })));
  denied(f.invoke(conn({ ip: '8.8.8.8', leaf: 'Revoked' })));
  const e = f.invoke(conn({ leaf: 'Error' }));
  denied(e);
  assert.deepEqual(e.logs, ['InternalError']);
  allowed(f.invoke(conn({ leaf: 'Unknown' })));
  allowed(f.invoke(conn()));
});

test('example ocsp-soft-fail', async () => {
  const f = await example('ocsp-soft-fail');
  const err = f.invoke(conn({ leaf: 'Error' }));
  allowed(err, 'soft-fail:Error:InternalError');
  allowed(f.invoke(conn({ leaf: 'Unknown' })), 'soft-fail:Unknown:none');
  denied(f.invoke(conn({ leaf: 'Good', intermediate: 'Revoked' })));
  denied(f.invoke(conn({ leaf: 'Revoked' })));
  allowed(f.invoke(conn()));
});

test('example optional-mode-guest', async () => {
  const f = await example('optional-mode-guest');
  allowed(f.invoke(conn({ noCert: true, ip: '198.51.100.7' })));
  denied(f.invoke(conn({ noCert: true, ip: '8.8.8.8' })), undefined, true);
  allowed(f.invoke(conn({ ip: '8.8.8.8' })));
});

test('example runaway-loop: CPU limit denies, the gateway keeps serving', async () => {
  const f = await example('runaway-loop', 5);
  const other = await example('optional-mode-guest');
  const r = f.invoke(conn());
  errored(r, /CPU limit of 5 ms/);
  assert.ok(r.computeUtilization >= 100);
  allowed(other.invoke(conn()));
  errored(f.invoke(conn()), /CPU limit/);
  assert.ok(f.rebuilds >= 1);
});

test('example throws: ConnectionFunctionError with the message; others unaffected', async () => {
  const f = await example('throws');
  const r = f.invoke(conn());
  errored(r, /TypeError: .*nested.* \(line 4, column \d+\)/);
  assert.equal(r.implicit, true);
  allowed((await example('optional-mode-guest')).invoke(conn()));
});

// ---- limits ----

test('memory limit: a memory bomb denies; a larger limit admits the same allocation', async () => {
  // CPU limits here are far above what these need, so that on a loaded machine the
  // memory limit (the thing under test) is always the one that stops them.
  const bomb = await fn('function connectionHandler(c) { const a = []; while (true) a.push(new Array(10000).fill(a.length)); }', { cpuLimitMs: 1000 });
  errored(bomb.invoke(conn()), /memory limit of 2097152 bytes/);
  const alloc = 'function connectionHandler(c) { const a = new Array(400000).fill(1); if (a.length) c.allow(); }';
  // An engine out-of-memory the function does not catch: its own error (its text is not trusted to mean more).
  errored((await fn(alloc, { cpuLimitMs: 1000 })).invoke(conn()), /memory limit|out of memory/);
  allowed((await fn(alloc, { cpuLimitMs: 1000, memoryLimitBytes: 16 * 1024 * 1024 })).invoke(conn()));
  allowed((await example('optional-mode-guest')).invoke(conn()));
});

test('deep recursion, huge strings and a stored leak deny and the instance recovers', async () => {
  const f = await fn(`let keep = [];
function connectionHandler(c) {
  if (c.clientIp === '1.1.1.1') { const r = (n) => r(n + 1) + 1; r(0); }
  if (c.clientIp === '2.2.2.2') { 'x'.repeat(1 << 29); }
  if (c.clientIp === '3.3.3.3') { for (;;) keep.push('y'.repeat(4096)); }
  c.allow();
}`, { cpuLimitMs: 1000 });
  errored(f.invoke(conn({ ip: '1.1.1.1' })), /stack overflow/);
  allowed(f.invoke(conn()));
  errored(f.invoke(conn({ ip: '2.2.2.2' })), /memory|string/i);
  allowed(f.invoke(conn()));
  errored(f.invoke(conn({ ip: '3.3.3.3' })), /memory limit/);
  allowed(f.invoke(conn()));
});

test('a never-settling promise denies; a resolver stored across invocations cannot decide a later connection', async () => {
  errored((await fn('function connectionHandler(c) { return new Promise(() => {}); }')).invoke(conn()), /never settled/);
  const f = await fn(`let saved;
async function connectionHandler(c) {
  if (saved) { const s = saved; saved = undefined; s(); return; }
  await new Promise((r) => { saved = r; });
  c.allow();
}`);
  errored(f.invoke(conn()), /never settled/);
  denied(f.invoke(conn()), undefined, true);
});

test('implicit deny, explicit deny, deny wins over allow, async handlers', async () => {
  denied((await fn('function connectionHandler(c) {}')).invoke(conn()), undefined, true);
  denied((await fn('function connectionHandler(c) { c.deny(); }')).invoke(conn()));
  denied((await fn('function connectionHandler(c) { c.allow(); c.deny(); }')).invoke(conn()));
  denied((await fn('function connectionHandler(c) { c.deny(); c.allow(); }')).invoke(conn()));
  allowed((await fn('async function connectionHandler(c) { await null; c.allow(); }')).invoke(conn()));
  errored((await fn('async function connectionHandler(c) { c.allow(); throw new Error("late"); }')).invoke(conn()), /Error: late/);
  errored((await fn('function connectionHandler(c) { throw "a string"; }')).invoke(conn()), /Uncaught a string/);
});

test('logCustomData: 800 UTF-8 bytes at a character boundary, last call wins', async () => {
  const f = await fn(`function connectionHandler(c) {
  c.logCustomData('first');
  c.logCustomData(c.clientIp === '1.1.1.1' ? 'é'.repeat(500) : '€'.repeat(300));
  c.allow();
}`);
  const a = f.invoke(conn({ ip: '1.1.1.1' }));
  assert.equal(a.customData, 'é'.repeat(400));
  const b = f.invoke(conn());
  assert.equal(b.customData, '€'.repeat(266));
  assert.equal(Buffer.byteLength(b.customData ?? ''), 798);
});

// ---- sandbox escapes ----

test('no eval, no Function constructor by any route, no process, no other modules', async () => {
  const f = await fn(`function connectionHandler(c) {
  const tries = {
    eval: () => eval('1'),
    indirectEval: () => (0, eval)('1'),
    globalEval: () => globalThis['ev' + 'al']('1'),
    Function: () => Function('return 1')(),
    newFunction: () => new Function('return 1')(),
    ctor: () => (function () {}).constructor('return 1')(),
    asyncCtor: () => (async function () {}).constructor('return 1'),
    genCtor: () => (function* () {}).constructor('return 1'),
    protoCtor: () => Object.getPrototypeOf(function () {}).constructor('return 1')(),
    reflect: () => Reflect.construct(Function, ['return 1'])(),
    process: () => process.env,
    requireFs: () => require('fs'),
    requireChild: () => globalThis.require('child_process'),
    timers: () => setTimeout(() => {}, 0),
    fetch: () => fetch('http://example.com'),
  };
  const out = [];
  for (const k of Object.keys(tries)) { try { tries[k](); out.push(k + ':ok'); } catch (e) { out.push(k + ':blocked'); } }
  console.log(out.join(' '));
  c.allow();
}`);
  const r = f.invoke(conn());
  allowed(r);
  assert.doesNotMatch(r.logs[0] ?? '', /:ok/, r.logs[0]);
  const imp = await fn(`async function connectionHandler(c) {
  try { await import('fs'); } catch (e) { const cf = await import('cloudfront'); if (typeof cf.default.kvs === 'function') c.allow(); }
}`);
  allowed(imp.invoke(conn()));
  await assert.rejects(compileFunction("import fs from 'fs';\nfunction connectionHandler(c) {}"), FunctionCompileError);
});

test('built-ins are frozen: prototype pollution does not reach the next invocation', async () => {
  const f = await fn(`function connectionHandler(c) {
  const seen = [typeof Object.prototype.polluted, typeof Array.prototype.evil, String.prototype.startsWith.name, JSON.parse.name, typeof Buffer.from, Math.max(1, 2)].join(',');
  const attempts = [
    () => { Object.prototype.polluted = 1; }, () => { Array.prototype.evil = 1; },
    () => { String.prototype.startsWith = () => true; }, () => { JSON.parse = () => ({}); },
    () => { Buffer.from = null; }, () => { Math.max = () => 0; }, () => { globalThis.injected = 1; },
    () => { Object.defineProperty(Object.prototype, 'x', { value: 1 }); }, () => { Date.now = () => 0; },
    () => { Promise.prototype.then = null; }, () => { console.log = null; },
  ];
  let blocked = 0;
  for (const a of attempts) { try { a(); } catch (e) { blocked++; } }
  console.log(seen + '|' + blocked + '|' + typeof globalThis.injected);
  class MyError extends Error { constructor() { super('m'); this.name = 'MyError'; } }
  const o = {}; o.toString = () => 'own';
  if (new MyError().name === 'MyError' && String(o) === 'own') c.allow();
}`);
  const first = f.invoke(conn());
  allowed(first);
  const second = f.invoke(conn());
  allowed(second);
  assert.deepEqual(second.logs, first.logs);
  assert.equal(first.logs[0], 'undefined,undefined,startsWith,parse,function,2|11|undefined');
});

test('Date is frozen at the start of the invocation', async () => {
  const f = await fn(`function connectionHandler(c) {
  const a = Date.now(); let x = 0; for (let i = 0; i < 100000; i++) x += i;
  console.log(a === Date.now(), new Date().getTime() === a, new (new Date().constructor)().getTime() === a, new Date(0).toISOString(), typeof Date());
  c.logCustomData(new Date().toISOString()); c.allow();
}`, { cpuLimitMs: 100 });
  const r = f.invoke(conn(), { now: Date.UTC(2030, 0, 2, 3, 4, 5) });
  allowed(r, '2030-01-02T03:04:05.000Z');
  assert.deepEqual(r.logs, ['true true true 1970-01-01T00:00:00.000Z string']);
});

// ---- the API available to functions ----

test('cf.kvs(): get string/json/bytes, rejects when absent, exists, meta; no KVS associated rejects', async () => {
  const f = await fn(`import cf from 'cloudfront';
async function connectionHandler(c) {
  const kvs = cf.kvs();
  const out = [await kvs.get('s'), (await kvs.get('j', { format: 'json' })).a, (await kvs.get('s', { format: 'bytes' })).toString('hex'),
    await kvs.exists('s'), await kvs.exists('nope'), JSON.stringify(await kvs.meta())];
  try { await kvs.get('nope'); out.push('found?'); } catch (e) { out.push('rejected:' + e.message); }
  console.log(out.join(' '));
  c.allow();
}`);
  const snap = kvsSnapshotFromMap(new Map([['s', 'hé'], ['j', '{"a":7}']]), { creationDateTime: '2026-01-01T00:00:00Z' });
  const r = f.invoke(conn(), { kvs: snap });
  allowed(r);
  assert.equal(r.logs[0], 'hé 7 68c3a9 true false {"creationDateTime":"2026-01-01T00:00:00Z","lastUpdatedDateTime":"2026-01-01T00:00:00Z","keyCount":2} rejected:Key not found: nope');
  errored(f.invoke(conn()), /no KeyValueStore is associated/);
});

test('Buffer, TextEncoder/TextDecoder, atob/btoa, crypto and querystring match Node', async () => {
  const f = await fn(`const crypto = require('crypto'); const qs = require('querystring');
function connectionHandler(c) {
  const b = Buffer.from('héllo wörld ✓ 😀', 'utf8');
  console.log(b.toString('hex'));
  console.log(b.toString('base64'), b.toString('base64url'), Buffer.from(b.toString('base64'), 'base64').toString());
  console.log(Buffer.from('68656c6c6f', 'hex').toString(), Buffer.concat([Buffer.from('a'), Buffer.from('b')]).toString(), Buffer.byteLength('€'));
  console.log(new TextDecoder().decode(new TextEncoder().encode('ü€😀')), btoa('hi!'), atob('aGkh'));
  for (const a of ['md5', 'sha1', 'sha256']) {
    console.log(crypto.createHash(a).update('abc').update(Buffer.from([1, 2])).digest('hex'), crypto.createHmac(a, 'key').update('msg').digest('base64'), crypto.createHmac(a, Buffer.from('key')).update('msg').digest('base64url'));
  }
  console.log(JSON.stringify(qs.parse('a=1&b=x%20y&a=2&c=d+e')), qs.stringify({ a: [1, 2], b: 'x y&' }));
  try { crypto.createHash('sha512'); } catch (e) { console.log('sha512 refused'); }
  c.allow();
}`);
  const r = f.invoke(conn());
  allowed(r);
  const b = Buffer.from('héllo wörld ✓ 😀', 'utf8');
  const expected = [
    b.toString('hex'),
    `${b.toString('base64')} ${b.toString('base64url')} héllo wörld ✓ 😀`,
    'hello ab 3',
    'ü€😀 aGkh hi!',
    ...['md5', 'sha1', 'sha256'].map((a) => `${createHash(a).update('abc').update(Buffer.from([1, 2])).digest('hex')} ${createHmac(a, 'key').update('msg').digest('base64')} ${createHmac(a, 'key').update('msg').digest('base64url')}`),
    '{"a":["1","2"],"b":"x y","c":"d e"} a=1&a=2&b=x%20y%26',
    'sha512 refused',
  ];
  assert.deepEqual(r.logs, expected);
});

// ---- compile errors ----

test('compile errors carry line and column; size limit; missing handler; top-level throw', async () => {
  await assert.rejects(compileFunction('function connectionHandler(c) {\n  let x = ;\n}'), (e: unknown) => {
    assert.ok(e instanceof FunctionCompileError);
    assert.equal(e.line, 2);
    assert.equal(e.column, 11);
    assert.match(e.message, /SyntaxError.*\(line 2, column 11\)/);
    return true;
  });
  await assert.rejects(compileFunction('function handler(c) {}'), /no top-level connectionHandler/);
  await assert.rejects(compileFunction('const connectionHandler = 5;'), /connectionHandler is not a function/);
  await assert.rejects(compileFunction('\nthrow new Error("top");\nfunction connectionHandler(c) {}'), (e: unknown) => e instanceof FunctionCompileError && e.line === 2);
  await assert.rejects(compileFunction('while (true) {}\nfunction connectionHandler(c) {}'), /top-level code exceeded the CPU limit/);
  await assert.rejects(compileFunction(`// ${'x'.repeat(10240)}\nfunction connectionHandler(c) {}`), FunctionSizeLimitExceededError);
  await compileFunction(`// ${'x'.repeat(20000)}\nfunction connectionHandler(c) {}`, { maxCodeBytes: 30000 });
  // A trailing line comment without a newline still compiles.
  await compileFunction('function connectionHandler(c) { c.allow(); } // end');
});

// ---- connection object and matrix ----

test('connection object: URL-safe unique ids, clientCertificate absent without a chain, JSON equals JSON.stringify', () => {
  const ids = new Set(Array.from({ length: 100 }, () => newConnectionId()));
  assert.equal(ids.size, 100);
  for (const id of ids) assert.match(id, /^[A-Za-z0-9_-]{24}$/);
  const none = buildConnection({ clientIp: '::1', clientPort: 1, endpoint: 'e', distributionId: 'd', connectionId: 'x' });
  assert.equal('clientCertificate' in none, false);
  const full = buildConnection({
    clientIp: '10.0.0.1', clientPort: 443, endpoint: 'e', distributionId: 'd', connectionId: 'x', certificates: chain,
    revocationStatus: syntheticRevocationStatus(chain, 'Revoked', 'Good', 0),
  });
  assert.equal(connectionJson(full), JSON.stringify(full));
  assert.equal(connectionJson(none), JSON.stringify(none));
  assert.equal(full.clientCertificate?.revocationStatus?.chainValidity, 'Invalid');
  assert.throws(() => buildConnection({ clientIp: 'x', clientPort: 70000, endpoint: 'e', distributionId: 'd' }), /clientPort/);
});

test('decision matrix flags every row where a revoked chain is allowed', async () => {
  const rows = runDecisionMatrix(await example('ocsp-break-glass-ip'), { chain });
  assert.equal(rows.length, 4 * 4 * 2 * 4);
  const flagged = rows.filter((r) => r.revokedAllowed);
  assert.ok(flagged.length > 0);
  assert.ok(flagged.every((r) => r.clientIp === '192.0.2.10' && (r.leafStatus === 'Revoked' || r.intermediateStatus === 'Revoked')));
  const safe = runDecisionMatrix(await example('kvs-serial-revocation'), { chain });
  assert.ok(safe.filter((r) => r.kvs === 'hit').every((r) => r.decision === 'deny'));
  assert.ok(safe.some((r) => r.revokedAllowed)); // it ignores OCSP entirely
});

test('compile errors at the very end of the code are reported there, with a line, never in the export line the runtime appends', async () => {
  const cases: [string, RegExp, number, number][] = [
    // A missing closing brace (the handler never ends).
    ['async function connectionHandler(c) {\n  return c.allow();\n', /SyntaxError: unexpected end of input \(a closing `}`, `\)` or `]` may be missing\) \(at the end of the code, line 3, column 1\)/, 3, 1],
    ['async function connectionHandler(c) {\n  return c.allow();', /at the end of the code, line 2, column 20/, 2, 20],
    // Unterminated string, comment, template literal, template expression, array, call.
    ['function connectionHandler(c) { c.allow(); }\nconst s = "abc', /unexpected end of string \(line 2, column 11\)/, 2, 11],
    ['function connectionHandler(c) { c.allow(); }\n/* never closed\n', /unexpected end of comment \(line 2, column 1\)/, 2, 1],
    ['function connectionHandler(c) { c.allow(); }\nconst t = `abc\n', /unexpected end of string \(line 2, column 11\)/, 2, 11],
    ['function connectionHandler(c) { c.allow(); }\nconst t = `abc ${1', /expected '}' after template expression \(at the end of the code, line 2, column 19\)/, 2, 19],
    ['function connectionHandler(c) { c.allow(); }\nconst a = [1, 2\n', /expecting ']' \(at the end of the code, line 3, column 1\)/, 3, 1],
    ['function connectionHandler(c) { c.allow(); }\nfoo(\n', /unexpected end of input .*line 3, column 1/, 3, 1],
  ];
  for (const [code, message, line, column] of cases) {
    await assert.rejects(compileFunction(code, { name: 'eof' }), (err: unknown) => {
      assert.ok(err instanceof FunctionCompileError, String(err));
      assert.match(err.message, message, JSON.stringify(code));
      assert.doesNotMatch(err.message, /export|__portcullis/, 'nothing of the appended wrapper');
      assert.equal(err.line, line, JSON.stringify(code));
      assert.equal(err.column, column, JSON.stringify(code));
      return true;
    });
  }
  // An error in the middle keeps its own position.
  await assert.rejects(compileFunction('function connectionHandler(c) {\n  const x = ;\n}\n', { name: 'mid' }), /unexpected token in expression: ';' \(line 2, column 13\)/);
});
