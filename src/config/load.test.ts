import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import { DEFAULT_OCSP_CACHE_OPTIONS, DEFAULT_REVOCATION_OPTIONS } from '../revocation/index.js';
import { DEFAULT_FUNCTION_LIMITS } from '../functions/index.js';
import { DEFAULT_KVS_LIMITS } from '../kvs/index.js';
import {
  CONFIG_DEFAULTS, configFromTree, functionLimitsFromConfig, kvsLimitsFromConfig, loadConfig, ocspCacheOptionsFromConfig,
  revocationOptionsFromConfig,
} from './index.js';

const FILE = '/etc/portcullis/node.yaml';

function problemsOf(tree: unknown, env: Record<string, string> = {}): { path: string; message: string }[] {
  try {
    configFromTree(FILE, tree, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    assert.ok(err.message.startsWith(`${FILE}: `), err.message);
    for (const p of err.problems) assert.ok(err.message.includes(p.path ? `${p.path}: ${p.message}` : p.message));
    return err.problems.map((p) => ({ ...p }));
  }
  assert.fail('expected a ConfigError');
}

function dist(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'api', listen: '127.0.0.1:8443', aliases: ['localhost'],
    certificates: [{ certFile: './pki/server.pem', keyFile: './pki/server.key' }],
    origin: { url: 'http://127.0.0.1:8080' }, viewerMtls: { trustStore: 'devices' }, ...extra,
  };
}

test('defaults: an empty file gives every default, paths resolved against the file', () => {
  const c = configFromTree(FILE, null, {});
  assert.equal(c.file, FILE);
  assert.equal(c.dataDir, '/etc/portcullis/data');
  assert.deepEqual(c.store, { kind: 'sqlite' });
  assert.equal(c.workers, availableParallelism());
  assert.deepEqual(c.admin, { listen: '127.0.0.1:9901' });
  assert.deepEqual(c.logging, { level: 'info', connectionLog: 'stdout' });
  assert.deepEqual(c.ocsp, {
    timeoutMs: 2000, fetchTimeoutMs: 10000, maxCacheTtlSeconds: 1800, defaultTtlSeconds: 300, failureCacheSeconds: 30, clockSkewSeconds: 300,
    maxAgeWithoutNextUpdateSeconds: 86400, maxResponseBytes: 65536, nonce: false,
  });
  assert.deepEqual(c.functions, { cpuLimitMs: 5, memoryLimitBytes: 2097152, maxCodeBytes: 10240 });
  assert.equal(c.kvs.maxStoreBytes, 5242880);
  assert.equal(c.kvs.maxKeyBytes, 512);
  assert.equal(c.kvs.maxValueBytes, 1024);
  assert.deepEqual(c.listenOverrides, {});
  assert.deepEqual(c.resources, { trustStores: [], keyValueStores: [], connectionFunctions: [], distributions: [] });
  assert.equal(c.nodeName, undefined);
  assert.equal(CONFIG_DEFAULTS.dataDir, './data');
});

test('mapping helpers: config units to module options, defaults agree with the modules', () => {
  const c = configFromTree(FILE, { ocsp: { clockSkewSeconds: 60, maxCacheTtlSeconds: 600 } }, {});
  assert.deepEqual(revocationOptionsFromConfig(c), {
    timeoutMs: 2000, fetchTimeoutMs: 10000, clockSkewMs: 60_000, maxAgeWithoutNextUpdateMs: 86_400_000, maxResponseBytes: 65536, nonce: false,
  });
  assert.deepEqual(ocspCacheOptionsFromConfig(c), { maxTtlMs: 600_000, defaultTtlMs: 300_000, failureTtlMs: 30_000 });
  const d = configFromTree(FILE, {}, {});
  assert.equal(revocationOptionsFromConfig(d).clockSkewMs, DEFAULT_REVOCATION_OPTIONS.clockSkewMs);
  assert.equal(ocspCacheOptionsFromConfig(d).maxTtlMs, DEFAULT_OCSP_CACHE_OPTIONS.maxTtlMs);
  assert.deepEqual(functionLimitsFromConfig(d), DEFAULT_FUNCTION_LIMITS);
  assert.deepEqual(kvsLimitsFromConfig(d), DEFAULT_KVS_LIMITS);
});

test('unknown keys are errors naming their full path, all reported at once', () => {
  const problems = problemsOf({
    datadir: './x',
    admin: { listen: '127.0.0.1:1', tokn: 'x' },
    logging: { lvl: 'info' },
    ocsp: { timeout: 1 },
    functions: { cpuLimit: 1 },
    kvs: { maxKeys: 1 },
    resources: {
      truststores: [],
      trustStores: [{ name: 't', caBundlePem: 'x', ocsp: true }],
      keyValueStores: [{ name: 'k', import: 'f' }],
      connectionFunctions: [{ name: 'f', codeFile: 'f.js', kvs: 'k' }],
      distributions: [dist({
        viewerMtls: { mod: 'required', trustStore: 'devices' }, origin: { url: 'http://o', timeout: 1 },
        certificates: [{ certFile: 'a', keyFile: 'b', chain: 'c' }], limits: { maxConn: 1 }, extra: 1,
      })],
    },
  }).filter((p) => p.message === 'unknown key').map((p) => p.path).sort();
  assert.deepEqual(problems, [
    'admin.tokn', 'datadir', 'functions.cpuLimit', 'kvs.maxKeys', 'logging.lvl', 'ocsp.timeout',
    'resources.connectionFunctions[0].kvs', 'resources.distributions[0].certificates[0].chain', 'resources.distributions[0].extra',
    'resources.distributions[0].limits.maxConn', 'resources.distributions[0].origin.timeout', 'resources.distributions[0].viewerMtls.mod',
    'resources.keyValueStores[0].import', 'resources.trustStores[0].ocsp', 'resources.truststores',
  ]);
});

test('bad values: each names its path and what is wrong', () => {
  const cases: [unknown, string, RegExp][] = [
    [{ workers: 0 }, 'workers', /at least 1/],
    [{ workers: 'four' }, 'workers', /expected a number, got the string "four"/],
    [{ store: 'mysql://x' }, 'store', /must be "sqlite" or a postgres:\/\/ URL/],
    [{ admin: { listen: '9901' } }, 'admin.listen', /host:port/],
    [{ admin: { token: 'short' } }, 'admin.token', /at least 16 characters/],
    [{ logging: { level: 'verbose' } }, 'logging.level', /must be one of "fatal"/],
    [{ ocsp: { timeoutMs: 1.5 } }, 'ocsp.timeoutMs', /integer/],
    [{ ocsp: { nonce: 'yes' } }, 'ocsp.nonce', /expected true or false/],
    [{ functions: { cpuLimitMs: 5000 } }, 'functions.cpuLimitMs', /at most 1000/],
    [{ kvs: { defaultListKeys: 60 } }, 'kvs.defaultListKeys', /must not exceed kvs.maxListKeys/],
    [{ nodeName: 'a b' }, 'nodeName', /1-64 characters/],
    [{ listenOverrides: { api: 'nope' } }, 'listenOverrides.api', /host:port/],
    [{ listenOverrides: { 'bad name': '127.0.0.1:1' } }, 'listenOverrides.bad name', /invalid key: "bad name" is not a valid distribution name/],
    [{ resources: { trustStores: [{ name: 't' }] } }, 'resources.trustStores[0]', /exactly one of caBundleFile and caBundlePem/],
    [{ resources: { trustStores: [{ name: 't', caBundlePem: 'x' }, { name: 't', caBundlePem: 'y' }] } }, 'resources.trustStores[1].name', /already declared at index 0/],
    [{ resources: { connectionFunctions: [{ name: 'f' }] } }, 'resources.connectionFunctions[0].codeFile', /^required$/],
    [{ resources: { distributions: [dist({ listen: '[::1]8443' })] } }, 'resources.distributions[0].listen', /host:port/],
    [{ resources: { distributions: [dist({ viewerMtls: { mode: 'optional' } })] } }, 'resources.distributions[0].viewerMtls.trustStore', /required unless mode is passthrough/],
    [{ resources: { distributions: [dist({ origin: { url: 'ftp://o' } })] } }, 'resources.distributions[0].origin.url', /http:\/\/ or https:\/\//],
    [{ resources: { distributions: [dist({ aliases: ['-bad.example'] })] } }, 'resources.distributions[0].aliases[0]', /not a DNS name/],
    [{ resources: { distributions: [dist(), dist({ name: 'api2', aliases: ['LOCALHOST'] })] } }, 'resources.distributions[1].aliases', /"api" and "api2" both claim alias "localhost"/],
  ];
  for (const [tree, path, re] of cases) {
    const problems = problemsOf(tree);
    const p = problems.find((x) => x.path === path);
    assert.ok(p, `${path} not in ${JSON.stringify(problems)}`);
    assert.match(p.message, re, path);
  }
});

test('${VAR} substitution: strings only, unset is an error naming key and variable, admin.token unset → undefined', () => {
  const env = { ADMIN: 'x'.repeat(20), DIR: 'state', HOST: '10.0.0.1' };
  const c = configFromTree(FILE, { dataDir: '/var/${DIR}', admin: { token: '${ADMIN}', listen: '${HOST}:9901' } }, env);
  assert.equal(c.admin.token, 'x'.repeat(20));
  assert.equal(c.admin.listen, '10.0.0.1:9901');
  assert.equal(c.dataDir, '/var/state');
  assert.deepEqual(problemsOf({ nodeName: 'n-$${X}' }).map((p) => p.path), ['nodeName']); // a literal "${X}" is not a valid name
  const unsetToken = configFromTree(FILE, { admin: { token: '${PORTCULLIS_ADMIN_TOKEN}' } }, {});
  assert.equal(unsetToken.admin.token, undefined);
  assert.equal('token' in unsetToken.admin, false);
  assert.equal(configFromTree(FILE, { admin: { token: '${T}' } }, { T: '' }).admin.token, undefined);
  assert.deepEqual(problemsOf({ logging: { connectionLog: '${LOGDIR}/c.log' }, resources: { keyValueStores: [{ name: 'k', comment: '${C' }] } }), [
    { path: 'logging.connectionLog', message: 'environment variable LOGDIR is not set' },
    { path: 'resources.keyValueStores[0].comment', message: 'malformed variable reference "${C": use ${NAME} (letters, digits, _), or $${ for a literal ${' },
  ]);
});

test('relative paths resolve against the config file directory', () => {
  const c = configFromTree(FILE, {
    dataDir: 'state', logging: { connectionLog: 'logs/conn.jsonl' },
    resources: {
      trustStores: [{ name: 'devices', caBundleFile: 'pki/root.pem' }],
      keyValueStores: [{ name: 'k', importFile: 'k.json' }, { name: 'u', importFile: 'https://example.com/k.json' }],
      connectionFunctions: [{ name: 'f', codeFile: '../f.js', publish: true }],
      distributions: [dist({ origin: { url: 'https://o', caFile: 'ca.pem' }, connectionFunction: 'f' })],
    },
  }, {});
  assert.equal(c.dataDir, '/etc/portcullis/state');
  assert.equal(c.logging.connectionLog, '/etc/portcullis/logs/conn.jsonl');
  assert.equal(c.resources.trustStores[0]!.caBundleFile, '/etc/portcullis/pki/root.pem');
  assert.equal(c.resources.trustStores[0]!.useClientCertificateOcspEndpoint, false);
  assert.equal(c.resources.keyValueStores[0]!.importFile, '/etc/portcullis/k.json');
  assert.equal(c.resources.keyValueStores[1]!.importFile, 'https://example.com/k.json');
  assert.equal(c.resources.connectionFunctions[0]!.codeFile, '/etc/f.js');
  const d = c.resources.distributions[0]!;
  assert.deepEqual(d.certificates, [{ certFile: '/etc/portcullis/pki/server.pem', keyFile: '/etc/portcullis/pki/server.key' }]);
  assert.equal(d.origin.caFile, '/etc/portcullis/ca.pem');
  assert.equal(d.connectionFunction, 'f');
  assert.equal(d.viewerMtls.mode, 'required');
  assert.equal(d.limits.handshakeTimeoutMs, 10000);
});

test('loadConfig: YAML and JSON by extension; syntax errors and missing files name the file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-cfg-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'a.yaml'), 'workers: 2\nnodeName: edge-1\nlistenOverrides:\n  api: 0.0.0.0:8443\n');
  const a = await loadConfig(join(dir, 'a.yaml'), {});
  assert.equal(a.workers, 2);
  assert.equal(a.nodeName, 'edge-1');
  assert.deepEqual(a.listenOverrides, { api: '0.0.0.0:8443' });
  writeFileSync(join(dir, 'b.json'), JSON.stringify({ workers: 3 }));
  assert.equal((await loadConfig(join(dir, 'b.json'), {})).workers, 3);
  writeFileSync(join(dir, 'c.yaml'), 'workers: 2\nworkers: 3\n');
  await assert.rejects(loadConfig(join(dir, 'c.yaml'), {}), (e: unknown) => e instanceof ConfigError && /c\.yaml: 1 problem\n {2}not valid YAML \(line 2/.test(e.message));
  writeFileSync(join(dir, 'd.json'), '{"workers": }');
  await assert.rejects(loadConfig(join(dir, 'd.json'), {}), /d\.json: 1 problem\n {2}not valid JSON/);
  writeFileSync(join(dir, 'e.yaml'), '- 1\n');
  await assert.rejects(loadConfig(join(dir, 'e.yaml'), {}), /a map of settings/);
  await assert.rejects(loadConfig(join(dir, 'missing.yaml'), {}),
    (e: unknown) => e instanceof ConfigError && /missing\.yaml: 1 problem\n {2}cannot read the config file: no such file/.test(e.message)
      && (e.cause as NodeJS.ErrnoException).code === 'ENOENT');
});

test('examples/portcullis.yaml loads (every key spelled as the contract says)', async () => {
  const file = new URL('../../examples/portcullis.yaml', import.meta.url).pathname;
  const c = await loadConfig(file, { PORTCULLIS_ADMIN_TOKEN: 'an-example-token-of-32-characters' });
  assert.equal(c.admin.token, 'an-example-token-of-32-characters');
  assert.equal(c.resources.distributions[0]?.connectionFunction, 'revocation-control');
  assert.equal(c.resources.connectionFunctions[0]?.publish, true);
  assert.equal((await loadConfig(file, {})).admin.token, undefined);
});
