/**
 * Throughput (issue 7, figure 6), the whole machine: Portcullis (`portcullis serve`,
 * `workers` = CPU count, OCSP on with a warm cache + the KVS-lookup function, tickets
 * off) vs nginx (`worker_processes` = CPU count, `ssl_verify_client on` + `ssl_ocsp on`
 * with `ssl_ocsp_cache`, tickets off; bench/edge-nginx.ts), both proxying to the same
 * origin process, driven by the same load generator (bench/edge-load.ts) with the same
 * ECDSA P-256 client certificate:
 * - handshakes/s: CONNECTIONS new connections per round (one request each,
 *   `Connection: close`), CONCURRENCY at a time;
 * - requests/s on keep-alive connections: CONCURRENCY connections sending requests back
 *   to back for DURATION_MS.
 * Rounds alternate Portcullis → nginx. The load generator is one Node process on the
 * same cores as the servers (and the origin another), so these figures are what the
 * machine does with its load generator, not the servers' ceilings; the ratio is the
 * comparable figure. When nginx is not available the table says so.
 *
 * Env: THROUGHPUT_ROUNDS (default 3; 1 under BENCH_QUICK=1).
 */
import { type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../src/demo/index.js';
import { scaled, textRow, type Benchmark, type Figure } from './lib.js';
import { findOrInstallNginx, startNginx, type RunningNginx } from './edge-nginx.js';
import { root, startChild, startGateway, startLoad, stop, type Gateway, type LoadGenerator, tempDir, removeTempDir } from './proc.js';
import { benchPki, writeGatewayConfig, type BenchPki } from './setup.js';

const ROUNDS = Number(process.env.THROUGHPUT_ROUNDS ?? scaled(3, 1));
const CONNECTIONS = scaled(3000, 400);
const DURATION_MS = scaled(5000, 1500);
const CONCURRENCY = 32;
const WORKERS = availableParallelism();

export const throughputBench: Benchmark = {
  name: 'throughput',
  description: `throughput, whole machine: new mTLS handshakes/s and keep-alive requests/s, Portcullis (${WORKERS} workers, OCSP + function) vs nginx (${WORKERS} workers, verify_client + ssl_ocsp), same load generator on the same cores`,
  async run(): Promise<Figure[]> {
    const dir = await tempDir('portcullis-bench-throughput-');
    let p: BenchPki | undefined;
    let gw: Gateway | undefined;
    let nginx: RunningNginx | undefined;
    let load: LoadGenerator | undefined;
    let origin: ChildProcess | undefined;
    try {
      await mkdir(join(dir, 'pki'));
      p = await benchPki(join(dir, 'pki'), { rsa: false });
      const o = await startChild([join(root, 'bench/edge-origin.ts')]);
      origin = o.child;
      const port = await freePort(), adminPort = await freePort();
      const config = await writeGatewayConfig(dir, {
        workers: WORKERS, adminPort, token: 'bench-token-0123456789abcdef', originPort: o.info.port, kvsKeys: 10_000,
        distributions: [{ name: 'tput', port, fn: true, ocsp: true }],
      });
      gw = await startGateway(config, [port, adminPort]);
      let unavailable: string | undefined;
      let version = '';
      const found = await findOrInstallNginx();
      if ('reason' in found) unavailable = found.reason;
      else {
        version = found.version;
        try {
          nginx = await startNginx({
            bin: found.bin, prefix: join(dir, 'nginx'), port: await freePort(), certFile: p.server.certFile, keyFile: p.server.keyFile,
            caFile: p.pki.root.certFile, originPort: o.info.port, workers: WORKERS,
          });
        } catch (e) {
          unavailable = `${found.version} did not start: ${(e as Error).message}`;
        }
      }
      load = await startLoad();
      const l = load;
      const clients = [p.clients.ecdsa];
      const contenders = [{ name: 'portcullis', port }, ...(nginx ? [{ name: 'nginx', port: nginx.port }] : [])];
      // Warm-up: OCSP caches of every worker, function instances, JIT.
      for (const c of contenders) {
        const w = await l.round({ port: c.port, clients, connections: 300, concurrency: CONCURRENCY });
        if (w.failed) throw new Error(`warm-up ${c.name}: ${w.failed} of 300 connections failed`);
        const k = await l.round({ port: c.port, clients, concurrency: CONCURRENCY, mode: 'keepalive', durationMs: 500 });
        if (k.failed) throw new Error(`warm-up ${c.name} keep-alive: ${k.failed} requests failed`);
      }
      const hs: Record<string, number[]> = { portcullis: [], nginx: [] };
      const rps: Record<string, number[]> = { portcullis: [], nginx: [] };
      for (let round = 0; round < ROUNDS; round++) {
        for (const c of contenders) {
          const r = await l.round({ port: c.port, clients, connections: CONNECTIONS, concurrency: CONCURRENCY });
          if (r.failed) throw new Error(`${c.name}: ${r.failed} of ${CONNECTIONS} connections failed`);
          hs[c.name]!.push((r.ok / r.ms) * 1000);
          process.stderr.write(`  round ${round + 1} ${c.name}: ${((r.ok / r.ms) * 1000).toFixed(0)} handshakes/s\n`);
        }
        for (const c of contenders) {
          const r = await l.round({ port: c.port, clients, concurrency: CONCURRENCY, mode: 'keepalive', durationMs: DURATION_MS });
          if (r.failed) throw new Error(`${c.name} keep-alive: ${r.failed} of ${r.ok + r.failed} requests failed`);
          rps[c.name]!.push((r.ok / r.ms) * 1000);
          process.stderr.write(`  round ${round + 1} ${c.name}: ${((r.ok / r.ms) * 1000).toFixed(0)} requests/s keep-alive over ${r.newConnections} connections\n`);
        }
      }
      const B = 'throughput';
      const lg = `${CONCURRENCY} concurrent, load generator on the same ${WORKERS} cores`;
      const figures: Figure[] = [
        { benchmark: B, metric: `Portcullis (${WORKERS} workers, OCSP warm + function), new mTLS connections (handshake + 1 request), ${lg}`, unit: 'handshakes/s', rounds: hs.portcullis! },
        { benchmark: B, metric: `Portcullis, requests on ${CONCURRENCY} keep-alive connections, ${lg}`, unit: 'requests/s', rounds: rps.portcullis! },
      ];
      if (unavailable) {
        figures.push(textRow(B, 'nginx, handshakes/s and requests/s', `not available — ${unavailable}`));
      } else {
        figures.push(
          { benchmark: B, metric: `nginx ${version} (${WORKERS} workers, verify_client + ssl_ocsp warm), new mTLS connections, ${lg}`, unit: 'handshakes/s', rounds: hs.nginx! },
          { benchmark: B, metric: `nginx, requests on ${CONCURRENCY} keep-alive connections, ${lg}`, unit: 'requests/s', rounds: rps.nginx! },
          { benchmark: B, metric: 'handshakes/s ratio Portcullis / nginx (same round)', unit: '×', rounds: hs.portcullis!.map((v, i) => v / hs.nginx![i]!), target: 'as measured' },
          { benchmark: B, metric: 'keep-alive requests/s ratio Portcullis / nginx (same round)', unit: '×', rounds: rps.portcullis!.map((v, i) => v / rps.nginx![i]!), target: 'as measured' },
        );
      }
      return figures;
    } finally {
      await stop(load?.child);
      await stop(nginx?.child);
      await stop(gw?.child);
      await stop(origin);
      await p?.pki.close();
      await removeTempDir(dir);
    }
  },
};
