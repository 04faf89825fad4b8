import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { openSqliteStore } from '../store/index.js';
import { DistributionService, TrustStoreService } from '../resources/index.js';
import { buildChain, issueCertificate } from '../../test/helpers/pki.js';
import { validateConfig } from './index.js';

test('validateConfig: files, certificate/key pairs, bundles, imports, code and references; names in the store count', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-validate-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const chain = await buildChain({ name: 'Validate' });
  const server = await issueCertificate({ subject: 'CN=localhost', issuer: chain.root, san: { dns: ['localhost'] } });
  const stranger = await issueCertificate({ subject: 'CN=other' });
  writeFileSync(join(dir, 'root.pem'), chain.root.pem);
  writeFileSync(join(dir, 'leaf.pem'), chain.leaf.pem);
  writeFileSync(join(dir, 'server.pem'), server.pem + chain.root.pem);
  writeFileSync(join(dir, 'server.key'), server.keyPem);
  writeFileSync(join(dir, 'other.key'), stranger.keyPem);
  writeFileSync(join(dir, 'good.json'), JSON.stringify({ data: [{ key: 'a', value: 'b' }] }));
  writeFileSync(join(dir, 'dup.json'), '{"data":[{"key":"a","value":"1"},{"key":"a","value":"2"}]}');
  writeFileSync(join(dir, 'good.js'), 'function connectionHandler(c) { c.allow(); }');
  writeFileSync(join(dir, 'bad.js'), 'function connectionHandler(c) {\n  c.allow(;\n}');
  const distribution = (name: string, extra: Record<string, unknown>) => ({
    name, listen: '127.0.0.1:8443', aliases: [`${name}.example.com`], certificates: [{ certFile: 'server.pem', keyFile: 'server.key' }],
    origin: { url: 'http://127.0.0.1:8080' }, viewerMtls: { trustStore: 'devices' }, ...extra,
  });

  const good = {
    resources: {
      trustStores: [{ name: 'devices', caBundleFile: 'root.pem' }],
      keyValueStores: [{ name: 'k', importFile: 'good.json' }],
      connectionFunctions: [{ name: 'f', codeFile: 'good.js', keyValueStore: 'k' }],
      distributions: [distribution('api', { connectionFunction: 'f' })],
    },
    listenOverrides: { api: '0.0.0.0:8443' },
  };
  writeFileSync(join(dir, 'good.yaml'), stringify(good));
  const ok = await validateConfig(join(dir, 'good.yaml'), {});
  assert.deepEqual(ok.problems, []);
  assert.equal(ok.missingFile, false);

  const bad = {
    resources: {
      trustStores: [{ name: 'devices', caBundleFile: 'leaf.pem' }, { name: 'gone', caBundleFile: 'nope.pem' }],
      keyValueStores: [{ name: 'k', importFile: 'dup.json' }],
      connectionFunctions: [{ name: 'f', codeFile: 'bad.js', keyValueStore: 'missing-kvs' }],
      distributions: [
        distribution('api', { certificates: [{ certFile: 'server.pem', keyFile: 'other.key' }], connectionFunction: 'nofn' }),
        distribution('web', { viewerMtls: { trustStore: 'stored' }, certificates: [{ certFile: 'root.pem', keyFile: 'good.json' }] }),
      ],
    },
    listenOverrides: { ghost: '0.0.0.0:1' },
  };
  writeFileSync(join(dir, 'bad.yaml'), stringify(bad));
  const byPath = (r: Awaited<ReturnType<typeof validateConfig>>) => Object.fromEntries(r.problems.map((p) => [p.path, p.message]));
  const res = byPath(await validateConfig(join(dir, 'bad.yaml'), {}));
  assert.match(res['resources.trustStores[0].caBundleFile']!, /CA bundle rejected: certificate #1 .*not a CA/);
  assert.match(res['resources.trustStores[1].caBundleFile']!, /cannot read CA bundle .*nope\.pem: no such file/);
  assert.match(res['resources.keyValueStores[0].importFile']!, /"a"/);
  assert.match(res['resources.connectionFunctions[0].codeFile']!, /line 2/);
  assert.match(res['resources.connectionFunctions[0].keyValueStore']!, /"missing-kvs" is not declared in the config/);
  assert.match(res['resources.distributions[0].certificates[0].keyFile']!, /does not match the certificate/);
  assert.match(res['resources.distributions[0].connectionFunction']!, /"nofn" is not declared/);
  assert.match(res['resources.distributions[1].viewerMtls.trustStore']!, /"stored" is not declared in the config$/);
  assert.match(res['resources.distributions[1].certificates[0].keyFile']!, /not a private key/);
  assert.match(res['listenOverrides.ghost']!, /distribution "ghost" is not declared/);

  // With the embedded store present, its resources count.
  const store = await openSqliteStore({ dataDir: join(dir, 'data') });
  await new TrustStoreService(store).create({ name: 'stored', caBundlePem: chain.root.pem });
  await new DistributionService(store).create('legacy', {
    listen: '127.0.0.1:8443', aliases: ['web.example.com'], certificates: [{ certFile: '/c', keyFile: '/k' }], origin: { url: 'http://o' },
    viewerMtls: { trustStore: 'stored' },
  });
  await store.close();
  const res2 = byPath(await validateConfig(join(dir, 'bad.yaml'), {}));
  assert.equal(res2['resources.distributions[1].viewerMtls.trustStore'], undefined);
  assert.match(res2['resources.connectionFunctions[0].keyValueStore']!, /not declared in the config or the store/);
  assert.match(res2['resources.distributions[1].aliases']!, /"legacy" and "web" both claim alias "web\.example\.com" on 127\.0\.0\.1:8443 \(the first is in the store\)/);

  const missing = await validateConfig(join(dir, 'missing.yaml'), {});
  assert.equal(missing.missingFile, true);
  assert.equal(missing.problems.length, 1);
});

test('validateConfig: cluster.snapshotFile must be writable — its parent a file, the path a directory, or (not root) a read-only directory is a problem naming cluster.snapshotFile; a missing directory that can be created is fine', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-validate-snap-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'portcullis.yaml');
  writeFileSync(join(dir, 'plain'), 'x');
  mkdirSync(join(dir, 'adir'));
  const check = async (snapshotFile: string): Promise<string[]> => {
    writeFileSync(file, stringify({ cluster: { snapshotFile } }));
    const v = await validateConfig(file, {}, { store: null });
    return v.problems.map((p) => `${p.path}: ${p.message}`);
  };
  assert.deepEqual(await check(join(dir, 'plain', 'snap.json')), [`cluster.snapshotFile: cannot write the snapshot ${join(dir, 'plain', 'snap.json')}: ${join(dir, 'plain')} is not a directory`]);
  assert.deepEqual(await check(join(dir, 'adir')), [`cluster.snapshotFile: ${join(dir, 'adir')} is a directory; the snapshot is a file`]);
  assert.deepEqual(await check(join(dir, 'new', 'deeper', 'snap.json')), []);
  assert.deepEqual(await check(join(dir, 'adir', 'snap.json')), []);
  if (process.getuid?.() !== 0) {
    mkdirSync(join(dir, 'ro'), { mode: 0o555 });
    assert.deepEqual(await check(join(dir, 'ro', 'snap.json')), [`cluster.snapshotFile: cannot write the snapshot ${join(dir, 'ro', 'snap.json')}: the directory ${join(dir, 'ro')} is not writable`]);
  }
});
