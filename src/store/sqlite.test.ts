import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore, SQLITE_FILE_NAME } from './index.js';
import { migrationNames } from './migrations.js';
import { defineStoreContract, readyStore } from '../../test/helpers/store-contract.js';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'portcullis-store-'));
}

// The Store contract (shared with the PostgreSQL backend), one data directory per test.
defineStoreContract('sqlite', async () => {
  const dir = tempDir();
  return { open: () => openSqliteStore({ dataDir: dir }), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
});

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
  assert.deepEqual(migrationNames(), ['0001_initial', '0002_nodes', '0003_cluster_identity', '0004_node_instance']);
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
