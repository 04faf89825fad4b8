/**
 * Integration: the origin proxy (SPEC section 6) on real sockets. A minimal tls.Server
 * (ALPN h2 + http/1.1, no client certificate) stands in for the gate: after the
 * handshake it waits a little (the gate's decision is asynchronous, so the client's
 * first bytes are already buffered) and calls `proxy.handle()`. Clients are real `curl`
 * (`--http1.1`, `--http2`), node:http2 for concurrent streams and a raw TLS socket for
 * the WebSocket upgrade; the origin is test/helpers/origin.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as h2connect } from 'node:http2';
import { createServer as httpsCreateServer } from 'node:https';
import { createServer as netCreateServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, createServer as tlsCreateServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import pino from 'pino';
import { Registry } from 'prom-client';
import { OriginProxy } from '../../src/edge/proxy.js';
import type { DistributionLimits, DistributionOrigin } from '../../src/edge/types.js';
import { startEchoOrigin, type EchoOrigin } from '../helpers/origin.js';
import { issueCertificate, type TestCert } from '../helpers/pki.js';

interface Gateway {
  url: string;
  port: number;
  proxy: OriginProxy;
  registry: Registry;
  logs: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

const CERT_HEADERS = { 'CloudFront-Viewer-Cert-Present': '1', 'CloudFront-Viewer-Cert-Subject': 'CN=Real Client,O=Portcullis Test' };

let serverCert: TestCert;
let origin: EchoOrigin;
let tmp: string;

async function startGateway(opts: { origin?: Partial<DistributionOrigin>; limits?: Partial<DistributionLimits>; delayMs?: number } = {}): Promise<Gateway> {
  const logs: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => logs.push(JSON.parse(s) as Record<string, unknown>) });
  const registry = new Registry();
  const proxy = new OriginProxy({ logger, metrics: registry, drainTimeoutMs: 2000 });
  let n = 0;
  const server: TlsServer = tlsCreateServer({ key: serverCert.keyPem, cert: serverCert.pem, ALPNProtocols: ['h2', 'http/1.1'] }, (socket: TLSSocket) => {
    const connectionId = `conn-${++n}`;
    setTimeout(() => proxy.handle({
      socket, connectionId, distributionId: 'dist-1', distributionName: 'test',
      clientIp: socket.remoteAddress ?? '', clientPort: socket.remotePort ?? 0,
      origin: { url: origin.url, connectTimeoutMs: 2000, responseTimeoutMs: 5000, verifyTls: true, ...opts.origin },
      limits: { handshakeTimeoutMs: 5000, maxConnections: 100, maxHeaderBytes: 16384, idleTimeoutMs: 10_000, ...opts.limits },
      certificateHeaders: { ...CERT_HEADERS },
    }), opts.delayMs ?? 20);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`, port, proxy, registry, logs,
    close: async () => {
      await proxy.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

interface CurlResult { code: number; status: number; httpVersion: string; body: string; stderr: string }

/** Runs curl (-k, -sS); the last line of stdout is `status httpVersion`. */
function curl(args: string[]): Promise<CurlResult> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '-k', '--max-time', '20', '-w', '\n%{http_code} %{http_version}', ...args], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const i = stdout.lastIndexOf('\n');
      const [status, httpVersion] = stdout.slice(i + 1).split(' ');
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, status: Number(status), httpVersion: httpVersion ?? '', body: stdout.slice(0, i), stderr });
    });
  });
}

const lastRequest = () => origin.requests[origin.requests.length - 1]!;

before(async () => {
  serverCert = await issueCertificate({ subject: 'CN=localhost', san: { dns: ['localhost'], ip: ['127.0.0.1'] } });
  origin = await startEchoOrigin();
  tmp = mkdtempSync(join(tmpdir(), 'portcullis-proxy-'));
});
after(async () => {
  await origin.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('edge proxy: headers to the origin', () => {
  let gw: Gateway;
  before(async () => { gw = await startGateway(); });
  after(() => gw.close());

  for (const version of ['--http1.1', '--http2']) {
    test(`${version}: certificate headers added, spoofed copies and hop-by-hop headers removed, X-Forwarded-* set`, async () => {
      const r = await curl([version,
        '-H', 'Host: api.example.com',
        '-H', 'CloudFront-Viewer-Cert-Subject: CN=Spoofed', '-H', 'cloudfront-viewer-cert-present: 1',
        '-H', 'CloudFront-Viewer-Cert-Sha256: 00', '-H', 'CLOUDFRONT_VIEWER_CERT_PEM: spoof',
        '-H', 'client-cert: :AAAA:', '-H', 'Client-Cert-Chain: :AAAA:',
        '-H', 'Connection: keep-alive, X-Hop-Named', '-H', 'X-Hop-Named: 1', '-H', 'Keep-Alive: timeout=5',
        '-H', 'Proxy-Authorization: Basic eDp5', '-H', 'TE: trailers',
        '-H', 'X-Forwarded-For: 10.1.1.1', '-H', 'X-Forwarded-Proto: http', '-H', 'Forwarded: for=10.1.1.1',
        '-H', 'X-Custom: kept',
        `${gw.url}/echo?x=1`]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.status, 200);
      assert.equal(r.httpVersion, version === '--http2' ? '2' : '1.1');
      const seen = lastRequest();
      assert.equal(seen.url, '/echo?x=1');
      const h = seen.headers;
      assert.equal(h['cloudfront-viewer-cert-subject'], CERT_HEADERS['CloudFront-Viewer-Cert-Subject']);
      assert.equal(h['cloudfront-viewer-cert-present'], '1');
      // curl drops Connection (and so names nothing) on HTTP/2, where it is malformed.
      const absentHeaders = ['cloudfront-viewer-cert-sha256', 'client-cert', 'client-cert-chain', 'proxy-authorization', 'keep-alive'];
      if (version === '--http1.1') absentHeaders.push('x-hop-named');
      for (const absent of absentHeaders) {
        assert.equal(h[absent], undefined, absent);
      }
      assert.ok(!seen.rawHeaders.some((n) => n.toLowerCase().includes('cloudfront_viewer')), 'underscore spelling removed');
      assert.equal(seen.rawHeaders.filter((n) => /^cloudfront-viewer-cert-subject$/i.test(n)).length, 1);
      assert.equal(h.te, 'trailers');
      assert.equal(h.host, 'api.example.com');
      assert.equal(h['x-forwarded-host'], 'api.example.com');
      assert.equal(h['x-forwarded-for'], '10.1.1.1, 127.0.0.1');
      assert.equal(h['x-forwarded-proto'], 'https');
      assert.equal(h.forwarded, 'for=10.1.1.1, for=127.0.0.1;host=api.example.com;proto=https');
      assert.equal(h.via, version === '--http2' ? '2 portcullis' : '1.1 portcullis');
      assert.equal(h['x-custom'], 'kept');
      const echoed = JSON.parse(r.body) as { url: string };
      assert.equal(echoed.url, '/echo?x=1');
    });
  }

  test('--http2: Host comes from :authority', async () => {
    const r = await curl(['--http2', `${gw.url}/authority`]);
    assert.equal(r.status, 200);
    assert.equal(lastRequest().headers.host, `127.0.0.1:${gw.port}`);
  });

  test('status and headers come back; hop-by-hop response headers do not reach an h2 client', async () => {
    const r = await curl(['--http2', '-i', `${gw.url}/status/418`]);
    assert.equal(r.status, 418);
    assert.match(r.body, /status 418/);
    const r2 = await curl(['--http2', '-i', `${gw.url}/echo`]);
    assert.match(r2.body, /^x-origin: echo\r?$/m);
    assert.doesNotMatch(r2.body, /^keep-alive:/im);
  });
});

describe('edge proxy: bodies', () => {
  let gw: Gateway;
  let file: string;
  let sha: string;
  before(async () => {
    gw = await startGateway();
    const data = randomBytes(8 * 1024 * 1024);
    sha = createHash('sha256').update(data).digest('hex');
    file = join(tmp, 'large.bin');
    writeFileSync(file, data);
  });
  after(() => gw.close());

  for (const version of ['--http1.1', '--http2']) {
    test(`${version}: a large chunked POST body arrives whole`, async () => {
      const r = await curl([version, '-H', 'Transfer-Encoding: chunked', '-H', 'Content-Type: application/octet-stream', '--data-binary', `@${file}`, `${gw.url}/upload`]);
      assert.equal(r.status, 200, r.stderr);
      const seen = lastRequest();
      assert.equal(seen.method, 'POST');
      assert.equal(seen.bodyBytes, 8 * 1024 * 1024);
      assert.equal(seen.bodySha256, sha);
      assert.equal(seen.headers['transfer-encoding'], 'chunked', 'streamed to the origin, not buffered into a content-length');
    });

    test(`${version}: a streamed and a large response arrive whole`, async () => {
      const slow = await curl([version, `${gw.url}/slow?chunks=5&delayMs=20&size=100`]);
      assert.equal(slow.status, 200);
      assert.equal(slow.body, 'x'.repeat(500));
      const big = await curl([version, '-o', join(tmp, `big-${version}.bin`), `${gw.url}/big?bytes=${4 * 1024 * 1024}`]);
      assert.equal(big.status, 200);
      assert.equal(big.code, 0, big.stderr);
    });

    test(`${version}: a failure in the middle of the response body aborts the client's response`, async () => {
      const r = await curl([version, `${gw.url}/slow?chunks=10&delayMs=20&size=100&dieAfter=2`]);
      assert.notEqual(r.code, 0, 'curl must see an incomplete response');
      assert.ok(gw.logs.some((l) => l.kind === 'body' && l.level === 40 && typeof l.connectionId === 'string'));
    });
  }
});

describe('edge proxy: origin failures', () => {
  test('origin down → 502, logged at warn with the connection id, counted', async () => {
    const closed = netCreateServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const gw = await startGateway({ origin: { url: `http://127.0.0.1:${deadPort}` } });
    try {
      for (const version of ['--http1.1', '--http2']) {
        const r = await curl([version, `${gw.url}/x`]);
        assert.equal(r.status, 502, version);
        assert.match(r.body, /Bad Gateway/);
      }
      const warn = gw.logs.find((l) => l.level === 40 && l.kind === 'connect');
      assert.ok(warn, JSON.stringify(gw.logs));
      assert.match(String(warn.connectionId), /^conn-/);
      const metrics = await gw.registry.metrics();
      assert.match(metrics, /portcullis_origin_errors_total\{distribution="dist-1",kind="connect"\} 2/);
      assert.match(metrics, /portcullis_origin_requests_total\{distribution="dist-1",status_class="5xx"\} 2/);
    } finally {
      await gw.close();
    }
  });

  test('origin does not answer in time → 504', async () => {
    const gw = await startGateway({ origin: { responseTimeoutMs: 300 } });
    try {
      for (const version of ['--http1.1', '--http2']) {
        const r = await curl([version, `${gw.url}/hang`]);
        assert.equal(r.status, 504, version);
        assert.match(r.body, /Gateway Timeout/);
      }
      assert.ok(gw.logs.some((l) => l.level === 40 && l.kind === 'response_timeout'));
    } finally {
      await gw.close();
    }
  });

  test('origin base path is joined', async () => {
    const gw = await startGateway({ origin: { url: `${origin.url}/base/` } });
    try {
      const r = await curl(['--http1.1', `${gw.url}/a/b?c=d`]);
      assert.equal(r.status, 200);
      assert.equal(lastRequest().url, '/base/a/b?c=d');
    } finally {
      await gw.close();
    }
  });
});

describe('edge proxy: https origin', () => {
  let httpsPort: number;
  let caFile: string;
  let closeOrigin: () => Promise<void>;
  before(async () => {
    const ca = await issueCertificate({ subject: 'CN=Origin Test CA', ca: true });
    const leaf = await issueCertificate({ subject: 'CN=origin.test', issuer: ca, san: { dns: ['origin.test'], ip: ['127.0.0.1'] } });
    caFile = join(tmp, 'origin-ca.pem');
    writeFileSync(caFile, ca.pem);
    const server = httpsCreateServer({ key: leaf.keyPem, cert: leaf.pem }, (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ url: req.url, subject: req.headers['cloudfront-viewer-cert-subject'] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    httpsPort = (server.address() as AddressInfo).port;
    closeOrigin = () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); });
  });
  after(() => closeOrigin());

  const cases: Array<[string, Partial<DistributionOrigin>, number]> = [
    ['untrusted origin certificate → 502', {}, 502],
    ['caFile trusts the origin → 200', { caFile: '' }, 200],
    ['verifyTls false → 200', { verifyTls: false }, 200],
  ];
  for (const [name, over, status] of cases) {
    test(name, async () => {
      const gw = await startGateway({ origin: { url: `https://127.0.0.1:${httpsPort}/api`, ...over, ...(over.caFile === '' ? { caFile } : {}) } });
      try {
        const r = await curl(['--http2', `${gw.url}/x`]);
        assert.equal(r.status, status, r.body);
        if (status === 200) assert.deepEqual(JSON.parse(r.body), { url: '/api/x', subject: CERT_HEADERS['CloudFront-Viewer-Cert-Subject'] });
        else assert.ok(gw.logs.some((l) => l.kind === 'tls'), JSON.stringify(gw.logs));
      } finally {
        await gw.close();
      }
    });
  }
});

describe('edge proxy: idle timeout', () => {
  for (const alpn of ['http/1.1', 'h2']) {
    test(`${alpn}: an idle connection is closed after idleTimeoutMs`, async () => {
      const gw = await startGateway({ limits: { idleTimeoutMs: 200 } });
      try {
        const socket = tlsConnect({ host: '127.0.0.1', port: gw.port, rejectUnauthorized: false, ALPNProtocols: [alpn] });
        socket.on('error', () => undefined);
        socket.resume();
        // Bounded wait for the close; the test fails on the runner's timeout otherwise.
        await new Promise<void>((resolve) => socket.on('close', () => resolve()));
      } finally {
        await gw.close();
      }
    });
  }
});

describe('edge proxy: limits', () => {
  let gw: Gateway;
  before(async () => { gw = await startGateway({ limits: { maxHeaderBytes: 4096 } }); });
  after(() => gw.close());

  test('HTTP/1.1 request head over maxHeaderBytes → 431', async () => {
    const before = origin.requests.length;
    const r = await curl(['--http1.1', '-H', `X-Big: ${'a'.repeat(8000)}`, `${gw.url}/big-header`]);
    assert.equal(r.status, 431);
    assert.equal(origin.requests.length, before, 'nothing reached the origin');
  });

  test('HTTP/2 header list over maxHeaderBytes → 431 (or a stream reset once nghttp2 applies the setting), nothing reaches the origin', async () => {
    const before = origin.requests.length;
    const r = await curl(['--http2', '-H', `X-Big: ${'a'.repeat(8000)}`, `${gw.url}/big-header`]);
    assert.ok(r.status === 431 || (r.code !== 0 && r.status === 0), `curl exit ${r.code}, status ${r.status}`);
    assert.equal(origin.requests.length, before);
  });

  test('requests under the limit pass', async () => {
    const r = await curl(['--http1.1', '-H', `X-Small: ${'a'.repeat(1000)}`, `${gw.url}/small-header`]);
    assert.equal(r.status, 200);
  });
});

describe('edge proxy: HTTP/2 streams and WebSocket', () => {
  let gw: Gateway;
  before(async () => { gw = await startGateway(); });
  after(() => gw.close());

  test('several concurrent streams on one HTTP/2 connection', async () => {
    const session = h2connect(gw.url, { rejectUnauthorized: false });
    try {
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => new Promise<{ status: number; url: string }>((resolve, reject) => {
        const path = i % 2 ? `/slow?chunks=3&delayMs=10&size=5&i=${i}` : `/echo?i=${i}`;
        const req = session.request({ ':path': path, 'cloudfront-viewer-cert-subject': 'CN=spoof' });
        let status = 0;
        let body = '';
        req.on('response', (h) => { status = Number(h[':status']); });
        req.setEncoding('utf8');
        req.on('data', (d: string) => { body += d; });
        req.on('end', () => resolve({ status, url: i % 2 ? path : (JSON.parse(body) as { url: string }).url }));
        req.on('error', reject);
        req.end();
      })));
      results.forEach((r, i) => {
        assert.equal(r.status, 200);
        assert.match(r.url, new RegExp(`i=${i}$`));
      });
      const seen = origin.requests.filter((r) => /[?&]i=\d+$/.test(r.url));
      assert.ok(seen.length >= 20);
      assert.ok(seen.every((r) => r.headers['cloudfront-viewer-cert-subject'] === CERT_HEADERS['CloudFront-Viewer-Cert-Subject']));
    } finally {
      session.close();
    }
  });

  /** Opens a TLS connection (ALPN http/1.1), sends `request`, resolves with the socket and the response head once it is complete. */
  function rawUpgrade(request: string): Promise<{ socket: TLSSocket; head: string; rest: Buffer }> {
    return new Promise((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: gw.port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => socket.write(request));
      let buf = Buffer.alloc(0);
      const onData = (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onData);
        resolve({ socket, head: buf.subarray(0, end).toString('latin1'), rest: buf.subarray(end + 4) });
      };
      socket.on('data', onData);
      socket.on('error', reject);
    });
  }

  test('WebSocket upgrade: 101 from the origin, then bytes echo both ways; headers cleaned on the upgrade request', async () => {
    const { socket, head, rest } = await rawUpgrade('GET /chat?room=1 HTTP/1.1\r\nHost: ws.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n'
      + 'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nClient-Cert: :AAAA:\r\nCloudFront-Viewer-Cert-Subject: CN=spoof\r\n\r\n');
    try {
      assert.match(head, /^HTTP\/1\.1 101 /);
      assert.match(head, /Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/);
      const echoed = new Promise<string>((resolve) => {
        let got = rest.toString();
        const onData = (d: Buffer) => {
          got += d.toString();
          if (got.length >= 11) {
            socket.off('data', onData);
            resolve(got);
          }
        };
        socket.on('data', onData);
      });
      socket.write('hello world');
      assert.equal(await echoed, 'hello world');
      const seen = origin.requests.filter((r) => r.upgrade).pop()!;
      assert.equal(seen.url, '/chat?room=1');
      assert.equal(seen.headers.upgrade, 'websocket');
      assert.equal(seen.headers['client-cert'], undefined);
      assert.equal(seen.headers['cloudfront-viewer-cert-subject'], CERT_HEADERS['CloudFront-Viewer-Cert-Subject']);
      assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
      assert.equal(seen.headers.host, 'ws.example.com');
    } finally {
      socket.destroy();
    }
  });

  test('WebSocket upgrade the origin refuses: its answer is passed back and the connection closes', async () => {
    const { socket, head } = await rawUpgrade('GET /ws-deny HTTP/1.1\r\nHost: ws.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n'
      + 'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    try {
      assert.match(head, /^HTTP\/1\.1 403 /);
      assert.match(head, /Connection: close/);
      await new Promise<void>((resolve) => { socket.on('close', () => resolve()); socket.resume(); });
    } finally {
      socket.destroy();
    }
  });
});

describe('edge proxy: close()', () => {
  test('an in-flight request finishes, then connections close; new connections are refused', async () => {
    const gw = await startGateway();
    const inflight = curl(['--http1.1', `${gw.url}/slow?chunks=5&delayMs=50&size=10`]);
    // Wait (bounded) until the origin has the request, then close the proxy.
    const end = Date.now() + 5000;
    while (!origin.requests.some((r) => r.url.startsWith('/slow?chunks=5&delayMs=50')) && Date.now() < end) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const closing = gw.close();
    const r = await inflight;
    assert.equal(r.status, 200);
    assert.equal(r.body, 'x'.repeat(50));
    await closing;
  });
});
