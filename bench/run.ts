/**
 * `npm run bench [-- NAME…]`: runs the benchmarks (all, or those named), prints one
 * table, writes bench/results/latest.json (machine, Node and OpenSSL versions, each
 * figure with min/median/max over rounds) and, when every benchmark ran in full mode,
 * rewrites the README table between `<!-- bench:start -->` and `<!-- bench:end -->`.
 * `BENCH_QUICK=1` runs every benchmark in a short mode (fewer rounds, smaller samples)
 * to prove it works; then the README is left alone and latest.json says `quick: true`.
 * A benchmark that throws is reported as a text row ("failed — message") and the run
 * exits non-zero after printing the rest.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { machine, renderTable, summary, textRow, QUICK, type Benchmark, type Figure } from './lib.js';
import { ocspMiss, ocspWarm } from './ocsp.js';
import { pkiBench } from './pki.js';
import { kvsBench } from './kvs.js';
import { functionsBench } from './functions.js';
import { edgeBench } from './edge.js';
import { ocspColdBench } from './ocsp-cold.js';
import { abortAll } from './proc.js';
import { revocationBench } from './revocation.js';
import { throughputBench } from './throughput.js';
import { clusterBench } from './cluster.js';

const ALL: Benchmark[] = [ocspWarm, ocspMiss, pkiBench, kvsBench, functionsBench, edgeBench, ocspColdBench, revocationBench, throughputBench, clusterBench];
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const unknown = wanted.filter((w) => !ALL.some((b) => b.name === w));
if (unknown.length) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; available: ${ALL.map((b) => b.name).join(', ')}`);
  process.exit(64);
}
const selected = wanted.length ? ALL.filter((b) => wanted.includes(b.name)) : ALL;

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    process.stderr.write(`${sig}: stopping the benchmark processes and removing temp directories\n`);
    abortAll();
    process.exit(130);
  });
}

const figures: Figure[] = [];
let failed = 0;
const started = Date.now();
for (const b of selected) {
  process.stderr.write(`running ${b.name}${QUICK ? ' (quick)' : ''}: ${b.description}\n`);
  const t0 = Date.now();
  try {
    figures.push(...(await b.run()));
  } catch (e) {
    failed++;
    process.stderr.write(`${b.name} failed: ${(e as Error).stack ?? String(e)}\n`);
    figures.push(textRow(b.name, 'benchmark', `failed — ${(e as Error).message.split('\n')[0]}`));
  }
  process.stderr.write(`  ${b.name} took ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
}

const m = machine();
const table = renderTable(figures, `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}; Node ${m.node} (OpenSSL ${m.nodeOpenssl}); ${m.opensslCli}. Median/min/max over the per-round values (rounds column). Produced by \`${wanted.length ? `npm run bench -- ${wanted.join(' ')}` : 'npm run bench'}\` on ${new Date().toISOString().slice(0, 10)} in ${Math.round((Date.now() - started) / 60_000)} min${QUICK ? ' (BENCH_QUICK=1: short mode, not for publication)' : ''}.`);
console.log(table);

mkdirSync(join(root, 'bench/results'), { recursive: true });
writeFileSync(join(root, 'bench/results/latest.json'), JSON.stringify({
  date: new Date().toISOString(),
  quick: QUICK,
  benchmarks: selected.map((b) => b.name),
  machine: m,
  figures: figures.map((f) => (f.text !== undefined ? f : { ...f, ...summary(f.rounds) })),
}, null, 2) + '\n');

if (selected.length === ALL.length && !QUICK && failed === 0) {
  const readmePath = join(root, 'README.md');
  const readme = readFileSync(readmePath, 'utf8');
  const start = '<!-- bench:start -->', end = '<!-- bench:end -->';
  const i = readme.indexOf(start), j = readme.indexOf(end);
  if (i >= 0 && j > i) {
    writeFileSync(readmePath, `${readme.slice(0, i + start.length)}\n${table}\n${readme.slice(j)}`);
    process.stderr.write('README benchmark table updated\n');
  }
}
if (failed) process.exitCode = 1;
