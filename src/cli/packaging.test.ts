/**
 * The scripts around the CLI: `npm run build` must leave `dist/cli/bin.js` executable
 * (README runs it directly; package.json `postbuild` → scripts/chmod-bin.mjs; .ci/run
 * checks the built file), and scripts/run-tests.mjs must cope with a missing test folder.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'portcullis-packaging-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('package.json: bin is dist/cli/bin.js, and postbuild makes it executable', () => {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { bin: Record<string, string>; scripts: Record<string, string> };
  assert.equal(pkg.bin.portcullis, 'dist/cli/bin.js');
  assert.equal(pkg.scripts.postbuild, 'node scripts/chmod-bin.mjs');
  assert.match(readFileSync(join(repoRoot, 'src/cli/bin.ts'), 'utf8'), /^#!\/usr\/bin\/env node\n/, 'tsc keeps the shebang');
  assert.match(readFileSync(join(repoRoot, '.ci/run'), 'utf8'), /-x dist\/cli\/bin\.js/, 'CI checks the built file');
});

test('scripts/chmod-bin.mjs adds the x bits where r bits are set', { skip: process.platform === 'win32' && 'no POSIX modes on Windows' }, () => {
  const file = join(dir, 'bin.js');
  writeFileSync(file, '#!/usr/bin/env node\n');
  chmodSync(file, 0o644);
  const r = spawnSync(process.execPath, [join(repoRoot, 'scripts/chmod-bin.mjs'), file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(statSync(file).mode & 0o777, 0o755);
  chmodSync(file, 0o600);
  assert.equal(spawnSync(process.execPath, [join(repoRoot, 'scripts/chmod-bin.mjs'), file]).status, 0);
  assert.equal(statSync(file).mode & 0o777, 0o700);
  const missing = spawnSync(process.execPath, [join(repoRoot, 'scripts/chmod-bin.mjs'), join(dir, 'nope.js')], { encoding: 'utf8' });
  assert.equal(missing.status, 1, 'a missing build output fails the build');
  assert.match(missing.stderr, /nope\.js: ENOENT/);
});

test('scripts/run-tests.mjs skips a test directory that does not exist', () => {
  const project = join(dir, 'project');
  mkdirSync(join(project, 'src'), { recursive: true });
  symlinkSync(join(repoRoot, 'node_modules'), join(project, 'node_modules'), 'dir');
  writeFileSync(join(project, 'src', 'only.test.ts'), "import { test } from 'node:test';\ntest('only unit test', () => {});\n");
  // Without NODE_TEST_CONTEXT, which would make the nested `node --test` report to this runner instead of printing.
  const { NODE_TEST_CONTEXT: _ctx, ...env } = process.env;
  const run = (...args: string[]) => spawnSync(process.execPath, [join(repoRoot, 'scripts/run-tests.mjs'), ...args], { cwd: project, env, encoding: 'utf8', timeout: 60_000 });
  // No test/integration here: `all` runs the unit tests, `integration` finds none.
  const all = run();
  assert.equal(all.status, 0, all.stderr);
  assert.match(all.stdout, /only unit test/);
  const integration = run('integration');
  assert.equal(integration.status, 1);
  assert.match(integration.stderr, /^no test files matched \(integration \)$/m);
  assert.doesNotMatch(integration.stderr, /ENOENT|scandir/);
});
