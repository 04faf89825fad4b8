import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { openStore, subscribeChanges, migrationNames, type ChangeRecord, type Store } from './index.js';
import { mapPostgresError, openPostgresStore, type PostgresStoreOptions } from './postgres.js';
import { startPostgres, postgresSkipReason, type TestPostgres } from '../../test/helpers/postgres.js';
import { defineStoreContract, readyStore } from '../../test/helpers/store-contract.js';
import { KeyValueStoreService, KvsReplica } from '../kvs/index.js';

const skip = postgresSkipReason();
let server: TestPostgres | undefined;
let dbCounter = 0;

before(async () => {
  if (skip) return;
  server = await startPostgres();
});
after(async () => {
  await server?.destroy();
});

/** A new empty database on the test server. */
async function freshDb(): Promise<string> {
  dbCounter += 1;
  return server!.createDatabase(`t${process.pid}_${dbCounter}`);
}

/** The URL with a password (ignored under trust auth) so messages can be checked for redaction. */
function withPassword(url: string, password = 'hunter2-secret'): string {
  return url.replace('postgres://postgres@', `postgres://postgres:${password}@`);
}

if (skip) {
  test('postgres store tests', { skip }, () => {});
} else {
  // The same contract as the SQLite backend, one database per test.
  defineStoreContract('postgres', async () => {
    const url = await freshDb();
    return { open: () => openStore({ kind: 'postgres', url }), cleanup: () => {} };
  });
}

const pgTest = (name: string, fn: (t: TestContext) => Promise<void>): void => {
  test(`postgres: ${name}`, skip ? { skip } : {}, fn);
};

async function open(url: string, t: TestContext, opts: Partial<PostgresStoreOptions> = {}): Promise<Store> {
  const s = await openPostgresStore({ url, ...opts });
  t.after(() => s.close());
  return s;
}

function waitUntil(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = async (): Promise<void> => {
      try {
        if (await cond()) return resolve();
      } catch { /* keep trying */ }
      if (Date.now() > deadline) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(() => void tick(), 25);
    };
    void tick();
  });
}

pgTest('two nodes opening an empty database at once both come up with one schema', async (t) => {
  const url = await freshDb();
  const stores = await Promise.all(Array.from({ length: 4 }, () => openPostgresStore({ url })));
  t.after(async () => { for (const s of stores) await s.close(); });
  for (const s of stores) assert.equal(await s.latestSequence(), 0);
  const db = url.slice(url.lastIndexOf('/') + 1);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  t.after(() => c.end());
  const migrations = (await c.query('select name from portcullis_migration order by name')).rows.map((r: { name: string }) => r.name);
  assert.deepEqual(migrations, migrationNames('postgres'));
  assert.equal((await c.query('select count(*)::int as n from change_sequence')).rows[0].n, 1);
  const tables = (await c.query(`select count(*)::int as n from information_schema.tables where table_catalog = $1 and table_schema = 'public' and table_name = 'kv_items'`, [db])).rows[0].n;
  assert.equal(tables, 1);
  // key column sorts bytewise whatever the database's default collation.
  const coll = (await c.query(`select collation_name from information_schema.columns where table_name = 'kv_items' and column_name = 'key'`)).rows[0].collation_name;
  assert.equal(coll, 'C');
});

pgTest('20 concurrent writes from two instances get sequences 1..20 without a gap, and each is in the feed once', async (t) => {
  const url = await freshDb();
  const a = await open(url, t);
  const b = await open(url, t);
  const writes = Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).trustStores.create({ id: `t${i}`, name: `ts${i}`, etag: `T${i}`, document: { i }, now: i }));
  await Promise.all(writes);
  assert.equal(await a.latestSequence(), 20);
  const page = await b.changesAfter(0);
  assert.deepEqual(page.changes.map((c) => c.seq), Array.from({ length: 20 }, (_, i) => i + 1));
  assert.deepEqual(page.changes.map((c) => c.name).sort(), Array.from({ length: 20 }, (_, i) => `ts${i}`).sort());
  // Writes whose transactions roll back (a refused write) use no sequence number.
  await assert.rejects(a.trustStores.create({ id: 'dup', name: 'ts0', etag: 'X', document: {}, now: 1 }), { code: 'EntityAlreadyExists' });
  await b.distributions.create({ id: 'd', name: 'd', etag: 'D', document: {}, now: 1 });
  assert.deepEqual((await a.changesAfter(20)).changes.map((c) => c.seq), [21]);
});

pgTest('ten concurrent writers holding the same ETag: exactly one wins (no lost update under READ COMMITTED)', async (t) => {
  const url = await freshDb();
  const stores = await Promise.all(Array.from({ length: 3 }, () => open(url, t)));
  await readyStore(stores[0]!, 'race', 'E1');
  const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => stores[i % 3]!.kvs.updateItems('race', {
    ifMatch: 'E1', newEtag: `W${i}`, puts: [{ key: `k${i}`, value: 'v' }], deletes: [], maxStoreBytes: 1000, now: 3,
  })));
  const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
  assert.equal(won.length, 1, `exactly one winner, got ${won.length}`);
  for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as { code: string }).code, 'PreconditionFailed');
  const rec = (await stores[1]!.kvs.getStore('race'))!;
  assert.equal(rec.etag, `W${won[0]}`);
  assert.equal(rec.itemCount, 1);
  assert.equal(await stores[2]!.latestSequence(), 3);
});

pgTest('a watcher on another instance is woken by NOTIFY (the safety poll is off)', async (t) => {
  const url = await freshDb();
  const writer = await open(url, t);
  const reader = await open(url, t, { pollIntervalMs: 3_600_000 });
  const seen: ChangeRecord[] = [];
  const sub = subscribeChanges(reader, { fromSeq: 0, onChanges: (c) => { seen.push(...c); } });
  t.after(() => sub.stop());
  await waitUntil(async () => (await server!.sql(`select 1 from pg_stat_activity where application_name = 'portcullis-listen' and query ilike 'listen%'`)).length > 0, 'the LISTEN connection');
  await writer.trustStores.create({ id: 't', name: 'ca', etag: 'T', document: {}, now: 1 });
  await sub.waitFor(1, 10_000);
  assert.deepEqual(seen.map((c) => c.name), ['ca']);
});

pgTest('a watcher catches up after its LISTEN connection is killed (pg_terminate_backend) and a change is committed meanwhile', async (t) => {
  const url = await freshDb();
  const writer = await open(url, t, { applicationName: 'writer' });
  const reader = await open(url, t, { pollIntervalMs: 3_600_000, reconnectMaxMs: 200, applicationName: 'reader' });
  const seen: ChangeRecord[] = [];
  const sub = subscribeChanges(reader, { fromSeq: 0, onChanges: (c) => { seen.push(...c); }, retryMs: 100 });
  t.after(() => sub.stop());
  const listenPids = async (): Promise<number[]> => (await server!.sql<{ pid: number }>(
    `select pid from pg_stat_activity where application_name = 'reader-listen' and datname = current_database()`.replace('current_database()', `'${url.slice(url.lastIndexOf('/') + 1)}'`),
  )).map((r) => r.pid);
  await waitUntil(async () => (await listenPids()).length === 1, 'the LISTEN connection');
  const [oldPid] = await listenPids();
  await server!.sql('select pg_terminate_backend($1)', [oldPid]);
  // Committed while the reader is not listening: its NOTIFY reaches nobody of the reader.
  await writer.trustStores.create({ id: 't', name: 'missed', etag: 'T', document: {}, now: 1 });
  await sub.waitFor(1, 10_000);
  await waitUntil(async () => { const p = await listenPids(); return p.length === 1 && p[0] !== oldPid; }, 'a new LISTEN connection');
  // And the new connection delivers notifications again.
  await writer.trustStores.create({ id: 't2', name: 'after', etag: 'T', document: {}, now: 2 });
  await sub.waitFor(2, 10_000);
  assert.deepEqual(seen.map((c) => c.name), ['missed', 'after']);
});

pgTest('the safety poll delivers a change whose notification never came', async (t) => {
  const url = await freshDb();
  const reader = await open(url, t, { pollIntervalMs: 100 });
  const seen: ChangeRecord[] = [];
  const sub = subscribeChanges(reader, { fromSeq: 0, onChanges: (c) => { seen.push(...c); } });
  t.after(() => sub.stop());
  // A change committed without NOTIFY (as if the notification were lost): written by
  // hand, the way appendChanges would.
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  t.after(() => c.end());
  await c.query('begin');
  await c.query('update change_sequence set last_seq = last_seq + 1 where id = 1');
  await c.query(`insert into changes (seq, committed_at, entity, op, name, payload) values (1, 5, 'trust-store', 'delete', 'x', '{"id":"x"}')`);
  await c.query('commit');
  await sub.waitFor(1, 10_000);
  assert.deepEqual(seen.map((r) => `${r.entity}:${r.op}:${r.name}`), ['trust-store:delete:x']);
});

pgTest('server stopped: writes fail with StoreUnavailable naming the database without the password and change nothing; after the restart watchers catch up', async (t) => {
  const url = withPassword(await freshDb());
  const writer = await open(url, t, { connectTimeoutMs: 1000 });
  // No safety poll: the LISTEN connection's drop and reconnection alone must do it.
  const reader = await open(url, t, { pollIntervalMs: 3_600_000, reconnectMaxMs: 300 });
  const svc = new KeyValueStoreService(writer);
  await svc.create({ name: 'revoked', importData: Buffer.from('{"data":[{"key":"01","value":"r"}]}') });
  const replica = await KvsReplica.open(reader);
  t.after(() => replica.close());
  const etag = (await svc.describe('revoked')).ETag;
  await waitUntil(() => replica.snapshot('revoked')?.get('01') === 'r', 'the replica to load');
  const seqBefore = await writer.latestSequence();
  const errors: unknown[] = [];
  const sub = subscribeChanges(reader, { fromSeq: seqBefore, onChanges: () => {}, onError: (e) => errors.push(e), retryMs: 100 });
  t.after(() => sub.stop());

  await server!.stop();
  try {
    const err = await svc.putKey('revoked', { key: '02', value: 'r', ifMatch: etag }).then(() => undefined, (e: unknown) => e);
    assert.ok(err, 'the write must fail');
    assert.equal((err as { code: string }).code, 'StoreUnavailable');
    const msg = (err as Error).message;
    assert.match(msg, /127\.0\.0\.1/);
    assert.match(msg, new RegExp(url.slice(url.lastIndexOf('/') + 1)));
    assert.doesNotMatch(msg, /hunter2/);
    await assert.rejects(writer.kvs.listStores(), { code: 'StoreUnavailable' });
    // The replica keeps serving what it applied; the subscription reports the outage.
    assert.equal(replica.snapshot('revoked')?.get('01'), 'r');
    await waitUntil(() => sub.degraded, 'the subscription to notice the outage');
    assert.equal((sub.lastError as { code?: string }).code, 'StoreUnavailable');
    assert.ok(errors.length > 0);
  } finally {
    await server!.start();
  }
  // Nothing of the failed write happened.
  assert.equal(await writer.latestSequence(), seqBefore);
  assert.equal((await svc.describe('revoked')).ETag, etag);
  // A write after the restart reaches the replica on the other instance.
  await svc.putKey('revoked', { key: '03', value: 'r', ifMatch: etag });
  await waitUntil(() => replica.snapshot('revoked')?.get('03') === 'r', 'the replica to catch up after the restart');
  assert.equal(replica.snapshot('revoked')?.get('02'), undefined);
  await waitUntil(() => !sub.degraded, 'the subscription to recover');
});

pgTest('a write waiting for the write lock gives up after lockTimeoutMs with StoreUnavailable; wait:false gives up at once', async (t) => {
  const url = await freshDb();
  const s = await open(url, t, { lockTimeoutMs: 300 });
  await readyStore(s, 'locked', 'E1');
  await s.kvs.createStore({ id: 'stale', name: 'stale', comment: '', etag: 'S', now: 1 });
  const holder = new pg.Client({ connectionString: url });
  await holder.connect();
  t.after(() => holder.end());
  await holder.query('begin');
  await holder.query('select last_seq from change_sequence where id = 1 for update');
  try {
    await assert.rejects(
      s.kvs.updateItems('locked', { ifMatch: 'E1', newEtag: 'E2', puts: [{ key: 'k', value: 'v' }], deletes: [], maxStoreBytes: 1000, now: 3 }),
      (err: Error & { code?: string }) => err.code === 'StoreUnavailable' && /lock timeout \(300 ms/.test(err.message),
    );
    await assert.rejects(
      s.kvs.failStaleProvisioning(10, { reason: 'r', now: 20, etag: () => 'X', wait: false }),
      { code: 'StoreUnavailable' },
    );
  } finally {
    await holder.query('rollback');
  }
  assert.equal((await s.kvs.getStore('locked'))!.etag, 'E1');
  assert.deepEqual(await s.kvs.failStaleProvisioning(10, { reason: 'r', now: 20, etag: () => 'X', wait: false }), ['stale']);
});

pgTest('NUL characters are refused with InvalidArgument before anything is written', async (t) => {
  const url = await freshDb();
  const s = await open(url, t);
  await readyStore(s, 'nul', 'E1');
  await assert.rejects(
    s.kvs.updateItems('nul', { ifMatch: 'E1', newEtag: 'E2', puts: [{ key: 'a\u0000b', value: 'v' }], deletes: [], maxStoreBytes: 1000, now: 3 }),
    { code: 'InvalidArgument' },
  );
  await assert.rejects(
    s.kvs.updateItems('nul', { ifMatch: 'E1', newEtag: 'E2', puts: [{ key: 'a', value: '\u0000' }], deletes: [], maxStoreBytes: 1000, now: 3 }),
    { code: 'InvalidArgument' },
  );
  assert.equal((await s.kvs.getStore('nul'))!.etag, 'E1');
});

pgTest('opening an unreachable server fails with StoreUnavailable naming host and database, never the password', async () => {
  const { createServer } = await import('node:net');
  const port = await new Promise<number>((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => resolve(p));
    });
  });
  const url = `postgres://app:s3cr3t-pw@127.0.0.1:${port}/portcullis`;
  const err = await openStore({ kind: 'postgres', url, connectTimeoutMs: 1000 }).then(() => undefined, (e: unknown) => e as Error & { code: string });
  assert.ok(err);
  assert.equal(err.code, 'StoreUnavailable');
  assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}/portcullis`));
  assert.doesNotMatch(err.message, /s3cr3t/);
  await assert.rejects(openStore({ kind: 'postgres', url: 'mysql://x@y/z' }), { code: 'StoreUnavailable' });
  await assert.rejects(openPostgresStore({ url: 'postgres://x@127.0.0.1/z', poolSize: 0 }), { code: 'StoreUnavailable' });
});

pgTest('a database that does not exist, or a login that is refused, is StoreUnavailable with the reason', async () => {
  const missing = `postgres://postgres:pw@127.0.0.1:${server!.port}/no_such_db`;
  await assert.rejects(openStore({ kind: 'postgres', url: missing }), (err: Error & { code?: string }) =>
    err.code === 'StoreUnavailable' && /no_such_db/.test(err.message) && /does not exist/.test(err.message) && !/:pw@/.test(err.message));
});

pgTest('a snapshot written from PostgreSQL serves the same state while the server is down', async (t) => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { writeSnapshot, openSnapshotStore } = await import('./index.js');
  const url = withPassword(await freshDb());
  const s = await open(url, t);
  const svc = new KeyValueStoreService(s);
  await svc.create({ name: 'revoked', importData: Buffer.from('{"data":[{"key":"01","value":"r"},{"key":"B","value":"x"},{"key":"a","value":"y"}]}') });
  await s.trustStores.create({ id: 't', name: 'ca', etag: 'T', document: { pem: 'p' }, now: 1 });
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-pgsnap-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'state.snapshot');
  const w = await writeSnapshot(s, file);
  assert.equal(w.seq, await s.latestSequence());
  await server!.stop();
  try {
    const snap = await openSnapshotStore(file);
    t.after(() => snap.close());
    assert.equal(await snap.latestSequence(), w.seq);
    assert.doesNotMatch(snap.snapshot.source, /hunter2/);
    assert.match(snap.snapshot.source, /127\.0\.0\.1/);
    const rec = (await snap.kvs.getStore('revoked'))!;
    assert.deepEqual((await snap.kvs.listItems(rec.id, { limit: 10 })).map((i) => i.key), ['01', 'B', 'a']);
    assert.equal((await snap.trustStores.get('ca'))?.etag, 'T');
  } finally {
    await server!.start();
  }
});

pgTest('a server that stops answering (frozen backend) fails reads and writes with StoreUnavailable within the timeouts; the next call gets a fresh connection', async (t) => {
  const url = await freshDb();
  const dbName = url.slice(url.lastIndexOf('/') + 1);
  const s = await open(url, t, { statementTimeoutMs: 400, poolSize: 1, applicationName: 'frozen' });
  await readyStore(s, 'f', 'E1');
  const pids = (await server!.sql<{ pid: number }>(`select pid from pg_stat_activity where application_name = 'frozen' and datname = $1`, [dbName])).map((r) => r.pid);
  assert.equal(pids.length, 1, 'one pooled connection');
  for (const pid of pids) process.kill(pid, 'SIGSTOP');
  try {
    await assert.rejects(s.kvs.listStores(), (err: Error & { code?: string }) => err.code === 'StoreUnavailable' && /did not answer within 800 ms/.test(err.message));
  } finally {
    for (const pid of pids) process.kill(pid, 'SIGCONT');
  }
  // The frozen connection was discarded: the pool's next connection is a new backend.
  assert.equal((await s.kvs.listStores()).length, 1);
  const now = (await server!.sql<{ pid: number }>(`select pid from pg_stat_activity where application_name = 'frozen' and datname = $1`, [dbName])).map((r) => r.pid);
  assert.ok(now.length >= 1 && !now.includes(pids[0]!), `a new backend serves the pool (was ${pids[0]}, now ${now.join(',')})`);
  // A write on a frozen connection fails too, and changes nothing.
  const [writePid] = now;
  process.kill(writePid!, 'SIGSTOP');
  try {
    await assert.rejects(
      s.kvs.updateItems('f', { ifMatch: 'E1', newEtag: 'E2', puts: [{ key: 'k', value: 'v' }], deletes: [], maxStoreBytes: 1000, now: 3 }),
      { code: 'StoreUnavailable' },
    );
  } finally {
    process.kill(writePid!, 'SIGCONT');
  }
  assert.equal((await s.kvs.getStore('f'))!.etag, 'E1');
});

pgTest('a node starting while another holds the migration lock waits for it, then finds the schema ready', async (t) => {
  const { MIGRATION_ADVISORY_LOCK_KEY } = await import('./postgres.js');
  const url = await freshDb();
  const dbName = url.slice(url.lastIndexOf('/') + 1);
  const holder = new pg.Client({ connectionString: url });
  await holder.connect();
  t.after(() => holder.end());
  await holder.query('select pg_advisory_lock($1::bigint)', [String(MIGRATION_ADVISORY_LOCK_KEY)]);
  let settled = false;
  const opening = openPostgresStore({ url, statementTimeoutMs: 200 }).finally(() => { settled = true; });
  // The starting node is blocked on the advisory lock (not failed by the pool's 200 ms statement limit).
  await waitUntil(async () => (await server!.sql(
    `select 1 from pg_stat_activity where application_name = 'portcullis-migrate' and datname = $1 and wait_event_type = 'Lock'`, [dbName],
  )).length === 1, 'the migration to wait for the lock');
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(settled, false);
  await holder.query('select pg_advisory_unlock($1::bigint)', [String(MIGRATION_ADVISORY_LOCK_KEY)]);
  const s = await opening;
  t.after(() => s.close());
  assert.equal(await s.latestSequence(), 0);
});

pgTest('the database dropped and re-created under running nodes: their subscriptions see the new cluster id (and a latest below theirs) and reload, then follow the new feed', async (t) => {
  const name = `t${process.pid}_recreated`;
  const url = await server!.createDatabase(name);
  const node = await open(url, t, { pollIntervalMs: 50 });
  for (let i = 0; i < 8; i++) await node.trustStores.create({ id: `t${i}`, name: `t${i}`, etag: 'E', document: {}, now: 1 });
  const oldId = await node.clusterId();
  let reloads = 0;
  let reloadedAt = -1;
  const errors: string[] = [];
  const seen: ChangeRecord[] = [];
  const sub = subscribeChanges(node, {
    fromSeq: 8, onChanges: (c) => { seen.push(...c); },
    onReset: async () => { reloads++; reloadedAt = await node.latestSequence(); return reloadedAt; }, onError: (err) => errors.push((err as Error).message),
  });
  t.after(() => sub.stop());
  await waitUntil(() => sub.clusterId === oldId, 'the first page');
  await server!.sql(`drop database "${name}" with (force)`);
  await server!.createDatabase(name);
  // A new node migrates the new database and revokes a certificate (sequence 1 and 2).
  const fresh = await open(url, t);
  const newId = await fresh.clusterId();
  assert.notEqual(newId, oldId);
  await readyStore(fresh, 'revoked', 'E1');
  await waitUntil(() => reloads > 0 && sub.lastSeq === 2, 'the reload from the new database');
  assert.equal(sub.clusterId, newId);
  // Only changes after the reload point were applied (on top of the reloaded state).
  assert.deepEqual(seen.map((c) => c.seq), Array.from({ length: 2 - reloadedAt }, (_, i) => reloadedAt + 1 + i));
  assert.ok(errors.some((m) => m.includes(oldId) && m.includes(newId)), errors.join('\n'));
  // Then it follows the new database's feed.
  await fresh.kvs.updateItems('revoked', { ifMatch: 'E1', newEtag: 'E2', puts: [{ key: '01', value: 'r' }], deletes: [], maxStoreBytes: 1000, now: 3 });
  await sub.waitFor(3, 10_000);
  assert.deepEqual(seen.map((c) => c.seq).slice(-1), [3]);
});

test('mapPostgresError: network-level unavailability is transient; login, missing database, privileges, invalid URL are not', () => {
  const ctx = { location: 'postgres://app:…@db:5432/edge', lockTimeoutMs: 1, statementTimeoutMs: 1, connectTimeoutMs: 1, poolSize: 1 };
  const server = (code: string, message = 'm') => Object.assign(new Error(message), { code, severity: 'FATAL' });
  const cases: [unknown, boolean][] = [
    [Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:5432'), { code: 'ECONNREFUSED' }), true],
    [Object.assign(new Error('connect ETIMEDOUT'), { code: 'ETIMEDOUT' }), true],
    [Object.assign(new Error('connect EHOSTUNREACH'), { code: 'EHOSTUNREACH' }), true],
    [Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), true],
    [new Error('Connection terminated unexpectedly'), true],
    [new Error('timeout exceeded when trying to connect'), true],
    [server('57P01', 'terminating connection due to administrator command'), true],
    [server('57P03', 'the database system is starting up'), true],
    [server('53300', 'sorry, too many clients already'), true],
    [server('55P03'), true],
    [server('28P01', 'password authentication failed for user "app"'), false],
    [server('28000', 'role "app" is not permitted to log in'), false],
    [server('3D000', 'database "edge" does not exist'), false],
    [server('42501', 'permission denied for schema public'), false],
    [Object.assign(new TypeError('Invalid URL'), { code: 'ERR_INVALID_URL' }), false],
  ];
  for (const [err, transient] of cases) {
    const mapped = mapPostgresError(err, ctx) as { code?: string; transient?: boolean; message: string };
    assert.equal(mapped.code, 'StoreUnavailable', mapped.message);
    assert.equal(mapped.transient, transient, mapped.message);
  }
});

pgTest('openNodeStore: a login that is refused or a database that does not exist is fatal even with a snapshot; an unreachable server falls back to it', async (t) => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { openNodeStore, fallbackStatus, writeSnapshot } = await import('./index.js');
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-pgfatal-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  await server!.sql('do $$ begin if not exists (select from pg_roles where rolname = \'cannot_login\') then create role cannot_login nologin; end if; end $$');
  const src = await openSqliteStoreFor(dir);
  t.after(() => src.close());
  const cases: [string, RegExp][] = [
    [`postgres://cannot_login:pw@127.0.0.1:${server!.port}/postgres`, /refused the login: .*not permitted to log in \(SQLSTATE 28000\)/],
    [`postgres://postgres:pw@127.0.0.1:${server!.port}/no_such_db`, /database "no_such_db" does not exist \(SQLSTATE 3D000\)/],
  ];
  for (const [url, re] of cases) {
    // A snapshot of exactly this database, as the node would have written it.
    const file = join(dir, 'snap.json');
    await writeSnapshot(Object.assign(Object.create(Object.getPrototypeOf(src) as object) as Store, src, { location: url.replace(':pw@', ':…@') }), file);
    const err = await openNodeStore({ store: { kind: 'postgres', url }, snapshotFile: file }).then(() => undefined, (e: unknown) => e as Error & { code: string; transient: boolean });
    assert.ok(err, url);
    assert.equal(err.code, 'StoreUnavailable');
    assert.equal(err.transient, false);
    assert.match(err.message, re);
    assert.doesNotMatch(err.message, /refusing to serve without state|:pw@/);
  }
  // Nothing listens: transient, the snapshot is served.
  const down = `postgres://postgres:pw@127.0.0.1:1/postgres`;
  const file = join(dir, 'down.json');
  await writeSnapshot(Object.assign(Object.create(Object.getPrototypeOf(src) as object) as Store, src, { location: down.replace(':pw@', ':…@') }), file);
  const served = await openNodeStore({ store: { kind: 'postgres', url: down, connectTimeoutMs: 2000 }, snapshotFile: file, retryMs: 60_000 });
  t.after(() => served.close());
  assert.equal(fallbackStatus(served)?.connected, false);
});

async function openSqliteStoreFor(dir: string): Promise<Store> {
  const { join } = await import('node:path');
  const s = await openStore({ kind: 'sqlite', dataDir: join(dir, 'src') });
  await s.trustStores.create({ id: 't', name: 't', etag: 'E', document: {}, now: 1 });
  return s;
}

test('an invalid PostgreSQL URL is refused saying what is wrong (port, unencoded characters), never echoing the password, not transient', async () => {
  const cases: [string, RegExp][] = [
    ['postgres://app:s3cr3t-pw@db.example:99999/edge', /the port 99999 is out of range \(1-65535\)/],
    ['postgres://app:s3cr3t-pw@db.example:54x2/edge', /the port is not a number/],
    ['postgres://app:s3cr3t/pw@db.example:5432/edge', /percent-encode/],
    ['postgres://app:s3cr3t%zz-pw@db.example/edge', /write "%" as %25/],
  ];
  for (const [url, re] of cases) {
    const err = await openPostgresStore({ url }).then(() => undefined, (e: unknown) => e as Error & { code: string; transient: boolean });
    assert.ok(err, url);
    assert.equal(err.code, 'StoreUnavailable');
    assert.equal(err.transient, false);
    assert.match(err.message, re);
    assert.match(err.message, /is not a valid PostgreSQL URL/);
    assert.doesNotMatch(err.message, /s3cr3t/);
  }
});

pgTest('a role without CREATE on schema public: the migration reports the first error (42501) with a hint, not "current transaction is aborted"', async (t) => {
  const url = await freshDb();
  await server!.sql('do $$ begin if not exists (select from pg_roles where rolname = \'no_create\') then create role no_create login; end if; end $$');
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  t.after(() => admin.end());
  await admin.query('revoke create on schema public from public');
  const err = await openPostgresStore({ url: url.replace('postgres://postgres@', 'postgres://no_create:pw@') })
    .then(() => undefined, (e: unknown) => e as Error & { code: string; transient: boolean });
  assert.ok(err);
  assert.equal(err.code, 'StoreUnavailable');
  assert.equal(err.transient, false);
  assert.match(err.message, /permission denied for schema public \(SQLSTATE 42501\)/);
  assert.match(err.message, /the role needs CREATE on the database's public schema for the first start; see README|the role needs CREATE on the database's public schema for the first start \(and for a start that applies a new migration\); see README "Running a cluster"/);
  assert.doesNotMatch(err.message, /25P02|current transaction is aborted|:pw@/);
});
