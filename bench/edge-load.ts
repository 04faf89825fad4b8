/**
 * Load generator of the edge benchmark (bench/edge.ts), run as its own process and
 * driven over IPC: for each `{ type: 'round' }` message it opens `connections` new TLS
 * connections to `port` (client certificate + key given as PEM, no session reuse),
 * `concurrency` at a time, sends one `GET / HTTP/1.1` with `Connection: close`, reads
 * the response to its end and closes; then replies `{ type: 'done', ok, failed, ms }`.
 * The same generator drives both contenders.
 */
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

interface RoundMessage {
  type: 'round';
  port: number;
  servername: string;
  certFile: string;
  keyFile: string;
  connections: number;
  concurrency: number;
}

const files = new Map<string, Buffer>();
const file = (p: string): Buffer => {
  let b = files.get(p);
  if (!b) files.set(p, b = readFileSync(p));
  return b;
};

const REQUEST = 'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n';

function one(m: RoundMessage): Promise<boolean> {
  return new Promise((resolve) => {
    let data = '';
    let settled = false;
    const done = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      resolve(ok);
    };
    const s = tls.connect({
      host: '127.0.0.1', port: m.port, servername: m.servername, cert: file(m.certFile), key: file(m.keyFile),
      rejectUnauthorized: false, ALPNProtocols: ['http/1.1'],
    }, () => s.write(REQUEST));
    s.setEncoding('latin1');
    s.on('data', (c: string) => { data += c; });
    s.on('end', () => { done(data.startsWith('HTTP/1.1 200')); s.destroy(); });
    s.on('close', () => done(data.startsWith('HTTP/1.1 200')));
    s.on('error', () => done(false));
  });
}

async function round(m: RoundMessage): Promise<{ ok: number; failed: number; ms: number }> {
  let next = 0, ok = 0, failed = 0;
  const t = performance.now();
  const worker = async (): Promise<void> => {
    while (next < m.connections) {
      next++;
      if (await one(m)) ok++;
      else failed++;
    }
  };
  await Promise.all(Array.from({ length: m.concurrency }, worker));
  return { ok, failed, ms: performance.now() - t };
}

process.on('message', (m: RoundMessage) => {
  if (m.type !== 'round') return;
  void round(m).then((r) => process.send!({ type: 'done', ...r }));
});
process.send!({ type: 'ready' });
