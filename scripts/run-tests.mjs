#!/usr/bin/env node
// Runs the test suite with node:test through tsx. Node 20's --test does not expand
// globs, so this finds the files: unit tests are src/**/*.test.ts and bench/**/*.test.ts
// (the benchmark runner's own logic), integration tests
// test/integration/**/*.test.ts; a test directory that does not exist (e.g. a checkout
// without integration tests) is skipped, not an error. Usage:
// node scripts/run-tests.mjs [unit|integration|all] [filter]
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const [which = 'all', filter = ''] = process.argv.slice(2);
function find(dir) {
  const out = [];
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return out;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...find(p));
    else if (p.endsWith('.test.ts') && p.includes(filter)) out.push(p);
  }
  return out.sort();
}
const files = [];
if (which === 'all' || which === 'unit') files.push(...find('src'), ...find('bench'));
if (which === 'all' || which === 'integration') files.push(...find('test/integration'));
if (files.length === 0) {
  console.error(`no test files matched (${which} ${filter})`);
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], {
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
