import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from './index.js';
import { functionLifecycleIo } from './function-lifecycle.js';

/** Runs the CLI in-process, capturing output through functionLifecycleIo. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const saved = { ...functionLifecycleIo };
  functionLifecycleIo.stdout = (t) => { stdout += t; };
  functionLifecycleIo.stderr = (t) => { stderr += t; };
  process.exitCode = undefined;
  try {
    return { code: await main(['node', 'portcullis', ...args]), stdout, stderr };
  } finally {
    Object.assign(functionLifecycleIo, saved);
    process.exitCode = undefined;
  }
}

test('function create/update/publish/describe/get-code/list/delete on the local store', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-fnlc-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const data = join(dir, 'data');
  const v1 = join(dir, 'v1.js');
  const v2 = join(dir, 'v2.js');
  const bad = join(dir, 'bad.js');
  writeFileSync(v1, 'function connectionHandler(c) { c.allow(); }');
  writeFileSync(v2, 'function connectionHandler(c) { c.deny(); }');
  writeFileSync(bad, 'function connectionHandler(c) {\n  c.allow(;\n}');

  const created = await cli('function', 'create', 'fn1', '--code', v1, '--comment', 'first', '--data-dir', data, '--json');
  assert.equal(created.code, 0, created.stderr);
  const dev0 = (JSON.parse(created.stdout) as { FunctionSummary: { ETag: string; Status: string } }).FunctionSummary;
  assert.equal(dev0.Status, 'UNPUBLISHED');

  const badCreate = await cli('function', 'create', 'fn2', '--code', bad, '--data-dir', data);
  assert.equal(badCreate.code, 64);
  assert.match(badCreate.stderr, /InvalidFunctionCode: .*line 2/);

  assert.equal((await cli('function', 'describe', 'fn1', '--stage', 'LIVE', '--data-dir', data)).code, 2);
  const pub = await cli('function', 'publish', 'fn1', '--if-match', dev0.ETag, '--data-dir', data);
  assert.equal(pub.code, 0, pub.stderr);
  assert.match(pub.stdout, /Stage\s+LIVE/);
  assert.match(pub.stdout, /Status\s+UNASSOCIATED/);

  const stale = await cli('function', 'update', 'fn1', '--code', v2, '--if-match', 'EWRONG', '--data-dir', data);
  assert.equal(stale.code, 3);
  assert.match(stale.stderr, /PreconditionFailed/);
  assert.equal((await cli('function', 'update', 'fn1', '--code', v2, '--data-dir', data)).code, 0);
  assert.match((await cli('function', 'get-code', 'fn1', '--data-dir', data)).stdout, /deny/);
  assert.match((await cli('function', 'get-code', 'fn1', '--stage', 'live', '--data-dir', data)).stdout, /allow/);

  const list = await cli('function', 'list', '--data-dir', data);
  assert.match(list.stdout, /^fn1\tUNASSOCIATED\tE[0-9A-Z]{13}\t/);
  assert.equal((await cli('function', 'create', 'fn3', '--code', v1, '--kvs', 'missing', '--data-dir', data)).code, 2);

  assert.equal((await cli('function', 'delete', 'fn1', '--data-dir', data)).code, 0);
  assert.equal((await cli('function', 'describe', 'fn1', '--data-dir', data)).code, 2);
});
