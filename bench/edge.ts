/**
 * Handshake cost and gate latency (issue 7, figures 1 and 2): server CPU per mTLS
 * connection — a full TLS handshake with a client certificate plus one HTTP/1.1 request
 * with `Connection: close` — for every contender in the same run, under the same load
 * generator (bench/edge-load.ts) with the same certificates; and the gate's decision
 * time (connection log `decisionTimeUs`) on a warm cache, with and without a function.
 *
 * Setup (bench/setup.ts): a throwaway PKI with two `openssl ocsp` responders (src/demo),
 * an ECDSA P-256 server certificate, two client leaves under the intermediate (ECDSA
 * P-256 and RSA 2048; the chain sent is leaf + intermediate), a 10,000-key KVS.
 * Contenders, one process (one worker) each, session tickets and session caches off
 * (Portcullis' default: `sessionResumption: false`):
 * - (a) `fn`: Portcullis, OCSP on (warm cache) + the KVS-lookup function
 *   examples/functions/kvs-serial-revocation.js;
 * - `nofn`: Portcullis, OCSP on, no function;
 * - (b) `mtls`: Portcullis, mTLS only (trust store without OCSP, no function);
 * - (c) `bare`: node:tls + node:http with the same TLS settings (bench/edge-bare-server.ts);
 * - (d) `nginx`: bench/edge-nginx.ts, 1 worker, `ssl_verify_client on` + `ssl_ocsp on`
 *   with `ssl_ocsp_cache`, proxy_pass to the same origin; installed with apt-get when
 *   missing — when it cannot be installed or started, the table has "not available —
 *   reason" rows (`BENCH_NGINX_UNAVAILABLE=1` forces that path);
 * - references with session tickets (and caches) on, not resumed by the client:
 *   `bareTickets`, `fnTickets` (`sessionResumption: true`), `nginxTickets`.
 * All Portcullis variants are distributions of one `portcullis serve --config` with
 * `workers: 1` (one process; its CPU includes the function worker thread). The origin
 * (bench/edge-origin.ts) is a separate process whose CPU is not counted (the bare
 * server answers itself).
 *
 * Rounds: one warm-up round per contender and key type (OCSP cache and function warm),
 * then ROUNDS measured rounds, alternating through the contenders for each key type.
 * CPU: utime + stime from /proc of every process of the contender (Portcullis: primary
 * and any worker; nginx: master and workers) before and after the round, divided by the
 * connections. Gate decision time: from the connection log, one connection at a time
 * (SEQUENTIAL connections per round) and under the CPU rounds' load.
 *
 * Env: EDGE_BENCH_ROUNDS (default 5; 1 under BENCH_QUICK=1), EDGE_BENCH_CONNECTIONS
 * (default 1000; 150 quick), EDGE_BENCH_KEEP_LOG=FILE keeps the connection log,
 * EDGE_BENCH_GATEWAY_ARGS="node flags" starts the Portcullis process with extra node
 * flags (space-separated), e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` for a CPU profile
 * of the gateway under the benchmark's load (one .cpuprofile per thread — main thread
 * and function worker — written when the benchmark stops the gateway; the profile is
 * wall-clock sampled, so read its proportions, not its absolute times).
 */
import { type ChildProcess } from 'node:child_process';
import { copyFile, mkdir } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../src/demo/index.js';
import { percentile, scaled, textRow, type Benchmark, type Figure } from './lib.js';
import { findOrInstallNginx, startNginx, type RunningNginx } from './edge-nginx.js';
import { fileSize, readLogLines, type ConnLogLine, root, startChild, startGateway, startLoad, stop, treeCpuUs, type Gateway, type LoadGenerator, tempDir, removeTempDir } from './proc.js';
import { benchPki, writeGatewayConfig, type BenchPki } from './setup.js';

const ROUNDS = Number(process.env.EDGE_BENCH_ROUNDS ?? scaled(5, 1));
const CONNECTIONS = Number(process.env.EDGE_BENCH_CONNECTIONS ?? scaled(1000, 150));
const WARMUP = Math.min(CONNECTIONS, 300);
const CONCURRENCY = 8;
const SEQUENTIAL = Math.max(100, Math.round(CONNECTIONS / 3));

type ContenderName = 'bare' | 'fn' | 'nofn' | 'mtls' | 'nginx' | 'bareTickets' | 'fnTickets' | 'nginxTickets';
interface Contender { name: ContenderName; port: number; cpu: () => number }
const PORTCULLIS: ContenderName[] = ['fn', 'nofn', 'mtls', 'fnTickets'];
const logged = (n: ContenderName): boolean => PORTCULLIS.includes(n);
/**
 * A denial by the function's CPU limit (`ConnectionFunctionError`, "exceeded its CPU
 * limit"): on a loaded machine a trivial function can be stopped (Node 20 measures the
 * limit with process CPU time, other threads included). Counted and reported, not a
 * benchmark failure; any other denial is.
 */
const cpuLimitDenial = (x: ConnLogLine): boolean => x.connectionStatus === 'Failed:ConnectionFunctionError' && /CPU limit/.test(String(x.functionError));

/** Starts nginx (tickets off and on), or says why it is not available. */
async function nginxPair(dir: string, p: BenchPki, originPort: number): Promise<{ off?: RunningNginx; on?: RunningNginx; version: string; unavailable?: string }> {
  const found = await findOrInstallNginx();
  if ('reason' in found) return { version: '', unavailable: found.reason };
  const base = { bin: found.bin, certFile: p.server.certFile, keyFile: p.server.keyFile, caFile: p.pki.root.certFile, originPort };
  let off: RunningNginx | undefined;
  try {
    off = await startNginx({ ...base, prefix: join(dir, 'nginx'), port: await freePort() });
    const on = await startNginx({ ...base, prefix: join(dir, 'nginx-tickets'), port: await freePort(), tickets: true });
    return { off, on, version: found.version };
  } catch (e) {
    await stop(off?.child);
    return { version: found.version, unavailable: `${found.version} did not start: ${(e as Error).message}` };
  }
}

export const edgeBench: Benchmark = {
  name: 'edge',
  description: 'handshake cost: server CPU per mTLS connection (handshake + 1 request), Portcullis (OCSP + function / OCSP / mTLS only) vs bare node:tls+http vs nginx (verify_client + ssl_ocsp), tickets off (and on for reference), ECDSA and RSA clients; gate decision time p50/p99/max with and without a function',
  async run(): Promise<Figure[]> {
    const dir = await tempDir('portcullis-bench-edge-');
    const children: ChildProcess[] = [];
    let p: BenchPki | undefined;
    let gw: Gateway | undefined;
    let load: LoadGenerator | undefined;
    let ng: Awaited<ReturnType<typeof nginxPair>> | undefined;
    try {
      await mkdir(join(dir, 'pki'));
      p = await benchPki(join(dir, 'pki'));
      const clients = p.clients;
      const origin = await startChild([join(root, 'bench/edge-origin.ts')]);
      children.push(origin.child);
      const ports = { fn: await freePort(), nofn: await freePort(), mtls: await freePort(), fnTickets: await freePort(), admin: await freePort() };
      const config = await writeGatewayConfig(dir, {
        workers: 1, adminPort: ports.admin, token: 'bench-token-0123456789abcdef', originPort: origin.info.port, kvsKeys: 10_000,
        distributions: [
          { name: 'fn', port: ports.fn, fn: true, ocsp: true },
          { name: 'nofn', port: ports.nofn, fn: false, ocsp: true },
          { name: 'mtls', port: ports.mtls, fn: false, ocsp: false },
          { name: 'fntickets', port: ports.fnTickets, fn: true, ocsp: true, tickets: true },
        ],
      });
      const logFile = join(dir, 'connections.jsonl');
      gw = await startGateway(config, [ports.fn, ports.nofn, ports.mtls, ports.fnTickets, ports.admin],
        process.env.EDGE_BENCH_GATEWAY_ARGS?.split(' ').filter(Boolean) ?? []);
      const bare = await startChild([join(root, 'bench/edge-bare-server.ts'), p.server.certFile, p.server.keyFile]);
      children.push(bare.child);
      const bareTickets = await startChild([join(root, 'bench/edge-bare-server.ts'), p.server.certFile, p.server.keyFile, 'tickets']);
      children.push(bareTickets.child);
      ng = await nginxPair(dir, p, origin.info.port);
      if (ng.unavailable) process.stderr.write(`  nginx: not available — ${ng.unavailable}\n`);
      load = await startLoad();
      const l = load;
      const drive = (port: number, key: 'ecdsa' | 'rsa', connections: number, concurrency = CONCURRENCY) =>
        l.round({ port, clients: [clients[key]], connections, concurrency });

      const g = gw;
      const contenders: Contender[] = [
        { name: 'bare', port: bare.info.port, cpu: () => treeCpuUs(bare.child.pid!) },
        { name: 'fn', port: ports.fn, cpu: () => g.cpuUs() },
        { name: 'nofn', port: ports.nofn, cpu: () => g.cpuUs() },
        { name: 'mtls', port: ports.mtls, cpu: () => g.cpuUs() },
        ...(ng.off ? [{ name: 'nginx' as const, port: ng.off.port, cpu: ng.off.cpuUs }] : []),
        { name: 'bareTickets', port: bareTickets.info.port, cpu: () => treeCpuUs(bareTickets.child.pid!) },
        { name: 'fnTickets', port: ports.fnTickets, cpu: () => g.cpuUs() },
        ...(ng.on ? [{ name: 'nginxTickets' as const, port: ng.on.port, cpu: ng.on.cpuUs }] : []),
      ];
      process.stderr.write(`  pids: portcullis ${gw.child.pid}, bare ${bare.child.pid}, bare+tickets ${bareTickets.child.pid}, nginx ${ng.off?.child.pid ?? '-'} / ${ng.on?.child.pid ?? '-'} (${ng.version || 'n/a'}), origin ${origin.child.pid}, load ${load.child.pid}; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}\n`);
      const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 300));
      await settle();
      // Skip the lines of the port probes above (TcpError: closed before the handshake).
      let logOffset = fileSize(logFile);
      let cpuLimitDenials = 0;
      // Warm-up: OCSP cache, function instance, JIT, parse caches.
      for (const key of ['ecdsa', 'rsa'] as const) {
        for (const c of contenders) {
          const r = await drive(c.port, key, WARMUP);
          let tolerated = 0;
          if (logged(c.name)) {
            const got = await readLogLines(logFile, logOffset, WARMUP);
            logOffset = got.offset;
            for (const x of got.lines) {
              if (x.connectionStatus === 'Success') continue;
              if (!cpuLimitDenial(x)) throw new Error(`warm-up ${c.name}/${key}: denied: ${JSON.stringify(x)}`);
              tolerated++;
              cpuLimitDenials++;
            }
          }
          if (r.failed > tolerated) {
            const n = c.name === 'nginx' ? ng.off : c.name === 'nginxTickets' ? ng.on : undefined;
            const why = n ? ` (nginx error log: ${(await n.errorLog()).trim().split('\n').slice(-3).join(' / ')})` : '';
            throw new Error(`warm-up ${c.name}/${key}: ${r.failed} of ${WARMUP} connections failed${why}`);
          }
        }
      }
      for (const n of [ng.off, ng.on]) {
        if (!n) continue;
        // Every nginx connection so far verified (OCSP included: a failed check is a 400, which the generator counts as failed).
        const lines = await n.accessLog();
        const bad = lines.filter((x) => !x.startsWith('200 SUCCESS'));
        if (bad.length || lines.length < 2 * WARMUP) throw new Error(`nginx warm-up: ${lines.length} access-log lines, ${bad.length} not '200 SUCCESS' (${bad[0] ?? ''})`);
      }
      const none = (): Record<ContenderName, number[]> => ({ bare: [], fn: [], nofn: [], mtls: [], nginx: [], bareTickets: [], fnTickets: [], nginxTickets: [] });
      const cpu = { ecdsa: none(), rsa: none() };
      const stats = () => ({ p50: [] as number[], p99: [] as number[], max: [] as number[] });
      const gate = { fn: stats(), nofn: stats() };
      const seq = { fn: stats(), nofn: stats() };
      for (let round = 0; round < ROUNDS; round++) {
        const perRound = { fn: [] as number[], nofn: [] as number[] };
        for (const key of ['ecdsa', 'rsa'] as const) {
          for (const c of contenders) {
            await settle();
            const before = c.cpu();
            const r = await drive(c.port, key, CONNECTIONS);
            let tolerated = 0;
            if (logged(c.name)) {
              const got = await readLogLines(logFile, logOffset, CONNECTIONS);
              logOffset = got.offset;
              for (const x of got.lines) {
                if (x.connectionStatus !== 'Success') {
                  if (!cpuLimitDenial(x)) throw new Error(`${c.name}/${key}: denied: ${JSON.stringify(x)}`);
                  tolerated++;
                  cpuLimitDenials++;
                }
                if (c.name === 'fn' || c.name === 'nofn') perRound[c.name].push(x.decisionTimeUs);
              }
            }
            await settle();
            const after = c.cpu();
            if (r.failed > tolerated) throw new Error(`${c.name}/${key}: ${r.failed} of ${CONNECTIONS} connections failed`);
            cpu[key][c.name].push((after - before) / CONNECTIONS);
            process.stderr.write(`  round ${round + 1} ${key} ${c.name}: ${((after - before) / CONNECTIONS).toFixed(0)} µs CPU/conn, ${(CONNECTIONS / r.ms * 1000).toFixed(0)} conn/s\n`);
          }
        }
        // One connection at a time: the gate without other handshakes queued on the event loop.
        for (const name of ['fn', 'nofn'] as const) {
          const r = await drive(ports[name], 'ecdsa', SEQUENTIAL, 1);
          const got = await readLogLines(logFile, logOffset, SEQUENTIAL);
          logOffset = got.offset;
          const limited = got.lines.filter(cpuLimitDenial).length;
          cpuLimitDenials += limited;
          if (r.failed > limited) throw new Error(`sequential ${name}: ${r.failed} of ${SEQUENTIAL} connections failed`);
          const sample = got.lines.map((x) => x.decisionTimeUs);
          seq[name].p50.push(percentile(sample, 50));
          seq[name].p99.push(percentile(sample, 99));
          seq[name].max.push(Math.max(...sample));
        }
        for (const n of ['fn', 'nofn'] as const) {
          gate[n].p50.push(percentile(perRound[n], 50));
          gate[n].p99.push(percentile(perRound[n], 99));
          gate[n].max.push(Math.max(...perRound[n]));
        }
      }
      const figures: Figure[] = [];
      const E = 'edge';
      const ratio = (a: number[], b: number[]): number[] => a.map((v, i) => v / b[i]!);
      const nginxWhat = `nginx ${ng.version} (1 worker; master + worker counted; ssl_verify_client on, ssl_ocsp on + ssl_ocsp_cache, warm; proxy_pass to the same origin, not counted)`;
      for (const key of ['ecdsa', 'rsa'] as const) {
        const label = key === 'ecdsa' ? 'ECDSA P-256' : 'RSA 2048';
        const c = cpu[key];
        figures.push(
          { benchmark: E, metric: `server CPU per connection (handshake + 1 request), (c) bare node:tls+http, tickets off, ${label} client`, unit: 'µs', rounds: c.bare },
          { benchmark: E, metric: `server CPU per connection, (a) Portcullis OCSP warm + KVS-lookup function (origin not counted), tickets off, ${label} client`, unit: 'µs', rounds: c.fn },
          { benchmark: E, metric: `CPU ratio (a) Portcullis / (c) bare, ${label} client (same round)`, unit: '×', rounds: ratio(c.fn, c.bare), target: '≤ 1.15' },
          { benchmark: E, metric: `server CPU per connection, Portcullis OCSP warm, no function, ${label} client`, unit: 'µs', rounds: c.nofn },
          { benchmark: E, metric: `server CPU per connection, (b) Portcullis mTLS only (no OCSP, no function), ${label} client`, unit: 'µs', rounds: c.mtls },
          { benchmark: E, metric: `CPU ratio (b) Portcullis mTLS only / (c) bare, ${label} client (same round)`, unit: '×', rounds: ratio(c.mtls, c.bare) },
        );
        if (ng.unavailable) {
          figures.push(textRow(E, `(d) nginx, ${label} client`, `not available — ${ng.unavailable}`), textRow(E, `CPU ratio (a) Portcullis / (d) nginx, ${label} client`, 'not measured: nginx not available', 'as measured'));
        } else {
          figures.push(
            { benchmark: E, metric: `server CPU per connection, (d) ${nginxWhat}, tickets off, ${label} client`, unit: 'µs', rounds: c.nginx },
            { benchmark: E, metric: `CPU ratio (a) Portcullis / (d) nginx, ${label} client (same round)`, unit: '×', rounds: ratio(c.fn, c.nginx), target: 'as measured' },
          );
        }
        figures.push(
          { benchmark: E, metric: `reference, tickets ON (not resumed): bare node:tls+http, ${label} client`, unit: 'µs', rounds: c.bareTickets },
          { benchmark: E, metric: `reference, tickets ON (not resumed): Portcullis OCSP + function, sessionResumption: true, ${label} client`, unit: 'µs', rounds: c.fnTickets },
          ng.unavailable
            ? textRow(E, `reference, tickets ON: nginx, ${label} client`, `not available — ${ng.unavailable}`)
            : { benchmark: E, metric: `reference, tickets ON (not resumed): nginx, ssl_session_tickets on + ssl_session_cache shared, ${label} client`, unit: 'µs', rounds: c.nginxTickets },
        );
      }
      figures.push({ benchmark: E, metric: 'Portcullis connections denied by the function CPU limit (ConnectionFunctionError) over the whole benchmark — spurious denials under load', unit: 'connections', rounds: [cpuLimitDenials], target: '0' });
      for (const n of ['fn', 'nofn'] as const) {
        const what = n === 'fn' ? 'with KVS-lookup function' : 'without function';
        figures.push(
          { benchmark: E, metric: `gate latency (handshake done → decision, warm OCSP cache), ${what}, one connection at a time, p50`, unit: 'µs', rounds: seq[n].p50 },
          { benchmark: E, metric: `gate latency, ${what}, one connection at a time, p99`, unit: 'µs', rounds: seq[n].p99, target: '≤ 200 µs' },
          { benchmark: E, metric: `gate latency, ${what}, one connection at a time, max`, unit: 'µs', rounds: seq[n].max },
          { benchmark: E, metric: `gate latency, ${what}, under the CPU rounds' load (${CONCURRENCY} concurrent), p50`, unit: 'µs', rounds: gate[n].p50 },
          { benchmark: E, metric: `gate latency, ${what}, under load, p99`, unit: 'µs', rounds: gate[n].p99 },
          { benchmark: E, metric: `gate latency, ${what}, under load, max`, unit: 'µs', rounds: gate[n].max },
        );
      }
      process.stderr.write(`  load average at the end ${loadavg().map((x) => x.toFixed(2)).join(' ')} (other work on the machine inflates the wall-clock gate figures more than the CPU ones)\n`);
      if (process.env.EDGE_BENCH_KEEP_LOG) await copyFile(logFile, process.env.EDGE_BENCH_KEEP_LOG);
      return figures;
    } finally {
      await stop(load?.child);
      await stop(ng?.off?.child);
      await stop(ng?.on?.child);
      await stop(gw?.child);
      for (const c of children.reverse()) await stop(c);
      await p?.pki.close();
      await removeTempDir(dir);
    }
  },
};
