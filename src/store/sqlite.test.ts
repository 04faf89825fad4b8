import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore, subscribeChanges, SQLITE_FILE_NAME, type ChangeRecord, type Store } from './index.js';
import { migrationNames } from './migrations.js';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'portcullis-store-'));
}

async function readyStore(s: Store, name: string, etag = 'E0'): Promise<void> {
  const r = await s.kvs.createStore({ id: `id-${name}`, name, comment: '', etag: 'P', now: 1 });
  await s.kvs.completeImport(r.id, [], { etag, now: 2, maxStoreBytes: 1000 });
}

test('store: first open creates the data directory, the database file and the schema', async (t) => {
  const root = tempDir();
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, 'nested', 'data');
  const s = await openSqliteStore({ dataDir: dir });
  assert.ok(existsSync(join(dir, SQLITE_FILE_NAME)));
  assert.equal(await s.latestSequence(), 0);
  assert.deepEqual(await s.kvs.listStores(), []);
  await s.close();
  // Reopening applies no migration twice.
  const again = await openSqliteStore({ dataDir: dir });
  assert.equal(await again.latestSequence(), 0);
  await again.close();
  assert.deepEqual(migrationNames(), ['0001_initial', '0002_nodes']);
});

test('store: two instances on one file with the same ETag: exactly one write wins, the other changes nothing', async (t) => {
  const dir = tempDir();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const a = await openSqliteStore({ dataDir: dir });
  const b = await openSqliteStore({ dataDir: dir });
  t.after(async () => { await a.close(); await b.close(); });
  await readyStore(a, 'shared', 'E1');
  const results = await Promise.allSettled([
    a.kvs.updateItems('shared', { ifMatch: 'E1', newEtag: 'EA', puts: [{ key: 'k', value: 'from-a' }], deletes: [], maxStoreBytes: 1000, now: 3 }),
    b.kvs.updateItems('shared', { ifMatch: 'E1', newEtag: 'EB', puts: [{ key: 'k', value: 'from-b' }], deletes: [], maxStoreBytes: 1000, now: 3 }),
  ]);
  const ok = results.filter((r) => r.status === 'fulfilled');
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  assert.equal(ok.length, 1);
  assert.equal(failed.length, 1);
  assert.equal((failed[0]!.reason as { code: string }).code, 'PreconditionFailed');
  const rec = await b.kvs.getStore('shared');
  const winner = rec!.etag === 'EA' ? 'from-a' : 'from-b';
  assert.equal(await b.kvs.getItem(rec!.id, 'k'), winner);
  assert.equal(rec!.itemCount, 1);
});

test('store: counters, quota refusal and not-ready refusal leave everything unchanged', async (t) => {
  const dir = tempDir();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const s = await openSqliteStore({ dataDir: dir });
  t.after(() => s.close());
  await readyStore(s, 'q', 'E1');
  const w = await s.kvs.updateItems('q', { ifMatch: 'E1', newEtag: 'E2', puts: [{ key: 'ab', value: 'é' }], deletes: [], maxStoreBytes: 10, now: 3 });
  assert.equal(w.record.totalSize, 4); // 'ab' 2 bytes + 'é' 2 bytes
  const seq = await s.latestSequence();
  await assert.rejects(
    s.kvs.updateItems('q', { ifMatch: 'E2', newEtag: 'E3', puts: [{ key: 'cd', value: 'xxxxxx' }], deletes: [], maxStoreBytes: 10, now: 4 }),
    { code: 'ServiceQuotaExceeded' },
  );
  const rec = await s.kvs.getStore('q');
  assert.equal(rec!.etag, 'E2');
  assert.equal(rec!.totalSize, 4);
  assert.equal(await s.latestSequence(), seq, 'no change record for a refused write');
  // Overwriting shrinks: allowed even when over a lowered limit.
  const shrink = await s.kvs.updateItems('q', { ifMatch: 'E2', newEtag: 'E3', puts: [{ key: 'ab', value: '' }], deletes: [], maxStoreBytes: 1, now: 5 });
  assert.equal(shrink.record.totalSize, 2);
  await s.kvs.createStore({ id: 'p', name: 'prov', comment: '', etag: 'P1', now: 1 });
  await assert.rejects(
    s.kvs.updateItems('prov', { ifMatch: 'P1', newEtag: 'P2', puts: [{ key: 'a', value: 'b' }], deletes: [], maxStoreBytes: 10, now: 4 }),
    { code: 'EntityNotReady' },
  );
  await assert.rejects(s.kvs.createStore({ id: 'x', name: 'q', comment: '', etag: 'X', now: 1 }), { code: 'EntityAlreadyExists' });
  await assert.rejects(s.kvs.deleteStore('q', 'wrong', 6), { code: 'PreconditionFailed' });
  await assert.rejects(s.kvs.deleteStore('nope', 'E', 6), { code: 'EntityNotFound' });
});

test('change feed: sequences follow commit order, a late subscriber catches up, pruning forces a reset', async (t) => {
  const dir = tempDir();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const s = await openSqliteStore({ dataDir: dir });
  t.after(() => s.close());
  await readyStore(s, 'f', 'E0');
  let etag = 'E0';
  for (let i = 0; i < 20; i++) {
    const next = `E${i + 1}`;
    await s.kvs.updateItems('f', { ifMatch: etag, newEtag: next, puts: [{ key: `k${i}`, value: String(i) }], deletes: [], maxStoreBytes: 10_000, now: 10 + i });
    etag = next;
  }
  const latest = await s.latestSequence();
  assert.equal(latest, 22);
  const seen: ChangeRecord[] = [];
  const sub = subscribeChanges(s, { fromSeq: 5, batchSize: 4, onChanges: (c) => { seen.push(...c); } });
  await sub.waitFor(latest);
  assert.deepEqual(seen.map((c) => c.seq), Array.from({ length: latest - 5 }, (_, i) => i + 6));
  const last = seen[seen.length - 1]!;
  assert.ok(last.entity === 'kvs' && last.op === 'batch');
  assert.deepEqual(last.puts, [['k19', '19']]);
  assert.equal(last.meta.etag, 'E20');
  // New writes are delivered in-process without polling delay.
  await s.kvs.updateItems('f', { ifMatch: etag, newEtag: 'E21', puts: [], deletes: ['k0'], maxStoreBytes: 10_000, now: 40 });
  await sub.waitFor(latest + 1, 1000);
  assert.deepEqual((seen[seen.length - 1] as { deletes: string[] }).deletes, ['k0']);
  sub.stop();

  assert.equal(await s.pruneChanges(10), 10);
  assert.equal((await s.changesAfter(3)).reset, true);
  assert.equal((await s.changesAfter(10)).reset, false);
  let resets = 0;
  const sub2 = subscribeChanges(s, { fromSeq: 2, onChanges: () => {}, onReset: async () => { resets++; return s.latestSequence(); } });
  await sub2.waitFor(latest + 1);
  sub2.stop();
  assert.equal(resets, 1);
});

test('resources: trust stores, distributions and staged functions have ETag-guarded CRUD with change records', async (t) => {
  const dir = tempDir();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const s = await openSqliteStore({ dataDir: dir });
  t.after(() => s.close());
  const ts = await s.trustStores.create({ id: 't1', name: 'ca', etag: 'T1', document: { pem: 'x' }, now: 1 });
  assert.equal(ts.etag, 'T1');
  await assert.rejects(s.trustStores.create({ id: 't2', name: 'ca', etag: 'T2', document: {}, now: 1 }), { code: 'EntityAlreadyExists' });
  await assert.rejects(s.trustStores.update('ca', { ifMatch: 'bad', newEtag: 'T2', document: {}, now: 2 }), { code: 'PreconditionFailed' });
  const up = await s.trustStores.update('ca', { ifMatch: 'T1', newEtag: 'T2', document: { pem: 'y' }, now: 2 });
  assert.deepEqual(up.document, { pem: 'y' });
  assert.deepEqual((await s.trustStores.list()).map((r) => r.name), ['ca']);
  await s.trustStores.delete('ca', 'T2', 3);
  assert.equal(await s.trustStores.get('ca'), undefined);

  await s.distributions.create({ id: 'd1', name: 'edge', etag: 'D1', document: { listen: ':443' }, now: 1 });
  assert.equal((await s.distributions.get('edge'))?.etag, 'D1');

  await s.functions.create({ id: 'f1', name: 'fn', etag: 'F1', document: { code: 'a' }, now: 1 });
  const live = await s.functions.put('fn', 'LIVE', { ifMatch: null, newEtag: 'L1', document: { code: 'a' }, now: 2 });
  assert.equal(live.stage, 'LIVE');
  await assert.rejects(s.functions.put('fn', 'LIVE', { ifMatch: 'old', newEtag: 'L2', document: {}, now: 3 }), { code: 'PreconditionFailed' });
  assert.deepEqual((await s.functions.list()).map((r) => `${r.name}/${r.stage}/${r.etag}`), ['fn/DEVELOPMENT/F1', 'fn/LIVE/L1']);
  await s.functions.delete('fn', 'F1', 4);
  assert.deepEqual(await s.functions.list(), []);
  const page = await s.changesAfter(0);
  assert.deepEqual(page.changes.map((c) => `${c.entity}:${c.op}:${c.name}`), [
    'trust-store:upsert:ca', 'trust-store:upsert:ca', 'trust-store:delete:ca', 'distribution:upsert:edge',
    'connection-function:upsert:fn', 'connection-function:upsert:fn', 'connection-function:delete:fn',
  ]);
});

test('store: instances opening a new data directory at the same time all succeed; the schema is migrated once', async (t) => {
  const dir = tempDir();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const stores = await Promise.all([1, 2, 3].map(() => openSqliteStore({ dataDir: dir })));
  t.after(async () => { for (const s of stores) await s.close(); });
  await readyStore(stores[0]!, 'one');
  assert.deepEqual((await stores[2]!.kvs.listStores()).map((r) => r.name), ['one']);
});

test('store: opening and reading never wait for a writer — another process holds the write lock (BEGIN IMMEDIATE)', async (t) => {
  const { spawn } = await import('node:child_process');
  const { KeyValueStoreService, KvsReplica } = await import('../kvs/index.js');
  const dir = tempDir();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const setupStore = await openSqliteStore({ dataDir: dir });
  const svc = new KeyValueStoreService(setupStore);
  await svc.create({ name: 'r', importData: Buffer.from('{"data":[{"key":"k","value":"v"}]}') });
  await setupStore.close();
  // Another process takes the write lock and keeps it.
  const holder = spawn(process.execPath, ['--input-type=module', '-e', `
    import Database from 'better-sqlite3';
    const db = new Database(${JSON.stringify(join(dir, SQLITE_FILE_NAME))});
    db.exec('BEGIN IMMEDIATE');
    process.stdout.write('locked\\n');
    setTimeout(() => {}, 60000);
  `], { stdio: ['ignore', 'pipe', 'inherit'], cwd: process.cwd() });
  t.after(() => holder.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    holder.stdout.on('data', (d: Buffer) => { if (d.toString().includes('locked')) resolve(); });
    holder.on('exit', () => reject(new Error('lock holder exited')));
  });
  const started = Date.now();
  // busyTimeoutMs 3000: any wait for the lock would show up as ≥ 3 s (or a failure).
  const s = await openSqliteStore({ dataDir: dir, busyTimeoutMs: 3000 });
  t.after(() => s.close());
  const ro = new KeyValueStoreService(s);
  assert.equal(await ro.recoverInterruptedImports({ wait: false }).then((x) => x.length), 0);
  assert.equal((await ro.describe('r')).ItemCount, 1);
  assert.equal((await ro.getKey('r', 'k')).Value, 'v');
  assert.equal((await ro.listKeys('r')).Items.length, 1);
  assert.equal((await ro.list()).length, 1);
  const replica = await KvsReplica.open(s);
  assert.equal(replica.snapshot('r')?.get('k'), 'v');
  replica.close();
  assert.ok(Date.now() - started < 1500, `reads took ${Date.now() - started} ms: they waited for the writer`);
  // A write does wait, then fails with StoreUnavailable, nothing changed.
  const w = await openSqliteStore({ dataDir: dir, busyTimeoutMs: 200 });
  t.after(() => w.close());
  await assert.rejects(new KeyValueStoreService(w).putKey('r', { key: 'x', value: 'y', ifMatch: (await ro.describe('r')).ETag }), { code: 'StoreUnavailable' });
});

test('store: open checks the schema with a plain read; a file needing migration is migrated under the write lock (concurrent first opens)', async (t) => {
  const dir = tempDir();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const stores = await Promise.all(Array.from({ length: 4 }, () => openSqliteStore({ dataDir: dir })));
  for (const s of stores) assert.equal(await s.latestSequence(), 0);
  await Promise.all(stores.map((s) => s.close()));
  const BetterSqlite3 = (await import('better-sqlite3')).default;
  const { schemaNeedsMigration } = await import('./sqlite.js');
  const raw = new BetterSqlite3(join(dir, SQLITE_FILE_NAME));
  assert.equal(schemaNeedsMigration(raw), false);
  raw.close();
  const fresh = new BetterSqlite3(join(tempDir(), 'x.db'));
  assert.equal(schemaNeedsMigration(fresh), true);
  fresh.close();
});
