/**
 * The API commands (`trust-store`, `distribution`, `apply`, and the error handling of
 * the API client) against a running admin server: startAdminServer with the /v1 API on
 * a temporary SQLite store, real HTTP on 127.0.0.1:0, the CLI run in-process.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAdminServer, type AdminServer } from '../admin/index.js';
import { openSqliteStore, type Store } from '../store/index.js';
import { buildChain, type TestChain } from '../../test/helpers/pki.js';
import { issueCrl } from '../../test/helpers/crl.js';
import { main } from './index.js';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiClient, ApiRequestError, apiIo, normalizeEtag, ifMatchHeader } from './api-client.js';
import { ApplyFailedError, applyFailureText, applyThroughApi, loadResourcesFile } from './apply.js';
import { resourceExitCode } from './common.js';
import { kvsIo } from './kvs.js';
import { functionLifecycleIo } from './function-lifecycle.js';

const TOKEN = 'cli-test-token-0123456789';
let dir: string;
let store: Store;
let server: AdminServer;
let url: string;
let bundle: string;
let chain: TestChain;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pc-cli-api-'));
  store = await openSqliteStore({ dataDir: join(dir, 'data') });
  server = await startAdminServer({
    listen: '127.0.0.1:0', token: TOKEN,
    metrics: async () => ({ contentType: 'text/plain', body: '' }),
    readiness: () => ({ ready: true, status: 'ok', reasons: [] }),
    api: { store },
  });
  url = `http://127.0.0.1:${server.address.port}`;
  const c = await buildChain({ name: 'CliApi' });
  chain = c;
  bundle = c.root.pem + c.intermediates[0]!.pem;
  writeFileSync(join(dir, 'ca.pem'), bundle);
});

after(async () => {
  await server?.close();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs the CLI in-process against the test server (flags unless `auth: false`). */
async function cli(args: string[], options: { auth?: boolean } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const sinks = [apiIo, kvsIo, functionLifecycleIo];
  const saved = sinks.map((io) => ({ ...io }));
  for (const io of sinks) {
    io.stdout = (t) => { stdout += t; };
    io.stderr = (t) => { stderr += t; };
  }
  const savedErr = process.stderr.write;
  // Usage errors are written by main() to process.stderr: capture them too.
  process.stderr.write = ((t: string) => { stderr += t; return true; }) as typeof process.stderr.write;
  process.exitCode = undefined;
  try {
    const auth = options.auth === false ? [] : ['--admin-url', url, '--token', TOKEN];
    return { code: await main(['node', 'portcullis', ...args, ...auth]), stdout, stderr };
  } finally {
    process.stderr.write = savedErr;
    sinks.forEach((io, i) => Object.assign(io, saved[i]));
    process.exitCode = undefined;
  }
}

test('trust-store create/list/get/update/delete through the API', async () => {
  const created = await cli(['trust-store', 'create', 'devices', '--ca-bundle', join(dir, 'ca.pem'), '--ocsp', '--comment', 'fleet', '--json']);
  assert.equal(created.code, 0, created.stderr);
  const ts = JSON.parse(created.stdout) as { Id: string; Name: string; ETag: string; Status: string; CertificateCount: number };
  assert.equal(ts.Name, 'devices');
  assert.equal(ts.CertificateCount, 2);

  const dup = await cli(['trust-store', 'create', 'devices', '--ca-bundle', join(dir, 'ca.pem')]);
  assert.equal(dup.code, 3);
  assert.match(dup.stderr, /^portcullis: EntityAlreadyExists: /);

  const list = await cli(['trust-store', 'list']);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /^NAME\s+ID\s+STATUS\s+CERTS\s+OCSP\s+ETAG\s+LAST-MODIFIED\n/);
  assert.match(list.stdout, new RegExp(`devices\\s+${ts.Id}\\s+\\S+\\s+2\\s+true\\s+${ts.ETag}`));
  const listJson = JSON.parse((await cli(['trust-store', 'list', '--json'])).stdout) as { Items: { Name: string }[]; Quantity: number };
  assert.equal(listJson.Quantity, 1);

  const got = await cli(['trust-store', 'get', ts.Id]);
  assert.equal(got.code, 0, got.stderr);
  assert.match(got.stdout, /Name\s+devices/);
  assert.match(got.stdout, new RegExp(`ETag\\s+${ts.ETag}`));
  assert.match(got.stdout, /ClientCertificateOcsp\s+true/);
  assert.equal((await cli(['trust-store', 'get', 'devices', '--pem'])).stdout.trim(), bundle.trim());

  const noIfMatch = await cli(['trust-store', 'update', 'devices', '--no-ocsp']);
  assert.equal(noIfMatch.code, 64);
  assert.match(noIfMatch.stderr, /needs --if-match ETAG: get the current ETag with `portcullis trust-store get devices`/);

  const updated = await cli(['trust-store', 'update', 'devices', '--no-ocsp', '--if-match', ts.ETag, '--json']);
  assert.equal(updated.code, 0, updated.stderr);
  const ts2 = JSON.parse(updated.stdout) as { ETag: string; UseClientCertificateOcspEndpoint: boolean };
  assert.equal(ts2.UseClientCertificateOcspEndpoint, false);
  assert.notEqual(ts2.ETag, ts.ETag);

  assert.equal((await cli(['trust-store', 'get', 'nope'])).code, 2);
  const del = await cli(['trust-store', 'delete', 'devices', '--if-match', ts2.ETag]);
  assert.equal(del.code, 0, del.stderr);
  assert.match(del.stdout, /deleted trust store devices/);
  const gone = await cli(['trust-store', 'get', 'devices']);
  assert.equal(gone.code, 2);
  assert.match(gone.stderr, /^portcullis: EntityNotFound: /);
});

test('a stale --if-match is PreconditionFailed (exit 3), with where to get the ETag', async () => {
  const ts = JSON.parse((await cli(['trust-store', 'create', 'etagged', '--ca-bundle', join(dir, 'ca.pem'), '--json'])).stdout) as { ETag: string };
  assert.equal((await cli(['trust-store', 'update', 'etagged', '--comment', 'one', '--if-match', ts.ETag])).code, 0);
  const stale = await cli(['trust-store', 'update', 'etagged', '--comment', 'two', '--if-match', ts.ETag]);
  assert.equal(stale.code, 3);
  assert.match(stale.stderr, /^portcullis: PreconditionFailed: .*get the current ETag with `portcullis trust-store get etagged`/);
  assert.match((await cli(['trust-store', 'get', 'etagged'])).stdout, /Comment\s+one/);
});

test('a wrong token is AccessDenied (exit 77); an unreachable server names its URL (exit 69); no API configured is a usage error', async () => {
  const denied = await cli(['trust-store', 'list', '--admin-url', url, '--token', 'wrong-token-0123456789'], { auth: false });
  assert.equal(denied.code, 77);
  assert.match(denied.stderr, /^portcullis: AccessDenied: /);

  const savedEnv = { url: process.env.PORTCULLIS_ADMIN_URL, token: process.env.PORTCULLIS_ADMIN_TOKEN };
  try {
    process.env.PORTCULLIS_ADMIN_URL = url;
    process.env.PORTCULLIS_ADMIN_TOKEN = TOKEN;
    const viaEnv = await cli(['trust-store', 'list', '--json'], { auth: false });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    delete process.env.PORTCULLIS_ADMIN_URL;
    delete process.env.PORTCULLIS_ADMIN_TOKEN;
    const none = await cli(['trust-store', 'list'], { auth: false });
    assert.equal(none.code, 64);
    assert.match(none.stderr, /no admin API: give --admin-url URL or --config FILE, or set PORTCULLIS_ADMIN_URL/);
  } finally {
    if (savedEnv.url === undefined) delete process.env.PORTCULLIS_ADMIN_URL; else process.env.PORTCULLIS_ADMIN_URL = savedEnv.url;
    if (savedEnv.token === undefined) delete process.env.PORTCULLIS_ADMIN_TOKEN; else process.env.PORTCULLIS_ADMIN_TOKEN = savedEnv.token;
  }

  // A port nothing listens on: bind one and close it.
  const tmp = await startAdminServer({ listen: '127.0.0.1:0', token: TOKEN, metrics: async () => ({ contentType: 'text/plain', body: '' }), readiness: () => ({ ready: true, status: 'ok', reasons: [] }) });
  const deadUrl = `http://127.0.0.1:${tmp.address.port}`;
  await tmp.close();
  const refused = await cli(['trust-store', 'list', '--admin-url', deadUrl, '--token', TOKEN], { auth: false });
  assert.equal(refused.code, 69);
  assert.match(refused.stderr, new RegExp(`^portcullis: Unreachable: cannot reach the admin API at ${deadUrl}: connection refused`));
});

test('--config: admin.listen and the token file <dataDir>/admin-token', async () => {
  const cdir = mkdtempSync(join(tmpdir(), 'pc-cli-cfg-'));
  try {
    writeFileSync(join(cdir, 'portcullis.yaml'), `dataDir: ./data\nadmin:\n  listen: 0.0.0.0:${server.address.port}\n`);
    const missing = await cli(['trust-store', 'list', '--config', join(cdir, 'portcullis.yaml')], { auth: false });
    assert.equal(missing.code, 64);
    assert.match(missing.stderr, /sets no admin.token and the token file .*admin-token cannot be read: no such file/);
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(cdir, 'data'));
    writeFileSync(join(cdir, 'data', 'admin-token'), `${TOKEN}\n`, { mode: 0o600 });
    const ok = await cli(['trust-store', 'list', '--json', '--config', join(cdir, 'portcullis.yaml')], { auth: false });
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok((JSON.parse(ok.stdout) as { Quantity: number }).Quantity >= 0);
  } finally {
    rmSync(cdir, { recursive: true, force: true });
  }
});

test('distribution create/get/list/update/delete from a YAML file', async () => {
  assert.equal((await cli(['trust-store', 'create', 'dist-ca', '--ca-bundle', join(dir, 'ca.pem')])).code, 0);
  const file = join(dir, 'api.yaml');
  writeFileSync(file, [
    'listen: 127.0.0.1:18443', 'aliases: [api.example.test]',
    'certificates: [{certFile: certs/server.pem, keyFile: certs/server.key}]',
    'origin: {url: "http://127.0.0.1:18080"}', 'viewerMtls: {mode: required, trustStore: dist-ca}', '',
  ].join('\n'));
  const created = await cli(['distribution', 'create', 'api', '--file', file, '--json']);
  assert.equal(created.code, 0, created.stderr);
  const d = JSON.parse(created.stdout) as { Id: string; ETag: string; DistributionConfig: { certificates: { certFile: string }[]; origin: { connectTimeoutMs: number } } };
  assert.equal(d.DistributionConfig.certificates[0]!.certFile, join(dir, 'certs', 'server.pem'), 'relative paths resolve against the file');
  assert.equal(d.DistributionConfig.origin.connectTimeoutMs, 5000, 'defaults filled in');

  const got = await cli(['distribution', 'get', 'api']);
  assert.equal(got.code, 0, got.stderr);
  assert.match(got.stdout, /Listen\s+127\.0\.0\.1:18443/);
  assert.match(got.stdout, /ViewerMtls\s+required \(trust store dist-ca\)/);
  assert.match(got.stdout, new RegExp(`ETag\\s+${d.ETag}`));
  assert.match((await cli(['distribution', 'list'])).stdout, /api\s+\S+\s+127\.0\.0\.1:18443\s+api\.example\.test\s+required\s+-\s+E/);

  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'listen: nowhere\norigin: {url: 5}\n');
  const invalid = await cli(['distribution', 'create', 'bad', '--file', bad]);
  assert.equal(invalid.code, 64);
  assert.match(invalid.stderr, /listen: /);
  assert.match(invalid.stderr, /origin\.url: /);
  assert.doesNotMatch(invalid.stderr, /resources\.|distributions\[0\]/);

  writeFileSync(file, `${'listen: 127.0.0.1:18443\naliases: [api.example.test, www.example.test]\n'}certificates: [{certFile: certs/server.pem, keyFile: certs/server.key}]\norigin: {url: "http://127.0.0.1:18080"}\nviewerMtls: {mode: required, trustStore: dist-ca}\n`);
  const stale = await cli(['distribution', 'update', 'api', '--file', file, '--if-match', 'ESTALE']);
  assert.equal(stale.code, 3);
  assert.match(stale.stderr, /PreconditionFailed: .*`portcullis distribution get api`/);
  const upd = await cli(['distribution', 'update', d.Id, '--file', file, '--if-match', d.ETag, '--json']);
  assert.equal(upd.code, 0, upd.stderr);
  const d2 = JSON.parse(upd.stdout) as { ETag: string; DistributionConfig: { aliases: string[] } };
  assert.deepEqual(d2.DistributionConfig.aliases, ['api.example.test', 'www.example.test']);

  assert.equal((await cli(['distribution', 'delete', 'api', '--if-match', d2.ETag])).code, 0);
  assert.equal((await cli(['distribution', 'get', 'api'])).code, 2);
});

test('apply -f: creates everything, a second run changes nothing (no ETag moves), a change updates only that resource', async () => {
  const adir = mkdtempSync(join(tmpdir(), 'pc-cli-apply-'));
  try {
    writeFileSync(join(adir, 'ca.pem'), bundle);
    writeFileSync(join(adir, 'gate.js'), 'function connectionHandler(connection) { connection.allow(); }\n');
    writeFileSync(join(adir, 'revoked.json'), JSON.stringify({ data: [{ key: '01', value: 'revoked' }] }));
    // The preflight reads distribution files when the API is on loopback (the server reads the same files).
    writeFileSync(join(adir, 'server.pem'), chain.leaf.pem);
    writeFileSync(join(adir, 'server.key'), chain.leaf.keyPem);
    const file = join(adir, 'resources.yaml');
    const yaml = (comment: string): string => `
trustStores:
  - name: apply-ca
    caBundleFile: ca.pem
    useClientCertificateOcspEndpoint: true
keyValueStores:
  - name: apply-revoked
    importFile: revoked.json
    comment: revoked serials
connectionFunctions:
  - name: apply-gate
    codeFile: gate.js
    keyValueStore: apply-revoked
    publish: true
distributions:
  - name: apply-api
    listen: 127.0.0.1:18444
    aliases: [apply.example.test]
    certificates: [{certFile: server.pem, keyFile: server.key}]
    origin: {url: "http://127.0.0.1:18080"}
    viewerMtls: {mode: required, trustStore: apply-ca}
    connectionFunction: apply-gate
    comment: ${comment}
`;
    writeFileSync(file, yaml('first'));
    const first = await cli(['apply', '-f', file]);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, [
      'trust store apply-ca: created', 'key value store apply-revoked: created', 'connection function apply-gate: created, published',
      'distribution apply-api: created', '',
    ].join('\n'));
    const kvs = await store.kvs.getStore('apply-revoked');
    assert.equal(kvs?.itemCount, 1, 'the import file was sent');

    const etags = async (): Promise<string[]> => [
      (await store.trustStores.get('apply-ca'))!.etag, (await store.kvs.getStore('apply-revoked'))!.etag,
      (await store.functions.get('apply-gate', 'DEVELOPMENT'))!.etag, (await store.functions.get('apply-gate', 'LIVE'))!.etag,
      (await store.distributions.get('apply-api'))!.etag,
    ];
    const before = await etags();
    const second = await cli(['apply', '-f', file, '--json']);
    assert.equal(second.code, 0, second.stderr);
    const report = JSON.parse(second.stdout) as { Changed: boolean; Items: { action: string; published?: boolean }[] };
    assert.equal(report.Changed, false);
    assert.deepEqual(report.Items.map((e) => e.action), ['unchanged', 'unchanged', 'unchanged', 'unchanged']);
    assert.deepEqual(await etags(), before, 'no ETag moved');

    writeFileSync(file, yaml('second'));
    const third = await cli(['apply', '-f', file]);
    assert.equal(third.code, 0, third.stderr);
    assert.match(third.stdout, /trust store apply-ca: unchanged\n.*\n.*apply-gate: unchanged\ndistribution apply-api: updated\n$/);

    writeFileSync(join(adir, 'broken.yaml'), 'trustStores:\n  - name: "bad name"\n    caBundleFile: ca.pem\nextra: 1\n');
    const invalid = await cli(['apply', '-f', join(adir, 'broken.yaml')]);
    assert.equal(invalid.code, 64);
    assert.match(invalid.stderr, /2 problems/);
    assert.match(invalid.stderr, /trustStores\[0\]\.name: "bad name" is not a valid trust store name/);
    assert.match(invalid.stderr, /extra: /);
  } finally {
    rmSync(adir, { recursive: true, force: true });
  }
});

test('apply -f preflight: a last distribution whose alias is taken on the server, or a function that does not compile, writes nothing', async () => {
  const adir = mkdtempSync(join(tmpdir(), 'pc-cli-preflight-'));
  try {
    writeFileSync(join(adir, 'ca.pem'), bundle);
    writeFileSync(join(adir, 'server.pem'), chain.leaf.pem);
    writeFileSync(join(adir, 'server.key'), chain.leaf.keyPem);
    writeFileSync(join(adir, 'v1.js'), 'function connectionHandler(connection) { connection.allow(); }\n');
    writeFileSync(join(adir, 'v2.js'), 'function connectionHandler(connection) { connection.deny(); }\n');
    writeFileSync(join(adir, 'broken.js'), 'function connectionHandler(connection) { connection.allow(\n');
    const dist = (name: string, alias: string): string => `
  - name: ${name}
    listen: 127.0.0.1:18445
    aliases: [${alias}]
    certificates: [{certFile: server.pem, keyFile: server.key}]
    origin: {url: "http://127.0.0.1:18080"}
    viewerMtls: {mode: required, trustStore: pf-ca}
    connectionFunction: pf-gate`;
    const file = join(adir, 'resources.yaml');
    const doc = (code: string, dists: string): string => `
trustStores:
  - {name: pf-ca, caBundleFile: ca.pem}
connectionFunctions:
  - {name: pf-gate, codeFile: ${code}, publish: true}
distributions:${dists}
`;
    // The server: pf-gate published with v1, and a distribution owning taken.example.test.
    writeFileSync(file, doc('v1.js', dist('pf-owner', 'taken.example.test')));
    const setup = await cli(['apply', '-f', file]);
    assert.equal(setup.code, 0, setup.stderr);
    const liveEtag = (await store.functions.get('pf-gate', 'LIVE'))!.etag;
    const devEtag = (await store.functions.get('pf-gate', 'DEVELOPMENT'))!.etag;

    // A new trust store, a changed function and a new distribution first, then one whose alias is taken.
    writeFileSync(file, doc('v2.js', dist('pf-new', 'new.example.test') + dist('pf-last', 'taken.example.test'))
      .replace('trustStores:\n', 'trustStores:\n  - {name: pf-other, caBundleFile: ca.pem}\n'));
    const conflict = await cli(['apply', '-f', file]);
    assert.equal(conflict.code, 3, conflict.stderr);
    assert.equal(conflict.stdout, '');
    assert.match(conflict.stderr, /^portcullis: CNAMEAlreadyExists: .*nothing was written, 1 problem:\n {2}distributions\[1\]\.aliases: distributions "pf-owner" and "pf-last" both claim alias "taken\.example\.test" on 127\.0\.0\.1:18445 \(the first is in the server\)\n$/);
    assert.equal(await store.trustStores.get('pf-other'), undefined, 'no trust store created');
    assert.equal(await store.distributions.get('pf-new'), undefined, 'no distribution created');
    assert.equal((await store.functions.get('pf-gate', 'LIVE'))!.etag, liveEtag, 'LIVE not republished');
    assert.equal((await store.functions.get('pf-gate', 'DEVELOPMENT'))!.etag, devEtag, 'DEVELOPMENT not updated');
    assert.equal((await cli(['distribution', 'get', 'pf-new'])).code, 2, 'GET shows it absent');

    // A function that does not compile: nothing written, exit 64 (InvalidFunctionCode).
    writeFileSync(file, doc('broken.js', dist('pf-new', 'new.example.test')).replace('trustStores:\n', 'trustStores:\n  - {name: pf-other, caBundleFile: ca.pem}\n'));
    const broken = await cli(['apply', '-f', file]);
    assert.equal(broken.code, 64, broken.stderr);
    assert.match(broken.stderr, /^portcullis: InvalidFunctionCode: .*nothing was written, 1 problem:\n {2}connectionFunctions\[0\]\.codeFile: /);
    assert.equal(await store.trustStores.get('pf-other'), undefined);
    assert.equal(await store.distributions.get('pf-new'), undefined);
    assert.equal((await store.functions.get('pf-gate', 'DEVELOPMENT'))!.etag, devEtag);

    // An unreadable bundle and references missing from the file and the server: every problem listed, the exit code of the first (64).
    writeFileSync(file, `
trustStores:
  - {name: pf-third, caBundleFile: missing.pem}
distributions:${dist('pf-new', 'new.example.test').replace('trustStore: pf-ca', 'trustStore: pf-nowhere').replace('pf-gate', 'pf-nofn')}
`);
    const refs = await cli(['apply', '-f', file]);
    assert.equal(refs.code, 64, refs.stderr);
    assert.match(refs.stderr, /3 problems:\n {2}trustStores\[0\]\.caBundleFile: cannot read CA bundle .*missing\.pem: no such file\n {2}distributions\[0\]\.viewerMtls\.trustStore: trust store "pf-nowhere" is not declared in the file or the server\n {2}distributions\[0\]\.connectionFunction: connection function "pf-nofn" is not declared in the file or the server\n$/);
    assert.equal(await store.trustStores.get('pf-third'), undefined);
  } finally {
    rmSync(adir, { recursive: true, force: true });
  }
});

test('apply: a write refused after the preflight (a concurrent change) reports what was applied and what was not', async () => {
  const adir = mkdtempSync(join(tmpdir(), 'pc-cli-midway-'));
  try {
    writeFileSync(join(adir, 'ca.pem'), bundle);
    writeFileSync(join(adir, 'gate.js'), 'function connectionHandler(connection) { connection.allow(); }\n');
    const file = join(adir, 'resources.yaml');
    writeFileSync(file, 'trustStores:\n  - {name: mid-ca, caBundleFile: ca.pem}\nconnectionFunctions:\n  - {name: mid-gate, codeFile: gate.js, publish: true}\n  - {name: mid-later, codeFile: gate.js}\n');
    // The publish is refused as if another client had just changed the function.
    class RacingClient extends ApiClient {
      override async call<T>(...args: Parameters<ApiClient['call']>): Promise<Awaited<ReturnType<ApiClient['call']>> & { body: T }> {
        if (args[0] === 'POST' && args[1].endsWith('/mid-gate/publish')) throw new ApiRequestError('PreconditionFailed', 'the ETag does not match', 412);
        return super.call<T>(...args);
      }
    }
    const api = new RacingClient({ url, token: TOKEN });
    const err = await applyThroughApi(api, loadResourcesFile(file)).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof ApplyFailedError, String(err));
    assert.deepEqual(err.applied.map((e) => [e.name, e.action]), [['mid-ca', 'created']]);
    assert.deepEqual(err.failed, { kind: 'connectionFunction', name: 'mid-gate', path: 'connectionFunctions[0]', partial: 'created (DEVELOPMENT), not published' });
    assert.deepEqual(err.notApplied.map((e) => e.name), ['mid-later']);
    assert.equal(applyFailureText(err), [
      'portcullis: PreconditionFailed: connectionFunctions[0] "mid-gate": the ETag does not match',
      'apply stopped; resources are partly applied:',
      '  applied before the failure: trust store mid-ca (created)',
      '  failed: connection function mid-gate (partly written: created (DEVELOPMENT), not published)',
      '  not applied: connection function mid-later', '',
    ].join('\n'));
    assert.equal(await store.functions.get('mid-later', 'DEVELOPMENT'), undefined);
  } finally {
    rmSync(adir, { recursive: true, force: true });
  }
});

test('CNAMEAlreadyExists is a conflict (exit 3)', async () => {
  assert.equal(resourceExitCode('CNAMEAlreadyExists'), 3);
  assert.equal((await cli(['trust-store', 'create', 'cname-ca', '--ca-bundle', join(dir, 'ca.pem')])).code, 0);
  const file = join(dir, 'cname.yaml');
  writeFileSync(file, 'listen: 127.0.0.1:18446\naliases: [cname.example.test]\ncertificates: [{certFile: s.pem, keyFile: s.key}]\norigin: {url: "http://127.0.0.1:18080"}\nviewerMtls: {mode: required, trustStore: cname-ca}\n');
  assert.equal((await cli(['distribution', 'create', 'cname-a', '--file', file])).code, 0);
  const taken = await cli(['distribution', 'create', 'cname-b', '--file', file]);
  assert.equal(taken.code, 3, taken.stderr);
  assert.match(taken.stderr, /^portcullis: CNAMEAlreadyExists: /);
});

test('an invalid --admin-url is a usage error naming the flag (64); a server that is not the API is 69, not EntityNotFound', async () => {
  const bad = await cli(['trust-store', 'list', '--admin-url', 'http://256.1.1.1:80', '--token', TOKEN], { auth: false });
  assert.equal(bad.code, 64, bad.stderr);
  assert.match(bad.stderr, /--admin-url: "http:\/\/256\.1\.1\.1:80" is not a valid URL/);
  const badPort = await cli(['trust-store', 'list', '--admin-url', 'http://127.0.0.1:99999', '--token', TOKEN], { auth: false });
  assert.equal(badPort.code, 64, badPort.stderr);

  const other = createServer((req, res) => {
    if (req.url?.startsWith('/v1/distributions/json')) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"Not Found"}');
    } else {
      res.writeHead(404, { 'content-type': 'text/html' }).end('<h1>Not Found</h1>');
    }
  });
  await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
  const otherUrl = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
  try {
    for (const name of ['api', 'json']) {
      const r = await cli(['distribution', 'get', name, '--admin-url', otherUrl, '--token', TOKEN], { auth: false });
      assert.equal(r.code, 69, r.stderr);
      assert.match(r.stderr, new RegExp(`^portcullis: NotAdminApi: ${otherUrl} does not look like the Portcullis admin API \\(HTTP 404 from ${otherUrl}/v1/distributions/${name}\\)`));
    }
  } finally {
    await new Promise((r) => other.close(r));
  }
  // The real API's 404 is still EntityNotFound (exit 2).
  const missing = await cli(['distribution', 'get', 'no-such-distribution']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^portcullis: EntityNotFound: /);
});

test('ETags are read quoted or unquoted and sent quoted in If-Match', async () => {
  assert.equal(normalizeEtag('"ABC"'), 'ABC');
  assert.equal(normalizeEtag('W/"ABC"'), 'ABC');
  assert.equal(normalizeEtag('ABC'), 'ABC');
  assert.equal(ifMatchHeader('ABC'), '"ABC"');
  assert.equal(ifMatchHeader('"ABC"'), '"ABC"');

  // A server that quotes every ETag, in the header and in the body.
  const seen: IncomingHttpHeaders[] = [];
  const quoting = createServer((req, res) => {
    seen.push(req.headers);
    res.writeHead(200, { 'content-type': 'application/json', etag: '"E2"' })
      .end(JSON.stringify({ ETag: '"E2"', Items: [{ ETag: 'W/"E3"' }] }));
  });
  await new Promise<void>((r) => quoting.listen(0, '127.0.0.1', r));
  try {
    const api = new ApiClient({ url: `http://127.0.0.1:${(quoting.address() as AddressInfo).port}`, token: TOKEN });
    const r = await api.call<{ ETag: string; Items: { ETag: string }[] }>('PUT', '/v1/trust-stores/x', { ifMatch: '"E1"', body: {} });
    assert.equal(r.etag, 'E2');
    assert.equal(r.body.ETag, 'E2');
    assert.equal(r.body.Items[0]!.ETag, 'E3');
    await api.call('PUT', '/v1/trust-stores/x', { ifMatch: 'E1', body: {} });
    assert.deepEqual(seen.map((h) => h['if-match']), ['"E1"', '"E1"']);
  } finally {
    await new Promise((r) => quoting.close(r));
  }

  // The real API accepts the quoted form of a read ETag.
  assert.equal((await cli(['trust-store', 'create', 'quoted', '--ca-bundle', join(dir, 'ca.pem')])).code, 0);
  const etag = (await store.trustStores.get('quoted'))!.etag;
  const upd = await cli(['trust-store', 'update', 'quoted', '--comment', 'q', '--if-match', `"${etag}"`]);
  assert.equal(upd.code, 0, upd.stderr);
});

test('kvs commands go through the API when an admin URL is configured and --data-dir is not given', async () => {
  const kdir = mkdtempSync(join(tmpdir(), 'pc-cli-kvs-'));
  try {
    writeFileSync(join(kdir, 'import.json'), JSON.stringify({ data: [{ key: 'a', value: '1' }, { key: 'b/c', value: '2' }] }));
    const created = await cli(['kvs', 'create', 'api-kvs', '--import', join(kdir, 'import.json'), '--comment', 'via api', '--json']);
    assert.equal(created.code, 0, created.stderr);
    assert.equal((JSON.parse(created.stdout) as { ItemCount: number }).ItemCount, 2);
    assert.equal((await store.kvs.getStore('api-kvs'))?.itemCount, 2, 'written on the server\'s store');

    assert.equal((await cli(['kvs', 'get', 'api-kvs', 'b/c'])).stdout, '2\n');
    const put = await cli(['kvs', 'put', 'api-kvs', 'd', '4']);
    assert.equal(put.code, 0, put.stderr);
    assert.match(put.stdout, /put d in api-kvs\nETag\s+\S+\nItemCount\s+3/);
    assert.equal((await cli(['kvs', 'keys', 'api-kvs'])).stdout, 'a\t1\nb/c\t2\nd\t4\n');
    const stale = await cli(['kvs', 'delete-key', 'api-kvs', 'a', '--if-match', 'KVSTALE']);
    assert.equal(stale.code, 3);
    assert.match(stale.stderr, /^portcullis: PreconditionFailed: /);
    assert.equal((await cli(['kvs', 'delete-key', 'api-kvs', 'a'])).code, 0);
    assert.equal((await cli(['kvs', 'get', 'api-kvs', 'a'])).code, 2);
    assert.match((await cli(['kvs', 'describe', 'api-kvs'])).stdout, /Comment\s+via api\n.*ItemCount\s+2/s);
    assert.match((await cli(['kvs', 'list'])).stdout, /api-kvs\s+READY\s+2/);

    // import-crl over the API names a stored trust store.
    assert.equal((await cli(['trust-store', 'create', 'kvs-crl-ca', '--ca-bundle', join(dir, 'ca.pem')])).code, 0);
    const crl = await issueCrl({ issuer: chain.root, entries: [{ serial: '0a' }] });
    writeFileSync(join(kdir, 'root.crl'), crl.pem);
    const imported = await cli(['kvs', 'import-crl', 'api-kvs', '--crl', join(kdir, 'root.crl'), '--trust-store', 'kvs-crl-ca']);
    assert.equal(imported.code, 0, imported.stderr);
    assert.match(imported.stdout, /Entries\s+1/);

    // --data-dir means the local store; with --admin-url it is a usage error.
    const local = await cli(['kvs', 'list', '--data-dir', join(kdir, 'local')], { auth: false });
    assert.equal(local.code, 0, local.stderr);
    assert.equal(local.stdout, 'no key value stores\n');
    const both = await cli(['kvs', 'list', '--data-dir', join(kdir, 'local')]);
    assert.equal(both.code, 64);
    assert.match(both.stderr, /--data-dir \(the local store\) and --admin-url\/--config \(the admin API\) exclude each other/);

    assert.equal((await cli(['kvs', 'delete', 'api-kvs'])).code, 0);
    assert.equal(await store.kvs.getStore('api-kvs'), undefined);
  } finally {
    rmSync(kdir, { recursive: true, force: true });
  }
});

test('function create/update/publish/describe/get-code/list/delete through the API', async () => {
  const fdir = mkdtempSync(join(tmpdir(), 'pc-cli-fn-'));
  try {
    writeFileSync(join(fdir, 'v1.js'), 'function connectionHandler(c) { c.allow(); }');
    writeFileSync(join(fdir, 'v2.js'), 'function connectionHandler(c) { c.deny(); }');
    writeFileSync(join(fdir, 'bad.js'), 'function connectionHandler(c) {\n  c.allow(;\n}');
    const created = await cli(['function', 'create', 'api-fn', '--code', join(fdir, 'v1.js'), '--comment', 'first', '--json']);
    assert.equal(created.code, 0, created.stderr);
    const dev = (JSON.parse(created.stdout) as { FunctionSummary: { ETag: string; Status: string } }).FunctionSummary;
    assert.equal(dev.Status, 'UNPUBLISHED');
    assert.ok(await store.functions.get('api-fn', 'DEVELOPMENT'), 'on the server\'s store');

    const bad = await cli(['function', 'create', 'api-fn2', '--code', join(fdir, 'bad.js')]);
    assert.equal(bad.code, 64);
    assert.match(bad.stderr, /InvalidFunctionCode: .*line 2/);
    assert.equal((await cli(['function', 'describe', 'api-fn', '--stage', 'LIVE'])).code, 2);
    const pub = await cli(['function', 'publish', 'api-fn', '--if-match', dev.ETag]);
    assert.equal(pub.code, 0, pub.stderr);
    assert.match(pub.stdout, /Stage\s+LIVE/);
    assert.equal((await cli(['function', 'update', 'api-fn', '--code', join(fdir, 'v2.js'), '--if-match', 'ESTALE'])).code, 3);
    assert.equal((await cli(['function', 'update', 'api-fn', '--code', join(fdir, 'v2.js')])).code, 0);
    assert.match((await cli(['function', 'get-code', 'api-fn'])).stdout, /deny/);
    assert.match((await cli(['function', 'get-code', 'api-fn', '--stage', 'live'])).stdout, /allow/);
    assert.match((await cli(['function', 'list'])).stdout, /^api-fn\tUNASSOCIATED\tE[0-9A-Z]+\t/m);
    assert.equal((await cli(['function', 'delete', 'api-fn'])).code, 0);
    assert.equal((await cli(['function', 'describe', 'api-fn'])).code, 2);
  } finally {
    rmSync(fdir, { recursive: true, force: true });
  }
});
