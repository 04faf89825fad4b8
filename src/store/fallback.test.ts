import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FallbackStore, fallbackStatus, openNodeStore, openSnapshotStore, openStore, subscribeChanges, writeSnapshot, type ChangeRecord, type Store } from './index.js';

async function readyStore(s: Store, name: string): Promise<string> {
  const r = await s.kvs.createStore({ id: `id-${name}`, name, comment: '', etag: 'P', now: 1 });
  await s.kvs.completeImport(r.id, [{ key: 'a', value: '1' }], { etag: 'E0', now: 2, maxStoreBytes: 1000 });
  return 'E0';
}

async function until(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('fallback store: serves the snapshot while the database is unreachable, refuses writes clearly, then follows the database from the snapshot sequence (nothing lost)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-fallback-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const db = await openStore({ kind: 'sqlite', dataDir: join(dir, 'db'), pollIntervalMs: 20 });
  t.after(() => db.close());
  await readyStore(db, 'revoked');
  const file = join(dir, 'snap.json');
  const snap = await writeSnapshot(db, file);
  // Changes after the snapshot, made while "this node" is away.
  await db.kvs.updateItems('revoked', { ifMatch: 'E0', newEtag: 'E1', puts: [{ key: 'b', value: '2' }], deletes: [], maxStoreBytes: 1000, now: 3 });

  let reachable = false;
  let attempts = 0;
  const events: string[] = [];
  const fb = await FallbackStore.start({
    snapshot: await openSnapshotStore(file),
    connect: async () => {
      attempts++;
      if (!reachable) throw new Error('connection refused');
      return openStore({ kind: 'sqlite', dataDir: join(dir, 'db'), pollIntervalMs: 20 });
    },
    location: 'the test database', retryMs: 20,
    onEvent: (e) => events.push(e.type),
  });
  t.after(() => fb.close());
  assert.equal(await fb.latestSequence(), snap.seq);
  assert.equal(fb.nodes, undefined, 'no node table before the database is reached');
  const rec = await fb.kvs.getStore('revoked');
  assert.equal(await fb.kvs.getItem(rec!.id, 'a'), '1');
  assert.equal(await fb.kvs.getItem(rec!.id, 'b'), undefined, 'the snapshot predates b');
  await assert.rejects(
    fb.kvs.updateItems('revoked', { ifMatch: 'E1', newEtag: 'E2', puts: [], deletes: [], maxStoreBytes: 1000, now: 4 }),
    (err: Error & { code?: string }) => err.code === 'StoreUnavailable' && /unreachable/.test(err.message) && new RegExp(`snapshot at sequence ${snap.seq}`).test(err.message),
  );
  const delivered: ChangeRecord[] = [];
  const sub = subscribeChanges(fb, { fromSeq: snap.seq, onChanges: (c) => { delivered.push(...c); } });
  t.after(() => sub.stop());
  await until(() => attempts >= 2, 'connection attempts');
  assert.equal(delivered.length, 0);
  assert.equal(fallbackStatus(fb)?.connected, false);
  assert.match(fallbackStatus(fb)?.lastError ?? '', /connection refused/);

  reachable = true;
  await until(() => delivered.length > 0, 'the change made after the snapshot');
  assert.deepEqual(delivered.map((c) => [c.entity, c.op, c.seq]), [['kvs', 'batch', snap.seq + 1]]);
  assert.equal(fallbackStatus(fb)?.connected, true);
  assert.ok(events.includes('connect-failed') && events.includes('connected'));
  // A change after the reconnection arrives through the database's watch.
  await db.kvs.updateItems('revoked', { ifMatch: 'E1', newEtag: 'E2', puts: [{ key: 'c', value: '3' }], deletes: [], maxStoreBytes: 1000, now: 5 });
  await until(() => delivered.length === 2, 'the change made after the reconnection');
  assert.equal(await fb.kvs.getItem(rec!.id, 'c'), '3', 'reads now come from the database');
  assert.ok(fb.nodes, 'the node table is the database\'s');
});

test('openNodeStore: the database when reachable; unreachable without a snapshot or with a corrupt one: refused with both reasons', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-fallback-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ok = await openNodeStore({ store: { kind: 'sqlite', dataDir: join(dir, 'db') } });
  assert.equal(fallbackStatus(ok), undefined);
  await ok.close();
  // A data directory that cannot be created: a file stands where it should be.
  writeFileSync(join(dir, 'blocked'), 'x');
  const bad = { kind: 'sqlite' as const, dataDir: join(dir, 'blocked', 'db') };
  await assert.rejects(openNodeStore({ store: bad }), (err: Error & { code?: string }) => err.code === 'StoreUnavailable' && /refusing to serve without state/.test(err.message) && /snapshotFile/.test(err.message));
  writeFileSync(join(dir, 'corrupt.json'), '{"not":"a snapshot"}\n');
  await assert.rejects(
    openNodeStore({ store: bad, snapshotFile: join(dir, 'corrupt.json') }),
    (err: Error & { code?: string }) => err.code === 'StoreUnavailable' && /local snapshot .*corrupt\.json cannot be used/.test(err.message),
  );
  // A valid snapshot: served.
  const src = await openStore({ kind: 'sqlite', dataDir: join(dir, 'src') });
  await readyStore(src, 'k');
  const info = await writeSnapshot(src, join(dir, 'good.json'));
  await src.close();
  const served = await openNodeStore({ store: bad, snapshotFile: join(dir, 'good.json'), retryMs: 10_000 });
  t.after(() => served.close());
  assert.equal(fallbackStatus(served)?.snapshotSeq, info.seq);
  assert.equal(fallbackStatus(served)?.snapshotWrittenAt, info.writtenAt);
  assert.deepEqual((await served.kvs.listStores()).map((s) => s.name), ['k']);
});
