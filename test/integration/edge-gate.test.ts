/**
 * Integration: the edge gate on real sockets (127.0.0.1, port 0) — node:tls clients and
 * `openssl s_client` against a Gateway over a real SQLite store, the real
 * RevocationChecker against the in-process OCSP test responder, connection functions
 * compiled in-thread (compileFunction) behind the FunctionInvoker interface, and a
 * trivial ConnectionHandler that answers a fixed HTTP response carrying the
 * certificate headers it was given (no proxy involved).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { performance } from 'node:perf_hooks';
import tls from 'node:tls';
import { pino, type Logger } from 'pino';
import { Registry } from 'prom-client';
import { Gateway, type AdmittedConnection, type ConnectionHandler, type FunctionInvoker, type FunctionInvocation } from '../../src/edge/index.js';
import { compileFunction, type FunctionInstance } from '../../src/functions/index.js';
import { OID, VIEWER_CERT_HEADER_NAMES } from '../../src/pki/index.js';
import { RevocationChecker } from '../../src/revocation/index.js';
import { openSqliteStore, type Store } from '../../src/store/index.js';
import type { DistributionDocument, TrustStoreDocument, ViewerMtlsMode } from '../../src/resources/types.js';
import { buildChain, hasOpenssl, issueCertificate, type TestCert, type TestChain } from '../helpers/pki.js';
import { respond, startTestResponder, type TestResponder } from '../helpers/ocsp-responder.js';

// ---------------------------------------------------------------------------------
// Test doubles

/** Connection functions compiled in this thread behind the FunctionHost contract. */
class InThreadFunctions implements FunctionInvoker {
  readonly fns = new Map<string, FunctionInstance>();
  readonly calls: string[] = [];
  async invoke(name: string, json: string, options?: { now?: number }): Promise<FunctionInvocation> {
    this.calls.push(name);
    const fn = this.fns.get(name);
    if (!fn) {
      return { result: { decision: 'deny', implicit: true, logs: [], computeUtilization: 0, error: `function ${name} not found`, failureCode: 'ConnectionFunctionError' }, durationUs: 0 };
    }
    const t = performance.now();
    const result = fn.invoke(json, options?.now !== undefined ? { now: options.now } : {});
    return { result, functionId: `id-${name}`, etag: 'ETVLIVE1', durationUs: (performance.now() - t) * 1000 };
  }
  dispose(): void {
    for (const f of this.fns.values()) f.dispose();
  }
}

/** Answers every admitted connection with 200 and the certificate headers as JSON. */
class FixedResponseHandler implements ConnectionHandler {
  readonly admitted: AdmittedConnection[] = [];
  handle(conn: AdmittedConnection): void {
    this.admitted.push(conn);
    const body = JSON.stringify(conn.certificateHeaders);
    conn.socket.on('error', () => {});
    conn.socket.end(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  }
  async close(): Promise<void> {}
}

/** Collects connection-log lines. */
class LogSink {
  readonly stream = new PassThrough();
  readonly lines: Record<string, unknown>[] = [];
  #buf = '';
  constructor() {
    this.stream.on('data', (chunk: Buffer) => {
      this.#buf += chunk.toString('utf8');
      let i: number;
      while ((i = this.#buf.indexOf('\n')) >= 0) {
        this.lines.push(JSON.parse(this.#buf.slice(0, i)) as Record<string, unknown>);
        this.#buf = this.#buf.slice(i + 1);
      }
    });
  }
  /** Waits (bounded; not a timing assertion) for the first line after `from` matching `pred`. */
  async waitFor(pred: (l: Record<string, unknown>) => boolean, from = 0, limitMs = 5000): Promise<Record<string, unknown>> {
    const end = Date.now() + limitMs;
    for (;;) {
      const hit = this.lines.slice(from).find(pred);
      if (hit) return hit;
      if (Date.now() > end) assert.fail(`no connection-log line matched; lines: ${JSON.stringify(this.lines.slice(from), null, 1)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

// ---------------------------------------------------------------------------------
// Clients

interface ClientResult {
  /** The server sent our fixed response (connection admitted). */
  admitted: boolean;
  status: string;
  body: unknown;
  reused: boolean;
  session: Buffer | undefined;
  serverCert: { subject: string; keyType: string | undefined } | undefined;
  error: string | undefined;
}

function connect(port: number, o: { servername?: string; chain?: TestCert[]; key?: TestCert; session?: Buffer; sigalgs?: string; maxVersion?: tls.SecureVersion }): Promise<ClientResult> {
  return new Promise((resolve) => {
    let data = '';
    let session: Buffer | undefined;
    let reused = false;
    let serverCert: ClientResult['serverCert'];
    let error: string | undefined;
    const s = tls.connect({
      host: '127.0.0.1', port, rejectUnauthorized: false,
      ...(o.servername ? { servername: o.servername } : {}),
      ...(o.chain ? { cert: o.chain.map((c) => c.pem).join(''), key: (o.key ?? o.chain[0]!).keyPem } : {}),
      ...(o.session ? { session: o.session } : {}),
      ...(o.sigalgs ? { sigalgs: o.sigalgs } : {}),
      ...(o.maxVersion ? { maxVersion: o.maxVersion } : {}),
    });
    s.on('session', (b) => { session = b; });
    s.on('secureConnect', () => {
      reused = s.isSessionReused();
      const x = s.getPeerX509Certificate();
      serverCert = x ? { subject: x.subject, keyType: x.publicKey.asymmetricKeyType } : undefined;
      s.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
    });
    s.on('data', (d: Buffer) => { data += d.toString('utf8'); });
    s.on('error', (e) => { error = e.message; });
    s.on('close', () => {
      const [head = '', body = ''] = data.split('\r\n\r\n');
      resolve({
        admitted: head.startsWith('HTTP/1.1 200'), status: head.split('\r\n')[0] ?? '',
        body: body ? JSON.parse(body) : undefined, reused, session, serverCert, error,
      });
    });
  });
}

function sClient(args: string[]): Promise<string> {
  return new Promise((resolve) => {
    const child = execFile('openssl', ['s_client', ...args], { timeout: 20_000 }, (_err, stdout, stderr) => resolve(`${stdout}\n${stderr}`));
    child.stdin?.end('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
  });
}

// ---------------------------------------------------------------------------------
// Fixtures

const DAY = 86_400_000;
let dir: string;
let responder: TestResponder;
const revokedSerials = new Set<string>();
let mainChain: TestChain;
let otherChain: TestChain;
let ocspChain: TestChain;
let expiredLeaf: TestCert;
let revokedLeaf: TestCert;
let noAiaLeaf: TestCert;
let newCaChain: TestChain;

interface Env {
  store: Store;
  gateway: Gateway;
  log: LogSink;
  functions: InThreadFunctions;
  handler: FixedResponseHandler;
  revocation: RevocationChecker;
  registry: Registry;
  port: number;
}

let envA: Env;
let envB: Env;
let serverEcFiles: { certFile: string; keyFile: string };
let serverRsaFiles: { certFile: string; keyFile: string };
let serverBFiles: { certFile: string; keyFile: string };
let seq = 0;

function trustStoreDoc(chains: TestChain[], ocsp: boolean): TrustStoreDocument {
  return { caBundlePem: chains.map((c) => c.root.pem).join(''), useClientCertificateOcspEndpoint: ocsp, status: 'active', certificateCount: chains.length };
}

function distDoc(o: {
  aliases: string[]; mode?: ViewerMtlsMode; trustStore?: string; fn?: string; ignoreExpiry?: boolean; advertise?: boolean;
  resumption?: boolean; certificates?: { certFile: string; keyFile: string }[];
}): DistributionDocument {
  return {
    listen: '127.0.0.1:8443',
    aliases: o.aliases,
    certificates: o.certificates ?? [serverEcFiles, serverRsaFiles],
    origin: { url: 'http://127.0.0.1:9', connectTimeoutMs: 5000, responseTimeoutMs: 30000, verifyTls: true },
    viewerMtls: {
      mode: o.mode ?? 'required', ...(o.trustStore ? { trustStore: o.trustStore } : {}),
      ignoreCertificateExpiry: o.ignoreExpiry ?? false, advertiseTrustStoreCaNames: o.advertise ?? true, sessionResumption: o.resumption ?? false,
    },
    connectionFunctionAssociation: o.fn ? { name: o.fn } : null,
    forwardCertificateHeaders: [...VIEWER_CERT_HEADER_NAMES],
    limits: { handshakeTimeoutMs: 10_000, maxConnections: 10_000, maxHeaderBytes: 16_384, idleTimeoutMs: 60_000 },
  };
}

async function startEnv(
  name: string, trustStores: Record<string, TrustStoreDocument>, dists: Record<string, DistributionDocument>,
  opts: { listenOverrides?: Record<string, string>; logger?: Logger; functions?: InThreadFunctions } = {},
): Promise<Env> {
  const store = await openSqliteStore({ dataDir: join(dir, name) });
  const base = Date.now();
  for (const [n, d] of Object.entries(trustStores)) await store.trustStores.create({ id: `ts-${n}`, name: n, etag: `E${++seq}`, document: d, now: base });
  let i = 0;
  for (const [n, d] of Object.entries(dists)) await store.distributions.create({ id: `D${n.toUpperCase()}`, name: n, etag: `E${++seq}`, document: d, now: base + i++ });
  const functions = opts.functions ?? new InThreadFunctions();
  functions.fns.set('allow-all', await compileFunction(
    `function connectionHandler(connection) {
       const c = connection.clientCertificate;
       connection.logCustomData('leaf=' + (c ? c.certificates.leaf.serialNumber : 'none') + ' chain=' + (c && c.revocationStatus ? c.revocationStatus.chainValidity : '-'));
       connection.allow();
     }`, { name: 'allow-all', cpuLimitMs: 1000 }));
  const log = new LogSink();
  const handler = new FixedResponseHandler();
  const revocation = new RevocationChecker();
  const registry = new Registry();
  const listenOverrides = opts.listenOverrides ?? Object.fromEntries(Object.keys(dists).map((n) => [n, '127.0.0.1:0']));
  let gateway: Gateway;
  try {
    gateway = await Gateway.start({
      store, functions, revocation, handler, connectionLog: log.stream, logger: opts.logger ?? pino({ level: 'silent' }), metrics: registry, listenOverrides,
    });
  } catch (err) {
    await revocation.close();
    functions.dispose();
    await store.close();
    throw err;
  }
  const port = gateway.listeners()[0]!.port;
  return { store, gateway, log, functions, handler, revocation, registry, port };
}

async function stopEnv(env: Env | undefined): Promise<void> {
  if (!env) return;
  await env.gateway.close();
  await env.revocation.close();
  env.functions.dispose();
  await env.store.close();
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'portcullis-edge-gate-'));
  responder = await startTestResponder(() => ({ kind: 'destroy' }));
  const url = responder.url;
  mainChain = await buildChain({ name: 'Main' });
  otherChain = await buildChain({ name: 'Other' });
  newCaChain = await buildChain({ name: 'Rotated' });
  ocspChain = await buildChain({ name: 'Ocsp', ocspUrl: () => url });
  const ocspIssuer = ocspChain.intermediates[0]!;
  responder.setHandler(respond([ocspChain.root, ocspIssuer], (req) => (req.certId && revokedSerials.has(req.certId.serialNumber.toString('hex'))
    ? { certStatus: 'revoked', revocationTime: new Date(Date.now() - DAY), revocationReason: 1 }
    : {})));
  const mainIssuer = mainChain.intermediates[0]!;
  expiredLeaf = await issueCertificate({
    subject: 'C=US,O=Portcullis Test,CN=Expired Client', issuer: mainIssuer, eku: [OID.kpClientAuth],
    notBefore: new Date(Date.now() - 30 * DAY), notAfter: new Date(Date.now() - DAY),
  });
  revokedLeaf = await issueCertificate({ subject: 'C=US,O=Portcullis Test,CN=Revoked Client', issuer: ocspIssuer, eku: [OID.kpClientAuth], ocspUrls: [url] });
  revokedSerials.add(revokedLeaf.cert.serialNumberBytes.toString('hex'));
  noAiaLeaf = await issueCertificate({ subject: 'C=US,O=Portcullis Test,CN=No AIA Client', issuer: ocspIssuer, eku: [OID.kpClientAuth] });

  const serverRoot = await issueCertificate({ subject: 'CN=Server Root', ca: true });
  const writeServer = async (label: string, key: 'ec-p256' | 'rsa-2048', dns: string[]) => {
    const c = await issueCertificate({ subject: `CN=${label}`, issuer: serverRoot, key, san: { dns } });
    const certFile = join(dir, `${label}.crt`);
    const keyFile = join(dir, `${label}.key`);
    writeFileSync(certFile, c.pem);
    writeFileSync(keyFile, c.keyPem);
    return { certFile, keyFile };
  };
  serverEcFiles = await writeServer('server-a-ec', 'ec-p256', ['*.test']);
  serverRsaFiles = await writeServer('server-a-rsa', 'rsa-2048', ['*.test']);
  serverBFiles = await writeServer('server-b', 'ec-p256', ['b.test']);

  envA = await startEnv('a', {
    main: trustStoreDoc([mainChain], false),
    ocsp: trustStoreDoc([ocspChain], true),
    rotating: trustStoreDoc([otherChain], false),
  }, {
    req: distDoc({ aliases: ['req.test'], trustStore: 'main' }),
    opt: distDoc({ aliases: ['opt.test'], mode: 'optional', trustStore: 'main', advertise: false }),
    exp: distDoc({ aliases: ['exp.test'], trustStore: 'main', ignoreExpiry: true, fn: 'allow-all' }),
    ocsp: distDoc({ aliases: ['ocsp.test'], trustStore: 'ocsp' }),
    ocspfn: distDoc({ aliases: ['ocspfn.test'], trustStore: 'ocsp', fn: 'allow-all' }),
    b: distDoc({ aliases: ['b.test', '*.b-wild.test'], trustStore: 'main', certificates: [serverBFiles] }),
    pass: distDoc({ aliases: ['pass.test'], mode: 'passthrough' }),
    rot: distDoc({ aliases: ['rot.test'], trustStore: 'rotating' }),
  });
  envB = await startEnv('b', { ocsp: trustStoreDoc([ocspChain], true) }, {
    res: distDoc({ aliases: ['res.test'], trustStore: 'ocsp', resumption: true }),
  });
});

after(async () => {
  await stopEnv(envA);
  await stopEnv(envB);
  await responder?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------

describe('edge gate', () => {
  test('every distribution is listed on the one shared port', () => {
    const rows = envA.gateway.listeners();
    assert.deepEqual(rows.map((r) => r.distribution).sort(), ['b', 'exp', 'ocsp', 'ocspfn', 'opt', 'pass', 'req', 'rot']);
    assert.ok(rows.every((r) => r.port === envA.port && r.address === '127.0.0.1:0'));
  });

  test('a good certificate is admitted with the CloudFront viewer headers and a complete log line', async () => {
    const from = envA.log.lines.length;
    const r = await connect(envA.port, { servername: 'req.test', chain: mainChain.presented });
    assert.ok(r.admitted, `admitted (${r.status} ${r.error ?? ''})`);
    const h = r.body as Record<string, string>;
    assert.equal(h['CloudFront-Viewer-Cert-Present'], '1');
    assert.equal(h['CloudFront-Viewer-Cert-Sha256'], mainChain.leaf.cert.sha256.toString('hex'));
    assert.match(h['CloudFront-Viewer-Cert-Subject']!, /CN=Main Client/);
    const line = await envA.log.waitFor((l) => l.tlsSni === 'req.test', from);
    assert.equal(line.connectionStatus, 'Success');
    assert.equal(line.distributionId, 'DREQ');
    assert.equal(line.clientIp, '127.0.0.1');
    assert.equal(line.serverIp, '127.0.0.1');
    assert.equal(typeof line.clientPort, 'number');
    assert.match(String(line.tlsProtocol), /^TLSv1\.[23]$/);
    assert.equal(typeof line.tlsCipher, 'string');
    assert.equal(typeof line.tlsHandshakeDuration, 'number');
    assert.equal(typeof line.decisionTimeUs, 'number');
    assert.match(String(line.clientLeafCertSerialNumber), /^[0-9a-f]{2}(:[0-9a-f]{2})*$/);
    assert.match(String(line.clientLeafCertSubject), /^CN=Main Client, O=Portcullis Test, C=US$/);
    assert.match(String(line.clientLeafCertValidity), /^NotBefore=\S+Z;NotAfter=\S+Z$/);
    assert.equal(line.connectionLogCustomData, null);
    assert.equal(line.tlsSessionReused, false);
    const admitted = envA.handler.admitted.at(-1)!;
    assert.equal(admitted.distributionName, 'req');
    assert.equal(admitted.connectionId, line.connectionId);
  });

  test('RSA and ECDSA server certificates in one context: the client\'s signature algorithms pick one', async () => {
    // No client certificate (optional mode): the restricted sigalgs then only concern the server's.
    const ec = await connect(envA.port, { servername: 'opt.test', sigalgs: 'ecdsa_secp256r1_sha256' });
    const rsa = await connect(envA.port, { servername: 'opt.test', sigalgs: 'rsa_pss_rsae_sha256:rsa_pkcs1_sha256' });
    assert.ok(ec.admitted && rsa.admitted);
    assert.equal(ec.serverCert?.keyType, 'ec');
    assert.equal(rsa.serverCert?.keyType, 'rsa');
  });

  test('an untrusted CA is closed: Failed:ClientCertUntrusted', async () => {
    const from = envA.log.lines.length;
    const r = await connect(envA.port, { servername: 'req.test', chain: otherChain.presented });
    assert.equal(r.admitted, false);
    const line = await envA.log.waitFor((l) => l.tlsSni === 'req.test', from);
    assert.equal(line.connectionStatus, 'Failed:ClientCertUntrusted');
    assert.match(String(line.reason), /Other/);
  });

  test('no certificate: required → Failed:ClientCertMissing; optional → admitted with Present 0', async () => {
    let from = envA.log.lines.length;
    const req = await connect(envA.port, { servername: 'req.test' });
    assert.equal(req.admitted, false);
    assert.equal((await envA.log.waitFor((l) => l.tlsSni === 'req.test', from)).connectionStatus, 'Failed:ClientCertMissing');
    from = envA.log.lines.length;
    const opt = await connect(envA.port, { servername: 'opt.test' });
    assert.ok(opt.admitted);
    assert.deepEqual(opt.body, { 'CloudFront-Viewer-Cert-Present': '0' });
    const line = await envA.log.waitFor((l) => l.tlsSni === 'opt.test', from);
    assert.equal(line.connectionStatus, 'Success');
    assert.equal(line.clientLeafCertSerialNumber, null);
  });

  test('optional mode still denies a presented invalid certificate', async () => {
    const from = envA.log.lines.length;
    const r = await connect(envA.port, { servername: 'opt.test', chain: otherChain.presented });
    assert.equal(r.admitted, false);
    assert.equal((await envA.log.waitFor((l) => l.tlsSni === 'opt.test', from)).connectionStatus, 'Failed:ClientCertUntrusted');
  });

  test('expired: closed normally; admitted with ignoreCertificateExpiry and an allowing function', async () => {
    let from = envA.log.lines.length;
    const chain = [expiredLeaf, mainChain.intermediates[0]!];
    const r1 = await connect(envA.port, { servername: 'req.test', chain });
    assert.equal(r1.admitted, false);
    assert.equal((await envA.log.waitFor((l) => l.tlsSni === 'req.test', from)).connectionStatus, 'Failed:ClientCertExpired');
    from = envA.log.lines.length;
    const r2 = await connect(envA.port, { servername: 'exp.test', chain });
    assert.ok(r2.admitted);
    const line = await envA.log.waitFor((l) => l.tlsSni === 'exp.test', from);
    assert.equal(line.connectionStatus, 'Success');
    assert.equal(line.functionName, 'allow-all');
    assert.equal(typeof line.functionComputeUtilization, 'number');
    assert.match(String(line.connectionLogCustomData), /^leaf=[0-9a-f:]+ chain=-$/);
  });

  test('OCSP: a good chain is admitted with per-certificate results; a revoked leaf is closed Failed:ClientCertRevoked', async () => {
    let from = envA.log.lines.length;
    const good = await connect(envA.port, { servername: 'ocsp.test', chain: ocspChain.presented });
    assert.ok(good.admitted, good.error);
    const gl = await envA.log.waitFor((l) => l.tlsSni === 'ocsp.test', from);
    assert.equal(gl.connectionStatus, 'Success');
    assert.equal(gl.chainValidity, 'Valid');
    const rev = gl.revocation as { certificate: string; status: string; source: string; responder: string }[];
    assert.deepEqual(rev.map((e) => [e.certificate, e.status]), [['leaf', 'Good'], ['intermediate#1', 'Good']]);
    assert.ok(rev.every((e) => e.responder === responder.url && (e.source === 'network' || e.source === 'cache')));

    from = envA.log.lines.length;
    const bad = await connect(envA.port, { servername: 'ocsp.test', chain: [revokedLeaf, ocspChain.intermediates[0]!] });
    assert.equal(bad.admitted, false);
    const bl = await envA.log.waitFor((l) => l.tlsSni === 'ocsp.test', from);
    assert.equal(bl.connectionStatus, 'Failed:ClientCertRevoked');
    assert.equal(bl.chainValidity, 'Invalid');
    assert.match(String(bl.reason), /Revoked/);

    const metrics = await envA.registry.metrics();
    assert.match(metrics, /portcullis_ocsp_requests_total\{responder="[^"]+",outcome="Revoked"\} 1/);
    assert.match(metrics, /portcullis_edge_connections_total\{distribution="ocsp",status="Failed:ClientCertRevoked"\} 1/);
    assert.match(metrics, /portcullis_ocsp_cache_misses_total \d+/);
  });

  test('OCSP with a function: the function decides with revocationStatus in front of it', async () => {
    const from = envA.log.lines.length;
    const r = await connect(envA.port, { servername: 'ocspfn.test', chain: [revokedLeaf, ocspChain.intermediates[0]!] });
    assert.ok(r.admitted, 'allow-all admits a revoked certificate: the operator coded it');
    const line = await envA.log.waitFor((l) => l.tlsSni === 'ocspfn.test', from);
    assert.equal(line.connectionStatus, 'Success');
    assert.match(String(line.connectionLogCustomData), /chain=Invalid$/);
  });

  test('missing AIA with OCSP on: closed Failed:ClientCertOcspEndpointMissing and the function does not run', async () => {
    const from = envA.log.lines.length;
    const calls = envA.functions.calls.length;
    const r = await connect(envA.port, { servername: 'ocspfn.test', chain: [noAiaLeaf, ocspChain.intermediates[0]!] });
    assert.equal(r.admitted, false);
    const line = await envA.log.waitFor((l) => l.tlsSni === 'ocspfn.test', from);
    assert.equal(line.connectionStatus, 'Failed:ClientCertOcspEndpointMissing');
    assert.equal(line.functionName, null);
    assert.equal(envA.functions.calls.length, calls);
  });

  test('passthrough: no validation, Client-Cert and Client-Cert-Chain for the origin', async () => {
    const r = await connect(envA.port, { servername: 'pass.test', chain: otherChain.presented });
    assert.ok(r.admitted);
    const h = r.body as Record<string, string>;
    assert.equal(h['Client-Cert'], `:${otherChain.leaf.der.toString('base64')}:`);
    assert.equal(h['Client-Cert-Chain'], `:${otherChain.intermediates[0]!.der.toString('base64')}:`);
  });

  test('two distributions on one port: SNI picks the distribution and its server certificate; no SNI → the first', async () => {
    let from = envA.log.lines.length;
    const b = await connect(envA.port, { servername: 'b.test', chain: mainChain.presented });
    assert.ok(b.admitted);
    assert.equal(b.serverCert?.subject, 'CN=server-b');
    assert.equal((await envA.log.waitFor((l) => l.tlsSni === 'b.test', from)).distributionName, 'b');
    const wild = await connect(envA.port, { servername: 'x.b-wild.test', chain: mainChain.presented });
    assert.equal(wild.serverCert?.subject, 'CN=server-b');
    const a = await connect(envA.port, { servername: 'req.test', chain: mainChain.presented });
    assert.match(a.serverCert?.subject ?? '', /^CN=server-a-/);
    from = envA.log.lines.length;
    const none = await connect(envA.port, { chain: mainChain.presented });
    assert.ok(none.admitted);
    assert.match(none.serverCert?.subject ?? '', /^CN=server-a-/);
    const nl = await envA.log.waitFor((l) => l.tlsSni === null && l.connectionStatus === 'Success', from);
    assert.equal(nl.distributionName, 'req');
  });

  test('a trust-store change applies to new connections without a restart', async () => {
    assert.equal((await connect(envA.port, { servername: 'rot.test', chain: newCaChain.presented })).admitted, false);
    assert.ok((await connect(envA.port, { servername: 'rot.test', chain: otherChain.presented })).admitted);
    // An established connection survives the change.
    const held = tls.connect({ host: '127.0.0.1', port: envA.port, servername: 'req.test', rejectUnauthorized: false, cert: mainChain.presentedPem, key: mainChain.leaf.keyPem });
    await new Promise((r) => held.once('secureConnect', r));
    const current = (await envA.store.trustStores.get('rotating'))!;
    await envA.store.trustStores.update('rotating', { ifMatch: current.etag, newEtag: `E${++seq}`, document: trustStoreDoc([newCaChain], false), now: Date.now() });
    await envA.gateway.sync();
    assert.ok((await connect(envA.port, { servername: 'rot.test', chain: newCaChain.presented })).admitted);
    assert.equal((await connect(envA.port, { servername: 'rot.test', chain: otherChain.presented })).admitted, false);
    assert.equal(held.destroyed, false);
    held.destroy();
  });

  test('a closed TCP connection before the handshake is logged Failed:TcpError', async () => {
    const from = envA.log.lines.length;
    const net = await import('node:net');
    await new Promise<void>((resolve) => {
      const s = net.connect(envA.port, '127.0.0.1', () => s.end('not tls at all\r\n\r\n'));
      s.on('error', () => {});
      s.on('close', () => resolve());
    });
    const line = await envA.log.waitFor((l) => String(l.connectionStatus).startsWith('Failed:Tcp'), from);
    assert.equal(line.connectionStatus, 'Failed:TcpError');
  });
});

describe('edge gate: session resumption', { skip: !hasOpenssl && 'openssl not installed' }, () => {
  test('off by default: s_client -reconnect never resumes; CA names advertised only when configured', async () => {
    const certFile = join(dir, 'client-main.pem');
    const keyFile = join(dir, 'client-main.key');
    const chainFile = join(dir, 'client-main-chain.pem');
    writeFileSync(certFile, mainChain.leaf.pem);
    writeFileSync(keyFile, mainChain.leaf.keyPem);
    writeFileSync(chainFile, mainChain.intermediates[0]!.pem);
    const common = ['-connect', `127.0.0.1:${envA.port}`, '-cert', certFile, '-key', keyFile, '-cert_chain', chainFile];
    for (const v of ['-tls1_3', '-tls1_2']) {
      const out = await sClient([...common, '-servername', 'req.test', '-reconnect', v]);
      assert.doesNotMatch(out, /^Reused,/m, `${v}: no session may be resumed`);
      assert.match(out, /^New,/m);
    }
    const adv = await sClient([...common, '-servername', 'req.test', '-tls1_2']);
    assert.match(adv, /Acceptable client certificate CA names\s*\n\s*C ?= ?US, O ?= ?Portcullis Test, CN ?= ?Main Root CA/);
    const none = await sClient([...common, '-servername', 'opt.test', '-tls1_2']);
    assert.match(none, /No client certificate CA names sent/);
  });

  test('on: a resumed connection runs the whole gate again (revoked in between → refused)', async () => {
    const leaf = await issueCertificate({ subject: 'C=US,O=Portcullis Test,CN=Resume Client', issuer: ocspChain.intermediates[0]!, eku: [OID.kpClientAuth], ocspUrls: [responder.url] });
    const chain = [leaf, ocspChain.intermediates[0]!];
    for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
      revokedSerials.delete(leaf.cert.serialNumberBytes.toString('hex'));
      envB.revocation.cache.purge();
      const first = await connect(envB.port, { servername: 'res.test', chain, maxVersion });
      assert.ok(first.admitted, `${maxVersion} first: ${first.error ?? first.status}`);
      assert.ok(first.session, 'a session to resume');
      const second = await connect(envB.port, { servername: 'res.test', chain, session: first.session, maxVersion });
      assert.ok(second.reused, `${maxVersion}: resumed`);
      assert.ok(second.admitted, `${maxVersion}: a resumed connection with a good certificate is admitted (chain restored)`);
      // Revoke; the operator purges the cache (or it expires).
      revokedSerials.add(leaf.cert.serialNumberBytes.toString('hex'));
      envB.revocation.cache.purge();
      const from = envB.log.lines.length;
      const third = await connect(envB.port, { servername: 'res.test', chain, session: first.session, maxVersion });
      assert.ok(third.reused, `${maxVersion}: resumed again`);
      assert.equal(third.admitted, false);
      const line = await envB.log.waitFor((l) => l.tlsSessionReused === true, from);
      assert.equal(line.connectionStatus, 'Failed:ClientCertRevoked');
    }
  });
});

describe('edge gate: configuration changes without a restart', () => {
  test('server certificate files are reloaded; a bad new file keeps the old context', async () => {
    const root = await issueCertificate({ subject: 'CN=Reload Root', ca: true });
    const v1 = await issueCertificate({ subject: 'CN=reload-v1', issuer: root, san: { dns: ['reload.test'] } });
    const v2 = await issueCertificate({ subject: 'CN=reload-v2', issuer: root, san: { dns: ['reload.test'] } });
    const certFile = join(dir, 'reload.crt');
    const keyFile = join(dir, 'reload.key');
    writeFileSync(certFile, v1.pem);
    writeFileSync(keyFile, v1.keyPem);
    const env = await startEnv('reload', { main: trustStoreDoc([mainChain], false) }, {
      reload: distDoc({ aliases: ['reload.test'], trustStore: 'main', certificates: [{ certFile, keyFile }] }),
    });
    try {
      const subject = async () => (await connect(env.port, { servername: 'reload.test', chain: mainChain.presented })).serverCert?.subject;
      assert.equal(await subject(), 'CN=reload-v1');
      // A certificate that does not match the key: the old context keeps serving.
      writeFileSync(certFile, v2.pem);
      await new Promise((r) => setTimeout(r, 800));
      assert.equal(await subject(), 'CN=reload-v1');
      writeFileSync(keyFile, v2.keyPem);
      const end = Date.now() + 5000;
      let s = await subject();
      while (s !== 'CN=reload-v2' && Date.now() < end) {
        await new Promise((r) => setTimeout(r, 50));
        s = await subject();
      }
      assert.equal(s, 'CN=reload-v2');
    } finally {
      await stopEnv(env);
    }
  });

  test('a distribution added on a new address opens a listener; removing it closes the listener', async () => {
    const env = await startEnv('listeners', { main: trustStoreDoc([mainChain], false) }, {
      first: distDoc({ aliases: ['first.test'], trustStore: 'main' }),
    });
    try {
      // The second distribution listens on its own (free) port: find one, then let the gateway bind it.
      const net = await import('node:net');
      const port = await new Promise<number>((resolve) => {
        const s = net.createServer().listen(0, '127.0.0.1', () => {
          const p = (s.address() as { port: number }).port;
          s.close(() => resolve(p));
        });
      });
      await env.store.distributions.create({
        id: 'DSECOND', name: 'second', etag: `E${++seq}`, now: Date.now(),
        document: { ...distDoc({ aliases: ['second.test'], trustStore: 'main' }), listen: `127.0.0.1:${port}` },
      });
      await env.gateway.sync();
      assert.ok(env.gateway.listeners().some((l) => l.distribution === 'second' && l.port === port));
      assert.ok((await connect(port, { servername: 'second.test', chain: mainChain.presented })).admitted);
      const rec = (await env.store.distributions.get('second'))!;
      await env.store.distributions.delete('second', rec.etag, Date.now());
      await env.gateway.sync();
      assert.ok(!env.gateway.listeners().some((l) => l.distribution === 'second'));
      const r = await connect(port, { servername: 'second.test', chain: mainChain.presented });
      assert.equal(r.admitted, false);
      assert.match(r.error ?? '', /ECONNREFUSED/);
    } finally {
      await stopEnv(env);
    }
  });
});

// ---------------------------------------------------------------------------------
// Faults found end to end and by review: each case kept as a test.

/** A pino logger whose lines (parsed) land in `lines`. */
function capturingLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => {
    for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

async function freeTcpPort(): Promise<number> {
  const net = await import('node:net');
  return new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

describe('edge gate: a distribution that cannot serve is refused, never served by another (fail closed)', () => {
  test('TLS material that does not load (key of another certificate, missing file): SNI naming it and the no-SNI default are refused Failed:Internal; the other distribution is unaffected; fixing the files brings it up', async () => {
    const brokenCert = join(dir, 'broken.crt');
    const brokenKey = join(dir, 'broken.key');
    writeFileSync(brokenCert, readFileSync(serverEcFiles.certFile));
    writeFileSync(brokenKey, readFileSync(serverRsaFiles.keyFile)); // does not match the certificate
    const missingKey = join(dir, 'not-there-yet.key');
    rmSync(missingKey, { force: true });
    // `broken` is the first (default) distribution of the port; `other` trusts otherChain only, as does nothing else.
    const env = await startEnv('failclosed', { main: trustStoreDoc([mainChain], false), other: trustStoreDoc([otherChain], false) }, {
      broken: distDoc({ aliases: ['broken.test'], trustStore: 'main', certificates: [{ certFile: brokenCert, keyFile: brokenKey }] }),
      other: distDoc({ aliases: ['other.test'], trustStore: 'other', certificates: [serverBFiles] }),
      missing: distDoc({ aliases: ['missing.test'], trustStore: 'main', certificates: [{ certFile: serverEcFiles.certFile, keyFile: missingKey }] }),
    });
    try {
      assert.deepEqual(env.gateway.listeners().map((l) => l.distribution).sort(), ['broken', 'missing', 'other'], 'every distribution stays on its listener');
      assert.ok((await connect(env.port, { servername: 'other.test', chain: otherChain.presented })).admitted, 'the working distribution serves');
      for (const [label, servername, dist] of [
        ['SNI naming the broken distribution', 'broken.test', 'broken'],
        ['SNI naming the distribution with a missing key file', 'missing.test', 'missing'],
        ['SNI no alias matches (default distribution)', 'nobody.test', 'broken'],
        ['no SNI (default distribution)', undefined, 'broken'],
      ] as const) {
        for (const chain of [otherChain.presented, mainChain.presented]) {
          const from = env.log.lines.length;
          const r = await connect(env.port, { ...(servername ? { servername } : {}), chain });
          assert.equal(r.admitted, false, `${label}: must be refused`);
          assert.equal(env.handler.admitted.filter((c) => c.distributionName !== 'other').length, 0, `${label}: nothing handed over`);
          const line = await env.log.waitFor((l) => l.connectionStatus !== 'Success', from);
          assert.equal(line.connectionStatus, 'Failed:Internal', `${label}: ${JSON.stringify(line)}`);
          assert.equal(line.distributionName, dist, label);
          assert.match(String(line.reason), new RegExp(`distribution "${dist}".*cannot serve: TLS material does not load`), label);
          assert.equal(line.tlsSni, servername ?? null, label);
        }
      }
      // Fixing the files brings the distributions up (file watching).
      writeFileSync(brokenKey, readFileSync(serverEcFiles.keyFile));
      writeFileSync(missingKey, readFileSync(serverEcFiles.keyFile));
      const end = Date.now() + 5000;
      let up = false;
      while (!up && Date.now() < end) {
        await new Promise((r) => setTimeout(r, 100));
        up = (await connect(env.port, { servername: 'broken.test', chain: mainChain.presented })).admitted
          && (await connect(env.port, { servername: 'missing.test', chain: mainChain.presented })).admitted;
      }
      assert.ok(up, 'fixed files bring both distributions up');
      assert.equal((await connect(env.port, { chain: mainChain.presented })).admitted, true, 'no SNI: the (now working) default');
      assert.equal((await connect(env.port, { servername: 'broken.test', chain: otherChain.presented })).admitted, false, 'broken.test keeps its own trust store');
    } finally {
      await stopEnv(env);
    }
  });

  test('a distribution added at runtime with TLS material that does not load is refused, not routed to the default', async () => {
    const env = await startEnv('failclosed-runtime', { main: trustStoreDoc([mainChain], false), other: trustStoreDoc([otherChain], false) }, {
      other: distDoc({ aliases: ['other.test'], trustStore: 'other', certificates: [serverBFiles] }),
    }, { listenOverrides: { other: '127.0.0.1:0', late: '127.0.0.1:0' } });
    try {
      await env.store.distributions.create({
        id: 'DLATE', name: 'late', etag: `E${++seq}`, now: Date.now(),
        document: distDoc({ aliases: ['late.test'], trustStore: 'main', certificates: [{ certFile: serverEcFiles.certFile, keyFile: join(dir, 'no-such.key') }] }),
      });
      await env.gateway.sync();
      const from = env.log.lines.length;
      assert.equal((await connect(env.port, { servername: 'late.test', chain: otherChain.presented })).admitted, false);
      const line = await env.log.waitFor((l) => l.distributionName === 'late', from);
      assert.equal(line.connectionStatus, 'Failed:Internal');
      assert.match(String(line.reason), /distribution "late".*cannot serve: TLS material does not load/);
    } finally {
      await stopEnv(env);
    }
  });
});

describe('edge gate: session resumption and shared listeners', () => {
  test('a listen address shared by two distributions that ask for resumption does not resume (warning logged); each connection is gated by its SNI', async () => {
    const { logger, lines } = capturingLogger();
    const env = await startEnv('shared-resume', { ocsp: trustStoreDoc([ocspChain], true), main: trustStoreDoc([mainChain], false) }, {
      r1: distDoc({ aliases: ['r1.test'], trustStore: 'main', resumption: true }),
      r2: distDoc({ aliases: ['r2.test'], trustStore: 'main', resumption: true, certificates: [serverBFiles] }),
    }, { logger });
    try {
      assert.ok(lines.some((l) => l.level === 40 && /session resumption is off on a listen address shared/.test(String(l.msg))), 'a warning names the shared listener');
      for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
        const first = await connect(env.port, { servername: 'r2.test', chain: mainChain.presented, maxVersion });
        assert.ok(first.admitted);
        const from = env.log.lines.length;
        const second = await connect(env.port, { servername: 'r2.test', chain: mainChain.presented, maxVersion, ...(first.session ? { session: first.session } : {}) });
        assert.equal(second.reused, false, `${maxVersion}: no resumption on a shared listener`);
        assert.ok(second.admitted);
        const line = await env.log.waitFor(() => true, from);
        assert.equal(line.distributionName, 'r2');
        assert.equal(line.tlsSni, 'r2.test');
      }
    } finally {
      await stopEnv(env);
    }
  });

  test('a session whose first connection the client closed before the hand-over still resumes and is admitted (chain remembered at validation)', async () => {
    const functions = new HoldFunctions();
    const env = await startEnv('early-close', { main: trustStoreDoc([mainChain], false) }, {
      hold: distDoc({ aliases: ['hold.test'], trustStore: 'main', resumption: true, fn: 'hold' }),
    }, { functions });
    try {
      // Full TLS 1.2 handshake; the client closes at once; the function holds the gate until then.
      const session = await new Promise<Buffer | undefined>((resolve) => {
        let sess: Buffer | undefined;
        const s = tls.connect({ host: '127.0.0.1', port: env.port, servername: 'hold.test', rejectUnauthorized: false, cert: mainChain.presentedPem, key: mainChain.leaf.keyPem, maxVersion: 'TLSv1.2' });
        s.on('session', (b) => { sess = b; });
        s.on('secureConnect', () => s.destroy());
        s.on('error', () => {});
        s.on('close', () => resolve(sess));
      });
      assert.ok(session, 'a TLS 1.2 session');
      const firstLine = await env.log.waitFor((l) => l.tlsSessionReused === false);
      assert.equal(firstLine.connectionStatus, 'Success');
      assert.match(String(firstLine.reason), /closed the connection before it was handed/);
      functions.holdMs = 0;
      const from = env.log.lines.length;
      const resumed = await connect(env.port, { servername: 'hold.test', chain: mainChain.presented, session, maxVersion: 'TLSv1.2' });
      assert.ok(resumed.reused, 'resumed');
      const line = await env.log.waitFor((l) => l.tlsSessionReused === true, from);
      assert.equal(line.connectionStatus, 'Success', JSON.stringify(line));
      assert.equal(line.tlsSni, null);
      assert.match(String(line.reason), /tlsSni is null: .*resumed TLS 1\.2 session.*"hold"/);
      assert.ok(resumed.admitted);
    } finally {
      await stopEnv(env);
    }
  });
});

/** InThreadFunctions plus `hold`: waits `holdMs`, then allows. */
class HoldFunctions extends InThreadFunctions {
  holdMs = 400;
  override async invoke(name: string, json: string, options?: { now?: number }): Promise<FunctionInvocation> {
    if (name !== 'hold') return super.invoke(name, json, options);
    await new Promise((r) => setTimeout(r, this.holdMs));
    return { result: { decision: 'allow', implicit: false, logs: [], computeUtilization: 0 }, functionId: 'id-hold', etag: 'ETVLIVE1', durationUs: 0 };
  }
}

describe('edge gate: presented chains longer than MAX_PRESENTED_CERTIFICATES', () => {
  test('11 and 12 certificates: Failed:ClientCertMaxChainDepthExceeded with the count and the limit', async () => {
    const deep = await buildChain({ name: 'Deep', intermediates: 11 });
    const env = await startEnv('deep', { deep: trustStoreDoc([deep], false) }, {
      deep: distDoc({ aliases: ['deep.test'], trustStore: 'deep' }),
    });
    try {
      for (const n of [12, 11]) {
        const from = env.log.lines.length;
        const r = await connect(env.port, { servername: 'deep.test', chain: deep.presented.slice(0, n) });
        assert.equal(r.admitted, false);
        const line = await env.log.waitFor(() => true, from);
        assert.equal(line.connectionStatus, 'Failed:ClientCertMaxChainDepthExceeded', JSON.stringify(line));
        assert.match(String(line.reason), new RegExp(`presented ${n} certificates .*at most 10`));
        assert.equal(line.clientLeafCertSubject !== null, true, 'the leaf is still logged');
      }
    } finally {
      await stopEnv(env);
    }
  });
});

describe('edge gate: listen addresses', () => {
  test('a port in use: the start error names the distribution and the address', async () => {
    const net = await import('node:net');
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      await assert.rejects(
        startEnv('inuse', { main: trustStoreDoc([mainChain], false) }, { otherdist: distDoc({ aliases: ['o.test'], trustStore: 'main' }) },
          { listenOverrides: { otherdist: `127.0.0.1:${port}` } }),
        (err: Error & { code?: string }) => {
          assert.equal(err.message, `distribution "otherdist" (listen 127.0.0.1:${port}): address in use`);
          assert.equal(err.code, 'EADDRINUSE');
          return true;
        },
      );
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });

  test('127.0.0.1:P and localhost:P are one socket: one listener, SNI routes between both', async () => {
    const port = await freeTcpPort();
    const env = await startEnv('same-socket', { main: trustStoreDoc([mainChain], false), other: trustStoreDoc([otherChain], false) }, {
      ip: distDoc({ aliases: ['ip.test'], trustStore: 'main' }),
      named: distDoc({ aliases: ['named.test'], trustStore: 'other', certificates: [serverBFiles] }),
    }, { listenOverrides: { ip: `127.0.0.1:${port}`, named: `localhost:${port}` } });
    try {
      const ls = env.gateway.listeners();
      assert.deepEqual(ls.map((l) => [l.distribution, l.address, l.bound]), [['ip', `127.0.0.1:${port}`, `127.0.0.1:${port}`], ['named', `localhost:${port}`, `127.0.0.1:${port}`]]);
      assert.ok((await connect(port, { servername: 'ip.test', chain: mainChain.presented })).admitted);
      assert.ok((await connect(port, { servername: 'named.test', chain: otherChain.presented })).admitted);
      assert.equal((await connect(port, { servername: 'named.test', chain: mainChain.presented })).admitted, false);
    } finally {
      await stopEnv(env);
    }
  });

  test('0.0.0.0:P with 127.0.0.1:P: the start error names both distributions and both addresses', async () => {
    const port = await freeTcpPort();
    await assert.rejects(
      startEnv('overlap', { main: trustStoreDoc([mainChain], false) }, {
        wild: distDoc({ aliases: ['wild.test'], trustStore: 'main' }),
        local: distDoc({ aliases: ['local.test'], trustStore: 'main' }),
      }, { listenOverrides: { wild: `0.0.0.0:${port}`, local: `127.0.0.1:${port}` } }),
      (err: Error) => {
        assert.match(err.message, new RegExp(`^distribution "local" \\(listen 127\\.0\\.0\\.1:${port}\\): cannot be served: its socket 127\\.0\\.0\\.1:${port} overlaps 0\\.0\\.0\\.0:${port} of distribution "wild" \\(listen 0\\.0\\.0\\.0:${port}\\)`));
        return true;
      },
    );
  });
});
