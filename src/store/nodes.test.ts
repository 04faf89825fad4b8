import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { NODE_INSTANCE_ID, openStore, type NodeRecord, type Store } from './index.js';
import { NodeNameConflictError } from '../errors.js';
import { postgresSkipReason, startPostgres, type TestPostgres } from '../../test/helpers/postgres.js';

const pgSkip = postgresSkipReason();
let server: TestPostgres | undefined;
let dbs = 0;
before(async () => { if (!pgSkip) server = await startPostgres(); });
after(async () => { await server?.destroy(); });

/** Each test runs on both backends: a fresh SQLite directory, a fresh PostgreSQL database. */
const backends: { name: string; skip?: string; open: (t: { after: (fn: () => void) => void }) => Promise<Store> }[] = [
  {
    name: 'sqlite',
    open: async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'portcullis-nodes-'));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      return openStore({ kind: 'sqlite', dataDir: dir });
    },
  },
  {
    name: 'postgres', ...(pgSkip ? { skip: pgSkip } : {}),
    open: async () => openStore({ kind: 'postgres', url: await server!.createDatabase(`nodes_${process.pid}_${++dbs}`) }),
  },
];

function node(name: string, over: Partial<NodeRecord> = {}): NodeRecord {
  return {
    name, startedAt: 1000, heartbeatAt: 2000, appliedSeq: 0, version: '1.0.0', pid: 42, host: 'h1', adminAddress: '127.0.0.1:9901',
    listeners: [{ distribution: 'd', address: '127.0.0.1:8443', port: 8443 }], status: 'ok', reasons: [], instanceId: 'i-1', ...over,
  };
}

for (const b of backends) {
test(`store nodes (${b.name}): heartbeat inserts then replaces a node row; list is ordered by name; remove deletes it; no change record`, b.skip ? { skip: b.skip } : {}, async (t) => {
  const s = await b.open(t);
  t.after(() => s.close());
  assert.ok(s.nodes, 'a SQL store has a node table');
  assert.deepEqual(await s.nodes.list(), []);
  await s.nodes.heartbeat(node('b'));
  await s.nodes.heartbeat(node('a', { status: 'degraded', reasons: ['database unreachable'], adminAddress: null }));
  await s.nodes.heartbeat(node('b', { heartbeatAt: 5000, appliedSeq: 7, listeners: [] }));
  const list = await s.nodes.list();
  assert.deepEqual(list.map((n) => n.name), ['a', 'b']);
  assert.deepEqual(list[0], node('a', { status: 'degraded', reasons: ['database unreachable'], adminAddress: null }));
  assert.deepEqual(list[1], node('b', { heartbeatAt: 5000, appliedSeq: 7, listeners: [] }));
  assert.equal(await s.latestSequence(), 0, 'heartbeats are not configuration changes');
  assert.equal(await s.nodes.remove('a'), true);
  assert.equal(await s.nodes.remove('a'), false);
  assert.deepEqual((await s.nodes.list()).map((n) => n.name), ['b']);
});

test(`store nodes (${b.name}): two processes heartbeating the same node name: the second gets NodeNameConflict and the row stays the first one's; a silent row or a clean leave allows a restart`, b.skip ? { skip: b.skip } : {}, async (t) => {
  const s = await b.open(t);
  t.after(() => s.close());
  const repo = s.nodes!;
  await repo.heartbeat(node('edge', { instanceId: 'first', host: 'h1', pid: 11, heartbeatAt: 10_000 }), { staleAfterMs: 5000 });
  await repo.heartbeat(node('edge', { instanceId: 'first', host: 'h1', pid: 11, heartbeatAt: 11_000, appliedSeq: 3 }), { staleAfterMs: 5000 });
  const err = await repo.heartbeat(node('edge', { instanceId: 'second', host: 'h2', pid: 22, heartbeatAt: 12_000 }), { staleAfterMs: 5000 })
    .then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof NodeNameConflictError, String(err));
  assert.equal(err.code, 'NodeNameConflict');
  assert.equal(err.nodeName, 'edge');
  assert.deepEqual(err.existing, { instanceId: 'first', host: 'h1', pid: 11, startedAt: 1000, heartbeatAt: 11_000 });
  assert.match(err.message, /node name "edge" is in use by another running process \(host h1, pid 11, instance first/);
  const [row] = await repo.list();
  assert.deepEqual([row!.instanceId, row!.host, row!.appliedSeq], ['first', 'h1', 3], 'the row is the first process\'s');
  // The first process went silent longer than staleAfterMs: a restart takes the name over.
  await repo.heartbeat(node('edge', { instanceId: 'second', host: 'h2', pid: 22, heartbeatAt: 16_001 }), { staleAfterMs: 5000 });
  assert.equal((await repo.list())[0]!.instanceId, 'second');
  // A clean stop leaves: the restart is accepted at once. Only the own row is removed.
  assert.equal(await repo.leave('edge', 'first'), false);
  assert.equal(await repo.leave('edge', 'second'), true);
  await repo.heartbeat(node('edge', { instanceId: 'third', heartbeatAt: 16_002 }), { staleAfterMs: 5000 });
  assert.equal((await repo.list())[0]!.instanceId, 'third');
  // A restart on the same machine: the previous process (same host) is gone — taken
  // over at once; while it is alive, it is a second node.
  const dead = spawnSync(process.execPath, ['-e', '']).pid!;
  await repo.heartbeat(node('local', { instanceId: 'old', host: hostname(), pid: process.ppid, heartbeatAt: 20_000 }), { staleAfterMs: 5000 });
  await assert.rejects(repo.heartbeat(node('local', { instanceId: 'new', host: hostname(), pid: process.pid, heartbeatAt: 20_001 }), { staleAfterMs: 5000 }), { code: 'NodeNameConflict' });
  await repo.heartbeat(node('local', { instanceId: 'old', host: hostname(), pid: dead, heartbeatAt: 20_002 }), { staleAfterMs: 5000 });
  await repo.heartbeat(node('local', { instanceId: 'new', host: hostname(), pid: process.pid, heartbeatAt: 20_003 }), { staleAfterMs: 5000 });
  assert.equal((await repo.list()).find((n) => n.name === 'local')!.instanceId, 'new');
  // Without an instance id, a heartbeat is this process's.
  await repo.heartbeat(node('mine', { instanceId: undefined, heartbeatAt: 1 }));
  assert.equal((await repo.list()).find((n) => n.name === 'mine')!.instanceId, NODE_INSTANCE_ID);
  assert.equal(await repo.leave('mine'), true);
});

test(`store nodes (${b.name}): sequenceCommittedBefore gives the last change older than a time (pruning by age)`, b.skip ? { skip: b.skip } : {}, async (t) => {
  const s = await b.open(t);
  t.after(() => s.close());
  assert.equal(await s.nodes!.sequenceCommittedBefore(Date.now()), 0);
  await s.trustStores.create({ id: 't1', name: 't1', etag: 'E1', document: {}, now: 100 });
  await s.trustStores.create({ id: 't2', name: 't2', etag: 'E2', document: {}, now: 200 });
  await s.trustStores.create({ id: 't3', name: 't3', etag: 'E3', document: {}, now: 300 });
  assert.equal(await s.nodes!.sequenceCommittedBefore(100), 0);
  assert.equal(await s.nodes!.sequenceCommittedBefore(101), 1);
  assert.equal(await s.nodes!.sequenceCommittedBefore(250), 2);
  assert.equal(await s.nodes!.sequenceCommittedBefore(1000), 3);
  assert.equal(await s.pruneChanges(await s.nodes!.sequenceCommittedBefore(250)), 2);
  assert.equal((await s.changesAfter(0)).reset, true);
  assert.deepEqual((await s.changesAfter(2)).changes.map((c) => c.seq), [3]);
});
}
