/**
 * `GET /v1/nodes` (cluster issue) against a real SQLite store: the node table as the
 * heartbeats left it, stale nodes, in-sync flags, waitForSequence, query validation,
 * and the 503 when the store has no node table.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { openSqliteStore, type NodeRecord, type Store } from '../store/index.js';
import { createAdminApp } from './index.js';

const TOKEN = 'test-token-0123456789';
const NOW = 1_800_000_000_000;

async function setup(t: TestContext, wrap: (s: Store) => Store = (s) => s): Promise<{ app: FastifyInstance; store: Store }> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-admin-nodes-'));
  const store = await openSqliteStore({ dataDir: dir });
  const app = await createAdminApp({
    token: TOKEN,
    metrics: async () => ({ contentType: 'text/plain', body: '' }),
    readiness: () => ({ ready: true, status: 'ok', reasons: [] }),
    api: { store: wrap(store), nodeStaleAfterMs: 5000, now: () => NOW },
  });
  t.after(async () => {
    await app.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { app, store };
}

function row(name: string, over: Partial<NodeRecord> = {}): NodeRecord {
  return {
    name, startedAt: NOW - 60_000, heartbeatAt: NOW - 500, appliedSeq: 0, version: '0.1.0', pid: 7, host: 'h', adminAddress: '127.0.0.1:9901',
    listeners: [{ distribution: 'api', address: '127.0.0.1:8443', port: 8443 }], status: 'ok', reasons: [], ...over,
  };
}

const get = (app: FastifyInstance, url: string) => app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${TOKEN}` } });

test('GET /v1/nodes: every node with its heartbeat, applied sequence, in-sync flag; a silent node is stale and never in sync (it may still serve old state) until it reports again or is removed', async (t) => {
  const { app, store } = await setup(t);
  await store.trustStores.create({ id: 't', name: 't', etag: 'E', document: {}, now: 1 });
  await store.trustStores.create({ id: 'u', name: 'u', etag: 'E', document: {}, now: 1 });
  await store.nodes!.heartbeat(row('a', { appliedSeq: 2 }));
  await store.nodes!.heartbeat(row('b', { appliedSeq: 1, status: 'degraded', reasons: ['the database has been unreachable since …'] }));
  await store.nodes!.heartbeat(row('c', { appliedSeq: 0, heartbeatAt: NOW - 9000 }));
  const res = await get(app, '/v1/nodes');
  assert.equal(res.statusCode, 200, res.body);
  const body = res.json() as { Items: Record<string, unknown>[]; Quantity: number; LatestSequence: number; AllInSync: boolean };
  assert.equal(body.Quantity, 3);
  assert.equal(body.LatestSequence, 2);
  assert.equal(body.AllInSync, false, 'b is live and behind');
  assert.deepEqual(body.Items.map((n) => [n.Name, n.Status, n.AppliedSequence, n.InSync, n.Stale, n.HeartbeatAgeMs]), [
    ['a', 'ok', 2, true, false, 500], ['b', 'degraded', 1, false, false, 500], ['c', 'stale', 0, false, true, 9000],
  ]);
  assert.equal(body.Items[0]!.LastHeartbeat, new Date(NOW - 500).toISOString());
  assert.deepEqual(body.Items[1]!.Reasons, ['the database has been unreachable since …']);
  assert.match(String((body.Items[2]!.Reasons as string[])[0]), /no heartbeat for 9\.0 s/);
  assert.deepEqual(body.Items[0]!.Listeners, [{ distribution: 'api', address: '127.0.0.1:8443', port: 8443 }]);
  await store.nodes!.heartbeat(row('b', { appliedSeq: 2 }));
  assert.equal((await get(app, '/v1/nodes')).json().AllInSync, false, 'the stale node c is not confirmed');
  // Stale even with the latest sequence applied: what it serves now is unknown.
  await store.nodes!.heartbeat(row('c', { appliedSeq: 2, heartbeatAt: NOW - 9000 }));
  const staleCurrent = (await get(app, '/v1/nodes')).json() as { Items: { Name: string; InSync: boolean }[]; AllInSync: boolean };
  assert.equal(staleCurrent.Items.find((n) => n.Name === 'c')!.InSync, false);
  assert.equal(staleCurrent.AllInSync, false);
  await store.nodes!.remove('c');
  assert.equal((await get(app, '/v1/nodes')).json().AllInSync, true, 'after the decommissioned node is removed');
});

test('GET /v1/nodes?waitForSequence: answers once every node has it, or with TimedOut; a stale node never confirms; an uncommitted sequence is refused at once', async (t) => {
  const { app, store } = await setup(t);
  for (const n of ['t1', 't2', 't3']) await store.trustStores.create({ id: n, name: n, etag: 'E', document: {}, now: 1 });
  const beyond = await get(app, '/v1/nodes?waitForSequence=4&timeoutMs=60000');
  assert.equal(beyond.statusCode, 400);
  assert.equal(beyond.json().error.message, 'waitForSequence: sequence 4 has not been committed; the latest is 3');
  await store.nodes!.heartbeat(row('a', { appliedSeq: 3 }));
  await store.nodes!.heartbeat(row('b', { appliedSeq: 1 }));
  const timedOut = await get(app, '/v1/nodes?waitForSequence=3&timeoutMs=250');
  assert.equal(timedOut.statusCode, 200);
  assert.equal(timedOut.json().TimedOut, true);
  const waiting = get(app, '/v1/nodes?waitForSequence=3&timeoutMs=5000');
  setTimeout(() => { void store.nodes!.heartbeat(row('b', { appliedSeq: 3 })); }, 150);
  const done = await waiting;
  assert.equal(done.statusCode, 200);
  assert.equal(done.json().TimedOut, undefined);
  assert.deepEqual((done.json().Items as { AppliedSequence: number }[]).map((n) => n.AppliedSequence), [3, 3]);
  // A node cut off from the database (stale) confirms nothing, whatever it last reported.
  await store.nodes!.heartbeat(row('c', { appliedSeq: 3, heartbeatAt: NOW - 9000 }));
  const withStale = await get(app, '/v1/nodes?waitForSequence=3&timeoutMs=250');
  assert.equal(withStale.json().TimedOut, true);
  assert.equal(withStale.json().AllInSync, false);
});

test('GET /v1/nodes: bad query parameters are InvalidArgument; a store without a node table answers 503 StoreUnavailable', async (t) => {
  const { app } = await setup(t);
  for (const [url, re] of [
    ['/v1/nodes?waitForSequence=-1', /waitForSequence: expected an integer/],
    ['/v1/nodes?waitForSequence=1&timeoutMs=999999', /timeoutMs: expected an integer from 0 to 60000/],
    ['/v1/nodes?timeoutMs=5', /timeoutMs: applies only with waitForSequence/],
    ['/v1/nodes?bogus=1', /bogus: unknown query parameter/],
  ] as const) {
    const r = await get(app, url);
    assert.equal(r.statusCode, 400, url);
    assert.equal(r.json().error.code, 'InvalidArgument');
    assert.match(r.json().error.message, re);
  }
  const { app: noTable } = await setup(t, (s) => Object.assign(Object.create(Object.getPrototypeOf(s) as object) as Store, s, { nodes: undefined }));
  const r = await get(noTable, '/v1/nodes');
  assert.equal(r.statusCode, 503);
  assert.equal(r.json().error.code, 'StoreUnavailable');
  assert.match(r.json().error.message, /local snapshot while the database is unreachable/);
});

test('DELETE /v1/nodes/:name removes a node row; an unknown node is EntityNotFound', async (t) => {
  const { app, store } = await setup(t);
  await store.nodes!.heartbeat(row('gone'));
  const del = (name: string) => app.inject({ method: 'DELETE', url: `/v1/nodes/${name}`, headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal((await del('gone')).statusCode, 204);
  assert.deepEqual(await store.nodes!.list(), []);
  const again = await del('gone');
  assert.equal(again.statusCode, 404);
  assert.equal(again.json().error.code, 'EntityNotFound');
  const nul = await del('a%00b');
  assert.equal(nul.statusCode, 400);
  assert.deepEqual(nul.json().error, { code: 'InvalidArgument', message: 'name: a node name cannot contain the NUL character U+0000' });
});

test('GET /v1/nodes: a node whose applied sequence is ahead of the database (replaced or restored) is degraded and not in sync', async (t) => {
  const { app, store } = await setup(t);
  for (const n of ['t1', 't2']) await store.trustStores.create({ id: n, name: n, etag: 'E', document: {}, now: 1 });
  await store.nodes!.heartbeat(row('new', { appliedSeq: 2 }));
  await store.nodes!.heartbeat(row('old', { appliedSeq: 61 }));
  const body = (await get(app, '/v1/nodes')).json() as { Items: Record<string, unknown>[]; LatestSequence: number; AllInSync: boolean };
  assert.equal(body.LatestSequence, 2);
  assert.equal(body.AllInSync, false);
  assert.deepEqual(body.Items.map((n) => [n.Name, n.Status, n.AppliedSequence, n.InSync]), [['new', 'ok', 2, true], ['old', 'degraded', 61, false]]);
  assert.deepEqual(body.Items[1]!.Reasons, [
    'applied sequence 61 is ahead of the database\'s latest 2: the database was replaced or restored; the node will reload',
  ]);
});
