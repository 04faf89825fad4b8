/**
 * Connection functions (SPEC section 4): warm invocation of a KVS-lookup function
 * (examples/functions/kvs-serial-revocation.js logic, inlined) with a full connection
 * object (sample chain + revocationStatus, fresh connectionId per call; built with
 * buildConnection and passed as the object, as the gateway does), p50/p99; heap
 * per warm instance; cost of a publish (compile + warm-up of a new instance).
 */
import { performance } from 'node:perf_hooks';
import {
  buildConnection, compileFunction, kvsSnapshotFromMap, syntheticRevocationStatus, loadQuickJs,
} from '../src/functions/index.js';
import { sampleChain } from '../src/cli/function.js';
import { percentile, type Benchmark, type Figure } from './lib.js';

const ROUNDS = 5;
const CODE = `import cf from 'cloudfront';
async function connectionHandler(connection) {
  const serial = connection.clientCertificate.certificates.leaf.serialNumber;
  if (await cf.kvs().exists(serial.replaceAll(':', ''))) {
    connection.logCustomData('revoked-by-kvs:' + serial);
    return connection.deny();
  }
  return connection.allow();
}`;

export const functionsBench: Benchmark = {
  name: 'functions',
  description: 'connection functions: warm KVS-lookup invocation, heap per instance, publish (compile + warm-up)',
  async run(): Promise<Figure[]> {
    await loadQuickJs();
    const chain = sampleChain();
    const revocationStatus = syntheticRevocationStatus(chain, 'Good', 'Good');
    const map = new Map<string, string>();
    for (let i = 0; i < 10000; i++) map.set(i.toString(16).padStart(16, '0'), 'revoked');
    const kvs = kvsSnapshotFromMap(map);
    const rows = { p50: [] as number[], p99: [] as number[], heap: [] as number[], publish: [] as number[] };
    for (let round = 0; round < ROUNDS; round++) {
      const t0 = performance.now();
      const inst = await compileFunction(CODE);
      rows.publish.push((performance.now() - t0) * 1000);
      rows.heap.push(inst.memoryUsageBytes() / 1024);
      const sample: number[] = [];
      for (let i = 0; i < 6000; i++) {
        const s = performance.now();
        const conn = buildConnection({ clientIp: '10.0.0.1', clientPort: 40000 + (i % 1000), endpoint: 'a.example.test', distributionId: 'd', certificates: chain, revocationStatus });
        const r = inst.invoke(conn, { kvs });
        const e = performance.now();
        if (r.decision !== 'allow') throw new Error(`unexpected ${JSON.stringify(r)}`);
        if (i >= 1000) sample.push((e - s) * 1000);
      }
      rows.p50.push(percentile(sample, 50));
      rows.p99.push(percentile(sample, 99));
      inst.dispose();
    }
    return [
      { benchmark: 'functions', metric: 'warm invocation, KVS-lookup function incl. connection object, p50', unit: 'µs', rounds: rows.p50, target: '≤ 30' },
      { benchmark: 'functions', metric: 'warm invocation, KVS-lookup function incl. connection object, p99', unit: 'µs', rounds: rows.p99, target: '≤ 100' },
      { benchmark: 'functions', metric: 'QuickJS heap per warm instance', unit: 'KiB', rounds: rows.heap },
      { benchmark: 'functions', metric: 'publish: compile + warm-up of a new instance', unit: 'µs', rounds: rows.publish },
    ];
  },
};
