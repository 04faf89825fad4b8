/**
 * The API commands of the real CLI (child processes) against a real `portcullis serve`
 * (child process, admin API on a free 127.0.0.1 port): `apply -f` twice (the second
 * run changes nothing and moves no ETag), trust-store get, and the exit code of a
 * wrong token. The CLI finds the API through `--config` (admin.listen + admin.token).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildChain } from '../helpers/pki.js';
import { runCli, startGateway, type RunningGateway } from '../helpers/gateway.js';

let dir: string;
let gw: RunningGateway;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pc-cli-api-int-'));
  gw = await startGateway({ dir, config: {} });
});

after(async () => {
  await gw?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('apply -f against portcullis serve: created, then unchanged with no ETag moved', async () => {
  const c = await buildChain({ name: 'CliApiInt' });
  writeFileSync(join(dir, 'ca.pem'), c.root.pem + c.intermediates[0]!.pem);
  writeFileSync(join(dir, 'gate.js'), 'function connectionHandler(connection) { connection.allow(); }\n');
  writeFileSync(join(dir, 'serials.json'), JSON.stringify({ data: [{ key: '0a', value: 'revoked' }] }));
  const file = join(dir, 'resources.yaml');
  writeFileSync(file, `
trustStores:
  - {name: devices, caBundleFile: ca.pem, useClientCertificateOcspEndpoint: true}
keyValueStores:
  - {name: revoked, importFile: serials.json}
connectionFunctions:
  - {name: gate, codeFile: gate.js, keyValueStore: revoked, publish: true}
`);
  const cfg = ['--config', gw.configFile];
  const first = await runCli(['apply', '-f', file, ...cfg]);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(first.stdout, 'trust store devices: created\nkey value store revoked: created\nconnection function gate: created, published\n');

  const etags = async (): Promise<string[]> => {
    const out: string[] = [];
    for (const path of ['/v1/trust-stores/devices', '/v1/key-value-stores/revoked', '/v1/connection-functions/gate?stage=DEVELOPMENT', '/v1/connection-functions/gate?stage=LIVE']) {
      const r = await gw.admin(path);
      assert.equal(r.status, 200, r.body);
      out.push((JSON.parse(r.body) as { ETag: string }).ETag);
    }
    return out;
  };
  const before = await etags();
  const second = await runCli(['apply', '-f', file, '--json', ...cfg]);
  assert.equal(second.code, 0, second.stderr);
  const report = JSON.parse(second.stdout) as { Changed: boolean; Items: { action: string }[] };
  assert.equal(report.Changed, false);
  assert.deepEqual(report.Items.map((e) => e.action), ['unchanged', 'unchanged', 'unchanged']);
  assert.deepEqual(await etags(), before);

  const got = await runCli(['trust-store', 'get', 'devices', ...cfg]);
  assert.equal(got.code, 0, got.stderr);
  assert.match(got.stdout, new RegExp(`ETag\\s+${before[0]}`));
  assert.equal((await runCli(['kvs', 'get', 'revoked', '0a', ...cfg])).stdout, 'revoked\n');
});

test('a wrong token exits 77 with AccessDenied; a closed port exits 69 naming the URL', async () => {
  const denied = await runCli(['trust-store', 'list', '--admin-url', gw.adminUrl, '--token', 'not-the-token-0123456789']);
  assert.equal(denied.code, 77);
  assert.match(denied.stderr, /^portcullis: AccessDenied: /);
  const refused = await runCli(['distribution', 'list', '--admin-url', 'http://127.0.0.1:1', '--token', 'x']);
  assert.equal(refused.code, 69);
  assert.match(refused.stderr, /cannot reach the admin API at http:\/\/127\.0\.0\.1:1: connection refused/);
});

test('apply -f with a function that does not compile writes nothing (exit 64); an invalid --admin-url is a usage error (64)', async () => {
  writeFileSync(join(dir, 'ca2.pem'), (await buildChain({ name: 'CliApiPre' })).root.pem);
  writeFileSync(join(dir, 'broken.js'), 'function connectionHandler(connection) {\n');
  const file = join(dir, 'preflight.yaml');
  writeFileSync(file, 'trustStores:\n  - {name: pre-ca, caBundleFile: ca2.pem}\nconnectionFunctions:\n  - {name: pre-fn, codeFile: broken.js}\n');
  const r = await runCli(['apply', '-f', file, '--config', gw.configFile]);
  assert.equal(r.code, 64, r.stderr);
  assert.match(r.stderr, /^portcullis: InvalidFunctionCode: .*nothing was written, 1 problem:\n {2}connectionFunctions\[0\]\.codeFile: /);
  assert.equal(r.stdout, '');
  assert.equal((await gw.admin('/v1/trust-stores/pre-ca')).status, 404, 'the trust store before the function was not created');
  assert.equal((await gw.admin('/v1/connection-functions/pre-fn')).status, 404);

  const bad = await runCli(['trust-store', 'list', '--admin-url', 'http://256.1.1.1:80', '--token', 'x']);
  assert.equal(bad.code, 64);
  assert.match(bad.stderr, /--admin-url: "http:\/\/256\.1\.1\.1:80" is not a valid URL/);
});
