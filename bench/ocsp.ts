/**
 * OCSP benchmarks (issue: revocation engine):
 * - `ocsp-warm`: status of a leaf + 2 intermediates on a warm cache (RevocationChecker.check),
 *   p50/p99 in µs. Target p50 ≤ 20 µs.
 * - `ocsp-miss`: the same chain with an empty cache against a local in-process responder
 *   over real HTTP: latency per chain check and responder requests per certificate miss.
 */
import { performance } from 'node:perf_hooks';
import { RevocationChecker, OcspCache } from '../src/revocation/index.js';
import type { ParsedCertificate } from '../src/pki/index.js';
import { buildChain } from '../test/helpers/pki.js';
import { startTestResponder, behaviours, type TestResponder } from '../test/helpers/ocsp-responder.js';
import { percentile, scaled, type Benchmark, type Figure } from './lib.js';

const ROUNDS = scaled(5, 1);

/** A leaf + 2 intermediates (ECDSA P-256) whose AIA points at a local responder answering good; the path ends at the root. */
async function chainWithResponder(name: string): Promise<{ responder: TestResponder; path: ParsedCertificate[] }> {
  const responder = await startTestResponder(behaviours.good([]));
  const chain = await buildChain({ intermediates: 2, keyType: 'ec-p256', name, ocspUrl: () => responder.url });
  responder.setHandler(behaviours.good([chain.root, ...chain.intermediates]));
  const path = [chain.leaf.cert, ...chain.intermediates.slice().reverse().map((c) => c.cert), chain.root.cert];
  return { responder, path };
}

export const ocspWarm: Benchmark = {
  name: 'ocsp-warm',
  description: 'revocation status of leaf + 2 intermediates, warm cache',
  async run(): Promise<Figure[]> {
    const { responder, path } = await chainWithResponder('BenchWarm');
    try {
      const checker = new RevocationChecker({ cache: new OcspCache({ refreshAfterFraction: 1 }) });
      const first = await checker.check(path);
      if (!first.ok || first.revocationStatus.chainValidity !== 'Valid') throw new Error(`warm-up failed: ${JSON.stringify(first)}`);
      const p50: number[] = [], p99: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const n = 20_000;
        const t: number[] = new Array(n);
        for (let i = 0; i < n; i++) {
          const s = performance.now();
          const r = await checker.check(path);
          t[i] = (performance.now() - s) * 1000;
          if (!r.ok) throw new Error('unexpected failure');
        }
        p50.push(percentile(t, 50));
        p99.push(percentile(t, 99));
      }
      await checker.close();
      return [
        { benchmark: 'ocsp-warm', metric: 'warm-cache chain status (leaf + 2 intermediates), p50', unit: 'µs', rounds: p50, target: '≤ 20 µs' },
        { benchmark: 'ocsp-warm', metric: 'warm-cache chain status (leaf + 2 intermediates), p99', unit: 'µs', rounds: p99 },
      ];
    } finally {
      await responder.close();
    }
  },
};

export const ocspMiss: Benchmark = {
  name: 'ocsp-miss',
  description: 'revocation status of leaf + 2 intermediates, empty cache, local in-process responder over HTTP',
  async run(): Promise<Figure[]> {
    const { responder, path } = await chainWithResponder('BenchMiss');
    try {
      const checker = new RevocationChecker();
      await checker.check(path); // warm the HTTP connection pool
      const p50: number[] = [], p99: number[] = [], perMiss: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const n = 200;
        const t: number[] = new Array(n);
        const before = responder.counts.total;
        for (let i = 0; i < n; i++) {
          checker.cache.purge();
          const s = performance.now();
          const r = await checker.check(path);
          t[i] = performance.now() - s;
          if (!r.ok || r.revocationStatus.chainValidity !== 'Valid') throw new Error('unexpected result');
        }
        p50.push(percentile(t, 50));
        p99.push(percentile(t, 99));
        perMiss.push((responder.counts.total - before) / (n * 3));
      }
      await checker.close();
      return [
        { benchmark: 'ocsp-miss', metric: 'cold chain status (3 responder round trips, concurrent), p50', unit: 'ms', rounds: p50 },
        { benchmark: 'ocsp-miss', metric: 'cold chain status, p99', unit: 'ms', rounds: p99 },
        { benchmark: 'ocsp-miss', metric: 'responder requests per certificate miss', unit: 'requests', rounds: perMiss, target: '1' },
      ];
    } finally {
      await responder.close();
    }
  },
};

