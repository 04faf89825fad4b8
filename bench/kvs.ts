/**
 * KeyValueStore benchmark (issue 7, figure 4): import of 1,000,000 keys through
 * `KeyValueStoreService.create` (the path `portcullis kvs create --import-file` and the
 * admin API take; time, peak RSS of the importing process), replica memory per key and
 * lookup cost, a KVS-lookup function's decision time (hosted in the sandbox worker as
 * the gateway runs it) with the 1M-key store vs a 10-key store, and write-to-visible
 * latency in the writing process and in another process. Under BENCH_QUICK=1: one
 * round, 10 writes (the key count stays 1M unless PORTCULLIS_BENCH_KVS_KEYS is set).
 *
 * Keys are 32 hex characters (a 16-byte serial as a CRL import stores it), values
 * `revoked`. 1M such items are ~39 MB, far over CloudFront's 5 MB store limit, so the
 * import runs with raised limits (`maxImportBytes` and `maxStoreBytes` 512 MiB) — the
 * figures show what the engine can do, not what the default configuration accepts.
 * The heavy jobs run in child processes so their memory figures are their own.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { openSqliteStore } from '../src/store/index.js';
import { KeyValueStoreService, KvsReplica } from '../src/kvs/index.js';
import { percentile, scaled, type Benchmark, type Figure } from './lib.js';

const CHILD = fileURLToPath(new URL('./kvs-child.ts', import.meta.url));
const KEYS = Number(process.env.PORTCULLIS_BENCH_KVS_KEYS ?? 1_000_000);
const ROUNDS = scaled(3, 1);
const WRITES = scaled(40, 10);

function runChild(args: string[]): Record<string, number> {
  const r = spawnSync(process.execPath, ['--expose-gc', '--max-old-space-size=4096', '--import', 'tsx', CHILD, ...args], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`kvs bench child ${args[0]} failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number>;
}

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Same-process and cross-process write-to-visible latency for `WRITES` puts; medians in ms. */
async function visibility(dir: string): Promise<{ same: number; other: number; ack: number }> {
  const store = await openSqliteStore({ dataDir: dir });
  const kvs = new KeyValueStoreService(store);
  let etag = (await kvs.create({ name: 'latency' })).ETag;
  const waiting = new Map<string, (t: number) => void>();
  const replica = await KvsReplica.open(store, {
    onApplied: (changes) => {
      const at = now();
      for (const c of changes) if (c.entity === 'kvs' && c.op === 'batch') for (const [k] of c.puts) waiting.get(k)?.(at);
    },
  });
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, 'watch', dir, 'latency'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const seenOther = new Map<string, number>();
  let ready!: () => void;
  const isReady = new Promise<void>((r) => { ready = r; });
  let buf = '';
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line === 'ready') ready();
      const m = /^seen (\S+) (\S+)$/.exec(line);
      if (m) seenOther.set(m[1]!, Number(m[2]));
    }
  });
  await isReady;
  const same: number[] = [];
  const ack: number[] = [];
  const starts = new Map<string, number>();
  try {
    for (let i = 0; i < WRITES; i++) {
      const key = `w${i}`;
      const visible = new Promise<number>((r) => waiting.set(key, r));
      const t0 = now();
      starts.set(key, t0);
      etag = (await kvs.putKey('latency', { key, value: 'x', ifMatch: etag })).ETag;
      ack.push(now() - t0);
      same.push((await visible) - t0);
      waiting.delete(key);
      await sleep(20 + Math.random() * 60);
    }
    for (let wait = 0; seenOther.size < WRITES && wait < 100; wait++) await sleep(20);
  } finally {
    child.kill('SIGKILL');
    replica.close();
    await store.close();
  }
  const other = [...starts].filter(([k]) => seenOther.has(k)).map(([k, t0]) => seenOther.get(k)! - t0);
  if (other.length < WRITES) throw new Error(`the other process saw ${other.length} of ${WRITES} writes`);
  return { same: percentile(same, 50), other: percentile(other, 50), ack: percentile(ack, 50) };
}

/** The `kvs` benchmark (`npm run bench -- kvs`); `PORTCULLIS_BENCH_KVS_KEYS` overrides the 1M key count. */
export const kvsBench: Benchmark = {
  name: 'kvs',
  description: `KeyValueStore: import of ${KEYS.toLocaleString('en-US')} keys (raised limits), replica memory and lookups, write-to-visible latency`,
  async run(): Promise<Figure[]> {
    const rows = { fnBigP50: [] as number[], fnBigP99: [] as number[], fnSmallP50: [] as number[], fnSmallP99: [] as number[], fnCpuLimited: [] as number[], importS: [] as number[], heapMB: [] as number[], rssMB: [] as number[], peakRss: [] as number[], loadS: [] as number[], perKey: [] as number[], freshNs: [] as number[], warmNs: [] as number[], ack: [] as number[], same: [] as number[], other: [] as number[] };
    for (let round = 0; round < ROUNDS; round++) {
      const dir = mkdtempSync(join(tmpdir(), 'portcullis-bench-kvs-'));
      try {
        const imp = runChild(['import', dir, String(KEYS)]);
        rows.importS.push(imp.importMs! / 1000);
        rows.peakRss.push(imp.peakRssMB!);
        const rep = runChild(['replica', dir, String(KEYS)]);
        rows.loadS.push(rep.loadMs! / 1000);
        rows.perKey.push(rep.bytesPerKey!);
        rows.heapMB.push(rep.heapMB!);
        rows.rssMB.push(rep.rssMB!);
        rows.freshNs.push(rep.freshNs!);
        rows.warmNs.push(rep.warmNs!);
        const fn = runChild(['fn', dir, String(KEYS)]);
        rows.fnBigP50.push(fn.bigP50!);
        rows.fnBigP99.push(fn.bigP99!);
        rows.fnSmallP50.push(fn.smallP50!);
        rows.fnSmallP99.push(fn.smallP99!);
        rows.fnCpuLimited.push(fn.cpuLimited!);
        const lat = await visibility(dir);
        rows.ack.push(lat.ack);
        rows.same.push(lat.same);
        rows.other.push(lat.other);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    const k = `${KEYS / 1e6}M`;
    return [
      { benchmark: 'kvs', metric: `create + import of ${k} keys (32 hex chars, raised limits), end to end`, unit: 's', rounds: rows.importS, target: '≤ 15' },
      { benchmark: 'kvs', metric: `peak RSS of the importing process (incl. the ${k}-key file in memory)`, unit: 'MiB', rounds: rows.peakRss },
      { benchmark: 'kvs', metric: `replica load of ${k} keys from the store at start`, unit: 's', rounds: rows.loadS },
      { benchmark: 'kvs', metric: `replica memory holding ${k} keys: heap delta (after GC)`, unit: 'MiB', rounds: rows.heapMB },
      { benchmark: 'kvs', metric: `replica memory holding ${k} keys: RSS delta of the process`, unit: 'MiB', rounds: rows.rssMB },
      { benchmark: 'kvs', metric: 'replica heap per key (32-hex key, 7-byte value)', unit: 'bytes', rounds: rows.perKey, target: '≤ 200' },
      { benchmark: 'kvs', metric: 'snapshot lookup, fresh key string (hash not cached), 50% hits', unit: 'ns', rounds: rows.freshNs, target: '≤ 1000' },
      { benchmark: 'kvs', metric: 'snapshot lookup, repeated key string, 50% hits', unit: 'ns', rounds: rows.warmNs, target: '≤ 1000' },
      { benchmark: 'kvs', metric: `KVS-lookup function decision (hosted round trip incl. connection JSON), store of ${k} keys, p50`, unit: 'µs', rounds: rows.fnBigP50 },
      { benchmark: 'kvs', metric: 'KVS-lookup function decision, store of 10 keys (same run, alternating blocks), p50', unit: 'µs', rounds: rows.fnSmallP50 },
      { benchmark: 'kvs', metric: `function decision p50 ratio ${k} keys / 10 keys (should not depend on store size)`, unit: '×', rounds: rows.fnBigP50.map((v, i) => v / rows.fnSmallP50[i]!), target: '≈ 1' },
      { benchmark: 'kvs', metric: `KVS-lookup function decision, store of ${k} keys, p99`, unit: 'µs', rounds: rows.fnBigP99 },
      { benchmark: 'kvs', metric: 'KVS-lookup function decision, store of 10 keys, p99', unit: 'µs', rounds: rows.fnSmallP99 },
      { benchmark: 'kvs', metric: 'function invocations stopped by the 5 ms CPU limit (spurious, under load), of 7,000 per round', unit: 'invocations', rounds: rows.fnCpuLimited, target: '0' },
      { benchmark: 'kvs', metric: `put acknowledged (commit + fsync), p50 of ${WRITES}`, unit: 'ms', rounds: rows.ack },
      { benchmark: 'kvs', metric: `write → visible in this process's replica, p50 of ${WRITES}`, unit: 'ms', rounds: rows.same },
      { benchmark: 'kvs', metric: `write → visible in another process's replica (50 ms poll), p50 of ${WRITES}`, unit: 'ms', rounds: rows.other, target: '≤ 200' },
    ];
  },
};
