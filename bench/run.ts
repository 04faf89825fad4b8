/**
 * `npm run bench [-- NAME…]`: runs the benchmarks (all, or those named), prints one
 * table, writes bench/results/latest.json (machine, Node and OpenSSL versions, each
 * figure with min/median/max over rounds) and, when every benchmark ran, rewrites the
 * README table between `<!-- bench:start -->` and `<!-- bench:end -->`.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { fmt, machine, summary, type Benchmark, type Figure } from './lib.js';
import { ocspMiss, ocspWarm } from './ocsp.js';
import { pkiBench } from './pki.js';
import { kvsBench } from './kvs.js';
import { functionsBench } from './functions.js';
import { edgeBench } from './edge.js';
import { clusterBench } from './cluster.js';

const ALL: Benchmark[] = [ocspWarm, ocspMiss, pkiBench, kvsBench, functionsBench, edgeBench, clusterBench];
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const unknown = wanted.filter((w) => !ALL.some((b) => b.name === w));
if (unknown.length) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; available: ${ALL.map((b) => b.name).join(', ')}`);
  process.exit(64);
}
const selected = wanted.length ? ALL.filter((b) => wanted.includes(b.name)) : ALL;

const figures: Figure[] = [];
for (const b of selected) {
  process.stderr.write(`running ${b.name}: ${b.description}\n`);
  figures.push(...(await b.run()));
}

const header = '| benchmark | metric | median | min | max | unit | target |\n|---|---|---|---|---|---|---|';
const lines = figures.map((f) => {
  const s = summary(f.rounds);
  return `| ${f.benchmark} | ${f.metric} | ${fmt(s.median)} | ${fmt(s.min)} | ${fmt(s.max)} | ${f.unit} | ${f.target ?? ''} |`;
});
const m = machine();
const table = `${header}\n${lines.join('\n')}\n\nMachine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB; Node ${m.node} (OpenSSL ${m.nodeOpenssl}); ${m.opensslCli}. Median/min/max over ${figures[0]?.rounds.length ?? 0} rounds. Produced by \`npm run bench\`.`;
console.log(table);

mkdirSync(join(root, 'bench/results'), { recursive: true });
writeFileSync(join(root, 'bench/results/latest.json'), JSON.stringify({
  date: new Date().toISOString(),
  machine: m,
  figures: figures.map((f) => ({ ...f, ...summary(f.rounds) })),
}, null, 2) + '\n');

if (selected.length === ALL.length) {
  const readmePath = join(root, 'README.md');
  const readme = readFileSync(readmePath, 'utf8');
  const start = '<!-- bench:start -->', end = '<!-- bench:end -->';
  const i = readme.indexOf(start), j = readme.indexOf(end);
  if (i >= 0 && j > i) {
    writeFileSync(readmePath, `${readme.slice(0, i + start.length)}\n${table}\n${readme.slice(j)}`);
    process.stderr.write('README benchmark table updated\n');
  }
}
