/**
 * Child process of the `kvs` benchmark (run with `node --expose-gc --import tsx`), so
 * that peak memory and heap figures are those of one job, not of the whole bench run.
 * Prints one JSON line (or, for `watch`, one line per observed key).
 *
 *   import DIR N     build an import file of N keys (32 hex chars, value "revoked"),
 *                    create store `bench` from it with raised limits; report time and RSS.
 *   replica DIR N    load the replica of DIR; report load time, heap bytes per key and
 *                    lookup cost.
 *   watch DIR STORE  follow STORE; print `ready`, then `seen KEY EPOCH_MS` per put.
 *   fn DIR N         the KVS-lookup function hosted as the gateway hosts it (FunctionHost:
 *                    sandbox worker thread with its own replica), published twice: on
 *                    store `bench` (N keys) and on a 10-key store `small`; report the
 *                    hosted round trip p50/p99 with each, measured in alternating blocks.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { openSqliteStore } from '../src/store/index.js';
import { KeyValueStoreService, KvsReplica } from '../src/kvs/index.js';
import { buildConnection, connectionJson, syntheticRevocationStatus, FunctionHost, FunctionService, FUNCTION_RUNTIME } from '../src/functions/index.js';
import { sampleChain } from '../src/cli/function.js';

const [mode, dir, arg] = process.argv.slice(2) as [string, string, string];
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const mb = (b: number) => Math.round((b / 2 ** 20) * 10) / 10;

/** The benchmark's raised limits: 1M keys do not fit CloudFront's 5 MB. */
export const BENCH_LIMITS = { maxImportBytes: 512 * 2 ** 20, maxStoreBytes: 512 * 2 ** 20 };

if (mode === 'import') {
  const n = Number(arg);
  const raw = randomBytes(16 * n);
  const parts: string[] = new Array(n);
  for (let i = 0; i < n; i++) parts[i] = `{"key":"${raw.toString('hex', i * 16, i * 16 + 16)}","value":"revoked"}`;
  const bytes = Buffer.from(`{"data":[${parts.join(',')}]}`);
  parts.length = 0;
  gc();
  const baseline = process.memoryUsage().rss;
  const store = await openSqliteStore({ dataDir: dir });
  const kvs = new KeyValueStoreService(store, { limits: BENCH_LIMITS });
  const t0 = performance.now();
  const d = await kvs.create({ name: 'bench', importData: bytes });
  const importMs = performance.now() - t0;
  if (d.Status !== 'READY' || d.ItemCount !== n) throw new Error(`import failed: ${d.Status} ${d.FailureReason ?? ''}`);
  await store.close();
  process.stdout.write(`${JSON.stringify({ importMs, fileMB: mb(bytes.length), baselineRssMB: mb(baseline), peakRssMB: mb(process.resourceUsage().maxRSS * 1024) })}\n`);
} else if (mode === 'replica') {
  const n = Number(arg);
  const store = await openSqliteStore({ dataDir: dir });
  gc();
  const heap0 = process.memoryUsage().heapUsed;
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  const replica = await KvsReplica.open(store);
  const loadMs = performance.now() - t0;
  replica.close();
  gc();
  gc();
  const heap1 = process.memoryUsage().heapUsed;
  const rss1 = process.memoryUsage().rss;
  const snap = replica.snapshot('bench')!;
  if (snap.meta().keyCount !== n) throw new Error(`replica holds ${snap.meta().keyCount} keys, expected ${n}`);
  // Lookup keys as a connection function produces them: fresh strings (hash not yet
  // computed), drawn from the stored keys in random order; half hits, half misses.
  const stored = (await store.kvs.listItems((await store.kvs.getStore('bench'))!.id, { limit: 200_000 })).map((r) => r.key);
  const m = 200_000;
  const probes: string[] = new Array(m);
  for (let i = 0; i < m; i++) {
    const k = stored[Math.floor(Math.random() * stored.length)]!;
    probes[i] = i % 2 === 0 ? Buffer.from(k).toString('latin1') : Buffer.from(`${k.slice(0, 31)}g`).toString('latin1');
  }
  let hits = 0;
  const t1 = performance.now();
  for (let i = 0; i < m; i++) if (snap.get(probes[i]!) !== undefined) hits++;
  const freshNs = ((performance.now() - t1) * 1e6) / m;
  const t2 = performance.now();
  for (let r = 0; r < 5; r++) for (let i = 0; i < m; i++) if (snap.get(probes[i]!) !== undefined) hits++;
  const warmNs = ((performance.now() - t2) * 1e6) / (5 * m);
  if (hits !== (m / 2) * 6) throw new Error(`lookup hits ${hits}`);
  await store.close();
  process.stdout.write(`${JSON.stringify({ loadMs, bytesPerKey: (heap1 - heap0) / n, heapMB: mb(heap1 - heap0), rssMB: mb(rss1 - rss0), freshNs, warmNs })}\n`);
} else if (mode === 'watch') {
  const storeName = arg;
  const store = await openSqliteStore({ dataDir: dir });
  setInterval(() => {}, 1000);
  await KvsReplica.open(store, {
    onApplied: (changes) => {
      const at = performance.timeOrigin + performance.now();
      for (const c of changes) {
        if (c.entity === 'kvs' && c.op === 'batch' && c.name === storeName) for (const [k] of c.puts) process.stdout.write(`seen ${k} ${at.toFixed(3)}\n`);
      }
    },
  });
  process.stdout.write('ready\n');
} else if (mode === 'fn') {
  const n = Number(arg);
  const code = `import cf from 'cloudfront';
async function connectionHandler(connection) {
  const serial = connection.clientCertificate.certificates.leaf.serialNumber;
  if (await cf.kvs().exists(serial.replaceAll(':', ''))) return connection.deny();
  return connection.allow();
}`;
  const store = await openSqliteStore({ dataDir: dir });
  const kvs = new KeyValueStoreService(store, { limits: BENCH_LIMITS });
  const big = await kvs.describe('bench');
  if (big.ItemCount !== n) throw new Error(`store bench holds ${big.ItemCount} keys, expected ${n}`);
  const small = Array.from({ length: 10 }, (_, i) => ({ key: randomBytes(16).toString('hex') + String(i), value: 'revoked' }));
  await kvs.create({ name: 'small', importData: Buffer.from(JSON.stringify({ data: small })) });
  const svc = new FunctionService(store);
  for (const [name, kvsName] of [['fn-big', 'bench'], ['fn-small', 'small']] as const) {
    const d = await svc.create(name, { code, runtime: FUNCTION_RUNTIME, keyValueStore: kvsName });
    await svc.publish(name, d.ETag);
  }
  const chain = sampleChain();
  const revocationStatus = syntheticRevocationStatus(chain, 'Good', 'Good');
  const host = await FunctionHost.start({ dataDir: dir });
  const samples: Record<string, number[]> = { 'fn-big': [], 'fn-small': [] };
  let cpuLimited = 0;
  try {
    const block = async (name: 'fn-big' | 'fn-small', count: number, keep: boolean): Promise<void> => {
      for (let i = 0; i < count; i++) {
        const s = performance.now();
        const json = connectionJson(buildConnection({ clientIp: '10.0.0.1', clientPort: 40000 + (i % 1000), endpoint: 'a.example.test', distributionId: 'd', certificates: chain, revocationStatus }));
        const r = await host.invoke(name, json);
        const e = performance.now();
        if (r.result.decision !== 'allow') {
          // A loaded machine can push the trivial function over its 5 ms CPU limit (Node 20
          // confirms with process CPU time, other threads included): counted, not fatal.
          if (!/CPU limit/.test(r.result.error ?? '')) throw new Error(`${name}: unexpected ${JSON.stringify(r.result)}`);
          cpuLimited++;
          continue;
        }
        if (keep) samples[name]!.push((e - s) * 1000);
      }
    };
    await block('fn-big', 500, false);
    await block('fn-small', 500, false);
    for (let b = 0; b < 6; b++) await block(b % 2 === 0 ? 'fn-big' : 'fn-small', 1000, true);
  } finally {
    await host.close();
    await store.close();
  }
  const pct = (a: number[], p: number): number => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.ceil((p / 100) * a.length) - 1)]!;
  process.stdout.write(`${JSON.stringify({ bigP50: pct(samples['fn-big']!, 50), bigP99: pct(samples['fn-big']!, 99), smallP50: pct(samples['fn-small']!, 50), smallP99: pct(samples['fn-small']!, 99), cpuLimited })}\n`);
} else {
  process.stderr.write(`unknown mode ${mode}\n`);
  process.exit(64);
}
