import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { configFromTree } from '../config/index.js';
import { openStore, writeSnapshot } from '../store/index.js';
import { StoreUnavailableError } from '../errors.js';
import { SnapshotBehindError, startGatewayNode } from './node.js';
import { startWhenStoreAvailable } from './worker-start.js';

/** A loopback port nothing listens on (connection refused: the database is "down"). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

test('gateway node: with the database unreachable, a snapshot older than minSequence (what the node already enforced) is never served; one at or above it is', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-floor-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const db = await openStore({ kind: 'sqlite', dataDir: join(dir, 'db') });
  await db.trustStores.create({ id: 't1', name: 't1', etag: 'E', document: {}, now: 1 });
  await db.trustStores.create({ id: 't2', name: 't2', etag: 'E', document: {}, now: 2 });
  const snapshotFile = join(dir, 'snap.json');
  // The snapshot must come from the configured database (a snapshot of another store is refused).
  const url = `postgres://postgres@127.0.0.1:${await closedPort()}/portcullis`;
  const asConfigured = Object.assign(Object.create(Object.getPrototypeOf(db) as object) as typeof db, db, { location: url });
  const snap = await writeSnapshot(asConfigured, snapshotFile);
  await db.close();
  assert.equal(snap.seq, 2);
  const config = configFromTree(join(dir, 'portcullis.yaml'), {
    store: url, dataDir: join(dir, 'data'),
    cluster: { snapshotFile, storeRetryMs: 60_000 },
  }, {});
  const logger = pino({ level: 'silent' });
  await assert.rejects(startGatewayNode({ config, logger, minSequence: 3 }), (err: unknown) => {
    assert.ok(err instanceof SnapshotBehindError);
    assert.equal(err.code, 'StoreUnavailable');
    assert.equal(err.message, 'waiting for the database: the snapshot (seq 2) is older than what this node already enforced (seq 3)');
    return true;
  });
  const node = await startGatewayNode({ config, logger, minSequence: 2 });
  t.after(() => node.close());
  assert.equal((await node.progress()).appliedSeq, 2);
});

test('worker start: a replacement worker waits out an unreachable store with backoff and joins when it answers; the very first start refuses at once; a snapshot behind the floor is always waited out', async () => {
  const down = new StoreUnavailableError('the PostgreSQL database postgres://x@db/p is unreachable (connect ECONNREFUSED); refusing to serve without state');
  // Replacement: two failures, then up.
  let calls = 0;
  const waits: { reason: string; attempt: number; delayMs: number }[] = [];
  const slept: number[] = [];
  const v = await startWhenStoreAvailable({
    start: async () => { calls++; if (calls <= 3) throw down; return 'node'; },
    replacement: true, initialDelayMs: 100, maxDelayMs: 300,
    sleep: async (ms) => { slept.push(ms); },
    onWaiting: (reason, attempt, delayMs) => waits.push({ reason, attempt, delayMs }),
  });
  assert.equal(v, 'node');
  assert.equal(calls, 4);
  assert.deepEqual(slept, [100, 200, 300]);
  assert.deepEqual(waits.map((w) => w.attempt), [1, 2, 3]);
  assert.equal(waits[0]!.reason, `waiting for the database: ${down.message}`);

  // First start of the node: the store error is final (issue 8: no serving without state).
  let first = 0;
  await assert.rejects(startWhenStoreAvailable({
    start: async () => { first++; throw down; }, replacement: false, sleep: async () => {}, onWaiting: () => assert.fail('must not wait'),
  }), (err: unknown) => err === down);
  assert.equal(first, 1);

  // The snapshot is behind what the node enforced: waited out even at a first start.
  const behind: string[] = [];
  let n = 0;
  await startWhenStoreAvailable({
    start: async () => { if (n++ === 0) throw new SnapshotBehindError(49, 50); return 1; },
    replacement: false, sleep: async () => {}, onWaiting: (r) => behind.push(r),
  });
  assert.deepEqual(behind, ['waiting for the database: the snapshot (seq 49) is older than what this node already enforced (seq 50)']);

  // Any other error is not a store outage: thrown at once.
  await assert.rejects(startWhenStoreAvailable({
    start: async () => { throw new Error('listen EADDRINUSE'); }, replacement: true, sleep: async () => {}, onWaiting: () => assert.fail('must not wait'),
  }), /EADDRINUSE/);
  // A stop request ends the wait: no further attempt after it.
  await assert.rejects(startWhenStoreAvailable({
    start: async () => { throw down; }, replacement: true, sleep: async () => {}, onWaiting: () => {}, stopped: () => true,
  }), (err: unknown) => err === down);
  let stop = false;
  let tries = 0;
  await assert.rejects(startWhenStoreAvailable({
    start: async () => { tries++; throw down; }, replacement: true, sleep: async () => { stop = true; }, onWaiting: () => {}, stopped: () => stop,
  }), (err: unknown) => err === down);
  assert.equal(tries, 1);
});
