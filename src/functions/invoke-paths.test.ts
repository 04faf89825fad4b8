/**
 * FunctionInstance.invoke's two ways in: the connection object (split into scalars and
 * the ids of certificate views cached, deep-frozen, inside the sandbox) and JSON text
 * (parsed whole). Both must give the function the same object, and nothing one
 * invocation does to its connection object may reach the next one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chainView, ParsedCertificate, splitCertificates, type CertificateView, type ChainView } from '../pki/index.js';
import {
  buildConnection, compileFunction, connectionJson, syntheticRevocationStatus, SAMPLE_CHAIN_PEM,
  type ConnectionObject, type FunctionResult,
} from './index.js';

const chain = chainView(splitCertificates(Buffer.from(SAMPLE_CHAIN_PEM)).map((b) => ParsedCertificate.fromDer(b.der, b.where)));
const SERIAL = chain.leaf.serialNumber;

const conn = (certificates?: ChainView, ip = '8.8.8.8'): ConnectionObject => buildConnection({
  clientIp: ip, clientPort: 40000, endpoint: 'api.example.test', distributionId: 'd1', connectionId: 'c1',
  ...(certificates ? { certificates, revocationStatus: syntheticRevocationStatus(certificates, 'Good', 'Good', 0) } : {}),
});

function ok(r: FunctionResult): string[] {
  assert.equal(r.error, undefined, r.error);
  assert.equal(r.decision, 'allow');
  return r.logs;
}

// These tests are about what the function sees, not the CPU limit: a generous one keeps
// them stable on a loaded machine (the limit is wall time spent in the sandbox).
const roomy = { cpuLimitMs: 1000 };

/** A synthetic certificate view, deep-frozen like pki/'s. */
function view(serial: string, pad = 0): CertificateView {
  return Object.freeze({
    ...chain.leaf, serialNumber: serial, subject: `CN=${serial}${'x'.repeat(pad)}`, validity: Object.freeze({ ...chain.leaf.validity }),
  });
}

const DESCRIBE = `function connectionHandler(c) {
  const cc = c.clientCertificate;
  const frozen = (o) => o === undefined ? '-' : String(Object.isFrozen(o));
  const keys = (o) => o === undefined ? '-' : Object.keys(o).join(',');
  console.log(JSON.stringify(c));
  console.log([keys(c), keys(cc), cc && keys(cc.certificates), frozen(c), frozen(cc), cc && frozen(cc.certificates),
    cc && frozen(cc.certificates.leaf), cc && frozen(cc.certificates.leaf.validity), cc && frozen(cc.certificates.intermediates),
    cc && cc.certificates.intermediates.map(frozen).join('/'), cc && frozen(cc.revocationStatus),
    cc && Object.getOwnPropertyDescriptor(cc, 'revocationStatus').writable, typeof c.allow, typeof c.clientPort].join(' '));
  c.allow();
}`;

test('the object path and the JSON-text path give the function the same connection object', async () => {
  const f = await compileFunction(DESCRIBE, roomy);
  const withCert = conn(chain);
  const without = conn();
  const odd = { ...conn(chain), extra: [1, { a: null }] }; // not the usual shape: sent as JSON
  for (const c of [withCert, without, odd, withCert]) {
    const a = ok(f.invoke(c));
    const b = ok(f.invoke(JSON.stringify(c)));
    assert.deepEqual(a, b);
    assert.equal(a[0], JSON.stringify(c));
  }
  const withLogs = ok(f.invoke(withCert));
  assert.equal(withLogs[1], [
    'connectionId,clientIp,clientPort,endpoint,distributionId,clientCertificate,allow,deny,logCustomData',
    'certificates,revocationStatus', 'leaf,intermediates', 'false false false true true false true false true function number',
  ].join(' '));
  assert.equal(connectionJson(withCert), JSON.stringify(withCert));
});

test('shapes the object path does not take are sent as JSON text, with the same result as JSON.stringify', async () => {
  const f = await compileFunction('function connectionHandler(c) { console.log(JSON.stringify(c), c.clientIp.length); c.allow(); }', roomy);
  const base = conn(chain);
  const cases: object[] = [
    { ...base, clientIp: 'a\u0000b' }, // NUL cannot go through a C string
    { ...base, clientIp: 'lone \ud800 surrogate' },
    { ...base, clientPort: Number.NaN },
    { ...base, clientPort: -0 },
    { clientIp: '1.2.3.4', connectionId: 'reordered', clientPort: 1, endpoint: 'e', distributionId: 'd' },
    { ...base, clientCertificate: { certificates: { leaf: undefined, intermediates: [] } } },
    { ...base, clientCertificate: { certificates: { leaf: chain.leaf, intermediates: [chain.leaf, undefined] } } },
    { ...base, clientCertificate: { certificates: { leaf: { toJSON: () => 'custom' }, intermediates: [] } } },
    { ...base, clientCertificate: { revocationStatus: undefined, certificates: { leaf: chain.leaf, intermediates: [] } } },
    { ...base, clientCertificate: { certificates: { leaf: chain.leaf, intermediates: [] }, revocationStatus: undefined } },
    { ...base, clientCertificate: { certificates: { leaf: 'a string leaf', intermediates: [] } } },
    Object.assign(Object.create({ inherited: 1 }) as object, base),
  ];
  for (const c of cases) {
    const expected = JSON.parse(JSON.stringify(c)) as { clientIp: string };
    assert.deepEqual(ok(f.invoke(c)), [`${JSON.stringify(expected)} ${expected.clientIp.length}`]);
  }
});

test('mutating the connection object, its clientCertificate or a cached certificate view never reaches the next invocation', async () => {
  const f = await compileFunction(`let kept;
function connectionHandler(c) {
  const cc = c.clientCertificate, certs = cc.certificates, leaf = certs.leaf;
  const seen = [leaf.serialNumber, leaf.validity.notAfter, certs.intermediates.length, certs.intermediates[0].serialNumber,
    cc.revocationStatus.chainValidity, cc.revocationStatus.certificates.leaf.status, c.clientIp, typeof c.extra, kept === leaf];
  let blocked = 0;
  for (const t of [
    () => { leaf.serialNumber = 'x'; }, () => { leaf.extra = 1; }, () => { delete leaf.subject; }, () => { leaf.validity.notAfter = 'x'; },
    () => { certs.intermediates[0].serialNumber = 'x'; }, () => { Object.defineProperty(leaf, 'serialNumber', { value: 'x' }); },
    () => { Object.setPrototypeOf(leaf, { serialNumber: 'x' }); }, () => { if (kept) kept.issuer = 'x'; else throw 0; },
  ]) { try { t(); } catch (e) { blocked++; } }
  // Everything around the views is the invocation's own and may be changed freely.
  certs.intermediates.push({ serialNumber: 'fake' }); certs.intermediates[0] = { serialNumber: 'swapped' };
  certs.leaf = { serialNumber: 'replaced' }; cc.revocationStatus.chainValidity = 'Forged';
  cc.revocationStatus.certificates.leaf.status = 'Forged'; c.clientIp = '6.6.6.6'; c.extra = 1; delete c.clientCertificate;
  kept = leaf;
  console.log(seen.join('|') + '|' + blocked + '|' + certs.leaf.serialNumber + '|' + c.clientIp);
  c.allow();
}`, roomy);
  const inter = chain.intermediates[0]?.serialNumber;
  const expected = (keptSame: boolean): string => `${SERIAL}|${chain.leaf.validity.notAfter}|1|${inter}|Valid|Good|8.8.8.8|undefined|${keptSame}|8|replaced|6.6.6.6`;
  const c = conn(chain);
  assert.deepEqual(ok(f.invoke(c)), [expected(false)]);
  // Same chain again: the views come from the sandbox's cache (the same frozen objects), untouched.
  assert.deepEqual(ok(f.invoke(c)), [expected(true)]);
  assert.deepEqual(ok(f.invoke(conn(chain))), [expected(true)]);
  // The JSON-text path parses fresh (also frozen) views.
  assert.deepEqual(ok(f.invoke(connectionJson(c))), [expected(false)]);
  assert.deepEqual(ok(f.invoke(c)), [expected(false)]);
  // The host's objects are untouched too.
  assert.equal(c.clientIp, '8.8.8.8');
  assert.equal(c.clientCertificate?.revocationStatus?.chainValidity, 'Valid');
});

test('certificate-view cache: bounded, starts over when full, never mixes chains up', async () => {
  const f = await compileFunction(`function connectionHandler(c) {
  const s = c.clientCertificate.certificates;
  console.log([s.leaf.serialNumber, ...s.intermediates.map((v) => v.serialNumber)].join(','));
  c.allow();
}`, roomy);
  const views = Array.from({ length: 300 }, (_, i) => view(`s${i}`, i % 7 === 0 ? 3000 : 0));
  const chainOf = (i: number): ChainView => ({ leaf: views[i] as CertificateView, intermediates: [views[(i * 7 + 1) % 300] as CertificateView, views[0] as CertificateView] });
  const expect = (i: number): string => `s${i},s${(i * 7 + 1) % 300},s0`;
  const heap0 = f.memoryUsageBytes();
  const order = [...Array.from({ length: 300 }, (_, i) => i), ...Array.from({ length: 300 }, (_, i) => 299 - i)];
  for (let k = 0; k < 600; k++) order.push((k * 37 + 11) % 300);
  for (const i of order) assert.deepEqual(ok(f.invoke(conn(chainOf(i)))), [expect(i)]);
  // 300 distinct views passed through; the cache holds at most 64 (≈ 128 KiB charged).
  assert.ok(f.memoryUsageBytes() < heap0 + 160 * 1024, `heap grew from ${heap0} to ${f.memoryUsageBytes()}`);
  // A chain too big for the cache altogether goes as JSON text.
  const huge: ChainView = { leaf: view('huge', 70_000), intermediates: [] };
  assert.deepEqual(ok(f.invoke(conn(huge))), ['huge']);
  assert.deepEqual(ok(f.invoke(conn(chainOf(5)))), [expect(5)]);
});

test('views that are not deep-frozen are keyed by content: a change on the host is seen', async () => {
  const f = await compileFunction(`function connectionHandler(c) {
  const l = c.clientCertificate.certificates.leaf;
  console.log(l.serialNumber + ' ' + l.validity.notAfter + ' ' + Object.isFrozen(l.validity));
  c.allow();
}`, roomy);
  const mutable = { ...chain.leaf, validity: { ...chain.leaf.validity } };
  const shallow = Object.freeze({ ...chain.leaf, serialNumber: 'shallow', validity: { notBefore: 'a', notAfter: 'b' } });
  const run = (leaf: CertificateView): string[] => ok(f.invoke(conn({ leaf, intermediates: [] })));
  assert.deepEqual(run(mutable), [`${SERIAL} ${chain.leaf.validity.notAfter} true`]);
  mutable.serialNumber = 'changed';
  mutable.validity.notAfter = 'later';
  assert.deepEqual(run(mutable), ['changed later true']);
  assert.deepEqual(run(shallow), ['shallow b true']);
  shallow.validity.notAfter = 'c';
  assert.deepEqual(run(shallow), ['shallow c true']);
});

test('after a fatal error the rebuilt sandbox starts with an empty cache and still sees the right chain', async () => {
  const f = await compileFunction(`function connectionHandler(c) {
  if (c.clientIp === '1.1.1.1') for (;;) {}
  console.log(c.clientCertificate.certificates.leaf.serialNumber);
  c.allow();
}`, { cpuLimitMs: 50 });
  const other = view('other');
  assert.deepEqual(ok(f.invoke(conn(chain))), [SERIAL]);
  assert.deepEqual(ok(f.invoke(conn({ leaf: other, intermediates: [] }))), ['other']);
  const r = f.invoke(conn(chain, '1.1.1.1'));
  assert.match(r.error ?? '', /CPU limit of 50 ms/);
  assert.deepEqual(ok(f.invoke(conn({ leaf: other, intermediates: [] }))), ['other']);
  assert.deepEqual(ok(f.invoke(conn(chain))), [SERIAL]);
  assert.equal(f.rebuilds, 1);
});

test('memory: the cache does not eat the function\'s budget; a leak spread over many short invocations is still caught', async () => {
  const limit = 256 * 1024;
  // ≈ 228 kB of array, held while the loop runs long enough for the interrupt handler to measure the heap.
  const f = await compileFunction(`function connectionHandler(c) {
  if (c.clientIp === '1.1.1.1') { const a = new Array(28500).fill(7); let n = 0; for (let i = 0; i < 400000; i++) n += i; if (a.length && n) c.allow(); return; }
  c.allow();
}`, { memoryLimitBytes: limit, cpuLimitMs: 200 });
  ok(f.invoke(conn(chain, '1.1.1.1')));
  const views = Array.from({ length: 20 }, (_, i) => view(`m${i}`, 1500));
  for (const v of views) ok(f.invoke(conn({ leaf: v, intermediates: [] })));
  // ≈ 55 kB of cached views (all 20 fit the cache) on top: over the 256 KiB unless the limit grows with the cache.
  ok(f.invoke(conn({ leaf: views[19] as CertificateView, intermediates: [] }, '1.1.1.1')));
  const bomb = await compileFunction(`function connectionHandler(c) {
  if (c.clientIp === '1.1.1.1') return c.allow();
  const a = []; for (let i = 0; i < 400000; i++) a.push(new Array(64).fill(i)); c.allow();
}`, { memoryLimitBytes: limit, cpuLimitMs: 200 });
  for (const v of views) ok(bomb.invoke(conn({ leaf: v, intermediates: [] }, '1.1.1.1')));
  assert.match(bomb.invoke(conn({ leaf: views[0] as CertificateView, intermediates: [] })).error ?? '', /memory limit of 262144 bytes/);

  const leak = await compileFunction(`const keep = [];
function connectionHandler(c) { keep.push(new Array(2048).fill(c.clientPort)); c.allow(); }`, { memoryLimitBytes: limit, cpuLimitMs: 1000 });
  let failedAt = -1;
  for (let i = 0; i < 5000 && failedAt < 0; i++) {
    const r = leak.invoke(conn(chain));
    if (r.error !== undefined) {
      assert.match(r.error, /memory limit of 262144 bytes/);
      failedAt = i;
    }
  }
  assert.ok(failedAt > 0, 'the leak was never caught');
  ok(leak.invoke(conn(chain)));
});
