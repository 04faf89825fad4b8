/**
 * `portcullis nodes list|remove` against a running admin server (startAdminServer with
 * the /v1 API on a temporary SQLite store, real HTTP on 127.0.0.1:0), the CLI run
 * in-process.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAdminServer, type AdminServer } from '../admin/index.js';
import { openSqliteStore, type NodeRecord, type Store } from '../store/index.js';
import { main } from './index.js';
import { apiIo } from './api-client.js';

const TOKEN = 'cli-test-token-0123456789';
let dir: string;
let store: Store;
let server: AdminServer;
let url: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pc-cli-nodes-'));
  store = await openSqliteStore({ dataDir: join(dir, 'data') });
  server = await startAdminServer({
    listen: '127.0.0.1:0', token: TOKEN,
    metrics: async () => ({ contentType: 'text/plain', body: '' }),
    readiness: () => ({ ready: true, status: 'ok', reasons: [] }),
    api: { store, nodeStaleAfterMs: 5000 },
  });
  url = `http://127.0.0.1:${server.address.port}`;
});

after(async () => {
  await server?.close();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const saved = { ...apiIo };
  apiIo.stdout = (t) => { stdout += t; };
  apiIo.stderr = (t) => { stderr += t; };
  process.exitCode = undefined;
  try {
    const code = await main(['node', 'portcullis', ...args, '--admin-url', url, '--token', TOKEN]);
    return { code: code || (process.exitCode as number | undefined) || 0, stdout, stderr };
  } finally {
    Object.assign(apiIo, saved);
    process.exitCode = undefined;
  }
}

function row(name: string, over: Partial<NodeRecord> = {}): NodeRecord {
  return {
    name, startedAt: Date.now() - 60_000, heartbeatAt: Date.now(), appliedSeq: 0, version: '0.1.0', pid: 7, host: 'h', adminAddress: '127.0.0.1:9901',
    listeners: [], status: 'ok', reasons: [], ...over,
  };
}

test('nodes list: a table with each node\'s status, applied sequence and in-sync flag; --json; --wait-for-sequence times out with exit 1', async () => {
  const empty = await cli(['nodes', 'list']);
  assert.equal(empty.code, 0, empty.stderr);
  assert.match(empty.stdout, /no nodes have reported yet \(latest change sequence 0\)/);
  await store.trustStores.create({ id: 't', name: 't', etag: 'E', document: {}, now: 1 });
  await store.nodes!.heartbeat(row('edge-1', { appliedSeq: 1 }));
  await store.nodes!.heartbeat(row('edge-2', { appliedSeq: 0, status: 'degraded', reasons: ['the database has been unreachable since …'] }));
  const list = await cli(['nodes', 'list']);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /^NAME\s+STATUS\s+APPLIED\s+IN SYNC\s+LAST HEARTBEAT\s+ADMIN\s+REASONS/m);
  assert.match(list.stdout, /^edge-1\s+ok\s+1\s+yes\s/m);
  assert.match(list.stdout, /^edge-2\s+degraded\s+0\s+no\s.*the database has been unreachable since …$/m);
  assert.match(list.stdout, /latest change sequence 1: not every node has it yet/);
  const json = await cli(['nodes', 'list', '--json']);
  const body = JSON.parse(json.stdout) as { LatestSequence: number; Items: { Name: string }[] };
  assert.equal(body.LatestSequence, 1);
  assert.deepEqual(body.Items.map((n) => n.Name), ['edge-1', 'edge-2']);
  const waited = await cli(['nodes', 'list', '--wait-for-sequence', '1', '--timeout', '200']);
  assert.equal(waited.code, 1);
  assert.match(waited.stderr, /change 1 is not confirmed by every node within the timeout; unconfirmed: edge-2 \(applied 0\)/);
  await store.nodes!.heartbeat(row('edge-2', { appliedSeq: 1 }));
  const latest = await cli(['nodes', 'list', '--wait-for-sequence', 'latest', '--timeout', '2000']);
  assert.equal(latest.code, 0, latest.stderr);
  assert.match(latest.stdout, /latest change sequence 1: every node has it/);
  // A node cut off from the database (no heartbeat for longer than staleAfterMs) may
  // still be serving old state: never "every node has it".
  await store.nodes!.heartbeat(row('edge-3', { appliedSeq: 1, heartbeatAt: Date.now() - 60_000 }));
  const stale = await cli(['nodes', 'list', '--wait-for-sequence', 'latest', '--timeout', '200']);
  assert.equal(stale.code, 1);
  assert.match(stale.stdout, /latest change sequence 1: not every node has it yet/);
  assert.match(stale.stderr, /unconfirmed: edge-3 \(stale: no heartbeat for 60\.\d s; it may still be serving older state — if it was taken out of the cluster, run "portcullis nodes remove edge-3"\)/);
  assert.doesNotMatch(stale.stderr, /edge-1|edge-2/);
  await store.nodes!.remove('edge-3');
  const beyond = await cli(['nodes', 'list', '--wait-for-sequence', '2']);
  assert.notEqual(beyond.code, 0);
  assert.match(beyond.stderr, /sequence 2 has not been committed; the latest is 1/);
  const bad = await cli(['nodes', 'list', '--wait-for-sequence', 'x']);
  assert.equal(bad.code, 64);
});

test('nodes remove: the row goes; an unknown node exits 2 (EntityNotFound)', async () => {
  await store.nodes!.heartbeat(row('retired'));
  const r = await cli(['nodes', 'remove', 'retired']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /node "retired" removed/);
  assert.ok(!(await store.nodes!.list()).some((n) => n.name === 'retired'));
  const again = await cli(['nodes', 'remove', 'retired']);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /EntityNotFound: node "retired" is not in the node table/);
});
