/**
 * Revocation latency (issue 7, figure 5): from an acknowledged KVS put (the admin API's
 * `PUT /v1/key-value-stores/revoked/keys/SERIAL` returned 200) to the first refused
 * handshake of that certificate, on a real `portcullis serve` with `workers: WORKERS`
 * (single node: the admin API in the primary writes the store; every worker's replica
 * follows the change feed) and the KVS-lookup function
 * (examples/functions/kvs-serial-revocation.js) on a distribution without OCSP (so only
 * the KVS path is timed).
 *
 * One client certificate, re-allowed between revocations by deleting the key: each
 * revocation waits until STABLE consecutive handshakes are allowed, PUTs the key, then
 * opens new connections one after another from the moment the PUT is acknowledged until
 * one is refused; the latency is acknowledgement → the refused connection's end (the
 * client sees the close), so it includes up to one handshake of polling granularity.
 * Probing goes on until STABLE refusals in a row (the cluster hands connections to the
 * workers round-robin, so every worker refused): "refused on every worker" is the end of
 * the first connection of that run; allowed connections after the first refusal (a
 * worker that had not applied the put yet) are counted.
 *
 * Env: REVOCATION_BENCH_COUNT (default 100; 20 under BENCH_QUICK=1).
 */
import tls from 'node:tls';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { freePort } from '../src/demo/index.js';
import { percentile, scaled, type Benchmark, type Figure } from './lib.js';
import { admin, readLogLines, root, startChild, startGateway, stop, fileSize, type ClientFiles, type Gateway, tempDir, removeTempDir } from './proc.js';
import { benchPki, writeGatewayConfig, type BenchPki } from './setup.js';
import type { ChildProcess } from 'node:child_process';

const COUNT = Number(process.env.REVOCATION_BENCH_COUNT ?? scaled(100, 20));
const WORKERS = 2;
const STABLE = 6;
const LIMIT_MS = 10_000;
const TOKEN = 'bench-token-0123456789abcdef';

/** One new mTLS connection with one request: true when answered 200, false when refused. */
function probe(port: number, c: { cert: Buffer; key: Buffer }): Promise<boolean> {
  return new Promise((resolve) => {
    let data = '';
    let settled = false;
    const done = (ok: boolean): void => {
      if (!settled) { settled = true; resolve(ok); }
    };
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', cert: c.cert, key: c.key, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] },
      () => s.write('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'));
    s.setTimeout(10_000, () => s.destroy());
    s.setEncoding('latin1');
    s.on('data', (d: string) => { data += d; });
    s.on('end', () => { done(data.startsWith('HTTP/1.1 200')); s.destroy(); });
    s.on('close', () => done(data.startsWith('HTTP/1.1 200')));
    s.on('error', () => done(false));
  });
}

export const revocationBench: Benchmark = {
  name: 'revocation',
  description: `revocation latency: acknowledged KVS put (admin API) → first refused handshake, ${COUNT} revocations, portcullis serve with ${WORKERS} workers and the KVS-lookup function`,
  async run(): Promise<Figure[]> {
    const dir = await tempDir('portcullis-bench-revocation-');
    let p: BenchPki | undefined;
    let gw: Gateway | undefined;
    let origin: ChildProcess | undefined;
    try {
      await mkdir(join(dir, 'pki'));
      p = await benchPki(join(dir, 'pki'), { rsa: false, responders: false });
      const o = await startChild([join(root, 'bench/edge-origin.ts')]);
      origin = o.child;
      const port = await freePort(), adminPort = await freePort();
      const config = await writeGatewayConfig(dir, {
        workers: WORKERS, adminPort, token: TOKEN, originPort: o.info.port, kvsKeys: 10_000,
        distributions: [{ name: 'rev', port, fn: true, ocsp: false }],
      });
      gw = await startGateway(config, [port, adminPort]);
      const files: ClientFiles = p.clients.ecdsa;
      const client = { cert: await readFile(files.certFile), key: await readFile(files.keyFile) };
      const logFile = join(dir, 'connections.jsonl');
      await new Promise((r) => setTimeout(r, 300));
      const offset = fileSize(logFile);
      if (!(await probe(port, client))) throw new Error('the client certificate is refused before any revocation');
      const first = (await readLogLines(logFile, offset, 1)).lines.find((l) => l.clientLeafCertSerialNumber !== null);
      if (!first) throw new Error('no connection-log line for the first connection');
      const key = String(first.clientLeafCertSerialNumber).replaceAll(':', '');
      const path = `/v1/key-value-stores/revoked/keys/${key}`;
      const d = await admin(adminPort, TOKEN, 'GET', '/v1/key-value-stores/revoked');
      if (d.status !== 200 || !d.etag) throw new Error(`GET key-value store: ${d.status} ${JSON.stringify(d.body)}`);
      let etag = d.etag;

      const until = async (want: boolean, consecutive: number): Promise<void> => {
        const end = Date.now() + LIMIT_MS;
        let run = 0;
        while (run < consecutive) {
          if (Date.now() > end) throw new Error(`the certificate was not ${want ? 'allowed' : 'refused'} ${consecutive} times in a row within ${LIMIT_MS} ms`);
          run = (await probe(port, client)) === want ? run + 1 : 0;
        }
      };
      const latencies: number[] = [];
      const everywhere: number[] = [];
      const ackMs: number[] = [];
      let allowedAfterRefusal = 0, probesToRefusal = 0;
      for (let i = 0; i < COUNT; i++) {
        await until(true, STABLE);
        const t0 = performance.now();
        const put = await admin(adminPort, TOKEN, 'PUT', path, { value: 'revoked' }, etag);
        const acked = performance.now();
        if (put.status !== 200 || !put.etag) throw new Error(`PUT key: ${put.status} ${JSON.stringify(put.body)}`);
        etag = put.etag;
        ackMs.push(acked - t0);
        // Probe until STABLE refusals in a row (round-robin over the workers: every worker refuses).
        let firstRefused: number | undefined, lastRunStart: number | undefined, run = 0, refusedSeen = false;
        while (run < STABLE) {
          const ok = await probe(port, client);
          const end = performance.now() - acked;
          if (!refusedSeen) probesToRefusal++;
          if (ok) {
            run = 0;
            if (refusedSeen) allowedAfterRefusal++;
          } else {
            if (run === 0) lastRunStart = end;
            run++;
            refusedSeen = true;
            firstRefused ??= end;
          }
          if (end > LIMIT_MS) throw new Error(`revocation ${i + 1}: not refused ${STABLE} times in a row ${LIMIT_MS} ms after the acknowledged put`);
        }
        latencies.push(firstRefused!);
        everywhere.push(lastRunStart!);
        const del = await admin(adminPort, TOKEN, 'DELETE', path, undefined, etag);
        if (del.status !== 200 || !del.etag) throw new Error(`DELETE key: ${del.status} ${JSON.stringify(del.body)}`);
        etag = del.etag;
      }
      process.stderr.write(`  ${COUNT} revocations: first refused p50 ${percentile(latencies, 50).toFixed(1)} p99 ${percentile(latencies, 99).toFixed(1)} max ${Math.max(...latencies).toFixed(1)} ms; every worker p50 ${percentile(everywhere, 50).toFixed(1)} p99 ${percentile(everywhere, 99).toFixed(1)} ms; ${probesToRefusal} probes until the first refusal; ${allowedAfterRefusal} allowed after a refusal\n`);
      const B = 'revocation';
      const w = `${WORKERS} workers, ${COUNT} revocations`;
      return [
        { benchmark: B, metric: `acknowledged KVS put (admin API 200) → first refused handshake, ${w}, p50`, unit: 'ms', rounds: [percentile(latencies, 50)] },
        { benchmark: B, metric: `acknowledged KVS put → first refused handshake, ${w}, p99`, unit: 'ms', rounds: [percentile(latencies, 99)], target: '≤ 1000' },
        { benchmark: B, metric: `acknowledged KVS put → first refused handshake, ${w}, max`, unit: 'ms', rounds: [Math.max(...latencies)] },
        { benchmark: B, metric: `acknowledged KVS put → refused on every worker (first of ${STABLE} refusals in a row), ${w}, p50`, unit: 'ms', rounds: [percentile(everywhere, 50)] },
        { benchmark: B, metric: `acknowledged KVS put → refused on every worker, ${w}, p99`, unit: 'ms', rounds: [percentile(everywhere, 99)], target: '≤ 1000' },
        { benchmark: B, metric: `handshakes still allowed after the first refusal (another worker not yet updated), total over ${COUNT} revocations`, unit: 'connections', rounds: [allowedAfterRefusal] },
        { benchmark: B, metric: 'admin API PUT key round trip (request → 200), p50', unit: 'ms', rounds: [percentile(ackMs, 50)] },
      ];
    } finally {
      await stop(gw?.child);
      await stop(origin);
      await p?.pki.close();
      await removeTempDir(dir);
    }
  },
};
