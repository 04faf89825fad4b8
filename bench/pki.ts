/**
 * Per-handshake certificate work (context for the gate), leaf + 2 intermediates, ECDSA P-256:
 * parsing the presented chain, path validation against a trust store, and the
 * connection-object view — each at first sight (empty caches: a certificate never seen
 * before) and repeated (the same chain again: parse cache and signature memo warm).
 */
import { performance } from 'node:perf_hooks';
import { ParsedCertificate, chainView, parseTrustStoreBundle, validateClientChain } from '../src/pki/index.js';
import { buildChain } from '../test/helpers/pki.js';
import { percentile, scaled, type Benchmark, type Figure } from './lib.js';

const ROUNDS = scaled(5, 1);

function p50(n: number, fn: () => void, before?: () => void): number {
  const t: number[] = new Array(n);
  for (let i = 0; i < n; i++) {
    before?.();
    const s = performance.now();
    fn();
    t[i] = (performance.now() - s) * 1000;
  }
  return percentile(t, 50);
}

export const pkiBench: Benchmark = {
  name: 'pki',
  description: 'chain parsing, path validation and certificate view of leaf + 2 intermediates (ECDSA P-256)',
  async run(): Promise<Figure[]> {
    const chain = await buildChain({ intermediates: 2, keyType: 'ec-p256', name: 'BenchPki', ocspUrl: () => 'http://127.0.0.1:9/' });
    const anchors = parseTrustStoreBundle(chain.root.pem);
    const ders = chain.presented.map((c) => Buffer.from(c.der));
    const parse = () => ders.map((d) => ParsedCertificate.fromDer(d));
    const validate = (certs: ParsedCertificate[]) => {
      const r = validateClientChain(certs, anchors, { now: new Date() });
      if (!r.ok) throw new Error(r.reason);
    };
    const clear = () => ParsedCertificate.clearParseCache();
    const rows = { parseCold: [] as number[], parseWarm: [] as number[], validateCold: [] as number[], validateWarm: [] as number[], viewCold: [] as number[] };
    for (let round = 0; round < ROUNDS; round++) {
      rows.parseCold.push(p50(300, parse, clear));
      rows.parseWarm.push(p50(5000, parse));
      let fresh: ParsedCertificate[] = [];
      rows.validateCold.push(p50(300, () => validate(fresh), () => { clear(); fresh = parse(); }));
      const warm = parse();
      rows.validateWarm.push(p50(5000, () => validate(warm)));
      rows.viewCold.push(p50(300, () => chainView(fresh), () => { clear(); fresh = parse(); }));
    }
    return [
      { benchmark: 'pki', metric: 'parse presented chain (3 DER certificates), first sight, p50', unit: 'µs', rounds: rows.parseCold },
      { benchmark: 'pki', metric: 'parse presented chain, seen before (parse cache), p50', unit: 'µs', rounds: rows.parseWarm },
      { benchmark: 'pki', metric: 'path validation incl. 3 ECDSA signature checks, first sight, p50', unit: 'µs', rounds: rows.validateCold },
      { benchmark: 'pki', metric: 'path validation, chain seen before (signature memo), p50', unit: 'µs', rounds: rows.validateWarm },
      { benchmark: 'pki', metric: 'connection-object view of the chain, first sight, p50', unit: 'µs', rounds: rows.viewCold },
    ];
  },
};
