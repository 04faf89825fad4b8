import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { configFromTree } from '../config/index.js';
import { openSnapshotStore, openSqliteStore, readSnapshotInfo, type NodeRecord, type NodeRepository, type Store } from '../store/index.js';
import { NodeAgent, PORTCULLIS_VERSION, type NodeProgress } from './cluster.js';
import { NodeNameConflictError } from '../errors.js';

test('node agent: heartbeats the applied sequence; a failing heartbeat turns /readyz degraded with the reason and recovers; writes the snapshot and prunes old changes only while the database is reachable', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-agent-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const db = await openSqliteStore({ dataDir: join(dir, 'data') });
  t.after(() => db.close());
  // Two changes committed long ago (older than the retention), one now.
  await db.trustStores.create({ id: 'old1', name: 'old1', etag: 'E', document: {}, now: 1000 });
  await db.trustStores.create({ id: 'old2', name: 'old2', etag: 'E', document: {}, now: 2000 });
  await db.trustStores.create({ id: 'new', name: 'new', etag: 'E', document: {}, now: Date.now() });
  let down = false;
  const nodes: NodeRepository = {
    heartbeat: async (r) => { if (down) throw new Error('connect ECONNREFUSED'); return db.nodes!.heartbeat(r); },
    list: () => db.nodes!.list(),
    remove: (n) => db.nodes!.remove(n),
    leave: (n, i) => db.nodes!.leave(n, i),
    sequenceCommittedBefore: (time) => db.nodes!.sequenceCommittedBefore(time),
  };
  const store: Store = Object.assign(Object.create(Object.getPrototypeOf(db) as object) as Store, db, { nodes });
  const snapshotFile = join(dir, 'snap.json');
  const config = configFromTree(join(dir, 'portcullis.yaml'), {
    nodeName: 'edge-1', cluster: { heartbeatIntervalMs: 100, changeRetentionSeconds: 60, snapshotFile, snapshotIntervalMs: 100 },
  }, {});
  let progress: NodeProgress = { appliedSeq: 3, degraded: [], starting: [] };
  const agent = new NodeAgent({
    config, logger: pino({ level: 'silent' }), store, progress: async () => progress,
    listeners: () => [{ distribution: 'api', address: '127.0.0.1:8443', port: 8443 }], adminAddress: () => '127.0.0.1:9901',
  });
  t.after(() => agent.close());

  await agent.tick();
  await agent.settled();
  const [row] = await db.nodes!.list();
  assert.equal(row?.name, 'edge-1');
  assert.equal(row?.appliedSeq, 3);
  assert.equal(row?.status, 'ok');
  assert.equal(row?.version, PORTCULLIS_VERSION);
  assert.equal(row?.adminAddress, '127.0.0.1:9901');
  assert.deepEqual(agent.readiness().status, 'ok');
  assert.equal(agent.readiness().details?.appliedSequence, 3);
  // Snapshot written from the database at its latest sequence.
  assert.ok(existsSync(snapshotFile));
  const snap = await openSnapshotStore(snapshotFile);
  assert.equal(await snap.latestSequence(), 3);
  await snap.close();
  // Changes older than the retention pruned (through sequence 2), the recent one kept.
  const page = await db.changesAfter(2);
  assert.deepEqual(page.changes.map((c) => c.seq), [3]);
  assert.equal((await db.changesAfter(0)).reset, true);

  down = true;
  await agent.tick();
  const r = agent.readiness();
  assert.equal(r.status, 'degraded');
  assert.equal(r.ready, true, 'the edge keeps serving');
  assert.equal(r.reasons.length, 1);
  assert.match(r.reasons[0]!, /^the database has been unreachable since \d{4}-\d\d-\d\dT.* \(connect ECONNREFUSED\); serving the last applied state at sequence 3; writes are refused$/);
  assert.ok(typeof r.details?.databaseUnreachableSince === 'string');

  // Replica reasons are shown too; recovery clears the database reason.
  progress = { appliedSeq: 3, degraded: ['edge: change feed unreachable; serving the last applied state at sequence 3'], starting: [] };
  down = false;
  await agent.tick();
  assert.deepEqual(agent.readiness().reasons, ['edge: change feed unreachable; serving the last applied state at sequence 3']);
  progress = { appliedSeq: 3, degraded: [], starting: [] };
  await agent.tick();
  assert.equal(agent.readiness().status, 'ok');

  // A process not up yet: starting (not ready) while nothing reports, degraded once some serve.
  progress = { appliedSeq: undefined, degraded: [], starting: ['1 of 2 workers not ready'], details: { workersReady: 0 } };
  await agent.tick();
  assert.deepEqual([agent.readiness().ready, agent.readiness().status], [false, 'starting']);
  progress = { appliedSeq: 3, degraded: [], starting: ['1 of 2 workers not ready'], details: { workersReady: 1 } };
  await agent.tick();
  assert.deepEqual([agent.readiness().ready, agent.readiness().status], [true, 'degraded']);
});

test('node agent: readiness follows the time of the last successful heartbeat — a frozen database (heartbeat and progress never answer) turns /readyz degraded without any error, the tick never waits for a pending heartbeat, and it recovers when the database answers', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-agent-frozen-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const db = await openSqliteStore({ dataDir: join(dir, 'data') });
  t.after(() => db.close());
  let frozen = false;
  const held: (() => void)[] = [];
  let writes = 0;
  const nodes: NodeRepository = {
    heartbeat: async (r) => {
      writes++;
      if (frozen) await new Promise<void>((resolve) => held.push(resolve)); // a SIGSTOPped server: no answer, no error
      return db.nodes!.heartbeat(r);
    },
    list: () => db.nodes!.list(),
    remove: (n) => db.nodes!.remove(n),
    leave: (n, i) => db.nodes!.leave(n, i),
    sequenceCommittedBefore: (time) => db.nodes!.sequenceCommittedBefore(time),
  };
  const store: Store = Object.assign(Object.create(Object.getPrototypeOf(db) as object) as Store, db, { nodes });
  const config = configFromTree(join(dir, 'portcullis.yaml'), { nodeName: 'edge-f', cluster: { heartbeatIntervalMs: 500 } }, {});
  let clock = 1_000_000;
  let progressFrozen = false;
  const agent = new NodeAgent({
    config, logger: pino({ level: 'silent' }), store, now: () => clock,
    progress: () => (progressFrozen ? new Promise<NodeProgress>(() => {}) : Promise.resolve({ appliedSeq: 7, degraded: [], starting: [] })),
    listeners: () => [], adminAddress: () => undefined,
  });
  t.after(() => agent.close());
  await agent.tick();
  assert.equal(agent.readiness().status, 'ok');

  // A round merely late (nothing in flight) is no outage.
  clock += 2500;
  assert.equal(agent.readiness().status, 'ok');
  await agent.tick();
  // Frozen: nothing answers. With a heartbeat in flight, readiness ages out from the last success (2 s window), before any timeout.
  frozen = true;
  const before = writes;
  const round = agent.tick();
  while (writes === before) await new Promise((resolve) => setImmediate(resolve)); // the heartbeat is in flight
  progressFrozen = true;
  clock += 1500;
  assert.equal(agent.readiness().status, 'ok', 'within max(2 s, 2 × heartbeatIntervalMs) of the last heartbeat');
  clock += 1000;
  const r = agent.readiness();
  assert.equal(r.status, 'degraded');
  assert.equal(r.ready, true);
  assert.match(r.reasons[0]!, /^the database has been unreachable since .* \(no heartbeat answered for 2500 ms \(timeout 2000 ms\)\); serving the last applied state at sequence 7; writes are refused$/);
  await round;

  // Ticks complete although the progress and the heartbeat hang; no second heartbeat is started while one is pending.
  await agent.tick();
  const pendingWrites = writes;
  clock += 1000;
  await agent.tick();
  assert.equal(writes, pendingWrites, 'no heartbeat piled up behind the pending one');
  assert.equal(agent.readiness().status, 'degraded');
  assert.equal(agent.readiness().details?.appliedSequence, 7, 'the last collected progress is kept');

  // Thawed: the held heartbeat completes, the next round is ok again.
  frozen = false;
  progressFrozen = false;
  for (const release of held.splice(0)) release();
  await new Promise((resolve) => setImmediate(resolve));
  await agent.tick();
  assert.equal(agent.readiness().status, 'ok');
});

test('node agent: the snapshot follows applied changes; while it is behind what the node applied and the database is down, or its writes fail (cluster.snapshotFile unwritable), /readyz is degraded with the reason until a write succeeds', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-agent-snap-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const db = await openSqliteStore({ dataDir: join(dir, 'data') });
  t.after(() => db.close());
  await db.trustStores.create({ id: 'a', name: 'a', etag: 'E', document: {}, now: Date.now() });
  let down = false;
  const nodes: NodeRepository = {
    heartbeat: async (r) => { if (down) throw new Error('connect ECONNREFUSED'); return db.nodes!.heartbeat(r); },
    list: () => db.nodes!.list(),
    remove: (n) => db.nodes!.remove(n),
    leave: (n, i) => db.nodes!.leave(n, i),
    sequenceCommittedBefore: (time) => db.nodes!.sequenceCommittedBefore(time),
  };
  const store: Store = Object.assign(Object.create(Object.getPrototypeOf(db) as object) as Store, db, { nodes });
  const snapDir = join(dir, 'snaps');
  const snapshotFile = join(snapDir, 'snap.json');
  const config = configFromTree(join(dir, 'portcullis.yaml'), {
    nodeName: 'edge-s', cluster: { heartbeatIntervalMs: 100, snapshotFile, snapshotIntervalMs: 100 },
  }, {});
  assert.equal(configFromTree(join(dir, 'p.yaml'), {}, {}).cluster.snapshotIntervalMs, 1000, 'default: the snapshot trails changes by about a second');
  let clock = 1_000_000;
  let applied = 1;
  const agent = new NodeAgent({
    config, logger: pino({ level: 'silent' }), store, now: () => clock,
    progress: async () => ({ appliedSeq: applied, degraded: [], starting: [] }),
    listeners: () => [], adminAddress: () => undefined,
  });
  t.after(() => agent.close());
  const round = async (): Promise<void> => { clock += 150; await agent.tick(); await agent.settled(); };
  await round();
  assert.equal((await readSnapshotInfo(snapshotFile)).seq, 1);
  assert.equal(agent.readiness().status, 'ok');

  // A change applied: the next round writes it.
  await db.trustStores.create({ id: 'b', name: 'b', etag: 'E', document: {}, now: Date.now() });
  applied = 2;
  await round();
  assert.equal((await readSnapshotInfo(snapshotFile)).seq, 2);
  assert.equal(agent.readiness().status, 'ok');

  // The database goes down right after a change the node applied: the snapshot cannot follow.
  await db.trustStores.create({ id: 'c', name: 'c', etag: 'E', document: {}, now: Date.now() });
  applied = 3;
  down = true;
  await round();
  const r = agent.readiness();
  assert.equal(r.status, 'degraded');
  assert.ok(r.reasons.includes('the local snapshot (sequence 2) is behind what this node applied (sequence 3); a restart while the database is unreachable would serve sequence 2'), r.reasons.join(' | '));
  down = false;
  await round();
  assert.equal((await readSnapshotInfo(snapshotFile)).seq, 3);
  assert.deepEqual(agent.readiness().reasons, [], 'shown only while the snapshot is behind');

  // The snapshot's directory becomes a file: every write fails → degraded until one succeeds.
  rmSync(snapDir, { recursive: true });
  writeFileSync(snapDir, 'not a directory');
  await db.trustStores.create({ id: 'd', name: 'd', etag: 'E', document: {}, now: Date.now() });
  applied = 4;
  await round();
  const w = agent.readiness();
  assert.equal(w.status, 'degraded');
  assert.ok(w.reasons.some((x) => x.startsWith(`the local snapshot ${snapshotFile} (cluster.snapshotFile) cannot be written (failing since `)), w.reasons.join(' | '));
  rmSync(snapDir);
  await round();
  assert.equal((await readSnapshotInfo(snapshotFile)).seq, 4);
  assert.equal(agent.readiness().status, 'ok');
});

test('node agent: a duplicate nodeName — another live process heartbeating as this name — is an error and a readiness reason; a predecessor\'s last row is not; a store\'s conflict result is honoured', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-agent-dup-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const db = await openSqliteStore({ dataDir: join(dir, 'data') });
  t.after(() => db.close());
  const config = configFromTree(join(dir, 'portcullis.yaml'), { nodeName: 'edge-d', cluster: { heartbeatIntervalMs: 100, staleAfterMs: 1000 } }, {});
  let clock = Date.now();
  const row = (over: Partial<NodeRecord>): NodeRecord => ({
    name: 'edge-d', startedAt: 1, heartbeatAt: clock - 200, appliedSeq: 0, version: 'x', pid: 1, host: 'other-host',
    adminAddress: null, listeners: [], status: 'ok', reasons: [], ...over,
  });
  const agentOn = (store: Store): NodeAgent => {
    const a = new NodeAgent({
      config, logger: pino({ level: 'silent' }), store, now: () => clock,
      progress: async () => ({ appliedSeq: 0, degraded: [], starting: [] }), listeners: () => [], adminAddress: () => undefined,
    });
    t.after(() => a.close());
    return a;
  };
  const round = async (a: NodeAgent): Promise<void> => { await a.tick(); await a.settled(); };

  // A predecessor on this host (its process is gone), fresh row: a restart, not a duplicate.
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
  await db.nodes!.heartbeat(row({ host: hostname(), pid: dead }));
  const a = agentOn(db);
  await round(a);
  assert.equal(a.readiness().status, 'ok');
  // Another host writes the row after ours: alive → conflict.
  await db.nodes!.heartbeat(row({ heartbeatAt: clock, pid: 4242 }));
  await round(a);
  const r = a.readiness();
  assert.equal(r.status, 'degraded');
  assert.deepEqual(r.reasons, ['another node is heartbeating as edge-d (other-host, pid 4242)']);
  // It stops: the reason goes once the last sighting is older than staleAfterMs.
  clock += 1500;
  await round(a);
  assert.equal(a.readiness().status, 'ok');

  // Before our first heartbeat: a fresh row from a live process on this host (our parent) is a duplicate at once.
  await db.nodes!.remove('edge-d');
  await db.nodes!.heartbeat(row({ host: hostname(), pid: process.ppid, heartbeatAt: clock - 100 }));
  const b = agentOn(db);
  await round(b);
  assert.deepEqual(b.readiness().reasons, [`another node is heartbeating as edge-d (${hostname()}, pid ${process.ppid})`]);

  // A store whose heartbeat upsert reports the conflict itself.
  const nodes: NodeRepository = {
    heartbeat: async () => { throw new NodeNameConflictError('edge-e', { instanceId: 'other', host: 'h2', pid: 7, startedAt: 5, heartbeatAt: Date.now() }); },
    list: async () => [], remove: async () => false, leave: async () => false, sequenceCommittedBefore: async () => 0,
  };
  const c = agentOn(Object.assign(Object.create(Object.getPrototypeOf(db) as object) as Store, db, { nodes }));
  await round(c);
  assert.deepEqual(c.readiness().reasons, ['another node is heartbeating as edge-d (h2, pid 7)']);
});
