/**
 * Benchmark harness: each benchmark returns figures measured over several rounds;
 * the runner prints one table, writes bench/results/latest.json and rewrites the
 * README's table between the `<!-- bench:start -->` and `<!-- bench:end -->` markers.
 */
import { cpus, totalmem } from 'node:os';
import { execFileSync } from 'node:child_process';

/** One figure: a value per round, plus what it is measured in and an optional target. */
export interface Figure {
  benchmark: string;
  metric: string;
  unit: string;
  rounds: number[];
  target?: string;
  note?: string;
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
  const s = [...values].sort((a, b) => a - b);
  return { min: s[0] as number, median: s[Math.floor((s.length - 1) / 2)] as number, max: s[s.length - 1] as number };
}

/** Facts about the machine and runtime, recorded with the results. */
export function machine(): Record<string, string | number> {
  let openssl = 'unknown';
  try {
    openssl = execFileSync('openssl', ['version']).toString().trim();
  } catch { /* not installed */ }
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
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
