import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from './index.js';
import { functionIo } from './function.js';

const EX = fileURLToPath(new URL('../../examples/functions/', import.meta.url));
const CHAIN = `${EX}sample-chain.pem`;

/** Runs the CLI in-process, capturing stdout (through functionIo) and stderr. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const saved = functionIo.stdout;
  const ew = process.stderr.write.bind(process.stderr);
  functionIo.stdout = (t) => { stdout += t; };
  process.stderr.write = ((c: string | Uint8Array) => { stderr += c.toString(); return true; }) as typeof process.stderr.write;
  process.exitCode = undefined;
  try {
    return { code: await main(['node', 'portcullis', ...args]), stdout, stderr };
  } finally {
    functionIo.stdout = saved;
    process.stderr.write = ew;
    process.exitCode = undefined;
  }
}

test('function test: decision, exit codes, --json, --kvs, --revocation-status, --connection', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-fn-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const kvs = join(dir, 'kvs.json');
  writeFileSync(kvs, JSON.stringify({ data: [{ key: '00a7309e737b3e63', value: 'x' }] }));
  const rs = join(dir, 'rs.json');
  writeFileSync(rs, JSON.stringify({ chainValidity: 'Invalid', certificates: { leaf: { status: 'Revoked' }, intermediates: [] } }));

  const allow = await cli('function', 'test', `${EX}kvs-serial-revocation.js`, '--cert', CHAIN, '--kvs', join(dir, 'none.json'));
  assert.equal(allow.code, 64);
  assert.match(allow.stderr, /cannot read KVS data/);

  const deny = await cli('function', 'test', `${EX}kvs-serial-revocation.js`, '--cert', CHAIN, '--kvs', kvs, '--json');
  assert.equal(deny.code, 1);
  assert.deepEqual(Object.keys(JSON.parse(deny.stdout)), ['decision', 'implicit', 'customData', 'logs', 'computeUtilization', 'error']);
  assert.equal(JSON.parse(deny.stdout).customData, 'revoked-by-kvs:00:a7:30:9e:73:7b:3e:63');

  const grace = await cli('function', 'test', `${EX}ocsp-break-glass-ip.js`, '--cert', CHAIN, '--client-ip', '192.0.2.10', '--revocation-status', rs);
  assert.equal(grace.code, 0);
  assert.match(grace.stdout, /decision\s+allow/);

  const thrown = await cli('function', 'test', `${EX}throws.js`, '--cert', CHAIN, '--json');
  assert.equal(thrown.code, 2);
  assert.match(JSON.parse(thrown.stdout).error, /nested/);

  const connFile = join(dir, 'conn.json');
  writeFileSync(connFile, JSON.stringify({ connectionId: 'a', clientIp: '198.51.100.9', clientPort: 1, endpoint: 'e', distributionId: 'd' }));
  assert.equal((await cli('function', 'test', `${EX}optional-mode-guest.js`, '--connection', connFile)).code, 0);

  const bad = join(dir, 'bad.js');
  writeFileSync(bad, 'function connectionHandler(c) {\n  c.allow(;\n}');
  const compile = await cli('function', 'test', bad, '--cert', CHAIN);
  assert.equal(compile.code, 64);
  assert.match(compile.stderr, /line 2, column \d+/);
  assert.equal((await cli('function', 'test', `${EX}throws.js`)).code, 64);
});

test('function matrix: table, flags revoked-allowed rows, exit code, --json', async () => {
  const flagged = await cli('function', 'matrix', `${EX}ocsp-break-glass-ip.js`);
  assert.equal(flagged.code, 1);
  assert.match(flagged.stdout, /REVOKED ALLOWED/);
  assert.match(flagged.stdout, /128 rows; \d+ admit a revoked certificate/);
  const json = await cli('function', 'matrix', `${EX}ocsp-soft-fail.js`, '--json');
  const parsed = JSON.parse(json.stdout) as { rows: { revokedAllowed: boolean }[]; revokedAllowed: number };
  assert.equal(parsed.rows.length, 128);
  assert.equal(parsed.revokedAllowed, parsed.rows.filter((r) => r.revokedAllowed).length);
  assert.equal(json.code, parsed.revokedAllowed > 0 ? 1 : 0);
});

test('function test / matrix: code that loops inside a built-in fails with the watchdog message instead of hanging', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-fn-hang-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const top = join(dir, 'top.js');
  writeFileSync(top, "Array.prototype.includes.call({ length: 2 ** 53 - 1 }, 1);\nfunction connectionHandler(c) { c.allow(); }\n");
  const topRun = await cli('function', 'test', top, '--cert', CHAIN);
  assert.equal(topRun.code, 64);
  assert.match(topRun.stderr, /function ".*top\.js": top-level code did not finish within \d+ ms; its sandbox was terminated/);

  const inHandler = join(dir, 'handler.js');
  writeFileSync(inHandler, "function connectionHandler(c) { if (c.clientIp === '8.8.8.8') Array(2 ** 32 - 1).join(''); c.allow(); }\n");
  const run = await cli('function', 'test', inHandler, '--cert', CHAIN, '--client-ip', '8.8.8.8', '--json');
  assert.equal(run.code, 2);
  assert.match(JSON.parse(run.stdout).error, /connection function ".*handler\.js" did not return within \d+ ms; its sandbox was terminated/);

  // The matrix goes on after the hung rows (8.8.8.8 with every certificate status Error), on a new worker.
  const matrixFn = join(dir, 'matrix.js');
  writeFileSync(matrixFn, `function connectionHandler(c) {
  const rs = c.clientCertificate.revocationStatus.certificates;
  if (c.clientIp === '8.8.8.8' && rs.leaf.status === 'Error' && rs.intermediates.every((i) => i.status === 'Error')) Array(2 ** 32 - 1).join('');
  c.deny();
}
`);
  const matrix = await cli('function', 'matrix', matrixFn, '--json');
  assert.equal(matrix.code, 0);
  const rows = JSON.parse(matrix.stdout).rows as { clientIp: string; leafStatus: string; intermediateStatus: string; decision: string; error?: string }[];
  assert.equal(rows.length, 128);
  for (const r of rows) {
    assert.equal(r.decision, 'deny');
    if (r.clientIp === '8.8.8.8' && r.leafStatus === 'Error' && r.intermediateStatus === 'Error') assert.match(r.error ?? '', /did not return within \d+ ms; its sandbox was terminated/);
    else assert.equal(r.error, undefined);
  }
});
