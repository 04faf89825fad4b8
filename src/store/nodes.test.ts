import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type NodeRecord, type Store } from './index.js';
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
    listeners: [{ distribution: 'd', address: '127.0.0.1:8443', port: 8443 }], status: 'ok', reasons: [], ...over,
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
