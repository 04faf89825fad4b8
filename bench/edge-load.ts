/**
 * Load generator of the end-to-end benchmarks (edge, ocsp-cold, throughput), run as its
 * own process and driven over IPC (bench/proc.ts startLoad). The same generator drives
 * every contender. For each `{ type: 'round' }` message:
 *
 * - `mode: 'close'`: opens `connections` new TLS connections to `port`, `concurrency` at
 *   a time (no session reuse), client certificates round-robin over `clients` (chain +
 *   key as PEM files), sends one `GET / HTTP/1.1` with `Connection: close`, reads the
 *   response to its end and closes. A connection counts ok when the response starts
 *   `HTTP/1.1 200`; failed otherwise (refused handshake, error, other status, or no end
 *   within `timeoutMs`, default 30 s). With `latencies`, also returns each connection's
 *   time from `connect()` to settled, ms.
 * - `mode: 'keepalive'`: `concurrency` keep-alive connections (node:https Agent,
 *   `maxSockets = concurrency`), each sending `GET /` back to back for `durationMs`;
 *   returns requests answered 200 (`ok`), failed ones, and how many new connections
 *   were opened (`connections`).
 *
 * Replies `{ type: 'done', ok, failed, ms, latencies?, newConnections? }`.
 */
import tls from 'node:tls';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

interface ClientFiles { certFile: string; keyFile: string }
interface RoundMessage {
  type: 'round';
  mode: 'close' | 'keepalive';
  port: number;
  servername: string;
  clients: ClientFiles[];
  connections: number;
  concurrency: number;
  latencies?: boolean;
  durationMs?: number;
  timeoutMs?: number;
}

const files = new Map<string, Buffer>();
const file = (p: string): Buffer => {
  let b = files.get(p);
  if (!b) files.set(p, b = readFileSync(p));
  return b;
};

const REQUEST = 'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n';

function one(m: RoundMessage, client: ClientFiles): Promise<boolean> {
  return new Promise((resolve) => {
    let data = '';
    let settled = false;
    const done = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(ok);
    };
    const s = tls.connect({
      host: '127.0.0.1', port: m.port, servername: m.servername, cert: file(client.certFile), key: file(client.keyFile),
      rejectUnauthorized: false, ALPNProtocols: ['http/1.1'],
    }, () => s.write(REQUEST));
    const timer = setTimeout(() => { done(false); s.destroy(); }, m.timeoutMs ?? 30_000);
    s.setEncoding('latin1');
    s.on('data', (c: string) => { data += c; });
    s.on('end', () => { done(data.startsWith('HTTP/1.1 200')); s.destroy(); });
    s.on('close', () => done(data.startsWith('HTTP/1.1 200')));
    s.on('error', () => done(false));
  });
}

async function closeRound(m: RoundMessage): Promise<{ ok: number; failed: number; ms: number; latencies?: number[] }> {
  let next = 0, ok = 0, failed = 0;
  const latencies: number[] = [];
  const t = performance.now();
  const worker = async (): Promise<void> => {
    while (next < m.connections) {
      const i = next++;
      const s = performance.now();
      const r = await one(m, m.clients[i % m.clients.length]!);
      if (m.latencies) latencies.push(performance.now() - s);
      if (r) ok++;
      else failed++;
    }
  };
  await Promise.all(Array.from({ length: m.concurrency }, worker));
  return { ok, failed, ms: performance.now() - t, ...(m.latencies ? { latencies } : {}) };
}

async function keepAliveRound(m: RoundMessage): Promise<{ ok: number; failed: number; ms: number; newConnections: number }> {
  const client = m.clients[0]!;
  const agent = new https.Agent({
    keepAlive: true, maxSockets: m.concurrency, maxFreeSockets: m.concurrency, cert: file(client.certFile), key: file(client.keyFile),
    rejectUnauthorized: false, servername: m.servername,
  });
  let ok = 0, failed = 0, connections = 0;
  const get = (): Promise<boolean> => new Promise((resolve) => {
    const req = https.request({ host: '127.0.0.1', port: m.port, path: '/', agent, headers: { host: 'localhost' } }, (res) => {
      if (!req.reusedSocket) connections++;
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
      res.on('error', () => resolve(false));
    });
    req.on('error', () => resolve(false));
    req.end();
  });
  const end = performance.now() + (m.durationMs ?? 5000);
  const t = performance.now();
  const user = async (): Promise<void> => {
    while (performance.now() < end) {
      if (await get()) ok++;
      else failed++;
    }
  };
  await Promise.all(Array.from({ length: m.concurrency }, user));
  const ms = performance.now() - t;
  agent.destroy();
  return { ok, failed, ms, newConnections: connections };
}

process.on('message', (m: RoundMessage) => {
  if (m.type !== 'round') return;
  const r = m.mode === 'keepalive' ? keepAliveRound(m) : closeRound(m);
  void r.then((res) => process.send!({ type: 'done', ...res }));
});
process.send!({ type: 'ready' });
