/**
 * Benchmark harness: each benchmark returns figures measured over several rounds;
 * the runner prints one table, writes bench/results/latest.json and rewrites the
 * README's table between the `<!-- bench:start -->` and `<!-- bench:end -->` markers.
 */
import { cpus, totalmem, release, loadavg } from 'node:os';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

/**
 * One figure: a value per round, plus what it is measured in and an optional target.
 * A text-only row (`text` set, `rounds` empty) says why a figure could not be measured
 * (e.g. "nginx: not available — apt-get install failed"); the table prints the text
 * instead of numbers, so a missing contender is never silently omitted.
 */
export interface Figure {
  benchmark: string;
  metric: string;
  unit: string;
  rounds: number[];
  target?: string;
  note?: string;
  text?: string;
}

/** A text-only row: `metric` with `text` in place of the numbers. */
export function textRow(benchmark: string, metric: string, text: string, target?: string): Figure {
  return { benchmark, metric, unit: '—', rounds: [], text, ...(target ? { target } : {}) };
}

/**
 * Short mode (`BENCH_QUICK=1`): every benchmark runs fewer rounds and smaller samples,
 * to prove it works end to end; the figures are not for publication (the runner then
 * does not rewrite the README table and marks latest.json `quick: true`).
 */
export const QUICK = process.env.BENCH_QUICK === '1';

/** `full` normally, `quick` under BENCH_QUICK=1. */
export function scaled(full: number, quick: number): number {
  return QUICK ? quick : full;
}

/** A benchmark: a name for `npm run bench -- NAME`, and its run function. */
export interface Benchmark {
  name: string;
  description: string;
  run(): Promise<Figure[]>;
}

/** Percentile (0–100) of an unsorted sample, nearest-rank. */
export function percentile(sample: number[], p: number): number {
  const s = [...sample].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i] as number;
}

/** min / median / max of the per-round values. */
export function summary(values: number[]): { min: number; median: number; max: number } {
  if (values.length === 0) return { min: NaN, median: NaN, max: NaN };
  const s = [...values].sort((a, b) => a - b);
  return { min: s[0] as number, median: s[Math.floor((s.length - 1) / 2)] as number, max: s[s.length - 1] as number };
}

/** Facts about the machine and runtime, recorded with the results. */
export function machine(): Record<string, string | number> {
  let openssl = 'unknown';
  try {
    openssl = execFileSync('openssl', ['version']).toString().trim();
  } catch { /* not installed */ }
  let os = `${process.platform} ${release()}`;
  try {
    const pretty = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1];
    if (pretty) os = `${pretty}, Linux ${release()}`;
  } catch { /* not Linux */ }
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    os,
    loadAverageAtEnd: loadavg().map((l) => l.toFixed(2)).join(' '),
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    nodeOpenssl: process.versions.openssl ?? 'unknown',
    opensslCli: openssl,
    platform: `${process.platform} ${process.arch}`,
  };
}

/** Formats a number for the table: 3 significant digits. */
export function fmt(n: number): string {
  if (n === 0) return '0';
  if (Math.abs(n) >= 100) return n.toFixed(0);
  if (Math.abs(n) >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

/**
 * The Markdown table of `figures` (one row each: median, min, max of the per-round
 * values, unit, number of rounds, target; a text-only row prints its text in place of
 * the numbers), followed by a blank line and `footer`.
 */
export function renderTable(figures: Figure[], footer: string): string {
  const header = '| benchmark | metric | median | min | max | unit | rounds | target |\n|---|---|---|---|---|---|---|---|';
  const cell = (s: string): string => s.replaceAll('|', '\\|').replaceAll('\n', ' ');
  const lines = figures.map((f) => {
    if (f.text !== undefined) return `| ${f.benchmark} | ${cell(f.metric)} | ${cell(f.text)} | | | ${f.unit} | 0 | ${f.target ?? ''} |`;
    const s = summary(f.rounds);
    return `| ${f.benchmark} | ${cell(f.metric)} | ${fmt(s.median)} | ${fmt(s.min)} | ${fmt(s.max)} | ${f.unit} | ${f.rounds.length} | ${f.target ?? ''} |`;
  });
  return `${header}\n${lines.join('\n')}\n\n${footer}`;
}
