/**
 * The tool routes (tools.ts): certificate inspection (serial as the connection object
 * shows it, its KVS key, subject, expiry, key type), the decision matrix of a stage in
 * the sandbox worker (the associated KVS's data, unsafe rows flagged), and the test
 * route's synthetic `ocspStatus`.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { openSqliteStore } from '../store/index.js';
import { createAdminApp } from './index.js';
import { buildChain, issueCertificate } from '../../test/helpers/pki.js';
import { OID } from '../pki/index.js';

const TOKEN = 'tools-test-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const KVS_REVOCATION = readFileSync(new URL('../../examples/functions/kvs-serial-revocation.js', import.meta.url), 'utf8');

async function setup(t: TestContext): Promise<FastifyInstance> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-tools-'));
  const store = await openSqliteStore({ dataDir: dir });
  const app = await createAdminApp({
    token: TOKEN, metrics: async () => ({ contentType: 'text/plain', body: '' }), readiness: () => ({ ready: true, status: 'ok', reasons: [] }), api: { store },
  });
  t.after(async () => { await app.close(); await store.close(); rmSync(dir, { recursive: true, force: true }); });
  return app;
}

const post = (app: FastifyInstance, url: string, payload: object, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url, headers: { ...AUTH, ...headers }, payload });

test('POST /v1/certificates/inspect: each certificate with serial, KVS key, names, validity and key type; bad PEM named', async (t) => {
  const app = await setup(t);
  const chain = await buildChain({ name: 'Inspect', keyType: 'ec-p256' });
  const leaf = await issueCertificate({ subject: 'CN=High Bit Serial', issuer: chain.intermediates[0]!, serial: '80a1', eku: [OID.kpClientAuth], key: 'rsa-2048' });
  const r = await post(app, '/v1/certificates/inspect', { pem: leaf.pem + chain.intermediates[0]!.pem });
  assert.equal(r.statusCode, 200, r.body);
  const body = r.json() as { Quantity: number; Items: Record<string, unknown>[] };
  assert.equal(body.Quantity, 2);
  const [l, i] = body.Items as [Record<string, unknown>, Record<string, unknown>];
  assert.equal(l.SerialNumber, '80:a1', 'content octets as encoded');
  assert.equal(l.KvsKey, '80a1');
  assert.equal(l.Subject, 'CN=High Bit Serial');
  assert.match(String(l.Issuer), /CN=Inspect Intermediate CA 1/);
  assert.equal(l.KeyType, 'RSA 2048');
  assert.equal(l.IsCA, false);
  assert.match(String(l.NotAfter), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.equal(i.KeyType, 'EC P-256');
  assert.equal(i.IsCA, true);
  assert.equal(i.Index, 1);

  const bad = await post(app, '/v1/certificates/inspect', { pem: 'hello' });
  assert.equal(bad.statusCode, 400);
  assert.match((bad.json() as { error: { message: string } }).error.message, /^pem: /);
  // Garbage (here: a long run of bytes that a DER parser would read as one huge certificate) is "not a PEM certificate".
  for (const garbage of ['hello', `0\x82${'A'.repeat(5000)}`, 'MIIB' + 'A'.repeat(2000)]) {
    const g = await post(app, '/v1/certificates/inspect', { pem: garbage });
    assert.equal(g.statusCode, 400);
    const m = (g.json() as { error: { message: string } }).error.message;
    assert.match(m, /^pem: not a PEM certificate \(expected -----BEGIN CERTIFICATE-----/);
    assert.doesNotMatch(m, /trailing bytes/);
  }
  const broken = await post(app, '/v1/certificates/inspect', { pem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' });
  assert.equal(broken.statusCode, 400);
  assert.equal((await post(app, '/v1/certificates/inspect', { pem: 'x', other: 1 })).statusCode, 400);
  assert.equal((await app.inject({ method: 'POST', url: '/v1/certificates/inspect', payload: { pem: leaf.pem } })).statusCode, 401);
});

test('POST /v1/connection-functions/{id}/matrix: 128 rows over the associated KVS, unsafe rows flagged; stage and PEM honoured', async (t) => {
  const app = await setup(t);
  assert.equal((await post(app, '/v1/key-value-stores', { name: 'revoked', importData: { data: [{ key: 'deadbeef', value: 'x' }] } })).statusCode, 201);
  assert.equal((await post(app, '/v1/connection-functions', { name: 'kvsfn', code: KVS_REVOCATION, keyValueStore: 'revoked' })).statusCode, 201);
  const r = await post(app, '/v1/connection-functions/kvsfn/matrix', {});
  assert.equal(r.statusCode, 200, r.body);
  const m = r.json() as { stage: string; rows: { leafStatus: string; kvs: string; decision: string; revokedAllowed: boolean; customData?: string }[]; revokedAllowed: number };
  assert.equal(m.stage, 'DEVELOPMENT');
  assert.equal(m.rows.length, 128);
  // The function only looks at the KVS: a hit denies, a miss allows whatever OCSP said.
  assert.ok(m.rows.filter((x) => x.kvs === 'hit').every((x) => x.decision === 'deny' && /^revoked-by-kvs:/.test(x.customData ?? '')));
  assert.ok(m.rows.filter((x) => x.kvs === 'miss').every((x) => x.decision === 'allow'));
  const unsafe = m.rows.filter((x) => x.revokedAllowed);
  assert.equal(m.revokedAllowed, unsafe.length);
  assert.ok(unsafe.length > 0 && unsafe.every((x) => x.kvs === 'miss'));
  assert.match(String(r.headers.etag), /^".+"$/);

  const chain = await buildChain({ name: 'MatrixPem' });
  const withPem = await post(app, '/v1/connection-functions/kvsfn/matrix', { clientCertificatePem: chain.presentedPem, clientIps: ['192.0.2.1'] });
  assert.equal(withPem.statusCode, 200, withPem.body);
  assert.equal((withPem.json() as { rows: unknown[] }).rows.length, 32);
  assert.equal((await post(app, '/v1/connection-functions/kvsfn/matrix', { stage: 'LIVE' })).statusCode, 404, 'not published: no LIVE stage');
  assert.equal((await post(app, '/v1/connection-functions/nope/matrix', {})).statusCode, 404);
  assert.equal((await post(app, '/v1/connection-functions/kvsfn/matrix', { clientCertificatePem: 'x' })).statusCode, 400);
  // clientIps: only IP addresses (node:net isIP), the bad entry named.
  assert.equal((await post(app, '/v1/connection-functions/kvsfn/matrix', { clientIps: ['2001:db8::1', '10.0.0.1'] })).statusCode, 200);
  for (const bad of ['999.1.1.1', 'not an ip', '1.2.3.4:80', '<b>', '[2001:db8::1]', '']) {
    const r = await post(app, '/v1/connection-functions/kvsfn/matrix', { clientIps: ['192.0.2.1', bad] });
    assert.equal(r.statusCode, 400, bad);
    assert.match((r.json() as { error: { message: string } }).error.message, /^clientIps\[1\]: must be an IPv4 or IPv6 address/, bad);
  }
});

test('POST …/test with ocspStatus: a synthetic OCSP result per certificate; refused with revocationStatus', async (t) => {
  const app = await setup(t);
  const code = 'async function connectionHandler(c) { const v = c.clientCertificate.revocationStatus; c.logCustomData(v.certificates.leaf.status + "/" + (v.certificates.intermediates[0] || {}).status + "/" + v.chainValidity); return c.allow(); }';
  assert.equal((await post(app, '/v1/connection-functions', { name: 'ocspfn', code })).statusCode, 201);
  const chain = await buildChain({ name: 'OcspStatus' });
  const run = async (body: object) => post(app, '/v1/connection-functions/ocspfn/test', { clientCertificatePem: chain.presentedPem, ...body });
  const revoked = await run({ ocspStatus: { leaf: 'Revoked', intermediates: 'Good' } });
  assert.equal(revoked.statusCode, 200, revoked.body);
  assert.equal((revoked.json() as { customData: string }).customData, 'Revoked/Good/Invalid');
  assert.equal(((await run({ ocspStatus: { leaf: 'Unknown' } })).json() as { customData: string }).customData.split('/').slice(0, 2).join('/'), 'Unknown/Unknown');
  assert.equal(((await run({})).json() as { customData: string }).customData.split('/').slice(0, 2).join('/'), 'Good/Good');
  assert.equal((await run({ ocspStatus: { leaf: 'Maybe' } })).statusCode, 400);
  assert.equal((await run({ ocspStatus: { leaf: 'Good' }, revocationStatus: {} })).statusCode, 400);
});
