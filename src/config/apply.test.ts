import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import { openSqliteStore, type Store } from '../store/index.js';
import { DistributionService, TrustStoreService } from '../resources/index.js';
import { buildChain } from '../../test/helpers/pki.js';
import { applyResources, configFromTree } from './index.js';

const ALLOW = 'function connectionHandler(connection) { connection.allow(); }';
const DENY = 'function connectionHandler(connection) { connection.deny(); }';

/** Every ETag in the store, by resource, to see what a run changed. */
async function etags(store: Store): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const r of await store.trustStores.list()) out[`ts:${r.name}`] = r.etag;
  for (const r of await store.kvs.listStores()) out[`kvs:${r.name}`] = r.etag;
  for (const r of await store.functions.list()) out[`fn:${r.name}:${r.stage}`] = r.etag;
  for (const r of await store.distributions.list()) out[`d:${r.name}`] = r.etag;
  return out;
}

test('applyResources: creates in order, is idempotent, updates only what changed, leaves undeclared resources alone', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-apply-'));
  const store = await openSqliteStore({ dataDir: join(dir, 'data') });
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const chain = await buildChain({ name: 'Apply' });
  const other = await buildChain({ name: 'Apply2' });
  writeFileSync(join(dir, 'root.pem'), chain.root.pem);
  writeFileSync(join(dir, 'kvs.json'), JSON.stringify({ data: [{ key: '00aa', value: 'revoked' }] }));
  writeFileSync(join(dir, 'fn.js'), ALLOW);
  const tree = {
    resources: {
      trustStores: [{ name: 'devices', caBundleFile: 'root.pem', useClientCertificateOcspEndpoint: true }],
      keyValueStores: [{ name: 'revoked', comment: 'c', importFile: 'kvs.json' }],
      connectionFunctions: [{ name: 'gate', codeFile: 'fn.js', keyValueStore: 'revoked', publish: true }],
      distributions: [{
        name: 'api', listen: '127.0.0.1:8443', aliases: ['localhost'], certificates: [{ certFile: 's.pem', keyFile: 's.key' }],
        origin: { url: 'http://127.0.0.1:8080' }, viewerMtls: { mode: 'required', trustStore: 'devices' }, connectionFunction: 'gate',
      }],
    },
  };
  const config = configFromTree(join(dir, 'portcullis.yaml'), tree, {});

  // An undeclared trust store and distribution exist before: never touched.
  const ts = new TrustStoreService(store);
  await ts.create({ name: 'manual', caBundlePem: other.root.pem });
  await new DistributionService(store).create('manual', {
    listen: '127.0.0.1:9443', certificates: [{ certFile: '/c', keyFile: '/k' }], origin: { url: 'http://o' }, viewerMtls: { trustStore: 'manual' },
  });

  const first = await applyResources(store, config);
  assert.deepEqual(first.entries.map((e) => `${e.kind}:${e.name}:${e.action}${e.published ? '+published' : ''}`), [
    'trustStore:devices:created', 'keyValueStore:revoked:created', 'connectionFunction:gate:created+published', 'distribution:api:created',
  ]);
  assert.equal(first.changed, true);
  assert.equal((await store.kvs.getStore('revoked'))?.itemCount, 1);
  assert.equal((await store.kvs.getStore('revoked'))?.status, 'READY');
  const dist = await store.distributions.get('api');
  assert.deepEqual((dist?.document as { connectionFunctionAssociation: unknown }).connectionFunctionAssociation, { name: 'gate' });
  assert.equal((await store.functions.get('gate', 'LIVE'))?.document && ((await store.functions.get('gate', 'LIVE'))!.document as { code: string }).code, ALLOW);

  const before = await etags(store);
  const second = await applyResources(store, config);
  assert.equal(second.changed, false);
  assert.ok(second.entries.every((e) => e.action === 'unchanged' && !e.published));
  assert.deepEqual(await etags(store), before);

  // A changed code file updates DEVELOPMENT and publishes; a changed import file is ignored.
  writeFileSync(join(dir, 'fn.js'), DENY);
  writeFileSync(join(dir, 'kvs.json'), JSON.stringify({ data: [] }));
  const third = await applyResources(store, config);
  assert.deepEqual(third.entries.filter((e) => e.action !== 'unchanged' || e.published).map((e) => `${e.name}:${e.action}:${e.published ?? false}`), ['gate:updated:true']);
  const after3 = await etags(store);
  for (const k of Object.keys(before)) {
    if (k.startsWith('fn:gate')) assert.notEqual(after3[k], before[k], k);
    else assert.equal(after3[k], before[k], k);
  }
  assert.equal(((await store.functions.get('gate', 'LIVE'))!.document as { code: string }).code, DENY);
  assert.equal((await store.kvs.getStore('revoked'))?.itemCount, 1);

  // A changed CA bundle updates the trust store (and nothing else).
  writeFileSync(join(dir, 'root.pem'), chain.root.pem + chain.intermediates[0]!.pem);
  const fourth = await applyResources(store, config);
  assert.deepEqual(fourth.entries.filter((e) => e.action !== 'unchanged').map((e) => `${e.name}:${e.action}`), ['devices:updated']);
  assert.equal(((await store.trustStores.get('devices'))!.document as { certificateCount: number }).certificateCount, 2);

  // An invalid bundle on update is refused: ConfigError naming the declaration; the old bundle stays.
  writeFileSync(join(dir, 'root.pem'), chain.leaf.pem);
  const etagBefore = (await store.trustStores.get('devices'))!.etag;
  await assert.rejects(applyResources(store, config), (e: unknown) => e instanceof ConfigError
    && e.problems[0]?.path === 'resources.trustStores[0]' && /"devices": InvalidArgument: .*not a CA/.test(e.problems[0].message));
  assert.equal((await store.trustStores.get('devices'))!.etag, etagBefore);

  // Undeclared resources are still there, untouched.
  assert.ok(await store.trustStores.get('manual'));
  assert.ok(await store.distributions.get('manual'));
});

test('applyResources: a bundle invalid at creation is stored failed and reported; a missing code file names its key', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-apply2-'));
  const store = await openSqliteStore({ dataDir: join(dir, 'data') });
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const chain = await buildChain({ name: 'Apply3' });
  const config = configFromTree(join(dir, 'p.yaml'), {
    resources: {
      trustStores: [{ name: 'bad', caBundlePem: chain.leaf.pem }],
      connectionFunctions: [{ name: 'f', codeFile: 'missing.js' }],
    },
  }, {});
  await assert.rejects(applyResources(store, config), (e: unknown) => e instanceof ConfigError
    && e.problems[0]?.path === 'resources.connectionFunctions[0].codeFile' && /no such file/.test(e.problems[0].message));
  const r = await applyResources(store, { ...config, resources: { ...config.resources, connectionFunctions: [] } });
  assert.equal(r.entries[0]?.action, 'unchanged');
  assert.match(r.entries[0]?.warning ?? '', /trust store is failed: certificate #1 .*not a CA/);
});
