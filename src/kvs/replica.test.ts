import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore, type Store } from '../store/index.js';
import { KeyValueStoreService, KvsReplica } from './index.js';

async function setup(t: { after(fn: () => unknown): void }): Promise<{ kvs: KeyValueStoreService; store: Store; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-replica-'));
  const store = await openSqliteStore({ dataDir: dir });
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { kvs: new KeyValueStoreService(store), store, dir };
}

const data = (n: number) => Buffer.from(JSON.stringify({ data: Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: `v${i}` })) }));

test('replica: loads READY stores at start, follows writes, meta() reflects them', async (t) => {
  const { kvs, store } = await setup(t);
  const d = await kvs.create({ name: 'r', importData: data(100) });
  await kvs.create({ name: 'broken', importData: Buffer.from('nope') });
  const replica = await KvsReplica.open(store);
  t.after(() => replica.close());
  assert.deepEqual(replica.storeNames(), ['r']);
  const s1 = replica.snapshot('r')!;
  assert.equal(s1.get('k7'), 'v7');
  assert.equal(s1.has('nope'), false);
  assert.equal(s1.meta().keyCount, 100);
  assert.equal(s1.meta().creationDateTime, d.Created);
  const w = await kvs.updateKeys('r', { ifMatch: d.ETag, puts: [{ key: 'new', value: 'n' }], deletes: ['k0'] });
  await replica.waitForSequence(await store.latestSequence(), 2000);
  const s2 = replica.snapshot('r')!;
  assert.equal(s2.get('new'), 'n');
  assert.equal(s2.has('k0'), false);
  assert.equal(s2.meta().keyCount, 100);
  assert.equal(s2.meta().lastUpdatedDateTime, (await kvs.describe('r')).LastModified);
  // New stores and deleted stores.
  await kvs.create({ name: 'later', importData: data(3) });
  await kvs.deleteStore('r', { ifMatch: w.ETag });
  await replica.waitForSequence(await store.latestSequence(), 2000);
  assert.deepEqual(replica.storeNames(), ['later']);
  assert.equal(replica.snapshot('r'), undefined);
  assert.equal(replica.snapshot('later')!.get('k2'), 'v2');
});

test('replica: a snapshot is consistent for its whole invocation; the next one sees the write', async (t) => {
  const { kvs, store } = await setup(t);
  let etag = (await kvs.create({ name: 'c', importData: data(5) })).ETag;
  const replica = await KvsReplica.open(store);
  t.after(() => replica.close());
  const during = replica.snapshot('c')!;
  assert.equal(replica.snapshot('c'), during, 'one shared snapshot per version');
  assert.equal(during.get('k1'), 'v1');
  // Several writes land "mid-invocation", touching the same key repeatedly.
  for (let i = 0; i < 3; i++) {
    etag = (await kvs.updateKeys('c', { ifMatch: etag, puts: [{ key: 'k1', value: `changed${i}` }, { key: `add${i}`, value: 'x' }], deletes: [`k${i + 2}`] })).ETag;
    await replica.waitForSequence(await store.latestSequence(), 2000);
  }
  assert.equal(during.get('k1'), 'v1');
  assert.equal(during.get('k2'), 'v2');
  assert.equal(during.has('add0'), false);
  assert.equal(during.meta().keyCount, 5);
  const next = replica.snapshot('c')!;
  assert.notEqual(next, during);
  assert.equal(next.get('k1'), 'changed2');
  assert.equal(next.has('k2'), false);
  assert.equal(next.get('add2'), 'x');
  assert.equal(next.meta().keyCount, 5 + 3 - 3);
  // The old snapshot still answers after the store is deleted.
  await kvs.deleteStore('c', { ifMatch: etag });
  await replica.waitForSequence(await store.latestSequence(), 2000);
  assert.equal(next.get('k1'), 'changed2');
});

test('replica: catches up after missed changes, from another store instance on the same file', async (t) => {
  const { kvs, store, dir } = await setup(t);
  let etag = (await kvs.create({ name: 'm', importData: data(10) })).ETag;
  const other = await openSqliteStore({ dataDir: dir, pollIntervalMs: 20 });
  t.after(() => other.close());
  const replica = await KvsReplica.open(other);
  replica.close(); // "away": stops following the feed
  const missed = replica.sequence;
  for (let i = 0; i < 30; i++) etag = (await kvs.putKey('m', { key: `k${i % 10}`, value: `round${i}`, ifMatch: etag })).ETag;
  assert.equal(replica.snapshot('m')!.get('k9'), 'v9', 'a stopped replica keeps serving its last state');
  const applied: number[] = [];
  const back = await KvsReplica.open(other, { onApplied: (c) => applied.push(...c.map((x) => x.seq)) });
  t.after(() => back.close());
  assert.equal(back.snapshot('m')!.get('k9'), 'round29');
  // And a replica resumed from an old sequence receives every change in order.
  const { subscribeChanges } = await import('../store/index.js');
  const seqs: number[] = [];
  const sub = subscribeChanges(other, { fromSeq: missed, batchSize: 7, onChanges: (c) => { seqs.push(...c.map((x) => x.seq)); } });
  await sub.waitFor(await store.latestSequence(), 2000);
  sub.stop();
  assert.deepEqual(seqs, Array.from({ length: 30 }, (_, i) => missed + 1 + i));
});

test('replica: pruned feed → full reload; the replica keeps its state while the store is unreachable', async (t) => {
  const { kvs, store, dir } = await setup(t);
  let etag = (await kvs.create({ name: 'p', importData: data(3) })).ETag;
  const other = await openSqliteStore({ dataDir: dir, pollIntervalMs: 20 });
  const replica = await KvsReplica.open(other);
  t.after(() => replica.close());
  replica.close();
  etag = (await kvs.putKey('p', { key: 'k0', value: 'after-prune', ifMatch: etag })).ETag;
  await store.pruneChanges(await store.latestSequence());
  const fresh = await KvsReplica.open(other);
  t.after(() => fresh.close());
  etag = (await kvs.putKey('p', { key: 'k1', value: 'x', ifMatch: etag })).ETag;
  await fresh.waitForSequence(await store.latestSequence(), 2000);
  assert.equal(fresh.snapshot('p')!.get('k1'), 'x');

  const errors: unknown[] = [];
  const r2 = await KvsReplica.open(other, { onError: (e) => errors.push(e) });
  t.after(() => r2.close());
  await other.close();
  await kvs.putKey('p', { key: 'k2', value: 'unseen', ifMatch: etag });
  // The closed database cannot be read: the replica serves what it had.
  (r2 as unknown as { subscription: { pump(): void } }).subscription.pump();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(r2.snapshot('p')!.get('k2'), 'v2');
  assert.equal(r2.degraded, true);
  assert.ok(errors.length >= 1);
});

test('replica: previous values are kept only while an older snapshot is still referenced', async (t) => {
  const { setFlagsFromString } = await import('node:v8');
  const { runInNewContext } = await import('node:vm');
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const { kvs, store } = await setup(t);
  let etag = (await kvs.create({ name: 'h', importData: data(5) })).ETag;
  const replica = await KvsReplica.open(store);
  t.after(() => replica.close());
  const history = () => (replica as unknown as { stores: Map<string, { history: Map<string, unknown> }> }).stores.get('h')!.history.size;
  const write = async (value: string) => {
    etag = (await kvs.putKey('h', { key: 'k0', value, ifMatch: etag })).ETag;
    await replica.waitForSequence(await store.latestSequence(), 2000);
  };
  // No snapshot taken: nothing is kept.
  await write('a');
  assert.equal(history(), 0);
  let held: ReturnType<KvsReplica['snapshot']> | undefined = replica.snapshot('h');
  await write('b');
  assert.equal(history(), 1, 'kept for the live snapshot');
  assert.equal(held!.get('k0'), 'a');
  held = undefined;
  // Let the write's microtasks and the WeakRef's keep-alive job end, then collect.
  await new Promise((r) => setTimeout(r, 10));
  gc();
  await write('c');
  assert.equal(history(), 0, 'dropped once no older snapshot is alive');
  assert.equal(replica.snapshot('h')!.get('k0'), 'c');
});
