import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { openSqliteStore, type Store } from '../store/index.js';
import {
  CannotDeleteEntityWhileInUseError, EntityAlreadyExistsError, EntityNotFoundError, FunctionCompileError,
  FunctionSizeLimitExceededError, InvalidArgumentError, InvalidIfMatchVersionError, PreconditionFailedError,
} from '../errors.js';
import { FunctionService, FUNCTION_RUNTIME } from './lifecycle.js';

const ALLOW = 'function connectionHandler(connection) { connection.allow(); }';
const DENY = 'function connectionHandler(connection) { connection.deny(); }';

async function setup(t: TestContext): Promise<{ store: Store; svc: FunctionService }> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-fn-'));
  const store = await openSqliteStore({ dataDir: dir });
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { store, svc: new FunctionService(store) };
}

async function readyKvs(store: Store, name: string): Promise<string> {
  const r = await store.kvs.createStore({ id: `kvs-${name}`, name, comment: '', etag: 'P', now: 1 });
  await store.kvs.completeImport(r.id, [], { etag: 'KV1', now: 2, maxStoreBytes: 1000 });
  return r.id;
}

test('lifecycle: create → DEVELOPMENT, UNPUBLISHED; LIVE absent; duplicate name refused', async (t) => {
  const { svc } = await setup(t);
  const d = await svc.create('fn-1', { code: ALLOW, comment: 'c', runtime: FUNCTION_RUNTIME });
  assert.equal(d.Stage, 'DEVELOPMENT');
  assert.equal(d.Status, 'UNPUBLISHED');
  assert.equal(d.FunctionConfig.Comment, 'c');
  assert.equal(d.FunctionConfig.KeyValueStoreAssociations.Quantity, 0);
  assert.match(d.ETag, /^E[0-9A-Z]{13}$/);
  assert.equal((await svc.getCode('fn-1')).code, ALLOW);
  await assert.rejects(svc.describe('fn-1', 'LIVE'), EntityNotFoundError);
  await assert.rejects(svc.create('fn-1', { code: ALLOW, runtime: FUNCTION_RUNTIME }), EntityAlreadyExistsError);
});

test('lifecycle: names, runtime and comment are validated', async (t) => {
  const { svc } = await setup(t);
  for (const name of ['', 'a b', 'x'.repeat(65), 'é']) {
    await assert.rejects(svc.create(name, { code: ALLOW, runtime: FUNCTION_RUNTIME }), InvalidArgumentError, name);
  }
  await assert.rejects(svc.create('ok', { code: ALLOW, runtime: 'cloudfront-js-1.0' as typeof FUNCTION_RUNTIME }), InvalidArgumentError);
  await assert.rejects(svc.create('ok', { code: ALLOW, runtime: FUNCTION_RUNTIME, comment: 'x'.repeat(129) }), InvalidArgumentError);
  await svc.create('A_z-09', { code: ALLOW, runtime: FUNCTION_RUNTIME });
});

test('lifecycle: code that does not compile or is too large is refused with nothing written', async (t) => {
  const { store, svc } = await setup(t);
  const seq = await store.latestSequence();
  const err = await svc.create('bad', { code: 'function connectionHandler(c) {\n  let x = ;\n}', runtime: FUNCTION_RUNTIME }).then(
    () => assert.fail('accepted'), (e: unknown) => e,
  );
  assert.ok(err instanceof FunctionCompileError);
  assert.equal(err.line, 2);
  await assert.rejects(svc.create('big', { code: `${ALLOW}//${'x'.repeat(10240)}`, runtime: FUNCTION_RUNTIME }), FunctionSizeLimitExceededError);
  await assert.rejects(svc.create('nohandler', { code: 'function f() {}', runtime: FUNCTION_RUNTIME }), FunctionCompileError);
  assert.deepEqual(await store.functions.list(), []);
  assert.equal(await store.latestSequence(), seq);
  // Update with bad code: nothing changed either.
  const d = await svc.create('good', { code: ALLOW, runtime: FUNCTION_RUNTIME });
  await assert.rejects(svc.update('good', d.ETag, { code: 'nope(' }), FunctionCompileError);
  const after = await svc.getCode('good');
  assert.equal(after.code, ALLOW);
  assert.equal(after.ETag, d.ETag);
});

test('lifecycle: update changes DEVELOPMENT only; LIVE unchanged until publish; per-stage ETags', async (t) => {
  const { svc } = await setup(t);
  const d0 = await svc.create('f', { code: ALLOW, runtime: FUNCTION_RUNTIME });
  const live1 = await svc.publish('f', d0.ETag);
  assert.equal(live1.Stage, 'LIVE');
  assert.equal(live1.Status, 'UNASSOCIATED');
  assert.notEqual(live1.ETag, d0.ETag);
  assert.equal((await svc.describe('f')).ETag, d0.ETag, 'publish keeps the DEVELOPMENT ETag');
  assert.equal((await svc.describe('f')).Status, 'UNASSOCIATED');

  const d1 = await svc.update('f', d0.ETag, { code: DENY, comment: 'v2' });
  assert.notEqual(d1.ETag, d0.ETag);
  assert.equal((await svc.getCode('f', 'DEVELOPMENT')).code, DENY);
  const live = await svc.getCode('f', 'LIVE');
  assert.equal(live.code, ALLOW);
  assert.equal(live.ETag, live1.ETag);
  assert.equal((await svc.describe('f', 'LIVE')).FunctionConfig.Comment, '');

  const live2 = await svc.publish('f', d1.ETag);
  assert.notEqual(live2.ETag, live1.ETag);
  assert.equal((await svc.getCode('f', 'LIVE')).code, DENY);
  assert.equal(live2.FunctionConfig.Comment, 'v2');
  assert.equal(live2.Id, d0.Id);

  const listed = await svc.list();
  assert.deepEqual(listed.map((s) => [s.Name, s.Stage, s.ETag]), [['f', 'DEVELOPMENT', d1.ETag]]);
  assert.deepEqual((await svc.list('LIVE')).map((s) => s.ETag), [live2.ETag]);
});

test('lifecycle: If-Match rules (missing → InvalidIfMatchVersion, stale or LIVE ETag → PreconditionFailed)', async (t) => {
  const { svc } = await setup(t);
  const d0 = await svc.create('f', { code: ALLOW, runtime: FUNCTION_RUNTIME });
  await assert.rejects(svc.update('f', '', { comment: 'x' }), InvalidIfMatchVersionError);
  await assert.rejects(svc.publish('f', undefined as unknown as string), InvalidIfMatchVersionError);
  await assert.rejects(svc.delete('f', '  '), InvalidIfMatchVersionError);
  const d1 = await svc.update('f', d0.ETag, { comment: 'x' });
  await assert.rejects(svc.update('f', d0.ETag, { comment: 'y' }), PreconditionFailedError);
  await assert.rejects(svc.publish('f', d0.ETag), PreconditionFailedError);
  const live = await svc.publish('f', d1.ETag);
  await assert.rejects(svc.update('f', live.ETag, { comment: 'z' }), PreconditionFailedError, 'the LIVE ETag is not the DEVELOPMENT one');
  await assert.rejects(svc.delete('f', d0.ETag), PreconditionFailedError);
  assert.equal((await svc.describe('f')).FunctionConfig.Comment, 'x');
  await assert.rejects(svc.update('nope', d1.ETag, {}), EntityNotFoundError);
  // Two concurrent updates with the same ETag: exactly one wins.
  const results = await Promise.allSettled([svc.update('f', d1.ETag, { comment: 'a' }), svc.update('f', d1.ETag, { comment: 'b' })]);
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
  const rejected = results.find((r) => r.status === 'rejected');
  assert.ok(rejected && rejected.status === 'rejected' && rejected.reason instanceof PreconditionFailedError);
});

test('lifecycle: KVS association must exist; at most one; can be removed', async (t) => {
  const { store, svc } = await setup(t);
  const seq = await store.latestSequence();
  await assert.rejects(svc.create('f', { code: ALLOW, runtime: FUNCTION_RUNTIME, keyValueStore: 'missing' }), EntityNotFoundError);
  assert.equal(await store.latestSequence(), seq, 'nothing written');
  const kvsId = await readyKvs(store, 'revoked');
  const d0 = await svc.create('f', { code: ALLOW, runtime: FUNCTION_RUNTIME, keyValueStore: 'revoked' });
  assert.deepEqual(d0.FunctionConfig.KeyValueStoreAssociations, { Quantity: 1, Items: [{ KeyValueStoreName: 'revoked', KeyValueStoreId: kvsId }] });
  await assert.rejects(svc.update('f', d0.ETag, { keyValueStore: 'other' }), EntityNotFoundError);
  const d1 = await svc.update('f', d0.ETag, { keyValueStore: null });
  assert.equal(d1.FunctionConfig.KeyValueStoreAssociations.Quantity, 0);
  const d2 = await svc.update('f', d1.ETag, { keyValueStore: 'revoked' });
  // A KVS deleted after association: publish refuses (EntityNotFound), LIVE not created.
  const kvs = await store.kvs.getStore('revoked');
  await store.kvs.deleteStore('revoked', kvs!.etag, 3);
  await assert.rejects(svc.publish('f', d2.ETag), EntityNotFoundError);
  assert.equal(await store.functions.get('f', 'LIVE'), undefined);
});

test('lifecycle: delete refused while a distribution references the function (by name or by id)', async (t) => {
  const { store, svc } = await setup(t);
  const d = await svc.create('f', { code: ALLOW, runtime: FUNCTION_RUNTIME });
  await svc.publish('f', d.ETag);
  await store.distributions.create({ id: 'd1', name: 'edge-a', etag: 'D1', document: { connectionFunctionAssociation: { name: 'f' } }, now: 1 });
  await store.distributions.create({ id: 'd2', name: 'edge-b', etag: 'D2', document: { connectionFunctionAssociation: { id: d.Id } }, now: 1 });
  await store.distributions.create({ id: 'd3', name: 'edge-c', etag: 'D3', document: { connectionFunctionAssociation: { name: 'other' } }, now: 1 });
  assert.equal((await svc.describe('f', 'LIVE')).Status, 'DEPLOYED');
  assert.equal((await svc.list())[0]!.Status, 'DEPLOYED');
  await assert.rejects(svc.delete('f', d.ETag), (e: unknown) => e instanceof CannotDeleteEntityWhileInUseError && /edge-a.*edge-b/.test(e.message));
  await store.distributions.delete('edge-a', 'D1', 2);
  await assert.rejects(svc.delete('f', d.ETag), CannotDeleteEntityWhileInUseError);
  await store.distributions.delete('edge-b', 'D2', 2);
  await svc.delete('f', d.ETag);
  await assert.rejects(svc.describe('f'), EntityNotFoundError);
  await assert.rejects(svc.describe('f', 'LIVE'), EntityNotFoundError);
  assert.deepEqual(await store.functions.list(), []);
  await assert.rejects(svc.delete('f', d.ETag), EntityNotFoundError);
});
