import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { openSnapshotStore, openSqliteStore, readSnapshotInfo, writeSnapshot, SNAPSHOT_VERSION, UNKNOWN_CLUSTER_ID, type Store } from './index.js';
import { KvsReplica } from '../kvs/index.js';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-snap-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A store with a bit of everything a node serves. */
async function populated(t: TestContext): Promise<Store> {
  const s = await openSqliteStore({ dataDir: tempDir(t) });
  t.after(() => s.close());
  const r = await s.kvs.createStore({ id: 'kv1', name: 'revoked', comment: 'serials', etag: 'P', now: 1 });
  const items = Array.from({ length: 2500 }, (_, i) => ({ key: `k${String(i).padStart(4, '0')}`, value: `v${i}` }));
  items.push({ key: 'é\u{1F600}', value: 'multi\nline "quoted"' });
  await s.kvs.completeImport(r.id, items, { etag: 'E1', now: 2, maxStoreBytes: 1 << 20 });
  const crlState = { issuer: 'CN=CA', thisUpdate: '2025-01-01T00:00:00Z', entries: 2, importedAt: '2025-01-01T00:00:01Z' };
  await s.kvs.updateItems('revoked', { ifMatch: 'E1', newEtag: 'E2', puts: [{ key: 'crl1', value: 'r' }, { key: 'k0001', value: 'x' }], deletes: [], replaceSource: 'crl', crlState, maxStoreBytes: 1 << 20, now: 3 });
  await s.kvs.createStore({ id: 'kv2', name: 'pending', comment: '', etag: 'P2', now: Date.now() });
  await s.trustStores.create({ id: 't1', name: 'ca', etag: 'T1', document: { pem: '-----BEGIN…' }, now: 4 });
  await s.distributions.create({ id: 'd1', name: 'edge', etag: 'D1', document: { listen: ':443', aliases: ['a.example'] }, now: 5 });
  await s.functions.create({ id: 'f1', name: 'fn', etag: 'F1', document: { code: 'x' }, now: 6 });
  await s.functions.put('fn', 'LIVE', { ifMatch: null, newEtag: 'L1', document: { code: 'y' }, now: 7 });
  return s;
}

async function everything(s: Store): Promise<unknown> {
  return s.readConsistent(async (x) => {
    const stores = await x.kvs.listStores();
    const items: Record<string, unknown> = {};
    for (const r of stores) {
      items[r.name] = {
        all: await x.kvs.listItems(r.id, { limit: 100_000 }),
        crl: await x.kvs.listKeysBySource(r.id, 'crl'),
        manual: await x.kvs.listKeysBySource(r.id, 'crl+manual'),
      };
    }
    return {
      seq: await x.latestSequence(), stores, items,
      trustStores: await x.trustStores.list(), distributions: await x.distributions.list(), functions: await x.functions.list(),
    };
  });
}

test('snapshot: round trip — the snapshot store serves exactly the state written, read-only, at its sequence', async (t) => {
  const s = await populated(t);
  const file = join(tempDir(t), 'sub', 'state.snapshot');
  const w = await writeSnapshot(s, file, { now: () => 1_700_000_000_000 });
  assert.equal(w.seq, await s.latestSequence());
  assert.equal(w.writtenAt, 1_700_000_000_000);
  assert.equal(w.bytes, readFileSync(file).length);
  const snap = await openSnapshotStore(file);
  t.after(() => snap.close());
  assert.deepEqual(await everything(snap), await everything(s));
  assert.equal(snap.snapshot.seq, w.seq);
  assert.equal(snap.snapshot.writtenAt, w.writtenAt);
  assert.equal(snap.snapshot.version, SNAPSHOT_VERSION);
  assert.equal(snap.snapshot.source, s.location);
  assert.deepEqual(await readSnapshotInfo(file), snap.snapshot);
  // The feed: nothing beyond the snapshot; an older position must reload.
  // The snapshot records (and answers) the identity of the database it was read from.
  assert.equal(w.clusterId, await s.clusterId());
  assert.equal(snap.snapshot.clusterId, w.clusterId);
  assert.equal(await snap.clusterId(), w.clusterId);
  assert.deepEqual(await snap.changesAfter(w.seq), { changes: [], reset: false, latestSeq: w.seq, clusterId: w.clusterId });
  assert.equal((await snap.changesAfter(w.seq + 5)).reset, true, 'a position beyond the snapshot must reload');
  assert.equal((await snap.changesAfter(0)).reset, true);
  let fired = 0;
  const unwatch = snap.watch(() => { fired++; });
  // Writes are refused with StoreUnavailable, naming the snapshot.
  await assert.rejects(snap.trustStores.create({ id: 'x', name: 'x', etag: 'X', document: {}, now: 1 }), (err: Error & { code?: string }) =>
    err.code === 'StoreUnavailable' && err.message.includes(file) && /database is unreachable/.test(err.message));
  await assert.rejects(snap.kvs.updateItems('revoked', { ifMatch: 'E2', newEtag: 'E3', puts: [], deletes: [], maxStoreBytes: 10, now: 1 }), { code: 'StoreUnavailable' });
  await assert.rejects(snap.pruneChanges(1), { code: 'StoreUnavailable' });
  unwatch();
  assert.equal(fired, 0);
  // A replica loads from it as from the real store.
  const replica = await KvsReplica.open(snap);
  t.after(() => replica.close());
  assert.equal(replica.snapshot('revoked')?.get('crl1'), 'r');
  assert.equal(replica.snapshot('revoked')?.get('é\u{1F600}'), 'multi\nline "quoted"');
  // Writing again replaces it, and leaves no temporary file.
  await s.trustStores.create({ id: 't2', name: 'ca2', etag: 'T2', document: {}, now: 8 });
  const w2 = await writeSnapshot(s, file);
  assert.equal(w2.seq, w.seq + 1);
  assert.deepEqual(readdirSync(join(file, '..')), ['state.snapshot']);
});

async function written(t: TestContext): Promise<{ file: string; data: Buffer }> {
  const s = await populated(t);
  const file = join(tempDir(t), 'state.snapshot');
  await writeSnapshot(s, file);
  return { file, data: readFileSync(file) };
}

test('snapshot: a flipped bit anywhere is refused (SHA-256 mismatch), nothing loaded', async (t) => {
  const { file, data } = await written(t);
  for (const at of [Math.floor(data.length / 2), data.indexOf('"k0042"') + 2, data.length - 20]) {
    const copy = Buffer.from(data);
    copy[at] = copy[at]! ^ 0x04;
    writeFileSync(file, copy);
    await assert.rejects(openSnapshotStore(file), (err: Error & { code?: string; file?: string }) =>
      err.code === 'SnapshotInvalid' && err.file === file && err.message.includes(file) && /corrupted|truncated|not JSON/.test(err.message));
    await assert.rejects(readSnapshotInfo(file), { code: 'SnapshotInvalid' });
  }
});

test('snapshot: a truncated file is refused', async (t) => {
  const { file, data } = await written(t);
  for (const len of [0, 10, Math.floor(data.length / 2), data.length - 1, data.lastIndexOf('\n', data.length - 2) + 1]) {
    writeFileSync(file, data.subarray(0, len));
    await assert.rejects(openSnapshotStore(file), (err: Error & { code?: string }) =>
      err.code === 'SnapshotInvalid' && err.message.includes(file) && /truncated|empty|end record/.test(err.message), `length ${len}`);
  }
});

test('snapshot: a missing file, another format version or a non-snapshot file is refused naming the problem', async (t) => {
  const { file, data } = await written(t);
  await assert.rejects(openSnapshotStore(join(tempDir(t), 'nope')), (err: Error & { code?: string }) =>
    err.code === 'SnapshotInvalid' && /does not exist/.test(err.message));
  const text = data.toString('utf8').replace(`"version":${SNAPSHOT_VERSION}`, '"version":99');
  writeFileSync(file, text);
  await assert.rejects(openSnapshotStore(file), (err: Error & { code?: string }) =>
    err.code === 'SnapshotInvalid' && /format version 99; this build reads version 1/.test(err.message));
  writeFileSync(file, '{"hello":1}\n');
  await assert.rejects(openSnapshotStore(file), (err: Error & { code?: string }) =>
    err.code === 'SnapshotInvalid' && /not a Portcullis store snapshot/.test(err.message));
});

test('snapshot: a write that fails midway leaves the previous snapshot intact and no temporary file', async (t) => {
  const s = await populated(t);
  const dir = tempDir(t);
  const file = join(dir, 'state.snapshot');
  const first = await writeSnapshot(s, file);
  const before = readFileSync(file);
  await s.trustStores.create({ id: 't9', name: 'later', etag: 'T9', document: {}, now: 9 });
  // The source fails after part of the new snapshot reached the temporary file.
  let pages = 0;
  const failing: Store = new Proxy(s, {
    get(target, prop, recv) {
      if (prop !== 'readConsistent') return Reflect.get(target, prop, recv) as unknown;
      return <T>(fn: (x: Store) => Promise<T>) => target.readConsistent((x) => fn(new Proxy(x, {
        get(tx, p, r) {
          if (p !== 'trustStores') return Reflect.get(tx, p, r) as unknown;
          pages++;
          throw new Error('connection lost while reading trust stores');
        },
      })));
    },
  });
  await assert.rejects(writeSnapshot(failing, file, { bufferBytes: 64 }), (err: Error & { code?: string }) =>
    err.code === 'SnapshotWriteFailed' && /connection lost/.test(err.message) && err.message.includes(file));
  assert.equal(pages, 1);
  assert.deepEqual(readFileSync(file), before);
  assert.deepEqual(readdirSync(dir), ['state.snapshot']);
  const snap = await openSnapshotStore(file);
  t.after(() => snap.close());
  assert.equal(snap.snapshot.seq, first.seq);
  assert.equal(await snap.trustStores.get('later'), undefined);
  // A writer killed midway leaves only its temporary file: the snapshot still loads.
  writeFileSync(join(dir, '.state.snapshot.tmp-1-abc'), before.subarray(0, 100));
  const again = await openSnapshotStore(file);
  t.after(() => again.close());
  assert.equal(again.snapshot.seq, first.seq);
});

test('snapshot: a snapshot written before cluster ids (no clusterId in its header) loads with an id no database has', async (t) => {
  const s = await populated(t);
  const file = join(tempDir(t), 'old.snapshot');
  await writeSnapshot(s, file);
  // Rewrite the header without clusterId and fix up the trailer's hash.
  const lines = readFileSync(file, 'utf8').split('\n').slice(0, -1);
  const header = JSON.parse(lines[0]!) as Record<string, unknown>;
  delete header.clusterId;
  lines[0] = JSON.stringify(header);
  const content = `${lines.slice(0, -1).join('\n')}\n`;
  const trailer = JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
  trailer.sha256 = createHash('sha256').update(content).digest('hex');
  writeFileSync(file, `${content}${JSON.stringify(trailer)}\n`);
  const snap = await openSnapshotStore(file);
  t.after(() => snap.close());
  assert.equal(snap.snapshot.clusterId, undefined);
  assert.equal(await snap.clusterId(), UNKNOWN_CLUSTER_ID);
  assert.notEqual(await snap.clusterId(), await s.clusterId());
});
