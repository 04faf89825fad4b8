/**
 * Tests of the limit guard (limit-guard.ts): the source transform (pure string → string)
 * and the sandbox prelude in a bare QuickJS context (the same engine build the runtime
 * uses, 2 MiB over the baseline and a 256 KiB stack), without runtime.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { getQuickJS, type QuickJSWASMModule } from 'quickjs-emscripten';
import { FunctionCompileError } from '../errors.js';
import { guardSource, LIMIT_GUARD_PRELUDE, LIMIT_HIT_HOST_FUNCTION } from './limit-guard.js';
import { PRELUDE_SOURCE } from './prelude.js';

const G = (v: string): string => ` __pcGuard(${v});`;
const FIN_CATCH = 'catch (__pcE) { __pcX = __pcE; __pcGuard(__pcE); __pcX = void 0; throw __pcE; } ';
const FIN_CHECK = ' if (__pcX !== void 0) throw __pcX;';

const RETHROW = 'catch (__pcE) { __pcGuard(__pcE); throw __pcE; }';
const BODY = (body: string): string => ` try {${body} } ${RETHROW} `;
const ARROW = (expr: string): string => `{ try { return ${expr}; } ${RETHROW} }`;

function rewrite(code: string): string {
  return guardSource(code).code;
}

function rejects(code: string, pattern: RegExp): void {
  assert.throws(() => guardSource(code), (e: unknown) => {
    assert.ok(e instanceof FunctionCompileError, String(e));
    assert.match(e.message, pattern);
    assert.equal(typeof e.line, 'number');
    assert.equal(typeof e.column, 'number');
    return true;
  });
}

test('catch clauses: simple, optional binding, destructuring', () => {
  assert.deepEqual(guardSource('try { a() } catch (e) { b(e) }'), { code: `try { a() } catch (e) {${G('e')} b(e) }`, sites: 1, bodies: 0 });
  assert.equal(rewrite('try{a()}catch{b()}'), `try{a()}catch (__pcE){${G('__pcE')}b()}`);
  assert.equal(rewrite('try {} catch ( /* c */ err // x\n) {}'), `try {} catch ( /* c */ err // x\n) {${G('err')}}`);
  assert.equal(
    rewrite('try {} catch ({ message, stack: [s] = [] }) { f(message) }'),
    `try {} catch (__pcE) {${G('__pcE')} let { message , stack : [ s ] = [ ] } = __pcE; f(message) }`,
  );
  // A multi-line pattern keeps its newlines (so no line moves).
  const multi = rewrite('try {} catch ({\n  message, // why\n  name\n}) {\n  f(message)\n}');
  assert.equal(multi, `try {} catch (__pcE\n\n\n) {${G('__pcE')} let { message , name } = __pcE;\n  f(message)\n}`);
});

test('finally: a guarding catch before it; the finally rethrows a value the guard did not clear', () => {
  assert.deepEqual(guardSource('try { a() } finally { return 1 }'), {
    code: `{ let __pcX; try { a() } ${FIN_CATCH}finally {${FIN_CHECK} return 1 } }`, sites: 1, bodies: 0,
  });
  assert.deepEqual(guardSource('try { a() } catch (e) { b() } finally { c() }'), {
    code: `{ let __pcX; try { try { a() } catch (e) {${G('e')} b() } } ${FIN_CATCH}finally {${FIN_CHECK} c() } }`, sites: 2, bodies: 0,
  });
  // Single-statement positions and labels stay valid: the wrapper is one block statement.
  assert.equal(rewrite('if (x) try {} finally {}'), `if (x) { let __pcX; try {} ${FIN_CATCH}finally {${FIN_CHECK}} }`);
  // Nested statements.
  const nested = rewrite('try { try {} finally {} } catch (e) { try {} catch {} }');
  assert.equal(nested, `try { { let __pcX; try {} ${FIN_CATCH}finally {${FIN_CHECK}} } } catch (e) {${G('e')} try {} catch (__pcE) {${G('__pcE')}} }`);
});

test('line numbers never change', () => {
  const code = 'try {\n  a()\n}\ncatch\n{\n  b()\n}\nfinally\n{\n  c()\n}\ntry { x } catch ({\n a,\n b }) {}\n';
  const out = rewrite(code);
  assert.equal(out.split('\n').length, code.split('\n').length);
  // Each original line is a prefix-preserving subsequence of its rewritten line.
  const a = code.split('\n');
  const b = out.split('\n');
  for (let i = 0; i < a.length; i++) {
    const orig = a[i] as string;
    if (i >= 11) continue; // the destructuring pattern is replaced there
    let j = 0;
    for (const ch of b[i] as string) if (ch === orig[j]) j++;
    assert.equal(j, orig.length, `line ${i + 1}: ${b[i]}`);
  }
});

test('catch that is not a clause is left alone', () => {
  const untouched = [
    'p.catch(() => {}); p.catch((e) => e)',
    'const o = { catch: 1, try: 2, finally: 3 }; o.catch; o?.catch',
    'class A { catch() {} try() {} finally() {} }',
    'const o = { catch() { return 1 }, finally() {} }',
    'let mycatch = 1, catcher = 2, tryCatch = 3; mycatch++',
    "const s = 'try { } catch (e) {}'; const d = \"} catch {\";",
    'const t = `try { x } catch (e) { ${ "}" } }`',
    'const t = `a ${ `b ${ { a: "catch" }.a } c` } catch (e) {}`',
    'const r = /} catch (e) {/g; const r2 = /[/]catch{/',
    '// try {} catch (e) {}\n/* try {} catch (e) {} */',
    'x = a / b / c; y = (a) / 2; z = a[0] / 3; w = 1 / 2 /* catch {} */',
  ];
  for (const code of untouched) {
    // Function bodies get their wrapper (and nothing else).
    const r = guardSource(code);
    assert.equal(r.sites, 0, code);
    assert.equal(r.code.split('__pcGuard(').length, r.code.split(RETHROW).length, code);
    assert.equal(r.code.split(RETHROW).length - 1, r.bodies, code);
  }
  assert.equal(rewrite('const o = { catch() { return 1 }, finally() {} }'), `const o = { catch() {${BODY(' return 1 ')}}, finally() {} }`);
  assert.equal(rewrite('p.catch((e) => e)'), `p.catch((e) => ${ARROW('e')})`);
});

test('function bodies and arrows: wrapped in a guarding try/catch, same lines, prologue first', () => {
  assert.deepEqual(guardSource('function f(a) { return a }'), { code: `function f(a) {${BODY(' return a ')}}`, sites: 0, bodies: 1 });
  // Empty bodies and bodies of only directives are left alone.
  assert.deepEqual(guardSource("function f() {} const g = () => {}; function h() { 'use strict' }"), { code: "function f() {} const g = () => {}; function h() { 'use strict' }", sites: 0, bodies: 0 });
  assert.equal(rewrite("function f() { 'use strict'; 'x'\nreturn 1 }"), `function f() { 'use strict'; 'x';${BODY('\nreturn 1 ')}}`);
  assert.equal(rewrite("function f() { 'a'.length }"), `function f() {${BODY(" 'a'.length ")}}`);
  assert.equal(rewrite("function f() { 'a'\n+ 1 }"), `function f() {${BODY(" 'a'\n+ 1 ")}}`);
  // Methods, accessors, constructors, async and generator functions.
  assert.equal(
    rewrite('class A extends B { constructor(x) { super(x) } get v() { return 1 } static *g() { yield 1 } async m() { await 1 } }'),
    `class A extends B { constructor(x) {${BODY(' super(x) ')}} get v() {${BODY(' return 1 ')}} static *g() {${BODY(' yield 1 ')}} async m() {${BODY(' await 1 ')}} }`,
  );
  // A class body is never taken for a function body, even after a call in extends.
  assert.equal(rewrite('class A extends mix(B) { m() { f() } }'), `class A extends mix(B) { m() {${BODY(' f() ')}} }`);
  assert.equal(rewrite('x = class extends (B) { }'), 'x = class extends (B) { }');
  assert.equal(rewrite('o = { class: 1, m() { f() } }'), `o = { class: 1, m() {${BODY(' f() ')}} }`);
  // Methods named like statements.
  assert.equal(rewrite('o = { if(a) { f() }, switch(b) { g() } }'), `o = { if(a) {${BODY(' f() ')}}, switch(b) {${BODY(' g() ')}} }`);
  assert.equal(rewrite('class C { while() { f() } }'), `class C { while() {${BODY(' f() ')}} }`);
  assert.equal(rewrite('switch (x) { case 1: f() }'), 'switch (x) { case 1: f() }');
  // Expression-bodied arrows: the body ends at , ; ) ] } an unmatched : or a newline where ASI applies.
  assert.equal(rewrite('f(x => x + 1, y)'), `f(x => ${ARROW('x + 1')}, y)`);
  assert.equal(rewrite('a = x => y => x * y;'), `a = x => ${ARROW(`y => ${ARROW('x * y')}`)};`);
  assert.equal(rewrite('a = c ? x => x ? 1 : 2 : 3'), `a = c ? x => ${ARROW('x ? 1 : 2')} : 3`);
  assert.equal(rewrite('o = { a: async x => await x, b: [x => x] }'), `o = { a: async x => ${ARROW('await x')}, b: [x => ${ARROW('x')}] }`);
  assert.equal(rewrite('const f = x => x\nconst g = 1'), `const f = x => ${ARROW('x')}\nconst g = 1`);
  assert.equal(rewrite('const f = x => x\n(g)\n.h'), `const f = x => ${ARROW('x\n(g)\n.h')}`);
  assert.equal(rewrite('const f = x => x\n++y'), `const f = x => ${ARROW('x')}\n++y`);
  assert.equal(rewrite('const f = x => function () {}\n(1)'), `const f = x => ${ARROW('function () {}\n(1)')}`);
  assert.equal(rewrite('const f = x => x\n`t`'), `const f = x => ${ARROW('x\n`t`')}`);
  assert.equal(rewrite('const f = x =>\n  x'), `const f = x =>\n  ${ARROW('x')}`);
  assert.equal(rewrite('t = `${x => x}`'), `t = \`\${x => ${ARROW('x')}}\``);
  assert.equal(rewrite('f = x => x'), `f = x => ${ARROW('x')}`);
  // Functions inside a destructuring catch parameter keep their wrappers.
  assert.equal(
    rewrite('try {} catch ({ a = () => 1 }) {}'),
    `try {} catch (__pcE) {${G('__pcE')} let { a = ( ) => ${ARROW('1')} } = __pcE;}`,
  );
});

test('regular expressions vs division', () => {
  // Each line hides a catch clause-looking text that a wrong reading would expose or hide.
  const cases: Array<[string, number]> = [
    ["if (x) /'/.test(s); try {} catch (e) {}", 1],
    ["x = a / 2; try {} catch (e) {} y = b / 3", 1],
    ["function f() { return /'/.test(s) } try {} catch (e) {}", 1],
    ["x = typeof /'/; try {} catch (e) {}", 1],
    ["switch (x) { case /'/.source: break } try {} catch (e) {}", 1],
    ["for (const m of /'/.exec(s)) {} try {} catch (e) {}", 1],
    ["while (x) /'/.exec(s); try {} catch (e) {}", 1],
    ['async function f() { await /\'/ } try {} catch (e) {}', 1],
    ['function* g() { yield /\'/ } try {} catch (e) {}', 1],
    ["x = a++ / 2 / 1; try {} catch (e) {}", 1],
    ["x = { a: 1 }.a / 2; try {} catch (e) {}", 1],
    ["try {} catch (e) {} /'/.test(s); try {} finally {}", 2],
    ["x = `${a}` / 2; y = '/' / 2; try {} catch (e) {}", 1],
    ["l: for (;;) { break l\n/'/.test(s) } try {} catch (e) {}", 1],
    ["const x = y.return / 2 / 3; try {} catch (e) {}", 1],
    ["x = a ? /'/ : /'/; try {} catch (e) {}", 1],
    ["x = 0x10 / 2, y = 1e3 / 2, z = .5 / 1, w = 10n / 2n; try {} catch (e) {}", 1],
    ["x = a?.b / 2; y = c?.5:1; try {} catch (e) {}", 1],
  ];
  for (const [code, sites] of cases) assert.equal(guardSource(code).sites, sites, code);
  // The '/' after a '}' whose meaning is unclear is refused rather than guessed.
  rejects('const f = function () {} / 2', /cannot tell whether '\/'/);
  rejects('x = () => {}\n/a/.test(s)', /cannot tell whether '\/'/);
});

test('unclassifiable or reserved input is refused with a position', () => {
  rejects('let __pcGuard = () => {}', /reserved/);
  rejects('function f(__pcE) {}', /reserved/);
  rejects('let \\u0061 = 1', /escaped identifiers/);
  rejects("x = 'abc", /unterminated string/);
  rejects('x = `abc ${ 1 }', /unterminated template/);
  rejects('/* x', /unterminated comment/);
  rejects('x = /abc\n/', /unterminated regular expression/);
  rejects('f(]', /unbalanced/);
  rejects('{', /unclosed/);
  rejects('x = 1 <!-- y', /not supported/);
  rejects('try {} catch ({ a = () => { try {} finally {} } }) {}', /try statement inside a catch parameter/);
  try {
    guardSource('ok;\n  let __pcX;', { label: '"f1"' });
    assert.fail('expected an error');
  } catch (e) {
    assert.ok(e instanceof FunctionCompileError);
    assert.equal(e.message, "function \"f1\": identifiers starting with '__pc' are reserved (line 2, column 7)");
    assert.equal(e.line, 2);
    assert.equal(e.column, 7);
  }
});

// ---- the sandbox side ---------------------------------------------------------

let qjs: QuickJSWASMModule | undefined;

interface SandboxRun { hits: string[]; allowed: boolean; logs: string[]; error?: string }

/**
 * Evaluates LIMIT_GUARD_PRELUDE, then (optionally) the runtime prelude, then `user`
 * rewritten by guardSource as a module, runs pending jobs, and reports the host's limit
 * hits and whether the code reached `allow()`.
 */
async function sandbox(user: string, options: { withRuntimePrelude?: boolean; guard?: boolean } = {}): Promise<SandboxRun> {
  const engine: QuickJSWASMModule = qjs ??= await getQuickJS();
  const rt = engine.newRuntime();
  rt.setMaxStackSize(256 * 1024);
  const ctx = rt.newContext();
  try {
    const hits: string[] = [];
    const logs: string[] = [];
    let allowed = false;
    const hit = ctx.newFunction(LIMIT_HIT_HOST_FUNCTION, (k) => {
      hits.push(ctx.getString(k));
      return ctx.undefined;
    });
    ctx.setProp(ctx.global, LIMIT_HIT_HOST_FUNCTION, hit);
    hit.dispose();
    const allow = ctx.newFunction('allow', () => {
      allowed = true;
      return ctx.undefined;
    });
    ctx.setProp(ctx.global, 'allow', allow);
    allow.dispose();
    const log = ctx.newFunction('log', (h) => {
      logs.push(String(ctx.dump(h)));
      return ctx.undefined;
    });
    ctx.setProp(ctx.global, 'log', log);
    log.dispose();
    const evalOk = (code: string, file: string): void => {
      const r = ctx.evalCode(code, file);
      if (r.error) {
        const e = JSON.stringify(ctx.dump(r.error));
        r.error.dispose();
        throw new Error(`${file}: ${e}`);
      }
      r.value.dispose();
    };
    if (options.guard !== false) {
      evalOk(LIMIT_GUARD_PRELUDE, 'guard.js');
      if (options.withRuntimePrelude) evalOk(guardSource(PRELUDE_SOURCE).code, 'prelude.js');
    }
    const usage = rt.computeMemoryUsage();
    const baseline = (ctx.dump(usage) as { memory_used_size: number }).memory_used_size;
    usage.dispose();
    rt.setMemoryLimit(baseline + 2 * 1024 * 1024);
    const code = options.guard === false ? user : guardSource(user).code;
    const r = ctx.evalCode(code, 'function.js', { type: 'module' });
    let error: string | undefined;
    if (r.error) {
      error = JSON.stringify(ctx.dump(r.error));
      r.error.dispose();
    } else {
      r.value.dispose();
      const jobs = rt.executePendingJobs();
      if (jobs.error) {
        error = JSON.stringify(ctx.dump(jobs.error));
        jobs.error.dispose();
      }
    }
    rt.setMemoryLimit(-1);
    return error === undefined ? { hits, allowed, logs } : { hits, allowed, logs, error };
  } finally {
    ctx.dispose();
    rt.dispose();
  }
}

const LIMIT_CASES: Record<string, string> = {
  'ArrayBuffer in try/catch': 'try { new ArrayBuffer(8e6) } catch (e) {} allow();',
  'repeat in try/catch': "try { 'x'.repeat(1 << 24) } catch (e) {} allow();",
  'string doubling': "try { let s = 'x'; while (true) s += s; } catch (e) {} allow();",
  'many small objects': 'try { const a = []; while (true) a.push({ x: 1 }); } catch (e) {} allow();',
  'infinite recursion': 'function r() { return r() + 1 } try { r() } catch (e) {} allow();',
  'catch {}': 'try { new ArrayBuffer(8e6) } catch {} allow();',
  'destructuring catch': 'try { new ArrayBuffer(8e6) } catch ({ message }) { log(message) } allow();',
  'finally { return }': 'function f() { try { new ArrayBuffer(8e6) } finally { return 1 } } f(); allow();',
  'error in catch, finally { return }': 'function f() { try { throw 1 } catch (e) { new ArrayBuffer(8e6) } finally { return 1 } } f(); allow();',
  'nested try inside catch': 'try { throw 1 } catch (e) { try { new ArrayBuffer(8e6) } catch (e2) {} } allow();',
  'recursion with catch in every frame': 'function r() { try { r() } catch (e) {} } r(); allow();',
  'recursion with finally { return } in every frame': 'function r() { try { r() } finally { return } } r(); allow();',
  'recursion with finally { break }': 'function r() { for (;;) { try { r() } finally { break } } } r(); allow();',
  'recursion with finally { throw }': 'function r() { try { r() } finally { throw 1 } } try { r() } catch (e) {} allow();',
  'async function + .catch': 'async function f() { new ArrayBuffer(8e6) } f().catch(() => allow());',
  'then(undefined, handler)': 'async function f() { new ArrayBuffer(8e6) } f().then(undefined, () => allow());',
  '.finally replacing the reason': "async function f() { new ArrayBuffer(8e6) } f().finally(() => { throw 'x' }).catch(() => allow());",
  'await in try/catch': 'async function f() { new ArrayBuffer(8e6) } (async () => { try { await f() } catch (e) {} allow() })();',
  'Promise.allSettled': 'async function f() { new ArrayBuffer(8e6) } (async () => { await Promise.allSettled([f()]); allow() })();',
  'Promise.any': 'async function f() { new ArrayBuffer(8e6) } (async () => { try { await Promise.any([f()]) } catch (e) {} allow() })();',
  'arrow function': 'const g = () => { try { new ArrayBuffer(8e6) } catch (e) { return 1 } }; g(); allow();',
  'class method': "class K { m() { try { 'x'.repeat(1 << 24) } catch (e) { return 1 } } } new K().m(); allow();",
  'generator': 'function* g() { try { yield 1; new ArrayBuffer(8e6) } catch (e) { yield 2 } } const it = g(); it.next(); it.next(); allow();',
  'fulfilment handler throws, nothing handles the derived promise': 'Promise.resolve().then(() => { new ArrayBuffer(8e6) }); allow();',
  'then without a rejection handler, nothing handles the derived promise': 'async function f() { new ArrayBuffer(8e6) } f().then(() => {}); allow();',
  'thrown null (the engine could not allocate the error)': 'try { throw null } catch (e) {} allow();',
};

test('every limit-error path records a hit (and unguarded code would allow)', async () => {
  for (const [name, code] of Object.entries(LIMIT_CASES)) {
    const r = await sandbox(code);
    assert.ok(r.hits.length > 0, `${name}: no limit hit (${JSON.stringify(r)})`);
    assert.ok(r.hits.every((k) => k === 'memory' || k === 'stack'), `${name}: ${r.hits.join()}`);
  }
  const unguarded = await sandbox(LIMIT_CASES['ArrayBuffer in try/catch'] as string, { guard: false });
  assert.equal(unguarded.allowed, true);
});

test('with the runtime prelude: its own catch sites are guarded too (console.log of a deep object)', async () => {
  // The prelude's console.log catches JSON.stringify failures (and prints String(v)).
  const deep = await sandbox(
    'function r() { return r() + 1 } console.log({ toJSON() { return r() } }); allow();',
    { withRuntimePrelude: true },
  );
  // Every wrapped frame the overflow unwinds through records it again.
  assert.ok(deep.hits.length > 0 && deep.hits.every((k) => k === 'stack'), JSON.stringify(deep.hits.slice(0, 3)));
  assert.equal(deep.allowed, false);
  const big = await sandbox("console.log({ toJSON() { return 'x'.repeat(1 << 24) } }); allow();", { withRuntimePrelude: true });
  assert.ok(big.hits.length > 0 && big.hits.every((k) => k === 'memory'), JSON.stringify(big.hits.slice(0, 3)));
  assert.equal(big.allowed, false);
  const ok = await sandbox('console.log({ a: 1 }); try { JSON.parse("{") } catch (e) { console.log(e.name) } allow();', { withRuntimePrelude: true });
  assert.deepEqual(ok.hits, []);
  assert.equal(ok.allowed, true);
});

test('ordinary errors pass through unchanged', async () => {
  const r = await sandbox(`
    const seen = [];
    try { null.x } catch (e) { seen.push(e.name) }
    try { throw new RangeError('out of memory') } catch (e) { seen.push(e.message) }
    try { throw { message: 'stack overflow' } } catch ({ message }) { seen.push(message) }
    try { throw 1 } catch { seen.push('1') } finally { seen.push('f') }
    function f() { try { throw 2 } finally { return 3 } }
    seen.push(String(f()));
    log(seen.join());
    log(typeof InternalError);
    log(Promise.prototype.then.length + Promise.prototype.then.name);
    Promise.allSettled([Promise.reject(new Error('x')), 1]).then((r) => log(r.map((x) => x.status).join()));
    Promise.any([Promise.reject(new TypeError('y'))]).catch((e) => log(e.constructor.name + e.errors.length));
    Promise.reject(new Error('z')).finally(() => {}).catch((e) => { log(e.message); allow(); });
  `);
  assert.deepEqual(r.hits, []);
  assert.equal(r.allowed, true);
  assert.deepEqual(r.logs, [
    'TypeError,out of memory,stack overflow,1,f,3', 'undefined', '2then', 'rejected,fulfilled', 'AggregateError1', 'z',
  ]);
});

test('__pcGuard cannot be replaced: a global lexical binding, not a property of the global object', async () => {
  // QuickJS 2025-09-13 lets Object.defineProperty change the value of a non-writable,
  // non-configurable property of the global object (even a frozen one), so the guard
  // must not live there.
  const r = await sandbox(`
    const name = '__p' + 'cGuard';
    log(typeof globalThis[name]);
    Object.defineProperty(globalThis, name, { value: () => {}, writable: true });
    globalThis[name] = () => {};
    try { new ArrayBuffer(8e6) } catch (e) {}
    allow();
  `);
  assert.deepEqual(r.logs, ['undefined']);
  assert.deepEqual(r.hits, ['memory']);
});

test('the examples and the runtime prelude transform and still compile', async () => {
  const engine: QuickJSWASMModule = qjs ??= await getQuickJS();
  const dir = join(import.meta.dirname, '..', '..', 'examples', 'functions');
  const files = readdirSync(dir).filter((f) => f.endsWith('.js'));
  assert.ok(files.length >= 9);
  const sources: Array<[string, string, 'module' | 'global']> = files.map((f) => [f, readFileSync(join(dir, f), 'utf8'), 'module']);
  sources.push(['prelude.ts', PRELUDE_SOURCE, 'global']);
  for (const [name, code, type] of sources) {
    const { code: out } = guardSource(code);
    assert.equal(out.split('\n').length, code.split('\n').length, name);
    const rt = engine.newRuntime();
    rt.setModuleLoader(() => 'export default {};');
    const ctx = rt.newContext();
    try {
      // Compile only (no run): module code imports 'cloudfront', which this bare context lacks.
      const r = ctx.evalCode(out, name, { type, compileOnly: true });
      if (r.error) {
        const e = JSON.stringify(ctx.dump(r.error));
        r.error.dispose();
        assert.fail(`${name}: ${e}`);
      }
      r.value.dispose();
    } finally {
      ctx.dispose();
      rt.dispose();
    }
  }
});
