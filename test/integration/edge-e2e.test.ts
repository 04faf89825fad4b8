/**
 * End to end: the real `portcullis serve --config FILE` (one child process, workers: 1)
 * in front of an echo origin, driven by real `curl` and `openssl s_client` on
 * 127.0.0.1. One PKI and one gateway are shared by every test; each behaviour has its
 * own distribution (own port, SNI name `<name>.gw.test`), except the SNI pair that
 * shares one port. Live changes are made by the CLI on the same data directory, as an
 * operator would (SPEC sections 2, 3, 4, 6, 7).
 *
 * PKIs:
 * - demo (src/demo OpensslDemoPki): root → intermediate → leaves with AIA OCSP,
 *   answered by two real `openssl ocsp` responders; trust store `demo` (OCSP on).
 *   Also issues the gateway's server certificate (`*.gw.test`).
 * - plain (test/helpers/pki.ts): root → intermediate → leaf without AIA, and an
 *   expired leaf; trust store `plain` (OCSP off).
 * - deadresp: a chain whose AIA points at a port nothing listens on; trust store
 *   `deadresp` (OCSP on) — the "responder down" case.
 * - rogue: a chain no trust store knows (untrusted CA).
 *
 * Timing: the only timing assertions are the issue's "within 1 s" for live changes
 * (KVS put, function publish), measured from the moment the CLI command returned (the
 * write is committed) by a deadline loop that makes a fresh connection every 50 ms. The
 * bound checked is 1 s + 500 ms margin: one curl handshake through the gate (OCSP from
 * cache, function ~0.1 ms) takes ~30–80 ms on a loaded 2-core machine, so a change
 * applied at 1.0 s is seen by the attempt that starts at most one attempt later.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpensslDemoPki, freePort, type DemoCertificate } from '../../src/demo/index.js';
import { OID } from '../../src/pki/index.js';
import { startEchoOrigin, type EchoOrigin } from '../helpers/origin.js';
import { buildChain, issueCertificate, type TestChain, type TestCert } from '../helpers/pki.js';
import {
  REPO_ROOT, curlThrough, sClient, startGateway, type CurlOptions, type CurlResult, type LogLine, type RunningGateway,
} from '../helpers/gateway.js';

/** Margin on top of the issue's 1 s bound (see the module comment). */
const LIVE_CHANGE_BOUND_MS = 1000;
const LIVE_CHANGE_MARGIN_MS = 500;

const host = (name: string): string => `${name}.gw.test`;

/** A client identity: chain file (leaf first) and key file. */
interface Client { chain: string; key: string; serial: string; pem: string }

let dir: string;
let pki: OpensslDemoPki;
let origin: EchoOrigin;
let originB: EchoOrigin;
let gw: RunningGateway | undefined;
let rootCa: string;
const ports: Record<string, number> = {};
const clients: Record<string, Client> = {};
let plain: TestChain;
let deadresp: TestChain;
let rogue: TestChain;

/** `1000` → `10:00`; keeps a leading `00` when the high bit is set (DER INTEGER). */
function colonSerial(hex: string): string {
  let h = hex.toLowerCase();
  if (h.length % 2) h = `0${h}`;
  if (/^[89a-f]/.test(h)) h = `00${h}`;
  return h.match(/../g)!.join(':');
}

async function demoClient(leaf: DemoCertificate): Promise<Client> {
  return { chain: await pki.writeChain(leaf), key: leaf.keyFile, serial: colonSerial(leaf.serialHex), pem: readFileSync(leaf.certFile, 'utf8') };
}

function helperClient(name: string, leaf: TestCert, intermediates: TestCert[]): Client {
  const chain = join(dir, `${name}-chain.pem`);
  const key = join(dir, `${name}.key`);
  writeFileSync(chain, [leaf, ...intermediates].map((c) => c.pem).join(''));
  writeFileSync(key, leaf.keyPem);
  const hex = leaf.cert.serialNumberBytes ? Buffer.from(leaf.cert.serialNumberBytes).toString('hex') : '';
  return { chain, key, serial: hex.match(/../g)!.join(':'), pem: leaf.pem };
}

/** curl through distribution `name` (SNI `<name>.gw.test`) with client `who` (or none). */
function req(name: string, who: Client | undefined, extra: Partial<CurlOptions> = {}): Promise<CurlResult> {
  return curlThrough({
    host: host(name), port: ports[name]!, cacert: rootCa,
    ...(who ? { cert: who.chain, key: who.key } : {}),
    ...extra,
  });
}

function g(): RunningGateway {
  assert.ok(gw, 'gateway did not start (see before())');
  return gw;
}

/** Index of the next connection-log line (lines from here on belong to what the test does next). */
function mark(): number {
  return g().connectionLogLines().length;
}

/**
 * The first connection-log line after `from` for distribution `name`: by SNI, or by the
 * `distributionName` extension (a resumed TLS 1.2 connection has no SNI in Node).
 */
function logFor(name: string, from: number, timeoutMs = 5000): Promise<LogLine> {
  return g().waitForLog((l) => l.tlsSni === host(name) || l.distributionName === name, timeoutMs, from);
}

/** Asserts curl got no HTTP response (connection closed by the gateway) and nothing reached the origin. */
function assertClosed(r: CurlResult, originBefore: number, what: string): void {
  assert.notEqual(r.exitCode, 0, `${what}: curl should fail (connection closed), got exit 0 status ${r.status}: ${r.body.slice(0, 300)}`);
  assert.equal(r.status, 0, `${what}: no HTTP response expected, got ${r.status} (curl: ${r.stderr.trim()})`);
  assert.equal(origin.requests.length + originB.requests.length, originBefore, `${what}: no request may reach the origin`);
}

function originCount(): number {
  return origin.requests.length + originB.requests.length;
}

function lastOriginHeaders(o: EchoOrigin = origin): Record<string, string | string[] | undefined> {
  const r = o.requests.at(-1);
  assert.ok(r, 'the origin received no request');
  return r.headers;
}

/** The `New, …`/`Reused, …` lines of s_client output. */
function handshakeLines(stdout: string): string {
  return stdout.split('\n').filter((l) => /^(New|Reused),/.test(l)).join(' | ') || '(no handshake line)';
}

const isoSeconds = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The ETag of a KVS, read with the CLI (`kvs describe --json`). */
async function kvsEtag(name: string): Promise<string> {
  const r = await g().cli(['kvs', 'describe', name, '--json']);
  assert.equal(r.code, 0, `kvs describe failed: ${r.stderr}`);
  const m = /"ETag"\s*:\s*"([^"]+)"/.exec(r.stdout);
  assert.ok(m, `no ETag in kvs describe --json output: ${r.stdout}`);
  return m[1]!;
}

/** `kvs put STORE KEY VALUE --if-match ETAG` on the gateway's data directory; returns when committed. */
async function kvsPut(store: string, key: string, value: string): Promise<void> {
  const etag = await kvsEtag(store);
  const r = await g().cli(['kvs', 'put', store, key, value, '--if-match', etag]);
  assert.equal(r.code, 0, `kvs put failed (exit ${r.code}): ${r.stderr}${r.stdout}`);
}

/**
 * Makes a fresh connection every 50 ms until `done(result)` holds; returns the elapsed
 * time (ms since `start`) and the attempts. Fails after the bound + margin.
 */
async function pollUntil(start: number, attempt: () => Promise<CurlResult>, done: (r: CurlResult) => boolean): Promise<{ elapsed: number; attempts: number; last: CurlResult }> {
  const limit = LIVE_CHANGE_BOUND_MS + LIVE_CHANGE_MARGIN_MS;
  let attempts = 0;
  for (;;) {
    const r = await attempt();
    attempts++;
    const elapsed = Date.now() - start;
    if (done(r)) return { elapsed, attempts, last: r };
    if (elapsed > limit) {
      assert.fail(`change not applied within ${LIVE_CHANGE_BOUND_MS} ms (+${LIVE_CHANGE_MARGIN_MS} ms margin): ${attempts} attempts, last: exit ${r.exitCode} status ${r.status} ${r.stderr.trim()}`);
    }
    await new Promise((res) => setTimeout(res, 50));
  }
}

const ALLOW_ALL = `function connectionHandler(connection) {
  connection.logCustomData('allow-all');
  connection.allow();
}
`;
const TRACE = `function connectionHandler(connection) {
  console.log('function-ran');
  connection.logCustomData('function-ran');
  connection.allow();
}
`;
const SWITCH_V1 = `function connectionHandler(connection) {
  connection.logCustomData('switch:v1');
  connection.allow();
}
`;
const SWITCH_V2 = `function connectionHandler(connection) {
  connection.logCustomData('switch:v2');
  connection.deny();
}
`;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'portcullis-edge-e2e-'));
  // --- demo PKI with real openssl ocsp responders
  mkdirSync(join(dir, 'pki'));
  pki = await OpensslDemoPki.create({ dir: join(dir, 'pki') });
  const server = await pki.issueServer('server', ['*.gw.test']);
  rootCa = pki.root.certFile;
  // Sequentially: the demo PKI appends to its responder index per certificate.
  const good = await pki.issueLeaf('good');
  const ocspRevoked = await pki.issueLeaf('ocsp-revoked');
  const kvsRevoked = await pki.issueLeaf('kvs-revoked');
  const noAia = await pki.issueLeaf('no-aia', { ocsp: false });
  const resumer = await pki.issueLeaf('resumer');
  const earlyClose = await pki.issueLeaf('early-close');
  await pki.revoke(ocspRevoked);
  await pki.startResponders();
  clients.good = await demoClient(good);
  clients.ocspRevoked = await demoClient(ocspRevoked);
  clients.kvsRevoked = await demoClient(kvsRevoked);
  clients.noAia = await demoClient(noAia);
  clients.resumer = await demoClient(resumer);
  clients.earlyClose = await demoClient(earlyClose);

  // --- helper PKIs
  const deadPort = await freePort(); // nothing listens there: the "responder down" case
  plain = await buildChain({ name: 'Plain', leaf: { serial: '00a7309e737b3e63' } });
  deadresp = await buildChain({ name: 'DeadResp', ocspUrl: () => `http://127.0.0.1:${deadPort}/ocsp` });
  rogue = await buildChain({ name: 'Rogue' });
  const expired = await issueCertificate({
    subject: 'C=US,O=Portcullis Test,CN=Expired Client', issuer: plain.intermediates[0]!, eku: [OID.kpClientAuth],
    notBefore: new Date(Date.now() - 20 * 86400_000), notAfter: new Date(Date.now() - 2 * 86400_000),
  });
  clients.plain = helperClient('plain', plain.leaf, plain.intermediates.slice().reverse());
  clients.expired = helperClient('expired', expired, plain.intermediates.slice().reverse());
  clients.deadresp = helperClient('deadresp', deadresp.leaf, deadresp.intermediates.slice().reverse());
  clients.rogue = helperClient('rogue', rogue.leaf, rogue.intermediates.slice().reverse());
  writeFileSync(join(dir, 'plain-root.pem'), plain.root.pem);
  writeFileSync(join(dir, 'deadresp-root.pem'), deadresp.root.pem);

  // --- functions, KVS import
  writeFileSync(join(dir, 'allow-all.js'), ALLOW_ALL);
  writeFileSync(join(dir, 'trace.js'), TRACE);
  writeFileSync(join(dir, 'switch-v1.js'), SWITCH_V1);
  writeFileSync(join(dir, 'switch-v2.js'), SWITCH_V2);
  writeFileSync(join(dir, 'revoked.json'), JSON.stringify({ data: [{ key: 'deadbeef', value: 'an unrelated serial' }] }));

  origin = await startEchoOrigin();
  originB = await startEchoOrigin();
  const names = ['strict', 'kvsfn', 'noaia', 'optional', 'expiry', 'expiryok', 'deadocsp', 'softfail', 'passthrough', 'origindown', 'publish', 'resume', 'sni', 'rsni'];
  for (const n of names) ports[n] = await freePort();
  ports['sni-a'] = ports.sni!;
  ports['sni-b'] = ports.sni!;
  ports['rsni-a'] = ports.rsni!;
  ports['rsni-b'] = ports.rsni!;
  const deadOriginPort = await freePort();

  const certificates = [{ certFile: server.certFile, keyFile: server.keyFile }];
  const dist = (name: string, extra: Record<string, unknown>, viewerMtls: Record<string, unknown>): Record<string, unknown> => ({
    name, listen: `127.0.0.1:${ports[name]}`, aliases: [host(name)], certificates,
    origin: { url: origin.url, connectTimeoutMs: 2000, responseTimeoutMs: 10_000 },
    viewerMtls: { mode: 'required', ...viewerMtls },
    ...extra,
  });
  const config = {
    logging: { level: 'info', connectionLog: join(dir, 'connections.log') },
    ocsp: { timeoutMs: 2000 },
    resources: {
      trustStores: [
        { name: 'demo', caBundleFile: rootCa, useClientCertificateOcspEndpoint: true },
        { name: 'plain', caBundleFile: join(dir, 'plain-root.pem'), useClientCertificateOcspEndpoint: false },
        { name: 'deadresp', caBundleFile: join(dir, 'deadresp-root.pem'), useClientCertificateOcspEndpoint: true },
      ],
      keyValueStores: [{ name: 'revoked', comment: 'serials revoked by the operator', importFile: join(dir, 'revoked.json') }],
      connectionFunctions: [
        { name: 'kvs-revoke', codeFile: join(REPO_ROOT, 'examples/functions/kvs-serial-revocation.js'), keyValueStore: 'revoked', publish: true },
        { name: 'soft-fail', codeFile: join(REPO_ROOT, 'examples/functions/ocsp-soft-fail.js'), publish: true },
        { name: 'allow-all', codeFile: join(dir, 'allow-all.js'), publish: true },
        { name: 'trace', codeFile: join(dir, 'trace.js'), publish: true },
        { name: 'switchable', codeFile: join(dir, 'switch-v1.js'), publish: true },
      ],
      distributions: [
        dist('strict', {}, { trustStore: 'demo' }),
        dist('kvsfn', { connectionFunction: 'kvs-revoke' }, { trustStore: 'demo' }),
        dist('noaia', { connectionFunction: 'trace' }, { trustStore: 'demo' }),
        dist('optional', {}, { mode: 'optional', trustStore: 'plain' }),
        dist('expiry', {}, { trustStore: 'plain' }),
        dist('expiryok', { connectionFunction: 'allow-all' }, { trustStore: 'plain', ignoreCertificateExpiry: true }),
        dist('deadocsp', {}, { trustStore: 'deadresp' }),
        dist('softfail', { connectionFunction: 'soft-fail' }, { trustStore: 'deadresp' }),
        dist('passthrough', {}, { mode: 'passthrough' }),
        { ...dist('origindown', {}, { trustStore: 'plain' }), origin: { url: `http://127.0.0.1:${deadOriginPort}`, connectTimeoutMs: 1000, responseTimeoutMs: 5000 } },
        dist('publish', { connectionFunction: 'switchable' }, { trustStore: 'plain' }),
        dist('resume', { connectionFunction: 'kvs-revoke' }, { trustStore: 'demo', sessionResumption: true }),
        dist('sni-a', {}, { trustStore: 'plain' }),
        { ...dist('sni-b', {}, { trustStore: 'demo' }), origin: { url: originB.url, connectTimeoutMs: 2000, responseTimeoutMs: 10_000 } },
        // One port, two distributions, both asking for session resumption (a shared listener does not resume).
        dist('rsni-a', {}, { trustStore: 'demo', sessionResumption: true }),
        { ...dist('rsni-b', {}, { trustStore: 'demo', sessionResumption: true }), origin: { url: originB.url, connectTimeoutMs: 2000, responseTimeoutMs: 10_000 } },
      ],
    },
  };
  gw = await startGateway({ dir, config });
});

after(async () => {
  await gw?.stop();
  await origin?.close();
  await originB?.close();
  await pki?.close();
  if (process.env.PORTCULLIS_KEEP_E2E_DIR) console.error(`kept ${dir}`);
  else if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('edge end to end (portcullis serve)', () => {
  test('good certificate: 200, certificate headers at the origin, a Success log line', async () => {
    const m = mark();
    const before = origin.requests.length;
    const r = await req('strict', clients.good, { path: '/hello?x=1' });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.status, 200);
    assert.equal(origin.requests.length, before + 1);
    const h = lastOriginHeaders();
    const x = new X509Certificate(clients.good!.pem);
    assert.equal(h['cloudfront-viewer-cert-present'], '1');
    assert.equal(h['cloudfront-viewer-cert-serial-number'], clients.good!.serial);
    assert.match(String(h['cloudfront-viewer-cert-serial-number']), /^[0-9a-f]{2}(:[0-9a-f]{2})*$/);
    assert.equal(h['cloudfront-viewer-cert-subject'], 'CN=good,O=Portcullis Demo,C=US');
    assert.equal(h['cloudfront-viewer-cert-issuer'], 'CN=Portcullis Demo Intermediate CA,O=Portcullis Demo,C=US');
    assert.equal(h['cloudfront-viewer-cert-sha256'], x.fingerprint256.replaceAll(':', '').toLowerCase());
    assert.match(String(h['cloudfront-viewer-cert-sha256']), /^[0-9a-f]{64}$/);
    assert.equal(h['cloudfront-viewer-cert-validity'], `NotBefore=${isoSeconds(new Date(x.validFrom))};NotAfter=${isoSeconds(new Date(x.validTo))}`);
    const pem = String(h['cloudfront-viewer-cert-pem']);
    assert.doesNotMatch(pem, /[\s]/, 'Pem header must be URL-encoded (no raw whitespace)');
    assert.equal(decodeURIComponent(pem).replace(/\s+/g, ''), clients.good!.pem.replace(/\s+/g, ''));

    const line = await logFor('strict', m);
    assert.equal(line.connectionStatus, 'Success');
    for (const k of ['eventTimestamp', 'connectionId', 'clientIp', 'clientPort', 'serverIp', 'distributionId', 'tlsProtocol', 'tlsCipher',
      'tlsHandshakeDuration', 'tlsSni', 'clientLeafCertSerialNumber', 'clientLeafCertSubject', 'clientLeafCertIssuer', 'clientLeafCertValidity']) {
      assert.ok(line[k] !== undefined && line[k] !== null && line[k] !== '', `connection log lacks ${k}: ${JSON.stringify(line)}`);
    }
    assert.equal(line.clientIp, '127.0.0.1');
    assert.equal(line.clientLeafCertSerialNumber, clients.good!.serial);
  });

  test('revoked at the CA (OCSP): closed, Failed:ClientCertRevoked', async () => {
    const m = mark();
    const before = originCount();
    const r = await req('strict', clients.ocspRevoked);
    assertClosed(r, before, 'OCSP-revoked');
    const line = await logFor('strict', m);
    assert.equal(line.connectionStatus, 'Failed:ClientCertRevoked', JSON.stringify(line));
    assert.equal(line.clientLeafCertSerialNumber, clients.ocspRevoked!.serial);
  });

  test('no certificate in required mode: closed, Failed:ClientCertMissing', async () => {
    const m = mark();
    const before = originCount();
    const r = await req('strict', undefined);
    assertClosed(r, before, 'no certificate');
    assert.equal((await logFor('strict', m)).connectionStatus, 'Failed:ClientCertMissing');
  });

  test('certificate from a CA not in the trust store: closed, Failed:ClientCertUntrusted', async () => {
    const m = mark();
    const before = originCount();
    const r = await req('strict', clients.rogue);
    assertClosed(r, before, 'untrusted CA');
    assert.equal((await logFor('strict', m)).connectionStatus, 'Failed:ClientCertUntrusted');
  });

  test('optional mode: no certificate → 200 with Present 0 only; a certificate → its headers (leading 00 serial kept)', async () => {
    const m = mark();
    const r = await req('optional', undefined, { headers: ['CloudFront-Viewer-Cert-Serial-Number: 01:02', 'CloudFront-Viewer-Cert-Present: 1'] });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.status, 200);
    const h = lastOriginHeaders();
    assert.equal(h['cloudfront-viewer-cert-present'], '0');
    for (const name of ['serial-number', 'subject', 'issuer', 'sha256', 'validity', 'pem']) {
      assert.equal(h[`cloudfront-viewer-cert-${name}`], undefined, `no CloudFront-Viewer-Cert-${name} without a certificate`);
    }
    assert.equal((await logFor('optional', m)).connectionStatus, 'Success');

    const r2 = await req('optional', clients.plain);
    assert.equal(r2.status, 200, r2.stderr);
    const h2 = lastOriginHeaders();
    assert.equal(h2['cloudfront-viewer-cert-present'], '1');
    assert.equal(h2['cloudfront-viewer-cert-serial-number'], '00:a7:30:9e:73:7b:3e:63');
    assert.equal(h2['cloudfront-viewer-cert-subject'], 'CN=Plain Client,O=Portcullis Test,C=US');
  });

  test('expired certificate: closed (Failed:ClientCertExpired); admitted with ignoreCertificateExpiry and an allowing function', async () => {
    let m = mark();
    const before = originCount();
    const r = await req('expiry', clients.expired);
    assertClosed(r, before, 'expired');
    assert.equal((await logFor('expiry', m)).connectionStatus, 'Failed:ClientCertExpired');

    m = mark();
    const ok = await req('expiryok', clients.expired);
    assert.equal(ok.status, 200, `expired + ignoreCertificateExpiry + allow-all: ${ok.stderr}`);
    assert.equal(lastOriginHeaders()['cloudfront-viewer-cert-subject'], 'CN=Expired Client,O=Portcullis Test,C=US');
    const line = await logFor('expiryok', m);
    assert.equal(line.connectionStatus, 'Success');
    assert.equal(line.connectionLogCustomData, 'allow-all');
  });

  test('OCSP on and the leaf has no AIA OCSP URL: closed, Failed:ClientCertOcspEndpointMissing, the function does not run', async () => {
    const m = mark();
    const before = originCount();
    const stderrBefore = g().stderr().length;
    const r = await req('noaia', clients.noAia);
    assertClosed(r, before, 'no AIA');
    const line = await logFor('noaia', m);
    assert.equal(line.connectionStatus, 'Failed:ClientCertOcspEndpointMissing', JSON.stringify(line));
    assert.ok(!line.connectionLogCustomData, `the function must not run (custom data: ${JSON.stringify(line.connectionLogCustomData)})`);
    assert.doesNotMatch(JSON.stringify(line), /function-ran/);
    assert.doesNotMatch(g().stderr().slice(stderrBefore), /function-ran/, 'no console.log of the function in the application log');
    // Control: the same function does run for a certificate with an OCSP URL.
    const m2 = mark();
    const ok = await req('noaia', clients.good);
    assert.equal(ok.status, 200, ok.stderr);
    assert.equal((await logFor('noaia', m2)).connectionLogCustomData, 'function-ran');
  });

  test('responder down: closed without a function (Failed:ClientCertRevocationUnknown), admitted by ocsp-soft-fail.js', async () => {
    let m = mark();
    const before = originCount();
    const r = await req('deadocsp', clients.deadresp);
    assertClosed(r, before, 'responder down, no function');
    assert.equal((await logFor('deadocsp', m)).connectionStatus, 'Failed:ClientCertRevocationUnknown');

    m = mark();
    const ok = await req('softfail', clients.deadresp);
    assert.equal(ok.status, 200, `soft-fail function should admit: ${ok.stderr}`);
    const line = await logFor('softfail', m);
    assert.equal(line.connectionStatus, 'Success');
    assert.match(String(line.connectionLogCustomData), /^soft-fail:Error:/);
  });

  test('passthrough: Client-Cert and Client-Cert-Chain (RFC 9440) at the origin, no trust-store validation', async () => {
    const m = mark();
    // A rogue (untrusted) chain is fine in passthrough: only proof of key possession.
    const r = await req('passthrough', clients.rogue, { headers: ['CloudFront-Viewer-Cert-Subject: CN=spoof', 'Client-Cert: :c3Bvb2Y=:'] });
    assert.equal(r.status, 200, r.stderr);
    const h = lastOriginHeaders();
    assert.equal(h['client-cert'], `:${rogue.leaf.der.toString('base64')}:`);
    assert.equal(h['client-cert-chain'], rogue.intermediates.slice().reverse().map((c) => `:${c.der.toString('base64')}:`).join(', '));
    assert.equal(h['cloudfront-viewer-cert-subject'], undefined, 'a client-sent CloudFront-Viewer-Cert-Subject must not reach the origin');
    assert.equal((await logFor('passthrough', m)).connectionStatus, 'Success');
  });

  test('spoofed certificate headers from the client never reach the origin', async () => {
    const r = await req('strict', clients.good, {
      headers: [
        'CloudFront-Viewer-Cert-Subject: spoof', 'CloudFront-Viewer-Cert-Serial-Number: 01', 'cloudfront-viewer-cert-present: 7',
        'Client-Cert: :c3Bvb2Y=:', 'Client-Cert-Chain: :c3Bvb2Y=:',
      ],
    });
    assert.equal(r.status, 200, r.stderr);
    const req0 = origin.requests.at(-1)!;
    assert.equal(req0.headers['cloudfront-viewer-cert-subject'], 'CN=good,O=Portcullis Demo,C=US');
    assert.equal(req0.headers['cloudfront-viewer-cert-serial-number'], clients.good!.serial);
    assert.equal(req0.headers['cloudfront-viewer-cert-present'], '1');
    assert.equal(req0.headers['client-cert'], undefined);
    assert.equal(req0.headers['client-cert-chain'], undefined);
    assert.doesNotMatch(req0.rawHeaders.join('\n'), /spoof|c3Bvb2Y/);
  });

  test('HTTP/2: curl --http2 gets 200 over h2 and the origin gets the request with the certificate headers', async () => {
    const before = origin.requests.length;
    const r = await req('strict', clients.good, { http2: true, path: '/h2-check' });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.status, 200);
    assert.equal(r.httpVersion, '2');
    assert.equal(origin.requests.length, before + 1);
    assert.equal(origin.requests.at(-1)!.url, '/h2-check');
    assert.equal(origin.requests.at(-1)!.headers['cloudfront-viewer-cert-serial-number'], clients.good!.serial);
  });

  test('origin down: 502', async () => {
    const r = await req('origindown', clients.plain);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.status, 502);
  });

  test('revoked by a KVS put while the gateway runs (kvs-serial-revocation.js): closed within 1 s, Failed:ConnectionFunctionDenied', async (t) => {
    const who = clients.kvsRevoked!;
    const ok = await req('kvsfn', who);
    assert.equal(ok.status, 200, `before the put the client is admitted: ${ok.stderr}`);
    await kvsPut('revoked', who.serial.replaceAll(':', ''), 'revoked by the e2e test');
    const committed = Date.now();
    let m = mark();
    const res = await pollUntil(committed, async () => { m = mark(); return req('kvsfn', who); }, (r) => r.status === 0);
    t.diagnostic(`KVS put applied after ≤ ${res.elapsed} ms (${res.attempts} attempts)`);
    assert.ok(res.elapsed <= LIVE_CHANGE_BOUND_MS + LIVE_CHANGE_MARGIN_MS);
    assert.notEqual(res.last.exitCode, 0);
    const line = await logFor('kvsfn', m);
    assert.equal(line.connectionStatus, 'Failed:ConnectionFunctionDenied', JSON.stringify(line));
    assert.equal(line.connectionLogCustomData, `revoked-by-kvs:${who.serial}`);
    // Another certificate is still admitted.
    assert.equal((await req('kvsfn', clients.good)).status, 200);
  });

  test('a function published while the gateway runs applies to the next connections (update alone does not)', async (t) => {
    let m = mark();
    assert.equal((await req('publish', clients.plain)).status, 200);
    assert.equal((await logFor('publish', m)).connectionLogCustomData, 'switch:v1');

    const upd = await g().cli(['function', 'update', 'switchable', '--code', join(dir, 'switch-v2.js')]);
    assert.equal(upd.code, 0, `function update: ${upd.stderr}`);
    // DEVELOPMENT changed, LIVE did not: still v1 (give the change feed time to deliver anything it would).
    await new Promise((res) => setTimeout(res, 300));
    m = mark();
    assert.equal((await req('publish', clients.plain)).status, 200, 'an update without publish must not change what runs');
    assert.equal((await logFor('publish', m)).connectionLogCustomData, 'switch:v1');

    const pub = await g().cli(['function', 'publish', 'switchable']);
    assert.equal(pub.code, 0, `function publish: ${pub.stderr}`);
    const published = Date.now();
    let first: CurlResult | undefined;
    const res = await pollUntil(published, async () => { m = mark(); const r = await req('publish', clients.plain); first ??= r; return r; }, (r) => r.status === 0);
    t.diagnostic(`publish applied after ≤ ${res.elapsed} ms (${res.attempts} attempts; first connection after publish: ${first!.status === 0 ? 'v2' : 'still v1'})`);
    const line = await logFor('publish', m);
    assert.equal(line.connectionStatus, 'Failed:ConnectionFunctionDenied');
    assert.equal(line.connectionLogCustomData, 'switch:v2');
  });

  test('session resumption is off by default: s_client -reconnect (TLS 1.2) and -sess_out/-sess_in (TLS 1.3) never resume', async () => {
    const opts = { host: host('strict'), port: ports.strict!, cafile: rootCa, cert: clients.good!.chain, key: clients.good!.key, certChain: pki.intermediate.certFile };
    const sess = join(dir, 'strict.sess');
    const first = await sClient({ ...opts, args: ['-sess_out', sess] });
    assert.ok(first.http200, `first connection admitted: ${first.stdout.slice(-500)} ${first.stderr}`);
    const second = await sClient({ ...opts, args: ['-sess_in', sess] });
    assert.ok(second.http200, `second connection admitted: ${second.stderr}`);
    assert.equal(second.reused, false, `TLS 1.3 session must not be resumed: ${handshakeLines(second.stdout)}`);
    assert.match(second.stdout, /\bNew, TLSv1\.3/);
    // -reconnect only resumes over TLS 1.2 with OpenSSL 3.0 (see helpers/gateway.ts sClient).
    const rc = await sClient({ ...opts, args: ['-reconnect', '-tls1_2'] });
    assert.match(rc.stdout, /\bNew, TLSv1\.2/, `TLS 1.2 handshake expected: ${rc.stderr}`);
    assert.doesNotMatch(rc.stdout, /\bReused\b/, `-reconnect must not resume: ${handshakeLines(rc.stdout)}`);
    assert.ok(rc.http200, 'the last (full) handshake is admitted');
  });

  test('session resumption enabled: resumed connections are gated again — a KVS revocation after the first handshake refuses the resumed one', async (t) => {
    const who = clients.resumer!;
    const opts = { host: host('resume'), port: ports.resume!, cafile: rootCa, cert: who.chain, key: who.key, certChain: pki.intermediate.certFile };
    // TLS 1.3: the server sends no new ticket on a resumed connection, so s_client's
    // -sess_out writes nothing there; the first ticket is offered again (the server accepts reuse).
    const s13a = join(dir, 'resume-13a.sess');
    const s12 = join(dir, 'resume-12.sess');
    const first = await sClient({ ...opts, args: ['-sess_out', s13a] });
    assert.ok(first.http200, `first (full) TLS 1.3 handshake admitted: ${first.stdout.slice(-800)} ${first.stderr}`);
    let m = mark();
    const control = await sClient({ ...opts, args: ['-sess_in', s13a] });
    assert.ok(control.reused, `TLS 1.3 resumption should work on this distribution: ${handshakeLines(control.stdout)} ${control.stderr}`);
    assert.ok(control.http200, 'resumed TLS 1.3 connection admitted before the revocation');
    const controlLine = await logFor('resume', m);
    assert.equal(controlLine.connectionStatus, 'Success');
    assert.equal(controlLine.clientLeafCertSerialNumber, who.serial, 'a resumed connection still knows its leaf');
    const first12 = await sClient({ ...opts, args: ['-tls1_2', '-sess_out', s12] });
    assert.ok(first12.http200, 'first TLS 1.2 handshake admitted');

    await kvsPut('revoked', who.serial.replaceAll(':', ''), 'revoked after the first handshake');
    const committed = Date.now();
    // Wait until a full handshake sees the revocation (same KVS, same function).
    const applied = await pollUntil(committed, () => req('resume', who), (r) => r.status === 0);
    t.diagnostic(`KVS put applied after ≤ ${applied.elapsed} ms`);

    for (const [label, args] of [['TLS 1.3', ['-sess_in', s13a]], ['TLS 1.2', ['-tls1_2', '-sess_in', s12]]] as const) {
      m = mark();
      const before = originCount();
      const resumed = await sClient({ ...opts, args: [...args] });
      assert.ok(resumed.reused, `${label}: the server should resume the offered session (else this case proves nothing): ${handshakeLines(resumed.stdout)}`);
      assert.equal(resumed.http200, false, `${label}: a resumed connection of a revoked certificate must be refused`);
      assert.equal(originCount(), before, `${label}: nothing reaches the origin`);
      const line = await logFor('resume', m);
      assert.equal(line.connectionStatus, 'Failed:ConnectionFunctionDenied', `${label}: ${JSON.stringify(line)}`);
      assert.equal(line.connectionLogCustomData, `revoked-by-kvs:${who.serial}`);
    }
  });

  test('session resumption enabled: a session whose first connection the client closed right after the handshake still resumes and is admitted', async (t) => {
    const who = clients.earlyClose!;
    const opts = { host: host('resume'), port: ports.resume!, cafile: rootCa, cert: who.chain, key: who.key, certChain: pki.intermediate.certFile };
    // Control: resumption is on for this distribution (TLS 1.2 -reconnect shows "Reused").
    // (Another certificate: the gate remembers chains per leaf, and this one must start unknown.)
    const rc = await sClient({ ...opts, cert: clients.good!.chain, key: clients.good!.key, args: ['-reconnect', '-tls1_2'] });
    assert.match(rc.stdout, /\bReused, TLSv1\.2/, `resumption should work on this distribution: ${handshakeLines(rc.stdout)} ${rc.stderr}`);
    // A full TLS 1.2 handshake the client closes at once (as s_client -reconnect does
    // between its connections): the gate allows it but the client is gone before the
    // hand-over. Retried with new sessions until that ordering happens (it is a race).
    let sess = '';
    let hit = false;
    for (let i = 0; i < 6 && !hit; i++) {
      sess = join(dir, `early-close-${i}.sess`);
      const m = mark();
      await sClient({ ...opts, args: ['-tls1_2', '-sess_out', sess], input: '', ignEof: false });
      const line = await g().waitForLog((l) => l.distributionName === 'resume' && l.tlsSessionReused === false, 5000, m);
      hit = line.connectionStatus === 'Success' && /closed the connection before it was handed/.test(String(line.reason));
    }
    if (!hit) {
      t.skip('the client never closed before the hand-over in 6 attempts; the case was not reached');
      return;
    }
    const m = mark();
    const resumed = await sClient({ ...opts, args: ['-tls1_2', '-sess_in', sess] });
    assert.ok(resumed.reused, `the session should be resumed: ${handshakeLines(resumed.stdout)}`);
    const line = await logFor('resume', m);
    assert.equal(line.connectionStatus, 'Success', `a resumed session of a certificate the full handshake admitted must be admitted too (SPEC 2: "exactly like a full handshake"); reason: ${String(line.reason)}`);
    assert.ok(resumed.http200);
  });

  test('session resumption on a port shared by two distributions: no session is resumed there (a resumed TLS 1.2 session has no SNI), so every connection is gated by the distribution its SNI chose', async () => {
    // Both distributions ask for resumption, but they share a port: the gateway turns it
    // off for that listener (warning in the gateway log) rather than gate a resumed
    // session, which carries no SNI, against a guessed distribution.
    const opts = { host: host('rsni-b'), port: ports.rsni!, cafile: rootCa, cert: clients.good!.chain, key: clients.good!.key, certChain: pki.intermediate.certFile };
    const sess = join(dir, 'rsni-b.sess');
    const b0 = originB.requests.length;
    const first = await sClient({ ...opts, args: ['-tls1_2', '-sess_out', sess] });
    assert.ok(first.http200, `full handshake to rsni-b admitted: ${first.stderr}`);
    assert.equal(originB.requests.length, b0 + 1, 'full handshake: request at rsni-b\'s origin');
    const m = mark();
    const a0 = origin.requests.length;
    const second = await sClient({ ...opts, args: ['-tls1_2', '-sess_in', sess] });
    assert.equal(second.reused, false, `a shared listener must not resume sessions: ${handshakeLines(second.stdout)}`);
    assert.ok(second.http200, `the new full handshake to rsni-b is admitted: ${second.stderr}`);
    const line = await g().waitForLog((l) => l.distributionName === 'rsni-a' || l.distributionName === 'rsni-b', 5000, m);
    assert.equal(line.distributionName, 'rsni-b', `connection with SNI ${host('rsni-b')} gated as ${String(line.distributionName)}; log: ${JSON.stringify(line)}`);
    assert.equal(line.tlsSni, host('rsni-b'));
    assert.equal(line.tlsSessionReused, false);
    assert.equal(origin.requests.length, a0, 'nothing may reach rsni-a\'s origin');
    assert.equal(originB.requests.length, b0 + 2, 'the second request reaches rsni-b\'s origin');
  });

  test('two distributions on one port, chosen by SNI: different origins and different trust stores', async () => {
    const a0 = origin.requests.length;
    const b0 = originB.requests.length;
    const ra = await req('sni-a', clients.plain, { path: '/sni-a' });
    assert.equal(ra.status, 200, ra.stderr);
    assert.equal(origin.requests.length, a0 + 1);
    assert.equal(origin.requests.at(-1)!.url, '/sni-a');
    const rb = await req('sni-b', clients.good, { path: '/sni-b' });
    assert.equal(rb.status, 200, rb.stderr);
    assert.equal(originB.requests.length, b0 + 1);
    assert.equal(originB.requests.at(-1)!.url, '/sni-b');
    // Trust stores differ: the plain chain is trusted by sni-a only, the demo chain by sni-b only.
    let m = mark();
    const before = originCount();
    assertClosed(await req('sni-b', clients.plain), before, 'plain chain on sni-b');
    assert.equal((await logFor('sni-b', m)).connectionStatus, 'Failed:ClientCertUntrusted');
    m = mark();
    assertClosed(await req('sni-a', clients.good), before, 'demo chain on sni-a');
    assert.equal((await logFor('sni-a', m)).connectionStatus, 'Failed:ClientCertUntrusted');
  });

  test('admin /metrics (bearer token) counts connections by distribution and status', async () => {
    assert.equal((await g().admin('/metrics', false)).status, 401, '/metrics without the token');
    const res = await g().admin('/metrics');
    assert.equal(res.status, 200);
    const samples = res.body.split('\n').filter((l) => l && !l.startsWith('#'));
    const logs = g().connectionLogLines();
    const idOf = (name: string): string => String(logs.find((l) => l.tlsSni === host(name))?.distributionId ?? name);
    const count = (name: string, status: string): number | undefined => {
      const keys = new Set([name, idOf(name)]);
      const hit = samples.find((l) => /connection/i.test(l) && [...keys].some((k) => l.includes(`"${k}"`)) && l.includes(status) && !/_bucket|_sum|_count\{/.test(l));
      return hit === undefined ? undefined : Number(hit.split(' ').at(-1));
    };
    const expected: [string, string][] = [
      ['strict', 'Success'], ['strict', 'ClientCertRevoked'], ['strict', 'ClientCertMissing'], ['strict', 'ClientCertUntrusted'],
      ['kvsfn', 'ConnectionFunctionDenied'], ['deadocsp', 'ClientCertRevocationUnknown'], ['noaia', 'ClientCertOcspEndpointMissing'],
    ];
    const missing = expected.filter(([d, s]) => !((count(d, s) ?? 0) >= 1));
    assert.deepEqual(missing, [], `connection counters missing in /metrics; connection-related samples:\n${samples.filter((l) => /connection/i.test(l)).slice(0, 40).join('\n')}`);
  });
});
