import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildChain, issueCertificate } from '../../test/helpers/pki.js';
import { ParsedCertificate, TrustAnchorSet, validateClientChain } from '../pki/index.js';
import { PassThrough } from 'node:stream';
import type { SecureContext, TLSSocket } from 'node:tls';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { RevocationChecker } from '../revocation/index.js';
import type { DistributionDocument } from '../resources/types.js';
import { ConnectionLogWriter } from './connection-log.js';
import { Gate, MAX_PRESENTED_CERTIFICATES, PRESENTED_CERTIFICATES_COUNT_LIMIT, PathValidationMemo, certificateHeaders, memoCertificateHeaders } from './gate.js';
import { createEdgeMetrics } from './metrics.js';
import type { DistributionEntry, EdgeState } from './state.js';

const DAY = 86400_000;

describe('PathValidationMemo', () => {
  it('gives what validateClientChain gives at every instant around the validity edges, and reuses successes in between', async () => {
    const chain = await buildChain({ name: 'Memo', intermediates: 1 });
    const t0 = Date.now();
    const leaf = await issueCertificate({
      subject: 'C=US,O=Portcullis Test,CN=Memo Short Client', issuer: chain.intermediates[0]!, key: chain.leaf.key,
      eku: ['1.3.6.1.5.5.7.3.2'], notBefore: new Date(t0 - DAY), notAfter: new Date(t0 + DAY),
    });
    const presented = [ParsedCertificate.fromDer(leaf.der), ParsedCertificate.fromDer(chain.intermediates[0]!.der)];
    const anchors = new TrustAnchorSet([chain.root.cert]);
    const memo = new PathValidationMemo();
    const nb = presented[0]!.notBefore.getTime(), na = presented[0]!.notAfter.getTime();
    const instants = [t0, nb - 1, nb, nb + 1, t0 + 1000, na - 1, na, na + 1, t0, nb - 1];
    for (const ignore of [false, true]) {
      for (const now of instants) {
        const got = memo.validate(presented, anchors, now, ignore);
        const want = validateClientChain(presented, anchors, { now: new Date(now), ignoreCertificateExpiry: ignore });
        assert.equal(got.ok, want.ok, `at ${now - t0} ms, ignoreExpiry ${ignore}`);
        if (!got.ok && !want.ok) assert.equal(got.code, want.code);
      }
    }
    const a = memo.validate(presented, anchors, t0, false);
    const b = memo.validate(presented, anchors, t0 + 5000, false);
    assert.ok(a.ok && a === b, 'a success inside the window is reused');
    // Another anchor set (a trust-store change) validates again: here it does not trust the chain.
    const other = await buildChain({ name: 'MemoOther', intermediates: 0 });
    const r = memo.validate(presented, new TrustAnchorSet([other.root.cert]), t0, false);
    assert.equal(r.ok, false);
    // A different presented list (intermediate missing) is its own entry.
    assert.equal(memo.validate(presented.slice(0, 1), anchors, t0, false).ok, false);
  });
});

describe('Gate: refusals that must never fail open', () => {
  const lines: Record<string, unknown>[] = [];
  const logStream = new PassThrough();
  logStream.on('data', (b: Buffer) => { for (const l of b.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>); });
  const handed: string[] = [];
  const gate = new Gate({
    state: { trustStore: () => undefined } as unknown as EdgeState,
    functions: { invoke: () => Promise.reject(new Error('no function expected')) },
    revocation: {} as unknown as RevocationChecker,
    handler: { handle: (c) => { handed.push(c.distributionName); }, close: async () => {} },
    log: new ConnectionLogWriter(logStream, () => {}),
    metrics: createEdgeMetrics(new Registry()),
    logger: pino({ level: 'silent' }),
    now: Date.now,
  });
  const entry = (name: string, withContext = true): DistributionEntry => ({
    id: `D-${name}`, name, etag: 'E1', createdAt: 0, aliases: [`${name}.test`], listen: '127.0.0.1:1',
    document: { viewerMtls: { mode: 'passthrough', sessionResumption: true }, connectionFunctionAssociation: null, forwardCertificateHeaders: [], origin: {}, limits: {} } as unknown as DistributionDocument,
    context: withContext ? ({} as SecureContext) : undefined, contextOptions: undefined, unavailableReason: withContext ? undefined : 'TLS material does not load: boom',
  });
  const fakeSocket = (o: { servername?: string | false; reused?: boolean; chain?: Buffer[] }): TLSSocket & { destroyedCalls: number } => {
    const chain = o.chain ?? [Buffer.from('leaf')];
    const node = (i: number): unknown => (i < chain.length ? { raw: chain[i], get issuerCertificate() { return node(i + 1); } } : undefined);
    const s = {
      destroyedCalls: 0, destroyed: false, remoteAddress: '127.0.0.1', remotePort: 5, localAddress: '127.0.0.1', localPort: 1,
      servername: o.servername ?? false,
      on() { return s; }, off() { return s; },
      getProtocol: () => 'TLSv1.2', getCipher: () => ({ name: 'X' }), isSessionReused: () => o.reused ?? false,
      getPeerX509Certificate: () => node(0),
      destroy() { s.destroyedCalls++; s.destroyed = true; },
    };
    return s as unknown as TLSSocket & { destroyedCalls: number };
  };
  const last = async (): Promise<Record<string, unknown>> => { await new Promise((r) => setImmediate(r)); return lines.at(-1)!; };

  it('a resumed session on a listener shared by two distributions is refused Internal, not gated as the first', async () => {
    const listener = { address: '127.0.0.1:1', host: '127.0.0.1', distributions: [entry('a'), entry('b')], sessionResumption: false };
    const s = fakeSocket({ reused: true });
    await gate.run(s, listener, 1);
    const line = await last();
    assert.equal(line.connectionStatus, 'Failed:Internal');
    assert.match(String(line.reason), /resumed TLS session .*2 distributions share the address.*cannot be known/);
    assert.equal(s.destroyedCalls, 1);
    assert.deepEqual(handed, []);
  });

  it('a distribution without a TLS context is refused Internal with its name and why', async () => {
    const listener = { address: '127.0.0.1:1', host: '127.0.0.1', distributions: [entry('good'), entry('broken', false)], sessionResumption: false };
    await gate.run(fakeSocket({ servername: 'broken.test' }), listener, 1);
    const line = await last();
    assert.equal(line.connectionStatus, 'Failed:Internal');
    assert.equal(line.distributionName, 'broken');
    assert.match(String(line.reason), /distribution "broken" cannot serve: TLS material does not load: boom/);
    assert.deepEqual(handed, []);
  });

  it('more certificates than MAX_PRESENTED_CERTIFICATES: ClientCertMaxChainDepthExceeded with the count and the limit', async () => {
    const listener = { address: '127.0.0.1:1', host: '127.0.0.1', distributions: [entry('pt')], sessionResumption: false };
    for (const [n, text] of [[11, 'presented 11 certificates'], [12, 'presented 12 certificates'], [100, `presented more than ${PRESENTED_CERTIFICATES_COUNT_LIMIT} certificates`]] as const) {
      const chain = Array.from({ length: n }, (_, i) => Buffer.from(`cert-${i}`));
      await gate.run(fakeSocket({ servername: 'pt.test', chain }), listener, 1);
      const line = await last();
      assert.equal(line.connectionStatus, 'Failed:ClientCertMaxChainDepthExceeded', `${n}`);
      assert.match(String(line.reason), new RegExp(`${text} \\(leaf included\\); at most ${MAX_PRESENTED_CERTIFICATES} are accepted`));
    }
    assert.deepEqual(handed, []);
    // Exactly the limit is not refused for its length (passthrough then allows).
    await gate.run(fakeSocket({ servername: 'pt.test', chain: Array.from({ length: MAX_PRESENTED_CERTIFICATES }, (_, i) => Buffer.from(`c${i}`)) }), listener, 1);
    assert.notEqual((await last()).connectionStatus, 'Failed:ClientCertMaxChainDepthExceeded');
  });
});

describe('memoCertificateHeaders', () => {
  it('gives what certificateHeaders gives; one frozen object per (document, leaf); passthrough per connection', async () => {
    const chain = await buildChain({ name: 'Hdr', intermediates: 1 });
    const leaf = ParsedCertificate.fromDer(chain.leaf.der);
    const other = ParsedCertificate.fromDer((await buildChain({ name: 'Hdr2', intermediates: 0 })).leaf.der);
    const inter = ParsedCertificate.fromDer(chain.intermediates[0]!.der);
    const doc = (mode: string, names: string[]): DistributionDocument => ({ viewerMtls: { mode }, forwardCertificateHeaders: names } as unknown as DistributionDocument);
    const verify = doc('verify', ['CloudFront-Viewer-Cert-Serial-Number', 'CloudFront-Viewer-Cert-Present', 'CloudFront-Viewer-Cert-Subject']);
    const a = memoCertificateHeaders(verify, [leaf, inter]);
    assert.deepEqual(a, certificateHeaders(verify, [leaf, inter]));
    assert.ok(Object.isFrozen(a));
    assert.equal(memoCertificateHeaders(verify, [leaf]), a, 'same document and leaf: the same object');
    const b = memoCertificateHeaders(verify, [other]);
    assert.notEqual(b, a);
    assert.deepEqual(b, certificateHeaders(verify, [other]));
    // A new document (the distribution changed) is computed again with its own header list.
    const fewer = doc('verify', ['CloudFront-Viewer-Cert-Present']);
    assert.deepEqual(memoCertificateHeaders(fewer, [leaf]), certificateHeaders(fewer, [leaf]));
    assert.deepEqual(Object.keys(memoCertificateHeaders(fewer, [leaf])), ['CloudFront-Viewer-Cert-Present']);
    // No certificate: Present 0 (when asked for).
    assert.deepEqual(memoCertificateHeaders(verify, []), certificateHeaders(verify, []));
    // Passthrough: the chain as sent, built each time.
    const pt = doc('passthrough', []);
    const p1 = memoCertificateHeaders(pt, [leaf, inter]);
    assert.deepEqual(p1, certificateHeaders(pt, [leaf, inter]));
    assert.deepEqual(memoCertificateHeaders(pt, [leaf]), certificateHeaders(pt, [leaf]));
  });
});
