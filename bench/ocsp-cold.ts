/**
 * OCSP cold start (issue 7, figure 3): 500 concurrent new mTLS connections by 50
 * distinct client certificates (one PKI, distinct serials; chain sent = leaf +
 * intermediate) against a freshly started `portcullis serve` (empty OCSP cache), one
 * distribution with OCSP on and no function, `ocsp.timeoutMs` TIMEOUT_MS.
 *
 * The responders are real `openssl ocsp` processes (root's and intermediate's, as in
 * src/demo) behind a counting HTTP proxy that listens on the ports the certificates'
 * AIA URLs name, so every request Portcullis makes is counted: the intermediate
 * responder's proxy sees the leaf lookups, the root responder's the intermediate's.
 * Target: 50 leaf + 1 intermediate lookups per process, no more (single flight per
 * CertID). Each worker has its own OCSP cache, so with `workers: N` up to N × 51 is the
 * expected count — reported as measured.
 *
 * Variants, each on a fresh gateway (cold cache), in this order per round:
 * - `up`, workers 1 and workers WORKERS_MANY: responder requests made (leaf and
 *   intermediate), every connection allowed, client-side latency (connect() → response
 *   end) p50/p99/max and the gate's decision time max;
 * - `down` (the proxy accepts and never answers) and `refused` (the proxy resets every
 *   connection), workers 1: every connection decided (denied `ClientCertRevocationUnknown`
 *   — no function, so no soft-fail) and the max decision time against `ocsp.timeoutMs`;
 * - `down` with a soft-fail configuration: the KVS-lookup function attached (with a
 *   function, the function decides; this one allows any serial not in the KVS, whatever
 *   the revocation status), so every connection must be allowed within the budget.
 *
 * Env: OCSP_COLD_ROUNDS (default 3; 1 under BENCH_QUICK=1).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request, type Server } from 'node:http';
import { mkdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { OpensslDemoPki, freePort, type DemoCertificate } from '../src/demo/index.js';
import { percentile, scaled, type Benchmark, type Figure } from './lib.js';
import { fileSize, readLogLines, root, startChild, startGateway, startLoad, stop, sleep, type ClientFiles, type Gateway, type LoadGenerator, tempDir, removeTempDir, track } from './proc.js';
import { writeGatewayConfig } from './setup.js';

const ROUNDS = Number(process.env.OCSP_COLD_ROUNDS ?? scaled(3, 1));
const CERTS = 50;
const CONNECTIONS = 500;
const TIMEOUT_MS = 2000;
const WORKERS_MANY = Math.max(2, availableParallelism());
const TOKEN = 'bench-token-0123456789abcdef';

type ProxyMode = 'up' | 'down' | 'refused';

/** A counting HTTP proxy in front of an `openssl ocsp` responder. */
interface CountingProxy { server: Server; count: number; connections: number; mode: ProxyMode; close(): Promise<void> }

function countingProxy(port: number, upstreamPort: number): Promise<CountingProxy> {
  const p: CountingProxy = {
    count: 0, connections: 0, mode: 'up', server: undefined as unknown as Server,
    close: () => new Promise((r) => { p.server.closeAllConnections(); p.server.close(() => r()); }),
  };
  p.server = createServer((req, res) => {
    p.count++;
    if (p.mode === 'down') return; // accept, read, never answer
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const up = request({ host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: { ...req.headers, host: `127.0.0.1:${upstreamPort}` } }, (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      });
      up.on('error', () => { res.writeHead(502); res.end(); });
      up.end(Buffer.concat(chunks));
    });
  });
  p.server.on('connection', (s) => {
    p.connections++;
    if (p.mode === 'refused') s.resetAndDestroy();
  });
  return new Promise((resolve, reject) => {
    p.server.once('error', reject);
    p.server.listen(port, '127.0.0.1', () => resolve(p));
  });
}

/** `openssl ocsp` for `ca` answering from `index` on `port` (as src/demo starts them). */
async function opensslResponder(pki: OpensslDemoPki, ca: DemoCertificate, index: string, port: number): Promise<ChildProcess> {
  const child = track(spawn('openssl', ['ocsp', '-index', join(pki.dir, index), '-port', String(port), '-rsigner', ca.certFile, '-rkey', ca.keyFile,
    '-CA', ca.certFile, '-nmin', '60', '-ignore_err'], { stdio: ['ignore', 'ignore', 'pipe'] }));
  await new Promise<void>((resolve, reject) => {
    let err = '';
    const t = setTimeout(() => reject(new Error(`openssl ocsp did not start: ${err}`)), 10_000);
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('waiting for OCSP client connections')) { clearTimeout(t); resolve(); }
    });
    child.once('exit', (code) => { clearTimeout(t); reject(new Error(`openssl ocsp exited with ${code}: ${err}`)); });
  });
  child.removeAllListeners('exit');
  return child;
}

interface Outcome { leafRequests: number; intermediateRequests: number; responderConnections: number; allowed: number; denied: number; decided: number; clientMs: number[]; decisionMs: number[]; decisionMaxMs: number; failedClient: number }

export const ocspColdBench: Benchmark = {
  name: 'ocsp-cold',
  description: `OCSP cold start: ${CONNECTIONS} concurrent handshakes by ${CERTS} certificates on an empty cache against real openssl ocsp responders behind a counting proxy (requests made vs ${CERTS}+1, latency), and with the responder down/refusing (every connection decided within ocsp.timeoutMs)`,
  async run(): Promise<Figure[]> {
    const dir = await tempDir('portcullis-bench-ocsp-cold-');
    const children: ChildProcess[] = [];
    const proxies: CountingProxy[] = [];
    let pki: OpensslDemoPki | undefined;
    let gw: Gateway | undefined;
    let load: LoadGenerator | undefined;
    try {
      await mkdir(join(dir, 'pki'));
      pki = await OpensslDemoPki.create({ dir: join(dir, 'pki'), nextUpdateMinutes: 60 });
      await pki.issueServer('server', ['localhost']);
      const clients: ClientFiles[] = [];
      for (let i = 0; i < CERTS; i++) {
        const leaf = await pki.issueLeaf(`cold-${i}`);
        clients.push({ certFile: await pki.writeChain(leaf), keyFile: leaf.keyFile });
      }
      // Real responders on their own ports; the counting proxies take the ports in the AIA URLs.
      const rootUp = await freePort(), interUp = await freePort();
      children.push(await opensslResponder(pki, pki.root, 'root-index.txt', rootUp));
      children.push(await opensslResponder(pki, pki.intermediate, 'intermediate-index.txt', interUp));
      const rootProxy = await countingProxy(pki.rootPort, rootUp);
      const interProxy = await countingProxy(pki.intermediatePort, interUp);
      proxies.push(rootProxy, interProxy);
      const origin = await startChild([join(root, 'bench/edge-origin.ts')]);
      children.push(origin.child);
      load = await startLoad();
      const logFile = join(dir, 'connections.jsonl');

      let starts = 0;
      const once = async (workers: number, mode: ProxyMode, fn = false): Promise<Outcome> => {
        const port = await freePort(), adminPort = await freePort();
        const config = await writeGatewayConfig(dir, {
          dataDir: `./data-${starts++}`, workers, adminPort, token: TOKEN, originPort: origin.info.port, kvsKeys: 10,
          distributions: [{ name: 'cold', port, fn, ocsp: true }], ocsp: { timeoutMs: TIMEOUT_MS },
        });
        const g = gw = await startGateway(config, [port, adminPort]);
        try {
          await sleep(300);
          let offset = fileSize(logFile);
          for (const p of [rootProxy, interProxy]) { p.mode = mode; p.count = 0; p.connections = 0; }
          const r = await load!.round({ port, clients, connections: CONNECTIONS, concurrency: CONNECTIONS, latencies: true, timeoutMs: 30_000 });
          const got = await readLogLines(logFile, offset, CONNECTIONS, 30_000);
          offset = got.offset;
          const lines = got.lines.filter((l) => l.clientLeafCertSerialNumber !== null);
          const out: Outcome = {
            leafRequests: interProxy.count, intermediateRequests: rootProxy.count, responderConnections: interProxy.connections + rootProxy.connections,
            allowed: lines.filter((l) => l.connectionStatus === 'Success').length,
            denied: lines.filter((l) => l.connectionStatus !== 'Success').length,
            decided: lines.length, clientMs: r.latencies ?? [], failedClient: r.failed,
            decisionMs: lines.map((l) => l.decisionTimeUs / 1000),
            decisionMaxMs: Math.max(0, ...lines.map((l) => l.decisionTimeUs / 1000)),
          };
          const why = new Map<string, number>();
          for (const l of lines) {
            if (l.connectionStatus === 'Success') continue;
            const k = `${l.connectionStatus}: ${String(l.reason).replace(/\b[0-9a-f]{2}(:[0-9a-f]{2})+\b/g, '…').slice(0, 200)}`;
            why.set(k, (why.get(k) ?? 0) + 1);
          }
          for (const [k, n] of [...why].sort((a, b) => b[1] - a[1]).slice(0, 4)) process.stderr.write(`    denied ×${n}: ${k}\n`);
          process.stderr.write(`  workers ${workers}, responder ${mode}${fn ? ', soft-fail function' : ''}: requests leaf ${out.leafRequests} + intermediate ${out.intermediateRequests} over ${out.responderConnections} TCP connections; decided ${out.decided}/${CONNECTIONS} (allowed ${out.allowed}, denied ${out.denied}); client p50 ${percentile(out.clientMs, 50).toFixed(0)} p99 ${percentile(out.clientMs, 99).toFixed(0)} max ${Math.max(...out.clientMs).toFixed(0)} ms; decision max ${out.decisionMaxMs.toFixed(0)} ms\n`);
          return out;
        } finally {
          await stop(g.child);
          gw = undefined;
        }
      };

      const rows = {
        up1: [] as Outcome[], upN: [] as Outcome[], down: [] as Outcome[], downSoft: [] as Outcome[], refused: [] as Outcome[],
      };
      for (let round = 0; round < ROUNDS; round++) {
        rows.up1.push(await once(1, 'up'));
        rows.upN.push(await once(WORKERS_MANY, 'up'));
        rows.down.push(await once(1, 'down'));
        rows.downSoft.push(await once(1, 'down', true));
        rows.refused.push(await once(1, 'refused'));
      }
      const B = 'ocsp-cold';
      const f = (metric: string, unit: string, rounds: number[], target?: string): Figure => ({ benchmark: B, metric, unit, rounds, ...(target ? { target } : {}) });
      const lat = (o: Outcome[], p: number): number[] => o.map((x) => percentile(x.clientMs, p));
      const w = `${CONNECTIONS} concurrent handshakes, ${CERTS} certificates, empty cache`;
      return [
        f(`responder requests, workers 1, ${w}: leaf lookups`, 'requests', rows.up1.map((o) => o.leafRequests), `${CERTS}`),
        f('responder requests, workers 1: intermediate lookups', 'requests', rows.up1.map((o) => o.intermediateRequests), '1'),
        f(`connections allowed, workers 1 (a lookup that misses ocsp.timeoutMs ${TIMEOUT_MS} denies: fail closed)`, 'connections', rows.up1.map((o) => o.allowed), `${CONNECTIONS}`),
        f(`handshake + request latency (client: connect → response end), workers 1, ${w}, p50`, 'ms', lat(rows.up1, 50)),
        f('handshake + request latency, workers 1, p99', 'ms', lat(rows.up1, 99)),
        f('handshake + request latency, workers 1, max', 'ms', lat(rows.up1, 100)),
        f('gate decision time (handshake done → decision, incl. the OCSP fetches), workers 1, p50', 'ms', rows.up1.map((o) => percentile(o.decisionMs, 50))),
        f('gate decision time, workers 1, p99', 'ms', rows.up1.map((o) => percentile(o.decisionMs, 99))),
        f('gate decision time, workers 1, max', 'ms', rows.up1.map((o) => o.decisionMaxMs)),
        f(`responder requests, workers ${WORKERS_MANY} (one OCSP cache per worker: up to ${WORKERS_MANY} × ${CERTS + 1} expected), leaf + intermediate`, 'requests', rows.upN.map((o) => o.leafRequests + o.intermediateRequests), `≤ ${WORKERS_MANY * (CERTS + 1)}`),
        f(`connections allowed, workers ${WORKERS_MANY}`, 'connections', rows.upN.map((o) => o.allowed), `${CONNECTIONS}`),
        f(`handshake + request latency, workers ${WORKERS_MANY}, p99`, 'ms', lat(rows.upN, 99)),
        f(`responder down (accepts, never answers), workers 1: connections decided (denied ClientCertRevocationUnknown, no function)`, 'connections', rows.down.map((o) => o.decided), `${CONNECTIONS}`),
        f(`responder down: max decision time (ocsp.timeoutMs ${TIMEOUT_MS})`, 'ms', rows.down.map((o) => o.decisionMaxMs), `≤ ${TIMEOUT_MS} + ε`),
        f('responder down: client latency (connect → refused), max', 'ms', lat(rows.down, 100)),
        f(`responder down: requests sent (leaf + intermediate; lookups beyond the HTTP client's connection pool wait for a socket and time out unsent)`, 'requests', rows.down.map((o) => o.leafRequests + o.intermediateRequests), `≤ ${CERTS + 1}`),
        f('responder down, soft-fail (the KVS-lookup function decides and allows with revocation Unknown), workers 1: connections allowed', 'connections', rows.downSoft.map((o) => o.allowed), `${CONNECTIONS}`),
        f('responder down, soft-fail: max decision time', 'ms', rows.downSoft.map((o) => o.decisionMaxMs), `≤ ${TIMEOUT_MS} + ε`),
        f('responder refusing connections (RST), workers 1: connections decided', 'connections', rows.refused.map((o) => o.decided), `${CONNECTIONS}`),
        f('responder refusing: max decision time', 'ms', rows.refused.map((o) => o.decisionMaxMs), `≤ ${TIMEOUT_MS}`),
        f('responder refusing: TCP connection attempts to the responders (a failure is cached per CertID for ocsp.failureCacheSeconds)', 'connections', rows.refused.map((o) => o.responderConnections)),
      ];
    } finally {
      await stop(gw?.child);
      await stop(load?.child);
      for (const p of proxies) await p.close();
      for (const c of children.reverse()) await stop(c);
      await removeTempDir(dir);
    }
  },
};
