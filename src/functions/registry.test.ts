import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../store/index.js';
import { FunctionService, FUNCTION_RUNTIME } from './lifecycle.js';
import { FunctionRegistry } from './registry.js';
import { kvsSnapshotFromMap } from './runtime.js';

const code = (tag: string, decision: 'allow' | 'deny' = 'allow'): string =>
  `function connectionHandler(connection) { connection.logCustomData(${JSON.stringify(tag)}); connection.${decision}(); }`;
const CONN = { clientIp: '10.0.0.1' };

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'portcullis-fnreg-'));
}

test('registry: loads LIVE versions at start, a publish through another store instance swaps without restart, delete removes', async (t) => {
  const dir = tempDir();
  // Two store instances on one file: the writer and the registry's (as two processes would).
  const writerStore = await openSqliteStore({ dataDir: dir });
  const readerStore = await openSqliteStore({ dataDir: dir, pollIntervalMs: 20 });
  const svc = new FunctionService(writerStore);
  const d0 = await svc.create('f', { code: code('v1'), runtime: FUNCTION_RUNTIME });
  await svc.publish('f', d0.ETag);
  await svc.create('dev-only', { code: code('x'), runtime: FUNCTION_RUNTIME });

  const errors: unknown[] = [];
  const reg = await FunctionRegistry.start(readerStore, { onError: (e) => errors.push(e), retireGraceMs: 0 });
  t.after(async () => {
    reg.stop();
    await writerStore.close();
    await readerStore.close();
    rmSync(dir, { recursive: true, force: true });
  });
  assert.deepEqual(reg.names(), ['f'], 'only LIVE functions are loaded');
  const v1 = reg.get('f')!;
  assert.equal(v1.invoke(CONN).customData, 'v1');

  // A lease held across an await (an invocation in flight) keeps v1 usable after the swap.
  const lease = reg.acquire('f')!;
  const d1 = await svc.update('f', d0.ETag, { code: code('v2', 'deny') });
  assert.equal(reg.get('f')!.invoke(CONN).customData, 'v1', 'update does not touch LIVE');
  const live2 = await svc.publish('f', d1.ETag);
  await reg.waitFor(await writerStore.latestSequence());
  const v2 = reg.get('f')!;
  assert.equal(v2.etag, live2.ETag);
  const r = v2.invoke(CONN);
  assert.equal(r.customData, 'v2');
  assert.equal(r.decision, 'deny');
  assert.ok(v1.isRetired);
  assert.equal(v1.isDisposed, false);
  assert.equal(lease.fn.invoke(CONN).customData, 'v1', 'in-flight invocation finishes on its version');
  lease.release();
  await new Promise((res) => setImmediate(res));
  await new Promise((res) => setTimeout(res, 1));
  assert.ok(v1.isDisposed, 'disposed once its last lease is released');

  await svc.delete('f', d1.ETag);
  await reg.waitFor(await writerStore.latestSequence());
  assert.equal(reg.get('f'), undefined);
  assert.deepEqual(errors, []);
});

test('registry: invocations read the associated KVS through the snapshot source', async (t) => {
  const dir = tempDir();
  const store = await openSqliteStore({ dataDir: dir });
  const r = await store.kvs.createStore({ id: 'k1', name: 'revoked', comment: '', etag: 'P', now: 1 });
  await store.kvs.completeImport(r.id, [], { etag: 'KV1', now: 2, maxStoreBytes: 1000 });
  const svc = new FunctionService(store);
  const d = await svc.create('f', {
    code: `import cf from 'cloudfront';
async function connectionHandler(connection) {
  if (await cf.kvs().exists(connection.clientIp)) connection.deny(); else connection.allow();
}`,
    runtime: FUNCTION_RUNTIME, keyValueStore: 'revoked',
  });
  await svc.publish('f', d.ETag);
  const reg = await FunctionRegistry.start(store, { kvs: { snapshot: (name) => (name === 'revoked' ? kvsSnapshotFromMap(new Map([['10.0.0.1', '1']])) : undefined) } });
  t.after(async () => {
    reg.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const fn = reg.get('f')!;
  assert.equal(fn.keyValueStore?.name, 'revoked');
  assert.equal(fn.invoke({ clientIp: '10.0.0.1' }).decision, 'deny');
  assert.equal(fn.invoke({ clientIp: '10.0.0.2' }).decision, 'allow');
});

test('registry: a LIVE version that fails to compile is reported and the previous version keeps serving', async (t) => {
  const dir = tempDir();
  const store = await openSqliteStore({ dataDir: dir });
  const svc = new FunctionService(store);
  const d = await svc.create('f', { code: code('good'), runtime: FUNCTION_RUNTIME });
  const live = await svc.publish('f', d.ETag);
  const reported: [unknown, string | undefined][] = [];
  const reg = await FunctionRegistry.start(store, { onError: (e, n) => reported.push([e, n]) });
  t.after(async () => {
    reg.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  // Bypass the lifecycle's compile check (as a corrupted or hand-edited store would).
  const bad = await store.functions.put('f', 'LIVE', {
    ifMatch: live.ETag, newEtag: 'EBROKEN', document: { code: 'syntax error (', comment: '', runtime: FUNCTION_RUNTIME, keyValueStore: null }, now: 5,
  });
  await reg.waitFor(await store.latestSequence());
  assert.equal(reg.get('f')!.invoke(CONN).customData, 'good');
  assert.equal(reported.length, 1);
  assert.equal(reported[0]![1], 'f');
  assert.deepEqual(reg.failures().map((f) => [f.name, f.etag, f.servingEtag]), [['f', bad.etag, live.ETag]]);
  // A registry started now has nothing to fall back on: get() is undefined, the failure is listed.
  const fresh = await FunctionRegistry.start(store, { onError: () => {} });
  t.after(() => fresh.stop());
  assert.equal(fresh.get('f'), undefined);
  assert.deepEqual(fresh.failures().map((f) => [f.name, f.etag, f.servingEtag]), [['f', 'EBROKEN', undefined]]);
});
