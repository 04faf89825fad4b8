import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from './index.js';
import { validateIo } from './validate.js';

/** Runs the CLI in-process, capturing output through validateIo. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const saved = { ...validateIo };
  validateIo.stdout = (t) => { stdout += t; };
  validateIo.stderr = (t) => { stderr += t; };
  process.exitCode = undefined;
  try {
    return { code: await main(['node', 'portcullis', ...args]), stdout, stderr };
  } finally {
    Object.assign(validateIo, saved);
    process.exitCode = undefined;
  }
}

test('portcullis validate: 0 valid, 65 invalid (every problem with its path), 66 missing file, 64 usage; --json', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-cli-validate-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'ok.yaml'), 'workers: 2\nadmin:\n  listen: 127.0.0.1:9901\n');
  writeFileSync(join(dir, 'bad.yaml'), 'workers: 0\nresources:\n  distributions:\n    - name: api\n      viewerMtls: { mod: required }\n');

  const ok = await cli('validate', '--config', join(dir, 'ok.yaml'));
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /ok\.yaml: valid \(0 trust stores/);

  const bad = await cli('validate', '--config', join(dir, 'bad.yaml'));
  assert.equal(bad.code, 65);
  assert.match(bad.stderr, /bad\.yaml: \d+ problems\n/);
  assert.match(bad.stderr, /^ {2}workers: must be at least 1/m);
  assert.match(bad.stderr, /^ {2}resources\.distributions\[0\]\.viewerMtls\.mod: unknown key$/m);
  assert.match(bad.stderr, /^ {2}resources\.distributions\[0\]\.listen: required$/m);

  const json = await cli('validate', '--config', join(dir, 'bad.yaml'), '--json');
  assert.equal(json.code, 65);
  const body = JSON.parse(json.stdout) as { valid: boolean; problems: { path: string }[] };
  assert.equal(body.valid, false);
  assert.ok(body.problems.some((p) => p.path === 'resources.distributions[0].viewerMtls.mod'));

  const missing = await cli('validate', '--config', join(dir, 'nope.yaml'));
  assert.equal(missing.code, 66);
  assert.match(missing.stderr, /cannot read the config file: no such file/);

  assert.equal((await cli('validate')).code, 64);
});

test('portcullis validate: a PostgreSQL store that cannot be reached is a warning (names checked against the config), not a problem', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-cli-validate-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // Port 1 on loopback: nothing listens, the connection is refused at once.
  writeFileSync(join(dir, 'pg.yaml'), 'store: postgres://portcullis:secret-pw@127.0.0.1:1/portcullis\npostgres:\n  poolSize: 2\ncluster:\n  heartbeatIntervalMs: 500\n');
  const r = await cli('validate', '--config', join(dir, 'pg.yaml'));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /pg\.yaml: valid/);
  assert.match(r.stderr, /^portcullis: warning: the PostgreSQL database postgres:\/\/portcullis:…@127\.0\.0\.1:1\/portcullis could not be opened \(.*\); names were checked against the config only$/m);
  assert.doesNotMatch(r.stderr, /secret-pw/);
  writeFileSync(join(dir, 'bad.yaml'), 'cluster:\n  heartbeatIntervalMs: 5000\n  staleAfterMs: 1000\n  snapshotFile: ""\n');
  const bad = await cli('validate', '--config', join(dir, 'bad.yaml'));
  assert.equal(bad.code, 65);
  assert.match(bad.stderr, /^ {2}cluster\.staleAfterMs: must exceed cluster\.heartbeatIntervalMs \(5000\)$/m);
  assert.match(bad.stderr, /^ {2}cluster\.snapshotFile: must not be empty$/m);
});
