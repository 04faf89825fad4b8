import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StoreUnavailableError } from '../errors.js';
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
    (err: Error & { code?: string }) => {
      assert.equal(err.code, 'StoreUnavailable');
      assert.match(err.message, /local snapshot .*corrupt\.json cannot be used \(it is not a Portcullis store snapshot/);
      assert.equal(err.message.split('corrupt.json').length, 2, `the path once: ${err.message}`);
      return true;
    },
  );
  // A valid snapshot of another database: refused (never serve another database's state).
  const src = await openStore({ kind: 'sqlite', dataDir: join(dir, 'src') });
  await readyStore(src, 'k');
  await writeSnapshot(src, join(dir, 'other.json'));
  await assert.rejects(
    openNodeStore({ store: bad, snapshotFile: join(dir, 'other.json') }),
    (err: Error & { code?: string }) => err.code === 'StoreUnavailable' && /was taken from another database/.test(err.message)
      && err.message.includes(join(dir, 'src', 'portcullis.db')) && err.message.includes(join(dir, 'blocked', 'db', 'portcullis.db')),
  );
  // A valid snapshot of this database (as the node wrote it while it was reachable): served.
  const asBad = Object.assign(Object.create(Object.getPrototypeOf(src) as object) as Store, src, { location: join(dir, 'blocked', 'db', 'portcullis.db') });
  const info = await writeSnapshot(asBad, join(dir, 'good.json'));
  await src.close();
  const served = await openNodeStore({ store: bad, snapshotFile: join(dir, 'good.json'), retryMs: 10_000 });
  t.after(() => served.close());
  assert.equal(fallbackStatus(served)?.snapshotSeq, info.seq);
  assert.equal(fallbackStatus(served)?.snapshotWrittenAt, info.writtenAt);
  assert.deepEqual((await served.kvs.listStores()).map((s) => s.name), ['k']);
});

test('openNodeStore: a PostgreSQL snapshot is served only for the same host, port and database (user and password do not matter)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-fallback-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const src = await openStore({ kind: 'sqlite', dataDir: join(dir, 'src') });
  t.after(() => src.close());
  await readyStore(src, 'k');
  const as = (location: string): Store => Object.assign(Object.create(Object.getPrototypeOf(src) as object) as Store, src, { location });
  // Port 1 on loopback: nothing listens, the connection is refused at once.
  await writeSnapshot(as('postgres://portcullis:…@127.0.0.1:1/edge'), join(dir, 'same.json'));
  await writeSnapshot(as('postgres://portcullis:…@127.0.0.1:1/other'), join(dir, 'otherdb.json'));
  await writeSnapshot(as('the PostgreSQL database postgres://portcullis:…@127.0.0.1:1/edge'), join(dir, 'old-wording.json'));
  const store = { kind: 'postgres' as const, url: 'postgres://someone:secret-pw@127.0.0.1:1/edge', connectTimeoutMs: 2000 };
  const served = await openNodeStore({ store, snapshotFile: join(dir, 'same.json'), retryMs: 60_000 });
  await served.close();
  const old = await openNodeStore({ store, snapshotFile: join(dir, 'old-wording.json'), retryMs: 60_000 });
  await old.close();
  await assert.rejects(openNodeStore({ store, snapshotFile: join(dir, 'otherdb.json') }), (err: Error) => {
    assert.match(err.message, /taken from another database \(postgres:\/\/portcullis:…@127\.0\.0\.1:1\/other, not postgres:\/\/someone:…@127\.0\.0\.1:1\/edge\)/);
    assert.ok(!err.message.includes('secret-pw'));
    return true;
  });
});

test('fallback store: a database with another cluster id than the snapshot\'s: reported, and subscribers reload from the database instead of applying its feed to the snapshot', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-fallback-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const oldDb = await openStore({ kind: 'sqlite', dataDir: join(dir, 'old') });
  await readyStore(oldDb, 'revoked');
  for (let i = 0; i < 5; i++) await oldDb.trustStores.create({ id: `t${i}`, name: `t${i}`, etag: 'E', document: {}, now: 1 });
  const file = join(dir, 'snap.json');
  const snap = await writeSnapshot(oldDb, file);
  await oldDb.close();
  // The database was re-created: a new identity and fewer changes (and, with more
  // changes, their sequences would mean other writes).
  const newDb = await openStore({ kind: 'sqlite', dataDir: join(dir, 'new'), pollIntervalMs: 20 });
  t.after(() => newDb.close());
  await newDb.trustStores.create({ id: 'n', name: 'n', etag: 'E', document: {}, now: 1 });
  let reachable = false;
  const events: { type: string; snapshotClusterId?: string; databaseClusterId?: string }[] = [];
  const fb = await FallbackStore.start({
    snapshot: await openSnapshotStore(file),
    connect: async () => {
      if (!reachable) throw new Error('connection refused');
      return openStore({ kind: 'sqlite', dataDir: join(dir, 'new'), pollIntervalMs: 20 });
    },
    location: 'the test database', retryMs: 20, onEvent: (e) => events.push(e),
  });
  t.after(() => fb.close());
  assert.equal(await fb.clusterId(), snap.clusterId);
  let reloads = 0;
  const errors: string[] = [];
  const sub = subscribeChanges(fb, {
    fromSeq: snap.seq, onChanges: () => {}, onReset: async () => { reloads++; return fb.latestSequence(); },
    onError: (err) => errors.push((err as Error).message),
  });
  t.after(() => sub.stop());
  await until(() => sub.clusterId !== undefined, 'the first page');
  assert.equal(sub.clusterId, snap.clusterId);
  reachable = true;
  await until(() => reloads > 0, 'the reload');
  const dbId = await newDb.clusterId();
  assert.equal(sub.clusterId, dbId);
  assert.equal(sub.lastSeq, 1);
  assert.deepEqual(events.find((e) => e.type === 'cluster-mismatch'), { type: 'cluster-mismatch', snapshotClusterId: snap.clusterId, databaseClusterId: dbId });
  assert.equal(fallbackStatus(fb)?.clusterMismatch, dbId);
  assert.ok(errors.some((m) => m.includes(dbId) && m.includes(snap.clusterId)), errors.join('\n'));
  assert.deepEqual((await fb.trustStores.list()).map((r) => r.name), ['n'], 'reads come from the database');
});

test('fallback store: an attempt that fails for a reason retrying cannot fix (refused login) stops the retries and is reported as fatal', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-fallback-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const db = await openStore({ kind: 'sqlite', dataDir: join(dir, 'db') });
  await readyStore(db, 'k');
  const file = join(dir, 'snap.json');
  await writeSnapshot(db, file);
  await db.close();
  let attempts = 0;
  const events: { type: string; final?: boolean }[] = [];
  const fb = await FallbackStore.start({
    snapshot: await openSnapshotStore(file),
    connect: async () => {
      attempts++;
      if (attempts < 3) throw new StoreUnavailableError('cannot reach PostgreSQL at x: connect ECONNREFUSED');
      throw new StoreUnavailableError('PostgreSQL at x refused the login: password authentication failed (SQLSTATE 28P01)', { transient: false });
    },
    location: 'postgres://app:…@db/edge', retryMs: 10, onEvent: (e) => events.push(e),
  });
  t.after(() => fb.close());
  await until(() => fallbackStatus(fb)?.fatalError !== undefined, 'the fatal error');
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(attempts, 3, 'no attempt after the refused login');
  assert.match(fallbackStatus(fb)!.fatalError!, /refused the login/);
  assert.deepEqual(events.map((e) => [e.type, e.final ?? false]), [['connect-failed', false], ['connect-failed', false], ['connect-failed', true]]);
  assert.deepEqual((await fb.kvs.listStores()).map((s) => s.name), ['k'], 'the snapshot is still served (reported degraded by the node)');
});

test('openNodeStore messages: "the database postgres://… is unreachable" (no doubled wording), and a snapshot written while serving records the URL as its source', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-fallback-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const src = await openStore({ kind: 'sqlite', dataDir: join(dir, 'src') });
  t.after(() => src.close());
  await readyStore(src, 'k');
  const url = 'postgres://app:secret-pw@127.0.0.1:1/edge';
  const location = 'postgres://app:…@127.0.0.1:1/edge';
  await writeSnapshot(Object.assign(Object.create(Object.getPrototypeOf(src) as object) as Store, src, { location }), join(dir, 'snap.json'));
  const served = await openNodeStore({ store: { kind: 'postgres', url, connectTimeoutMs: 2000 }, snapshotFile: join(dir, 'snap.json'), retryMs: 60_000 });
  t.after(() => served.close());
  assert.equal(served.location, location);
  await assert.rejects(served.trustStores.create({ id: 'x', name: 'x', etag: 'E', document: {}, now: 1 }), (err: Error) => {
    assert.match(err.message, /^the database postgres:\/\/app:…@127\.0\.0\.1:1\/edge is unreachable \(since this node started/);
    assert.doesNotMatch(err.message, /the database the PostgreSQL database|secret-pw/);
    return true;
  });
  // What the node's snapshot writer would record from this store: the URL, not a phrase.
  const info = await writeSnapshot(served, join(dir, 'again.json'));
  assert.equal((await openSnapshotStore(join(dir, 'again.json')).then(async (s) => { const src2 = s.snapshot.source; await s.close(); return src2; })), location);
  assert.ok(info.seq >= 0);
});
