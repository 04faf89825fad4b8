import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore, type Store } from '../store/index.js';
import { KeyValueStoreService } from './index.js';

async function setup(t: { after(fn: () => unknown): void }, limits = {}): Promise<{ kvs: KeyValueStoreService; store: Store; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-kvs-'));
  const store = await openSqliteStore({ dataDir: dir });
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { kvs: new KeyValueStoreService(store, { limits }), store, dir };
}

const importJson = (data: { key: string; value: string }[]) => Buffer.from(JSON.stringify({ data }));

test('create: without import → READY and empty; with a file import → READY with the items; describe fields', async (t) => {
  const { kvs, dir } = await setup(t);
  const empty = await kvs.create({ name: 'empty', comment: 'nothing yet' });
  assert.equal(empty.Status, 'READY');
  assert.equal(empty.ItemCount, 0);
  assert.equal(empty.Comment, 'nothing yet');
  assert.match(empty.ETag, /^KV[0-9A-Z]{13}$/);
  const file = join(dir, 'import.json');
  writeFileSync(file, importJson([{ key: 'a', value: 'alpha' }, { key: 'ü', value: 'é' }]));
  const d = await kvs.create({ name: 'loaded', importSource: file });
  assert.equal(d.Status, 'READY');
  assert.equal(d.ItemCount, 2);
  assert.equal(d.TotalSizeInBytes, 1 + 5 + 2 + 2);
  assert.equal(d.FailureReason, undefined);
  assert.ok(!Number.isNaN(Date.parse(d.Created)) && !Number.isNaN(Date.parse(d.LastModified)));
  assert.deepEqual((await kvs.getKey('loaded', 'ü')).Value, 'é');
  assert.deepEqual((await kvs.list()).map((x) => x.Name), ['empty', 'loaded']);
  await assert.rejects(kvs.create({ name: 'loaded' }), { code: 'EntityAlreadyExists' });
  await assert.rejects(kvs.create({ name: 'bad name' }), { code: 'InvalidArgument' });
  await assert.rejects(kvs.create({ name: 'c', comment: 'x'.repeat(129) }), { code: 'InvalidArgument' });
});

test('create: every bad import leaves the store FAILED with a reason and no items', async (t) => {
  const { kvs, store, dir } = await setup(t, { maxImportBytes: 2000, maxStoreBytes: 1500 });
  const cases: [string, Buffer | string, RegExp][] = [
    ['json', Buffer.from('{"data": ['), /not valid JSON/],
    ['utf8', Buffer.from([0x7b, 0xc0, 0x7d]), /not valid UTF-8/],
    ['shape', importJson([]).toString().replace('data', 'items'), /wrong shape/],
    ['dup', importJson([{ key: 'x', value: '1' }, { key: 'x', value: '2' }]), /data\[1\] \(key "x"\): duplicate key/],
    ['longkey', importJson([{ key: 'ok', value: '1' }, { key: 'k'.repeat(513), value: '2' }]), /data\[1\].*key is 513 bytes/],
    ['longvalue', importJson([{ key: 'v', value: 'v'.repeat(1025) }]), /data\[0\] \(key "v"\): value is 1025 bytes/],
    ['bigfile', Buffer.from(' '.repeat(2001)), /import file is 2001 bytes, over the limit of 2000 bytes/],
    ['quota', importJson([{ key: 'a', value: 'v'.repeat(800) }, { key: 'b', value: 'v'.repeat(800) }]), /total 1602 bytes, over the store limit of 1500 bytes/],
    ['missing', '', /cannot read import file .*no such file/],
  ];
  for (const [name, content, pattern] of cases) {
    let source = join(dir, `${name}.json`);
    if (name === 'missing') source = join(dir, 'does-not-exist.json');
    else writeFileSync(source, content);
    const d = await kvs.create({ name, importSource: source });
    assert.equal(d.Status, 'FAILED', name);
    assert.match(d.FailureReason ?? '', pattern, name);
    assert.equal(d.ItemCount, 0, name);
    const rec = await store.kvs.getStore(name);
    assert.deepEqual(await store.kvs.listItems(rec!.id, { limit: 10 }), [], `${name}: nothing stored`);
    await assert.rejects(kvs.putKey(name, { key: 'k', value: 'v', ifMatch: d.ETag }), { code: 'EntityNotReady' });
    await kvs.deleteStore(name, { ifMatch: d.ETag });
  }
  assert.deepEqual(await kvs.list(), []);
});

test('create: import from an http URL (served on loopback); HTTP errors fail the store', async (t) => {
  const { kvs } = await setup(t);
  const server = createServer((req, res) => {
    if (req.url === '/ok.json') res.end(importJson([{ key: 'from', value: 'url' }]));
    else { res.statusCode = 404; res.end('no'); }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const ok = await kvs.create({ name: 'u1', importSource: `${base}/ok.json` });
  assert.equal(ok.Status, 'READY');
  assert.equal((await kvs.getKey('u1', 'from')).Value, 'url');
  const bad = await kvs.create({ name: 'u2', importSource: `${base}/missing.json` });
  assert.equal(bad.Status, 'FAILED');
  assert.match(bad.FailureReason!, /HTTP 404/);
});

test('writes: If-Match required, stale refused, each write returns the new ETag; nothing changes on refusal', async (t) => {
  const { kvs } = await setup(t);
  const d = await kvs.create({ name: 's' });
  await assert.rejects(kvs.putKey('s', { key: 'k', value: 'v', ifMatch: undefined }), { code: 'InvalidIfMatchVersion' });
  await assert.rejects(kvs.putKey('s', { key: 'k', value: 'v', ifMatch: '' }), { code: 'InvalidIfMatchVersion' });
  const w1 = await kvs.putKey('s', { key: 'k', value: 'v1', ifMatch: d.ETag });
  assert.notEqual(w1.ETag, d.ETag);
  assert.deepEqual({ ItemCount: w1.ItemCount, TotalSizeInBytes: w1.TotalSizeInBytes }, { ItemCount: 1, TotalSizeInBytes: 3 });
  await assert.rejects(kvs.putKey('s', { key: 'k', value: 'v2', ifMatch: d.ETag }), { code: 'PreconditionFailed' });
  assert.equal((await kvs.getKey('s', 'k')).Value, 'v1');
  assert.equal((await kvs.describe('s')).ETag, w1.ETag);
  const w2 = await kvs.putKey('s', { key: 'k', value: 'v2', ifMatch: w1.ETag });
  await assert.rejects(kvs.deleteKey('s', { key: 'absent', ifMatch: w2.ETag }), { code: 'EntityNotFound' });
  assert.equal((await kvs.describe('s')).ETag, w2.ETag, 'a refused delete keeps the ETag');
  const w3 = await kvs.deleteKey('s', { key: 'k', ifMatch: w2.ETag });
  assert.equal(w3.ItemCount, 0);
  await assert.rejects(kvs.getKey('s', 'k'), { code: 'EntityNotFound' });
  await assert.rejects(kvs.getKey('nope', 'k'), { code: 'EntityNotFound' });
  await assert.rejects(kvs.putKey('s', { key: 'x'.repeat(513), value: 'v', ifMatch: w3.ETag }), { code: 'EntitySizeLimitExceeded' });
  await assert.rejects(kvs.putKey('s', { key: 'x', value: 'v'.repeat(1025), ifMatch: w3.ETag }), { code: 'EntitySizeLimitExceeded' });
  await assert.rejects(kvs.deleteStore('s', { ifMatch: w2.ETag }), { code: 'PreconditionFailed' });
  await kvs.deleteStore('s', { ifMatch: w3.ETag });
  await assert.rejects(kvs.describe('s'), { code: 'EntityNotFound' });
});

test('batch update: all-or-nothing, ≤ 50 keys, no key twice or in both lists', async (t) => {
  const { kvs } = await setup(t, { maxStoreBytes: 200 });
  let etag = (await kvs.create({ name: 'b', importData: importJson([{ key: 'keep', value: '1' }, { key: 'gone', value: '2' }]) })).ETag;
  const w = await kvs.updateKeys('b', { ifMatch: etag, puts: [{ key: 'new', value: 'n' }, { key: 'keep', value: 'changed' }], deletes: ['gone', 'never-existed'] });
  etag = w.ETag;
  assert.equal(w.ItemCount, 2);
  const items = (await kvs.listKeys('b')).Items;
  assert.deepEqual(items, [{ Key: 'keep', Value: 'changed' }, { Key: 'new', Value: 'n' }]);
  const before = await kvs.describe('b');
  // Refusals: each changes nothing.
  const refusals: [Parameters<KeyValueStoreService['updateKeys']>[1], string][] = [
    [{ ifMatch: etag, puts: Array.from({ length: 51 }, (_, i) => ({ key: `k${i}`, value: 'v' })) }, 'InvalidArgument'],
    [{ ifMatch: etag, puts: Array.from({ length: 30 }, (_, i) => ({ key: `k${i}`, value: 'v' })), deletes: Array.from({ length: 21 }, (_, i) => `d${i}`) }, 'InvalidArgument'],
    [{ ifMatch: etag, puts: [{ key: 'a', value: '1' }, { key: 'a', value: '2' }] }, 'InvalidArgument'],
    [{ ifMatch: etag, puts: [{ key: 'a', value: '1' }], deletes: ['a'] }, 'InvalidArgument'],
    [{ ifMatch: etag }, 'InvalidArgument'],
    [{ ifMatch: etag, puts: [{ key: 'ok', value: '1' }, { key: 'bad', value: 'v'.repeat(1025) }] }, 'EntitySizeLimitExceeded'],
    [{ ifMatch: etag, puts: [{ key: 'ok', value: '1' }, { key: 'big', value: 'v'.repeat(190) }] }, 'ServiceQuotaExceeded'],
    [{ ifMatch: 'stale', puts: [{ key: 'ok', value: '1' }] }, 'PreconditionFailed'],
  ];
  for (const [input, code] of refusals) {
    await assert.rejects(kvs.updateKeys('b', input), { code }, code);
    assert.deepEqual(await kvs.describe('b'), before, `${code}: nothing changed`);
  }
  assert.equal((await kvs.listKeys('b')).Items.length, 2);
  // Exactly 50 is fine.
  const fifty = await kvs.updateKeys('b', { ifMatch: etag, puts: Array.from({ length: 48 }, (_, i) => ({ key: `k${i}`, value: '' })), deletes: ['keep', 'new'] });
  assert.equal(fifty.ItemCount, 48);
});

test('ListKeys: 1,000 keys paged with NextToken in byte order, default 10, max 50', async (t) => {
  const { kvs } = await setup(t);
  const data = Array.from({ length: 1000 }, (_, i) => ({ key: `key-${String(i).padStart(4, '0')}`, value: String(i) }));
  await kvs.create({ name: 'p', importData: importJson(data.slice().reverse()) });
  const first = await kvs.listKeys('p');
  assert.equal(first.Items.length, 10);
  assert.ok(first.NextToken);
  const seen: string[] = [];
  let token: string | undefined;
  let pages = 0;
  do {
    const page = await kvs.listKeys('p', { maxResults: 50, ...(token ? { nextToken: token } : {}) });
    seen.push(...page.Items.map((i) => i.Key));
    token = page.NextToken;
    pages++;
  } while (token);
  assert.equal(pages, 20);
  assert.deepEqual(seen, data.map((d) => d.key));
  await assert.rejects(kvs.listKeys('p', { maxResults: 51 }), { code: 'InvalidArgument' });
  await assert.rejects(kvs.listKeys('p', { maxResults: 0 }), { code: 'InvalidArgument' });
  await assert.rejects(kvs.listKeys('p', { nextToken: 'garbage' }), { code: 'InvalidArgument' });
  // Byte order: uppercase before lowercase, multi-byte after ASCII.
  await kvs.create({ name: 'order', importData: importJson([{ key: 'é', value: '' }, { key: 'b', value: '' }, { key: 'B', value: '' }, { key: 'a', value: '' }]) });
  assert.deepEqual((await kvs.listKeys('order')).Items.map((i) => i.Key), ['B', 'a', 'b', 'é']);
});

test('recoverInterruptedImports: a store stuck in PROVISIONING becomes FAILED', async (t) => {
  let now = 1_000_000;
  const { store } = await setup(t);
  const kvs = new KeyValueStoreService(store, { now: () => now });
  await store.kvs.createStore({ id: 'x', name: 'stuck', comment: '', etag: 'E', now });
  assert.deepEqual(await kvs.recoverInterruptedImports(), []);
  now += 11 * 60_000;
  assert.deepEqual(await kvs.recoverInterruptedImports(), ['stuck']);
  const d = await kvs.describe('stuck');
  assert.equal(d.Status, 'FAILED');
  assert.match(d.FailureReason!, /import interrupted/);
});

test('startCreate: the store is PROVISIONING (and refuses writes) while its import source is fetched, then READY', async (t) => {
  const { store } = await setup(t);
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  const kvs = new KeyValueStoreService(store, {
    fetcher: async () => {
      await gate;
      return { ok: true, bytes: importJson([{ key: 'slow', value: 'import' }]) };
    },
  });
  const { description, completion } = await kvs.startCreate({ name: 'slow', importSource: 'https://example.invalid/data.json' });
  assert.equal(description.Status, 'PROVISIONING');
  const during = await kvs.describe('slow');
  assert.equal(during.Status, 'PROVISIONING');
  await assert.rejects(kvs.putKey('slow', { key: 'k', value: 'v', ifMatch: during.ETag }), { code: 'EntityNotReady' });
  release();
  const done = await completion;
  assert.equal(done.Status, 'READY');
  assert.equal(done.ItemCount, 1);
  assert.notEqual(done.ETag, during.ETag);
});

test('ListKeys: pages stay consistent while keys are added and removed between pages', async (t) => {
  const { kvs } = await setup(t);
  let etag = (await kvs.create({ name: 'live', importData: importJson(Array.from({ length: 30 }, (_, i) => ({ key: `k${String(i).padStart(2, '0')}`, value: '' }))) })).ETag;
  const first = await kvs.listKeys('live', { maxResults: 10 });
  // Between pages: delete a key already returned, delete one not yet returned, add one
  // before and one after the position.
  etag = (await kvs.updateKeys('live', { ifMatch: etag, puts: [{ key: 'a-before', value: '' }, { key: 'k25b', value: '' }], deletes: ['k03', 'k20'] })).ETag;
  const seen = first.Items.map((i) => i.Key);
  let token = first.NextToken;
  while (token) {
    const page = await kvs.listKeys('live', { maxResults: 10, nextToken: token });
    seen.push(...page.Items.map((i) => i.Key));
    token = page.NextToken;
  }
  assert.equal(new Set(seen).size, seen.length, 'no key twice');
  for (let i = 0; i < 30; i++) {
    const k = `k${String(i).padStart(2, '0')}`;
    if (k !== 'k20') assert.ok(seen.includes(k), `${k} present throughout is listed`);
  }
  assert.ok(seen.includes('k25b'), 'a key added after the position is listed');
  assert.ok(!seen.includes('a-before'), 'a key added before the position is not');
  assert.ok(etag);
});

/** A Store whose kvs repository has some methods replaced (fault injection). */
function withFaults(store: Store, kvs: Partial<Store['kvs']>): Store {
  const repo = Object.create(store.kvs) as Store['kvs'];
  Object.assign(repo, kvs);
  const s = Object.create(store) as Store & { kvs: Store['kvs'] };
  Object.defineProperty(s, 'kvs', { value: repo });
  return s;
}

test('create: any failure after the store row exists (lock timeout, SQLite error) ends FAILED with a reason, never PROVISIONING', async (t) => {
  const { store } = await setup(t);
  const { StoreUnavailableError } = await import('../errors.js');
  for (const [label, err] of [
    ['lock timeout', new StoreUnavailableError('the database x stayed locked by another writer past the busy timeout; nothing was changed')],
    ['disk full', Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' })],
    ['a bug', new TypeError('boom')],
  ] as const) {
    const kvs = new KeyValueStoreService(withFaults(store, { completeImport: () => Promise.reject(err) }));
    const name = `f-${label.replace(/\W/g, '')}`;
    const d = await kvs.create({ name, importData: importJson([{ key: 'a', value: 'b' }]) });
    assert.equal(d.Status, 'FAILED', label);
    assert.match(d.FailureReason!, /the import could not be stored/, label);
    assert.doesNotMatch(d.FailureReason!, /nothing was changed/, label);
    assert.equal((await store.kvs.getStore(name))!.status, 'FAILED');
  }
  // Marking FAILED is retried while the database is busy…
  let failCalls = 0;
  const flaky = new KeyValueStoreService(withFaults(store, {
    completeImport: () => Promise.reject(new StoreUnavailableError('locked')),
    failImport: (...a) => (++failCalls < 3 ? Promise.reject(new StoreUnavailableError('locked')) : store.kvs.failImport(...a)),
  }));
  assert.equal((await flaky.create({ name: 'retried' })).Status, 'FAILED');
  assert.equal(failCalls, 3);
  // …and when even that fails, the error says the store is left PROVISIONING for the sweep.
  const broken = new KeyValueStoreService(withFaults(store, {
    completeImport: () => Promise.reject(new StoreUnavailableError('locked')),
    failImport: () => Promise.reject(new StoreUnavailableError('still locked')),
  }));
  await assert.rejects(broken.create({ name: 'stuck' }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'StoreUnavailable');
    assert.match(e.message, /left PROVISIONING and will be marked FAILED by the stale-import sweep/);
    return true;
  });
  assert.equal((await store.kvs.getStore('stuck'))!.status, 'PROVISIONING');
  // The sweep (run by every command and at replica open) marks it FAILED once stale.
  const later = new KeyValueStoreService(store, { now: () => Date.now() + 11 * 60_000 });
  assert.deepEqual(await later.recoverInterruptedImports({ wait: false }), ['stuck']);
  assert.equal((await store.kvs.getStore('stuck'))!.status, 'FAILED');
});

test('updateKeys: the shapes of puts and deletes are checked (the admin API passes bodies through)', async (t) => {
  const { kvs } = await setup(t);
  await kvs.create({ name: 's' });
  const ifMatch = (await kvs.describe('s')).ETag;
  const bad: [unknown, unknown, RegExp][] = [
    [undefined, 'abc', /^deletes must be an array of key strings, got a string$/],
    [undefined, [1], /^deletes\[0\] must be a key string, got a number$/],
    [{ key: 'a', value: 'b' }, undefined, /^puts must be an array of \{key, value\} objects, got an object$/],
    ['ab', undefined, /^puts must be an array/],
    [[null], undefined, /^puts\[0\] must be a \{key, value\} object, got null$/],
    [[{ key: 'a', value: 1 }], undefined, /^puts\[0\]\.value must be a string, got a number$/],
    [[{ value: 'x' }], undefined, /^puts\[0\]\.key must be a string, got a undefined$/],
  ];
  for (const [puts, deletes, msg] of bad) {
    await assert.rejects(kvs.updateKeys('s', { ifMatch, puts: puts as never, deletes: deletes as never }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'InvalidArgument');
      assert.match(e.message, msg);
      return true;
    });
  }
  assert.equal((await kvs.describe('s')).ETag, ifMatch, 'nothing changed');
});

test('resolveKvsLimits: limits must be positive integers', async () => {
  const { resolveKvsLimits } = await import('./limits.js');
  for (const v of [1.5, 0, -1, Number.NaN, Infinity, 2 ** 60]) {
    assert.throws(() => resolveKvsLimits({ maxBatchKeys: v }), /kvs\.maxBatchKeys must be a positive integer/);
  }
  assert.equal(resolveKvsLimits({ maxBatchKeys: 7 }).maxBatchKeys, 7);
});

test('import from a URL: a redirect is refused, naming the Location', async (t) => {
  const { kvs } = await setup(t);
  const server = createServer((_req, res) => {
    res.writeHead(302, { location: 'https://elsewhere.example/list.json' }).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const d = await kvs.create({ name: 'redir', importSource: `http://127.0.0.1:${(server.address() as AddressInfo).port}/x.json` });
  assert.equal(d.Status, 'FAILED');
  assert.match(d.FailureReason!, /HTTP 302; a redirect — redirects are not followed, give the final URL/);
  assert.doesNotMatch(d.FailureReason!, /elsewhere/);
});

test('deleteStore is refused while a connection function (either stage) is associated with the store', async (t) => {
  const { kvs, store } = await setup(t);
  const created = await kvs.create({ name: 'revoked' });
  const kvsId = (await store.kvs.getStore('revoked'))!.id;
  const doc = { code: 'function connectionHandler(c) { c.allow(); }', comment: '', runtime: 'cloudfront-js-2.0', keyValueStore: { id: kvsId, name: 'revoked' } };
  const fn = await store.functions.create({ id: 'fn-1', name: 'gate', etag: 'E1', document: doc, now: Date.now() });
  await assert.rejects(kvs.deleteStore('revoked', { ifMatch: created.ETag }), (err: Error & { code?: string }) =>
    err.code === 'CannotDeleteEntityWhileInUse' && /"gate" \(DEVELOPMENT\)/.test(err.message));
  assert.equal((await kvs.describe('revoked')).Status, 'READY', 'nothing changed');
  await store.functions.put('gate', 'DEVELOPMENT', { ifMatch: fn.etag, newEtag: 'E2', document: { ...doc, keyValueStore: null }, now: Date.now() });
  await kvs.deleteStore('revoked', { ifMatch: created.ETag });
  await assert.rejects(kvs.describe('revoked'), (err: Error & { code?: string }) => err.code === 'EntityNotFound');
});

test('ListKeys with prefix: UTF-8 byte order for any Unicode (emoji, U+FF01, U+FFFF vs astral), one page per call, NextToken within the prefix', async (t) => {
  const { kvs } = await setup(t);
  const d = await kvs.create({ name: 'pfx' });
  // In UTF-16 code units '\u{FF01}' (FF01) sorts after '😀' (D83D DE00); in UTF-8 bytes (EF BC 81 < F0 9F 98 80) before.
  const keys = ['a', 'ab', 'abc', 'abd', 'b', '\u{FF01}x', '\u{FF01}', '\u{FFFF}', '😀', '😀1', '😀2', '😁', 'é', 'éa', 'z'];
  await kvs.updateKeys('pfx', { ifMatch: d.ETag, puts: keys.map((k) => ({ key: k, value: `v-${k}` })) });
  const all = async (prefix: string, maxResults = 50): Promise<string[]> => {
    const out: string[] = [];
    let token: string | undefined;
    let calls = 0;
    do {
      const p = await kvs.listKeys('pfx', { prefix, maxResults, ...(token ? { nextToken: token } : {}) });
      out.push(...p.Items.map((i) => i.Key));
      token = p.NextToken;
      calls++;
      assert.ok(calls < 50);
    } while (token);
    return out;
  };
  const byteOrder = (ks: string[]) => [...ks].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
  for (const prefix of ['a', 'ab', 'abc', 'abz', 'b', '\u{FF01}', '\u{FFFF}', '😀', '😁', '😂', 'é', 'e', 'z', 'zz', '']) {
    const expected = byteOrder(keys.filter((k) => k.startsWith(prefix)));
    assert.deepEqual(await all(prefix), expected, `prefix ${JSON.stringify(prefix)}`);
    assert.deepEqual(await all(prefix, 1), expected, `prefix ${JSON.stringify(prefix)}, one key per page`);
  }
  // The listing stops at the first key without the prefix: no NextToken after the last prefixed key.
  const p = await kvs.listKeys('pfx', { prefix: '😀', maxResults: 3 });
  assert.deepEqual(p.Items.map((i) => i.Key), ['😀', '😀1', '😀2']);
  assert.equal(p.NextToken, undefined);
  assert.deepEqual((await kvs.listKeys('pfx', { prefix: 'ab', maxResults: 2 })).Items.map((i) => i.Value), ['v-ab', 'v-abc']);
  // A lone surrogate cannot prefix a UTF-8 key; a prefix longer than any key is refused.
  await assert.rejects(kvs.listKeys('pfx', { prefix: '\uD83D' }), { code: 'InvalidArgument', message: /lone surrogate/ });
  await assert.rejects(kvs.listKeys('pfx', { prefix: 'x'.repeat(513) }), { code: 'InvalidArgument', message: /longer than the longest key/ });
});
