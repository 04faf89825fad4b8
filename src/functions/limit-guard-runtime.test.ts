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
  // Nobody observes the rejected promise: the function body's own guard sees the error.
  'unobserved async arrow (block body)': 'function connectionHandler(c) { (async () => { new ArrayBuffer(8e6) })(); c.allow(); }',
  'unobserved async arrow (expression body)': 'function connectionHandler(c) { (async () => new ArrayBuffer(8e6))(); c.allow(); }',
  'unobserved async function': 'async function f() { new ArrayBuffer(8e6) } function connectionHandler(c) { f(); c.allow(); }',
  'unobserved async method': 'const o = { async m() { new ArrayBuffer(8e6) } }; class K { static async s() { new ArrayBuffer(8e6) } } function connectionHandler(c) { o.m(); K.s(); c.allow(); }',
  'unobserved async function expression': 'function connectionHandler(c) { (async function () { "use strict"; new ArrayBuffer(8e6) })(); c.allow(); }',
  'dropped Promise, throwing executor (block)': 'function connectionHandler(c) { new Promise(() => { new ArrayBuffer(8e6) }); c.allow(); }',
  'dropped Promise, throwing executor (expression)': 'function connectionHandler(c) { new Promise(() => new ArrayBuffer(8e6)); c.allow(); }',
  'dropped Promise, built-in executor': "function connectionHandler(c) { new Promise(String.prototype.repeat.bind('x', 1 << 24)); c.allow(); }",
  'dropped Promise.try, built-in callback': "function connectionHandler(c) { Promise.try(String.prototype.repeat.bind('x', 1 << 24)); c.allow(); }",
  'iterator return() during a throw': 'function connectionHandler(c) { const it = { [Symbol.iterator]() { return this }, next() { return { done: false, value: 1 } }, return() { new ArrayBuffer(8e6); return {} } }; try { for (const x of it) throw 1 } catch (e) {} c.allow(); }',
  'iterator return() as an expression arrow': 'function connectionHandler(c) { const it = { [Symbol.iterator]() { return this }, next: () => ({ done: false }), return: () => new ArrayBuffer(8e6) }; try { for (const x of it) throw 1 } catch (e) {} c.allow(); }',
  'async generator finally, return() dropped': 'async function* g() { try { yield 1 } finally { new ArrayBuffer(8e6) } } async function connectionHandler(c) { const it = g(); await it.next(); it.return(); c.allow(); }',
  'thenable whose then throws': 'function connectionHandler(c) { Promise.resolve({ then() { new ArrayBuffer(8e6) } }); Promise.resolve({ then: () => new ArrayBuffer(8e6) }); c.allow(); }',
  'getter called by promise resolution': 'function connectionHandler(c) { Promise.resolve({ get then() { new ArrayBuffer(8e6) } }); c.allow(); }',
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

test('ordinary code behaves as before under the function wrappers', async () => {
  const f = await compileFunction(`'use strict';
class Base { constructor(x) { this.x = x } get double() { return this.x * 2 } static make() { return new this(1) } }
class Derived extends (function () { return Base })() { constructor(x, y = x + 1) { super(x); this.y = y } get sum() { return this.x + this.y + super.double } }
function hoisted() { return inner(); function inner() { return 'h' } }
function args() { return arguments.length + ':' + [].slice.call(arguments).join('') }
function* gen() { const got = yield 1; try { yield got * 2 } finally { log.push('gen-finally') } }
const log = [];
const obj = { n: 5, m() { return this.n }, arrow() { return (() => this.n)() }, if(a) { return 'if' + a }, switch(b) { return 'sw' + b } };
const add = (a, b = 2) => a + b
const tail = (x) => x
(3)
function dflt(a, b = a * 2, { c } = { c: 3 }) { return a + b + c }
function connectionHandler(c) {
  const it = gen();
  const g = [it.next().value, it.next(4).value, it.return(9).value];
  let thrown;
  try { (() => { throw new TypeError('t') })() } catch (e) { thrown = e.name + e.message }
  const d = new Derived(2);
  c.logCustomData([hoisted(), args(1, 2, 3), g.join(','), log.join(), obj.m(), obj.arrow(), obj.if(1), obj.switch(2),
    add(1), tail((n) => n * 5), dflt(1), d.sum, d instanceof Base, Base.make().double, thrown, typeof new Promise(() => {}).then].join('|'));
  c.allow();
}`, LIMITS);
  const r = f.invoke(conn());
  assert.equal(r.decision, 'allow', JSON.stringify(r));
  assert.equal(r.customData, 'h|3:123|1,8,9|gen-finally|5|5|if1|sw2|3|15|6|9|true|2|TypeErrort|function');
  f.dispose();
});

test('Promise keeps its shape: constructor identity, subclassing, statics, errors', async () => {
  const f = await compileFunction(`async function connectionHandler(c) {
  const p = Promise.resolve(1);
  class MyP extends Promise {}
  let noNew;
  try { Promise(() => {}) } catch (e) { noNew = e.name }
  const mine = new MyP((res) => res(2));
  const vals = await Promise.all([p, mine, Promise.try(() => 3), new Promise((res) => res(4))]);
  let rejected;
  await new Promise(() => { throw new RangeError('r') }).catch((e) => { rejected = e.name });
  c.logCustomData([p.constructor === Promise, (async () => {})() instanceof Promise, Promise.resolve(p) === p,
    mine instanceof MyP, mine.then(() => 0) instanceof MyP, Promise.name, Promise.length, noNew, vals.join(), rejected].join('|'));
  c.allow();
}`, LIMITS);
  const r = f.invoke(conn());
  assert.equal(r.decision, 'allow', JSON.stringify(r));
  assert.equal(r.customData, 'true|true|true|true|true|Promise|1|TypeError|1,2,3,4|RangeError');
  f.dispose();
});

test('top-level code that catches a limit error is refused at compile', async () => {
  await assert.rejects(compileFunction("try { new ArrayBuffer(8e6) } catch (e) {}\nfunction connectionHandler(c) { c.allow(); }", LIMITS), /top-level code exceeded/);
});
