/**
 * The console's live routes against a real `portcullis serve` in cluster mode
 * (workers: 2, admin listener in the primary): `GET /v1/connection-log/stream` receives
 * the lines the workers write (forwarded over cluster IPC only while subscribed),
 * filtered by serial; `GET /v1/stats` counts over all workers. The single-process mode
 * is covered by console.test.ts (browser) and src/admin/live.test.ts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/demo/index.js';
import { OID } from '../../src/pki/index.js';
import { startEchoOrigin, type EchoOrigin } from '../helpers/origin.js';
import { buildChain, issueCertificate, type TestChain } from '../helpers/pki.js';
import { curlThrough, startGateway, type RunningGateway } from '../helpers/gateway.js';

const HOST = 'cluster.console.test';
let dir: string;
let gw: RunningGateway;
let origin: EchoOrigin;
let chain: TestChain;
let port: number;
const f: Record<string, string> = {};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'portcullis-console-stream-'));
  chain = await buildChain({ name: 'ClusterStream' });
  const server = await issueCertificate({ subject: `CN=${HOST}`, issuer: chain.root, eku: [OID.kpServerAuth], san: { dns: [HOST] } });
  for (const [name, text] of Object.entries({ 'root.pem': chain.root.pem, 'server.pem': server.pem, 'server.key': server.keyPem, 'chain.pem': chain.presentedPem, 'leaf.key': chain.leaf.keyPem })) {
    f[name] = join(dir, name);
    writeFileSync(f[name]!, text);
  }
  origin = await startEchoOrigin();
  port = await freePort();
  gw = await startGateway({
    dir,
    config: {
      workers: 2,
      resources: {
        trustStores: [{ name: 'ca', caBundleFile: f['root.pem'] }],
        distributions: [{
          name: 'clustered', listen: `127.0.0.1:${port}`, aliases: [HOST], certificates: [{ certFile: f['server.pem'], keyFile: f['server.key'] }],
          origin: { url: origin.url }, viewerMtls: { mode: 'required', trustStore: 'ca' },
        }],
      },
    },
  });
});

after(async () => {
  await gw?.stop();
  await origin?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Opens the stream and collects `connection` events (parsed) until `stop()`. */
async function subscribe(query: string): Promise<{ lines: Record<string, unknown>[]; ready: Promise<void>; stop: () => void }> {
  const ac = new AbortController();
  const res = await fetch(`${gw.adminUrl}/v1/connection-log/stream${query}`, { headers: { authorization: `Bearer ${gw.token}` }, signal: ac.signal });
  assert.equal(res.status, 200);
  const lines: Record<string, unknown>[] = [];
  let markReady: () => void = () => {};
  const ready = new Promise<void>((r) => { markReady = r; });
  void (async () => {
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let buf = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += dec.decode(value, { stream: true });
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (/^event: ready$/m.test(block)) markReady();
          const data = /^event: connection\ndata: (.*)$/m.exec(block)?.[1];
          if (data) lines.push(JSON.parse(data) as Record<string, unknown>);
        }
      }
    } catch {
      // aborted
    }
  })();
  return { lines, ready, stop: () => ac.abort() };
}

async function until(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('cluster mode: the stream carries the workers\' connection-log lines, filtered; stats count over workers', async () => {
  const serial = chain.leaf.cert.serialNumberBytes.toString('hex');
  const all = await subscribe('');
  const bySerial = await subscribe(`?serial=${serial.slice(2, 10)}`);
  const other = await subscribe('?serial=ffffffffffffffffffff');
  await Promise.all([all.ready, bySerial.ready, other.ready]);
  // The workers learn about the subscription over IPC: connect until a line arrives.
  const base = { host: HOST, port, cacert: f['root.pem']!, cert: f['chain.pem']!, key: f['leaf.key']! };
  for (let i = 0; i < 100 && all.lines.length === 0; i++) {
    const r = await curlThrough(base);
    assert.equal(r.status, 200, r.stderr);
    await new Promise((res) => setTimeout(res, 100));
  }
  await until('a streamed line', () => all.lines.length > 0 && bySerial.lines.length > 0);
  const line = all.lines[0]!;
  assert.equal(line.distributionName, 'clustered');
  assert.equal(line.connectionStatus, 'Success');
  assert.equal(String(line.clientLeafCertSerialNumber).replaceAll(':', ''), serial);
  assert.equal(other.lines.length, 0);
  for (const s of [all, bySerial, other]) s.stop();

  const stats = JSON.parse((await gw.admin('/v1/stats')).body) as { totals: { allowed: number }; connections: { allowed: number } };
  assert.ok(stats.totals.allowed >= 1, JSON.stringify(stats));
  assert.ok(stats.connections.allowed >= 1);
});
