/**
 * Route tests of the admin REST API (fastify inject) against a real SQLite store in a
 * temp directory: every route, auth failures, validation errors, ETag rules (missing,
 * stale, concurrent writers), id-or-name addressing, the error mapping.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance, type InjectOptions, type LightMyRequestResponse } from 'fastify';
import { openSqliteStore, type Store } from '../store/index.js';
import { OcspCache } from '../revocation/index.js';
import { createAdminApp, registerApiRoutes, openApiDocument, type AdminApiOptions } from './index.js';
import { buildChain, generateKey, issueCertificate } from '../../test/helpers/pki.js';
import { issueCrl } from '../../test/helpers/crl.js';

const TOKEN = 'test-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const chainP = buildChain({ name: 'AdminApi' });

interface Ctx {
  app: FastifyInstance;
  store: Store;
  dir: string;
  req(method: InjectOptions['method'], url: string, opts?: { body?: unknown; ifMatch?: string; headers?: Record<string, string> }): Promise<LightMyRequestResponse>;
}

async function setup(t: TestContext, api: Partial<AdminApiOptions> = {}, onError?: (err: unknown) => void): Promise<Ctx> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-admin-api-'));
  const store = await openSqliteStore({ dataDir: dir });
  const app = await createAdminApp({
    token: TOKEN,
    metrics: async () => ({ contentType: 'text/plain', body: '' }),
    readiness: () => ({ ready: true, status: 'ok', reasons: [] }),
    api: { store, ...api },
    ...(onError ? { onError } : {}),
  });
  t.after(async () => {
    await app.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    app, store, dir,
    req: (method, url, opts = {}) => app.inject({
      method, url,
      headers: { ...AUTH, ...(opts.ifMatch !== undefined ? { 'if-match': opts.ifMatch } : {}), ...opts.headers },
      ...(opts.body !== undefined ? { payload: opts.body as object } : {}),
    }),
  };
}

function err(res: LightMyRequestResponse): { code: string; message: string } {
  return (res.json() as { error: { code: string; message: string } }).error;
}

function expectError(res: LightMyRequestResponse, status: number, code: string, message?: RegExp): void {
  assert.equal(res.statusCode, status, res.body);
  assert.equal(err(res).code, code, res.body);
  if (message) assert.match(err(res).message, message);
}

const ALLOW = 'function connectionHandler(connection) { console.log("ip " + connection.clientIp); connection.logCustomData("cn=" + (connection.clientCertificate ? "yes" : "no")); connection.allow(); }';

test('auth: every route but /healthz needs the bearer token', async (t) => {
  const { app } = await setup(t);
  assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
  for (const [method, url] of [['GET', '/v1/openapi.json'], ['GET', '/v1/trust-stores'], ['POST', '/v1/key-value-stores'], ['DELETE', '/v1/ocsp-cache'], ['GET', '/v1/connection-functions/x/code']] as const) {
    const none = await app.inject({ method, url });
    expectError(none, 401, 'AccessDenied');
    assert.equal(none.headers['www-authenticate'], 'Bearer');
    expectError(await app.inject({ method, url, headers: { authorization: 'Bearer wrong-token-0123456789' } }), 401, 'AccessDenied');
    expectError(await app.inject({ method, url, headers: { authorization: `Basic ${TOKEN}` } }), 401, 'AccessDenied');
  }
});

test('openapi.json lists exactly the registered routes', async (t) => {
  const { req, store } = await setup(t);
  const res = await req('GET', '/v1/openapi.json');
  assert.equal(res.statusCode, 200);
  const doc = res.json() as { openapi: string; paths: Record<string, Record<string, unknown>> };
  assert.match(doc.openapi, /^3\./);
  const documented = new Set<string>();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const m of Object.keys(item)) if (m !== 'parameters') documented.add(`${m.toUpperCase()} ${path}`);
  }
  // The routes registerApiRoutes adds, collected from fastify itself.
  const probe = Fastify();
  const registered = new Set<string>(['GET /healthz', 'GET /readyz', 'GET /metrics', 'GET /v1/openapi.json', 'GET /v1/stats', 'GET /v1/connection-log/stream']);
  probe.addHook('onRoute', (r) => {
    for (const m of [r.method].flat()) if (m !== 'HEAD') registered.add(`${m} ${r.url.replace(/:(\w+)/g, '{$1}')}`);
  });
  const close = registerApiRoutes(probe, { store });
  await probe.ready();
  await close();
  await probe.close();
  assert.deepEqual([...documented].sort(), [...registered].sort());
  assert.deepEqual(openApiDocument(), doc);
});

test('errors: bad JSON, unknown route, unexpected failure → Internal without internals', async (t) => {
  const seen: unknown[] = [];
  const { req } = await setup(t, {
    ocspCache: { list: async () => { throw new Error('secret /var/lib/x detail'); }, purge: async () => 0 },
  }, (e) => seen.push(e));
  const bad = await req('POST', '/v1/trust-stores', { body: '{"name":', headers: { 'content-type': 'application/json' } });
  expectError(bad, 400, 'InvalidArgument');
  expectError(await req('POST', '/v1/trust-stores'), 400, 'InvalidArgument', /JSON object is required/);
  expectError(await req('POST', '/v1/trust-stores', { body: '{"__proto__":{"x":1},"name":"a","caBundlePem":""}', headers: { 'content-type': 'application/json' } }), 400, 'InvalidArgument');
  // An empty JSON body is no body: fine where none is needed.
  expectError(await req('DELETE', '/v1/trust-stores/none', { body: '', headers: { 'content-type': 'application/json' }, ifMatch: 'E1' }), 404, 'EntityNotFound');
  expectError(await req('GET', '/v1/nothing-here'), 404, 'EntityNotFound');
  const internal = await req('GET', '/v1/ocsp-cache');
  expectError(internal, 500, 'Internal');
  assert.doesNotMatch(internal.body, /secret|\/var\/lib/);
  assert.equal(seen.length, 1);
});

test('trust stores: create, list, get by name and id, update under If-Match, delete', async (t) => {
  const { req } = await setup(t);
  const c = await chainP;
  const bundle = c.root.pem + c.intermediates[0]!.pem;
  expectError(await req('POST', '/v1/trust-stores', { body: { name: 'devices' } }), 400, 'InvalidArgument', /^caBundlePem: required$/);
  expectError(await req('POST', '/v1/trust-stores', { body: { name: 'devices', caBundlePem: bundle, useClientCertificateOcspEndpoint: 'yes', extra: 1 } }), 400, 'InvalidArgument', /useClientCertificateOcspEndpoint: expected true or false.*; extra: unknown key/);
  expectError(await req('POST', '/v1/trust-stores', { body: { name: 'bad name!', caBundlePem: bundle } }), 400, 'InvalidArgument', /invalid trust store name/);
  const created = await req('POST', '/v1/trust-stores', { body: { name: 'devices', caBundlePem: bundle, useClientCertificateOcspEndpoint: true } });
  assert.equal(created.statusCode, 201, created.body);
  const ts = created.json() as { Id: string; ETag: string; Status: string; CertificateCount: number };
  assert.equal(created.headers.etag, `"${ts.ETag}"`);
  assert.equal(ts.Status, 'active');
  assert.equal(ts.CertificateCount, 2);
  expectError(await req('POST', '/v1/trust-stores', { body: { name: 'devices', caBundlePem: bundle } }), 409, 'EntityAlreadyExists');
  const failed = await req('POST', '/v1/trust-stores', { body: { name: 'broken', caBundlePem: c.leaf.pem } });
  assert.equal(failed.statusCode, 201);
  assert.equal((failed.json() as { Status: string }).Status, 'failed');
  assert.match((failed.json() as { StatusReason: string }).StatusReason, /CA/);

  const listed = (await req('GET', '/v1/trust-stores')).json() as { Items: { Name: string }[]; Quantity: number };
  assert.deepEqual(listed.Items.map((i) => i.Name), ['broken', 'devices']);
  assert.equal(listed.Quantity, 2);
  const byId = await req('GET', `/v1/trust-stores/${ts.Id}`);
  assert.equal(byId.statusCode, 200);
  assert.equal(byId.headers.etag, `"${ts.ETag}"`);
  expectError(await req('GET', '/v1/trust-stores/nope'), 404, 'EntityNotFound');

  expectError(await req('PUT', '/v1/trust-stores/devices', { body: { comment: 'x' } }), 400, 'InvalidIfMatchVersion');
  expectError(await req('PUT', '/v1/trust-stores/devices', { body: { comment: 'x' }, ifMatch: 'ESTALE' }), 412, 'PreconditionFailed');
  expectError(await req('PUT', '/v1/trust-stores/devices', { body: { caBundlePem: c.leaf.pem }, ifMatch: ts.ETag }), 400, 'InvalidArgument', /rejected, nothing was changed/);
  expectError(await req('PUT', '/v1/trust-stores/devices', { body: { name: 'other' }, ifMatch: ts.ETag }), 400, 'InvalidArgument', /^name: /);
  const updated = await req('PUT', `/v1/trust-stores/${ts.Id}`, { body: { comment: 'fleet', useClientCertificateOcspEndpoint: false }, ifMatch: `"${ts.ETag}"` });
  assert.equal(updated.statusCode, 200, updated.body);
  const u = updated.json() as { ETag: string; Comment: string; UseClientCertificateOcspEndpoint: boolean };
  assert.notEqual(u.ETag, ts.ETag);
  assert.equal(updated.headers.etag, `"${u.ETag}"`);
  assert.equal(u.Comment, 'fleet');
  assert.equal(u.UseClientCertificateOcspEndpoint, false);

  expectError(await req('DELETE', '/v1/trust-stores/devices'), 400, 'InvalidIfMatchVersion');
  expectError(await req('DELETE', '/v1/trust-stores/devices', { ifMatch: ts.ETag }), 412, 'PreconditionFailed');
  assert.equal((await req('DELETE', '/v1/trust-stores/devices', { ifMatch: u.ETag })).statusCode, 204);
  expectError(await req('GET', '/v1/trust-stores/devices'), 404, 'EntityNotFound');
});

test('KVS import failure reasons never quote the source: a non-JSON server file gives the position only', async (t) => {
  const { req, dir } = await setup(t);
  const secretFile = join(dir, 'admin-token');
  writeFileSync(secretFile, 'cp2cHHiHL3-very-secret-token\n');
  const passwd = join(dir, 'passwd');
  writeFileSync(passwd, '{"data": []}\nroot:x:0:0:root:/root:/bin/bash\n');
  for (const [file, where] of [[secretFile, /line 1, column 1 \(byte offset 0\)$/], [passwd, /after the end of the JSON value at line 2, column 1 \(byte offset 13\)$/]] as const) {
    const d = (await req('POST', '/v1/key-value-stores', { body: { name: `f${Math.random().toString(36).slice(2, 8)}`, importFile: file } })).json() as { Status: string; FailureReason: string };
    assert.equal(d.Status, 'FAILED');
    assert.match(d.FailureReason, /^import file is not valid JSON: /);
    assert.match(d.FailureReason, where);
    assert.doesNotMatch(d.FailureReason, /cp2c|secret|root|bash/);
  }
  // Inline data as a string takes the same path.
  const inline = (await req('POST', '/v1/key-value-stores', { body: { name: 'inline', importData: 'hunter2hunter2' } })).json() as { FailureReason: string };
  assert.doesNotMatch(inline.FailureReason, /hunter/);
  // A URL's answer (body, Location) is not quoted either.
  const http = await import('node:http');
  const origin = http.createServer((q, res) => {
    if (q.url === '/redirect') { res.writeHead(302, { location: 'http://internal.example/secret-path' }); res.end(); return; }
    res.end('internal-secret-body');
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => origin.close(() => r())));
  const port = (origin.address() as { port: number }).port;
  for (const path of ['/redirect', '/body']) {
    const d = (await req('POST', '/v1/key-value-stores', { body: { name: `u${path.slice(1)}`, importUrl: `http://127.0.0.1:${port}${path}` } })).json() as { FailureReason: string };
    assert.doesNotMatch(d.FailureReason, /secret/, d.FailureReason);
  }
});

test('KVS keys up to maxKeyBytes work in /keys/{key} routes (maxParamLength)', async (t) => {
  const { req } = await setup(t);
  let etag = ((await req('POST', '/v1/key-value-stores', { body: { name: 'long' } })).json() as { ETag: string }).ETag;
  for (const key of ['k'.repeat(512), 'é'.repeat(256), '/'.repeat(512)]) {
    const url = `/v1/key-value-stores/long/keys/${encodeURIComponent(key)}`;
    const put = await req('PUT', url, { body: { value: 'v' }, ifMatch: etag });
    assert.equal(put.statusCode, 200, put.body);
    etag = (put.json() as { ETag: string }).ETag;
    const got = await req('GET', url);
    assert.equal(got.statusCode, 200, got.body);
    assert.equal((got.json() as { Key: string; Value: string }).Value, 'v');
    const del = await req('DELETE', url, { ifMatch: etag });
    assert.equal(del.statusCode, 200, del.body);
    etag = (del.json() as { ETag: string }).ETag;
  }
  // Over the limit: the service's answer, not the router's.
  expectError(await req('PUT', `/v1/key-value-stores/long/keys/${'k'.repeat(513)}`, { body: { value: 'v' }, ifMatch: etag }), 413, 'EntitySizeLimitExceeded');
});

test('errors: fastify\'s own errors and unsupported methods answer {"error":{"code","message"}}', async (t) => {
  const { req } = await setup(t);
  const shape = (res: LightMyRequestResponse): void => {
    const b = res.json() as Record<string, unknown>;
    assert.deepEqual(Object.keys(b), ['error'], res.body);
    assert.deepEqual(Object.keys(b.error as object).sort(), ['code', 'message'], res.body);
  };
  const badUrl = await req('GET', '/v1/key-value-stores/%E0%A4%A');
  expectError(badUrl, 400, 'InvalidArgument', /not a valid URL/);
  shape(badUrl);
  const tooLong = await req('GET', `/v1/key-value-stores/x/keys/${'k'.repeat(3000)}`);
  expectError(tooLong, 414, 'InvalidArgument', /too long/);
  shape(tooLong);
  const media = await req('POST', '/v1/trust-stores', { body: 'name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  expectError(media, 415, 'InvalidArgument', /application\/json/);
  shape(media);
  const small = await createAdminApp({ token: TOKEN, metrics: async () => ({ contentType: 'text/plain', body: '' }), readiness: () => ({ ready: true, status: 'ok', reasons: [] }), api: { store: (await setup(t)).store }, bodyLimit: 100 });
  t.after(() => small.close());
  const big = await small.inject({ method: 'POST', url: '/v1/trust-stores', headers: { ...AUTH, 'content-type': 'application/json' }, payload: JSON.stringify({ name: 'x'.repeat(200) }) });
  expectError(big, 413, 'EntitySizeLimitExceeded');
  shape(big);
  const method = await req('PATCH', '/v1/trust-stores/x');
  expectError(method, 405, 'InvalidArgument', /PATCH is not allowed/);
  assert.equal(method.headers.allow, 'DELETE, GET, HEAD, PUT');
  shape(method);
  assert.equal((await req('DELETE', '/v1/openapi.json')).headers.allow, 'GET, HEAD');
  expectError(await req('GET', '/v1/nothing-here'), 404, 'EntityNotFound');
});

test('JSON bodies: a member name given twice is refused naming its path', async (t) => {
  const { req } = await setup(t);
  const ct = { 'content-type': 'application/json' };
  expectError(await req('POST', '/v1/key-value-stores', { body: '{"name":"a","name":"b"}', headers: ct }), 400, 'InvalidArgument', /^body: duplicate member "name" in the top-level object/);
  const etag = ((await req('POST', '/v1/key-value-stores', { body: { name: 'a' } })).json() as { ETag: string }).ETag;
  expectError(await req('POST', '/v1/key-value-stores/a/keys', { body: '{"puts":[{"key":"k","value":"1","value":"2"}]}', headers: ct, ifMatch: etag }), 400, 'InvalidArgument', /duplicate member "value" in puts\[0\]/);
  // Escaped spellings are the same name.
  expectError(await req('POST', '/v1/key-value-stores', { body: '{"name":"x","n\\u0061me":"y"}', headers: ct }), 400, 'InvalidArgument', /duplicate member "name"/);
  assert.equal((await req('GET', '/v1/key-value-stores/a')).statusCode, 200);
});

test('ETags: the header is quoted, If-Match quoted or bare, a weak one is PreconditionFailed; bodies stay bare', async (t) => {
  const { req } = await setup(t);
  const created = await req('POST', '/v1/key-value-stores', { body: { name: 'e' } });
  const body = created.json() as { ETag: string };
  assert.doesNotMatch(body.ETag, /"/);
  assert.equal(created.headers.etag, `"${body.ETag}"`);
  const weak = await req('PUT', '/v1/key-value-stores/e', { body: { comment: 'x' }, ifMatch: `W/"${body.ETag}"` });
  expectError(weak, 412, 'PreconditionFailed', /weak ETag/);
  const quoted = await req('PUT', '/v1/key-value-stores/e', { body: { comment: 'x' }, ifMatch: `"${body.ETag}"` });
  assert.equal(quoted.statusCode, 200, quoted.body);
  const e2 = (quoted.json() as { ETag: string }).ETag;
  const bare = await req('PUT', '/v1/key-value-stores/e', { body: { comment: 'y' }, ifMatch: ` ${e2} ` });
  assert.equal(bare.statusCode, 200, bare.body);
  expectError(await req('PUT', '/v1/key-value-stores/e', { body: { comment: 'z' }, ifMatch: `"${e2}"` }), 412, 'PreconditionFailed');
});

test('key value stores: create with import, describe by id, update comment, keys, batch, delete', async (t) => {
  const { req, dir } = await setup(t, { kvsLimits: { maxStoreBytes: 200, maxValueBytes: 64 } });
  expectError(await req('POST', '/v1/key-value-stores', { body: { name: 'a', importFile: '/x', importData: { data: [] } } }), 400, 'InvalidArgument', /at most one of importFile, importUrl, importData/);
  expectError(await req('POST', '/v1/key-value-stores', { body: { name: 'a', importUrl: 'ftp://x' } }), 400, 'InvalidArgument', /^importUrl: must be an http/);
  expectError(await req('POST', '/v1/key-value-stores', { body: { name: 7 } }), 400, 'InvalidArgument', /^name: expected a string, got number 7$/);
  const created = await req('POST', '/v1/key-value-stores', { body: { name: 'revoked', comment: 'serials', importData: { data: [{ key: 'a', value: '1' }, { key: 'b/c', value: '2' }, { key: 'c', value: '3' }] } } });
  assert.equal(created.statusCode, 201, created.body);
  const d = created.json() as { Id: string; ETag: string; Status: string; ItemCount: number };
  assert.equal(d.Status, 'READY');
  assert.equal(d.ItemCount, 3);
  assert.equal(created.headers.etag, `"${d.ETag}"`);
  expectError(await req('POST', '/v1/key-value-stores', { body: { name: 'revoked' } }), 409, 'EntityAlreadyExists');
  // An import file on the server; a bad one leaves the store FAILED (not an error: the description says so).
  const file = join(dir, 'import.json');
  writeFileSync(file, JSON.stringify({ data: [{ key: 'k', value: 'v' }] }));
  assert.equal(((await req('POST', '/v1/key-value-stores', { body: { name: 'fromfile', importFile: file } })).json() as { ItemCount: number }).ItemCount, 1);
  const http = await import('node:http');
  const origin = http.createServer((_q, res) => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify({ data: [{ key: 'u', value: '1' }, { key: 'v', value: '2' }] })); });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => origin.close(() => r())));
  const port = (origin.address() as { port: number }).port;
  assert.equal(((await req('POST', '/v1/key-value-stores', { body: { name: 'fromurl', importUrl: `http://127.0.0.1:${port}/kvs.json` } })).json() as { ItemCount: number }).ItemCount, 2);
  const bad = (await req('POST', '/v1/key-value-stores', { body: { name: 'dup', importData: { data: [{ key: 'k', value: '1' }, { key: 'k', value: '2' }] } } })).json() as { Status: string; FailureReason: string };
  assert.equal(bad.Status, 'FAILED');
  assert.match(bad.FailureReason, /duplicate/i);

  assert.deepEqual(((await req('GET', '/v1/key-value-stores')).json() as { Items: { Name: string }[] }).Items.map((i) => i.Name), ['dup', 'fromfile', 'fromurl', 'revoked']);
  const byId = await req('GET', `/v1/key-value-stores/${d.Id}`);
  assert.equal(byId.statusCode, 200);
  assert.equal(byId.headers.etag, `"${d.ETag}"`);
  expectError(await req('GET', '/v1/key-value-stores/none'), 404, 'EntityNotFound');

  // Update (comment) under If-Match.
  expectError(await req('PUT', '/v1/key-value-stores/revoked', { body: { comment: 'x' } }), 400, 'InvalidIfMatchVersion');
  expectError(await req('PUT', '/v1/key-value-stores/revoked', { body: { comment: 'x' }, ifMatch: 'KVSTALE' }), 412, 'PreconditionFailed');
  expectError(await req('PUT', '/v1/key-value-stores/revoked', { body: {}, ifMatch: d.ETag }), 400, 'InvalidArgument', /^comment: required$/);
  const upd = await req('PUT', '/v1/key-value-stores/revoked', { body: { comment: 'CRL serials' }, ifMatch: d.ETag });
  assert.equal(upd.statusCode, 200, upd.body);
  let etag = (upd.json() as { ETag: string; Comment: string }).ETag;
  assert.equal((upd.json() as { Comment: string }).Comment, 'CRL serials');

  // Keys: list with pagination, get, put, delete, batch.
  const p1 = await req('GET', '/v1/key-value-stores/revoked/keys?maxResults=2');
  assert.equal(p1.statusCode, 200);
  assert.equal(p1.headers.etag, `"${etag}"`);
  const page1 = p1.json() as { Items: { Key: string }[]; NextToken: string };
  assert.deepEqual(page1.Items.map((i) => i.Key), ['a', 'b/c']);
  const page2 = (await req('GET', `/v1/key-value-stores/revoked/keys?maxResults=2&nextToken=${encodeURIComponent(page1.NextToken)}`)).json() as { Items: { Key: string }[]; NextToken?: string };
  assert.deepEqual(page2.Items.map((i) => i.Key), ['c']);
  assert.equal(page2.NextToken, undefined);
  expectError(await req('GET', '/v1/key-value-stores/revoked/keys?maxResults=0'), 400, 'InvalidArgument', /MaxResults/);
  expectError(await req('GET', '/v1/key-value-stores/revoked/keys?maxResults=x'), 400, 'InvalidArgument', /^maxResults: /);
  expectError(await req('GET', '/v1/key-value-stores/revoked/keys?nextToken=garbage'), 400, 'InvalidArgument');
  // prefix: only keys starting with it, in one page; repeated or malformed prefix refused.
  const pf = (await req('GET', '/v1/key-value-stores/revoked/keys?prefix=b%2F')).json() as { Items: { Key: string }[]; NextToken?: string };
  assert.deepEqual(pf.Items.map((i) => i.Key), ['b/c']);
  assert.equal(pf.NextToken, undefined);
  assert.deepEqual(((await req('GET', '/v1/key-value-stores/revoked/keys?prefix=zz')).json() as { Items: unknown[] }).Items, []);
  expectError(await req('GET', '/v1/key-value-stores/revoked/keys?prefix=a&prefix=b'), 400, 'InvalidArgument', /^prefix: give it once/);
  expectError(await req('GET', `/v1/key-value-stores/revoked/keys?prefix=${'p'.repeat(513)}`), 400, 'InvalidArgument', /longer than the longest key/);

  const got = await req('GET', '/v1/key-value-stores/revoked/keys/b%2Fc');
  assert.equal(got.statusCode, 200, got.body);
  assert.equal((got.json() as { Value: string }).Value, '2');
  assert.equal(got.headers.etag, `"${etag}"`);
  expectError(await req('GET', '/v1/key-value-stores/revoked/keys/zz'), 404, 'EntityNotFound');

  expectError(await req('PUT', '/v1/key-value-stores/revoked/keys/d', { body: { value: '4' } }), 400, 'InvalidIfMatchVersion');
  expectError(await req('PUT', '/v1/key-value-stores/revoked/keys/d', { body: { value: 4 }, ifMatch: etag }), 400, 'InvalidArgument', /^value: expected a string/);
  expectError(await req('PUT', '/v1/key-value-stores/revoked/keys/d', { body: { value: 'x'.repeat(65) }, ifMatch: etag }), 413, 'EntitySizeLimitExceeded');
  const put = await req('PUT', '/v1/key-value-stores/revoked/keys/d', { body: { value: '4' }, ifMatch: etag });
  assert.equal(put.statusCode, 200, put.body);
  const putR = put.json() as { ETag: string; ItemCount: number };
  assert.equal(putR.ItemCount, 4);
  expectError(await req('PUT', '/v1/key-value-stores/revoked/keys/e', { body: { value: '5' }, ifMatch: etag }), 412, 'PreconditionFailed');
  etag = putR.ETag;

  expectError(await req('POST', '/v1/key-value-stores/revoked/keys', { body: { puts: [{ key: 'x' }] }, ifMatch: etag }), 400, 'InvalidArgument', /^puts\[0\]\.value: required$/);
  expectError(await req('POST', '/v1/key-value-stores/revoked/keys', { body: { deletes: ['a'] }, ifMatch: etag }), 400, 'InvalidArgument', /^deletes\[0\]: expected a map/);
  expectError(await req('POST', '/v1/key-value-stores/revoked/keys', { body: { puts: [{ key: 'q', value: 'y'.repeat(60) }, { key: 'r', value: 'y'.repeat(60) }, { key: 's', value: 'y'.repeat(60) }, { key: 't', value: 'y'.repeat(60) }] }, ifMatch: etag }), 402, 'ServiceQuotaExceeded');
  const batch = await req('POST', '/v1/key-value-stores/revoked/keys', { body: { puts: [{ key: 'e', value: '5' }], deletes: [{ key: 'a' }] }, ifMatch: etag });
  assert.equal(batch.statusCode, 200, batch.body);
  etag = (batch.json() as { ETag: string }).ETag;
  assert.equal(batch.headers.etag, `"${etag}"`);

  expectError(await req('DELETE', '/v1/key-value-stores/revoked/keys/e'), 400, 'InvalidIfMatchVersion');
  const del = await req('DELETE', '/v1/key-value-stores/revoked/keys/e', { ifMatch: etag });
  assert.equal(del.statusCode, 200, del.body);
  etag = (del.json() as { ETag: string }).ETag;
  expectError(await req('DELETE', '/v1/key-value-stores/revoked/keys/e', { ifMatch: etag }), 404, 'EntityNotFound');

  expectError(await req('DELETE', '/v1/key-value-stores/revoked', { ifMatch: 'KVSTALE' }), 412, 'PreconditionFailed');
  assert.equal((await req('DELETE', `/v1/key-value-stores/${d.Id}`, { ifMatch: etag })).statusCode, 204);
  expectError(await req('GET', '/v1/key-value-stores/revoked'), 404, 'EntityNotFound');
});

test('concurrent writers with the same If-Match: exactly one wins', async (t) => {
  const { req } = await setup(t);
  const c = await req('POST', '/v1/key-value-stores', { body: { name: 'race' } });
  const etag = (c.json() as { ETag: string }).ETag;
  const results = await Promise.all(['1', '2', '3', '4'].map((v) => req('PUT', `/v1/key-value-stores/race/keys/k${v}`, { body: { value: v }, ifMatch: etag })));
  assert.deepEqual(results.map((r) => r.statusCode).sort(), [200, 412, 412, 412]);
  for (const r of results.filter((x) => x.statusCode === 412)) assert.equal(err(r).code, 'PreconditionFailed');
  assert.equal(((await req('GET', '/v1/key-value-stores/race')).json() as { ItemCount: number }).ItemCount, 1);

  const c2 = await chainP;
  const ts = await req('POST', '/v1/trust-stores', { body: { name: 'race', caBundlePem: c2.root.pem } });
  const tsEtag = (ts.json() as { ETag: string }).ETag;
  const puts = await Promise.all(['a', 'b'].map((comment) => req('PUT', '/v1/trust-stores/race', { body: { comment }, ifMatch: tsEtag })));
  assert.deepEqual(puts.map((r) => r.statusCode).sort(), [200, 412]);
});

test('import-crl: verified against a trust store by name or id, under the store ETag', async (t) => {
  const { req } = await setup(t);
  const ca = await issueCertificate({ subject: 'C=US,O=Portcullis Admin Test,CN=CRL CA', ca: true, key: await generateKey('ec-p256', 'admin-crl-ca'), notBefore: new Date(Date.now() - 86400_000), notAfter: new Date(Date.now() + 86400_000 * 30) });
  const crl = await issueCrl({ issuer: ca, entries: [{ serial: '00a1', reason: 'keyCompromise' }, { serial: '02' }] });
  const ts = (await req('POST', '/v1/trust-stores', { body: { name: 'crlca', caBundlePem: ca.pem } })).json() as { Id: string };
  const kv = (await req('POST', '/v1/key-value-stores', { body: { name: 'crl' } })).json() as { ETag: string };
  expectError(await req('POST', '/v1/key-value-stores/crl/import-crl', { body: { trustStore: 'crlca' }, ifMatch: kv.ETag }), 400, 'InvalidArgument', /exactly one of crlPem, crlDerBase64/);
  expectError(await req('POST', '/v1/key-value-stores/crl/import-crl', { body: { crlPem: crl.pem, trustStore: 'crlca' } }), 400, 'InvalidIfMatchVersion');
  expectError(await req('POST', '/v1/key-value-stores/crl/import-crl', { body: { crlPem: crl.pem, trustStore: 'nope' }, ifMatch: kv.ETag }), 404, 'EntityNotFound');
  expectError(await req('POST', '/v1/key-value-stores/crl/import-crl', { body: { crlPem: 'garbage', trustStore: 'crlca' }, ifMatch: kv.ETag }), 400, 'InvalidCrl');
  const r = await req('POST', '/v1/key-value-stores/crl/import-crl', { body: { crlDerBase64: crl.der.toString('base64'), trustStore: ts.Id }, ifMatch: kv.ETag });
  assert.equal(r.statusCode, 200, r.body);
  const out = r.json() as { ETag: string; Entries: number; ItemCount: number };
  assert.equal(out.Entries, 2);
  assert.equal(r.headers.etag, `"${out.ETag}"`);
  assert.equal((await req('GET', '/v1/key-value-stores/crl/keys/00a1')).statusCode, 200);
  expectError(await req('POST', '/v1/key-value-stores/crl/import-crl', { body: { crlPem: crl.pem, trustStore: 'crlca' }, ifMatch: kv.ETag }), 412, 'PreconditionFailed');
});

test('import-crl: a CRL signed by an intermediate is accepted with issuerChainPem chaining to the trust store (root only); a chain that does not chain is refused', async (t) => {
  const { req } = await setup(t);
  const day = 86400_000;
  const validity = { notBefore: new Date(Date.now() - day), notAfter: new Date(Date.now() + 30 * day) };
  const root = await issueCertificate({ subject: 'C=US,O=Portcullis Admin Test,CN=Chain Root CA', ca: true, key: await generateKey('ec-p256', 'admin-crl-root'), ...validity });
  const inter = await issueCertificate({ subject: 'C=US,O=Portcullis Admin Test,CN=Chain Issuing CA', ca: true, issuer: root, key: await generateKey('ec-p256', 'admin-crl-inter'), ...validity });
  const other = await issueCertificate({ subject: 'C=US,O=Portcullis Admin Test,CN=Other Root CA', ca: true, key: await generateKey('ec-p256', 'admin-crl-other'), ...validity });
  const rogue = await issueCertificate({ subject: 'C=US,O=Portcullis Admin Test,CN=Chain Issuing CA', ca: true, issuer: other, key: await generateKey('ec-p256', 'admin-crl-rogue'), ...validity });
  const leafCert = await issueCertificate({ subject: 'CN=not a CA', issuer: root, ...validity });
  const crl = await issueCrl({ issuer: inter, entries: [{ serial: '0bad' }] });
  assert.equal((await req('POST', '/v1/trust-stores', { body: { name: 'rootonly', caBundlePem: root.pem } })).statusCode, 201);
  let etag = ((await req('POST', '/v1/key-value-stores', { body: { name: 'chained' } })).json() as { ETag: string }).ETag;
  const imp = (extra: Record<string, unknown>) => req('POST', '/v1/key-value-stores/chained/import-crl', { body: { crlPem: crl.pem, trustStore: 'rootonly', ...extra }, ifMatch: etag });
  // Without the chain: refused, with a hint.
  expectError(await imp({}), 400, 'InvalidCrl', /is not in the trust store.*\. If an intermediate CA signed it, pass that intermediate .* as issuerChainPem/);
  // A same-named intermediate from another root, a non-CA certificate, garbage: refused, nothing written.
  expectError(await imp({ issuerChainPem: rogue.pem }), 400, 'InvalidArgument', /^issuerChainPem: certificate #1 .*Chain Issuing CA.* does not chain to the trust store/);
  expectError(await imp({ issuerChainPem: leafCert.pem }), 400, 'InvalidArgument', /^issuerChainPem: certificate #1 .* is not a CA certificate/);
  expectError(await imp({ issuerChainPem: 'garbage' }), 400, 'InvalidArgument', /^issuerChainPem: not a PEM certificate/);
  assert.equal(((await req('GET', '/v1/key-value-stores/chained')).json() as { ItemCount: number }).ItemCount, 0);
  // With the intermediate: accepted.
  const ok = await imp({ issuerChainPem: inter.pem });
  assert.equal(ok.statusCode, 200, ok.body);
  etag = (ok.json() as { ETag: string }).ETag;
  assert.equal((ok.json() as { Entries: number }).Entries, 1);
  assert.equal((await req('GET', '/v1/key-value-stores/chained/keys/0bad')).statusCode, 200);
});

test('connection functions: create, describe per stage, update, publish, code, test, delete', async (t) => {
  const { req } = await setup(t);
  const c = await chainP;
  expectError(await req('POST', '/v1/connection-functions', { body: { name: 'f', code: 'function connectionHandler(c) {\n  c.allow(;\n}' } }), 400, 'InvalidFunctionCode', /line 2/);
  expectError(await req('POST', '/v1/connection-functions', { body: { name: 'f', code: ALLOW, runtime: 'cloudfront-js-1.0' } }), 400, 'InvalidArgument', /^runtime: /);
  expectError(await req('POST', '/v1/connection-functions', { body: { name: 'f', code: ALLOW, keyValueStore: 'none' } }), 404, 'EntityNotFound');
  expectError(await req('POST', '/v1/connection-functions', { body: { name: 'f', code: 'x'.repeat(20000) } }), 413, 'FunctionSizeLimitExceeded');
  const created = await req('POST', '/v1/connection-functions', { body: { name: 'gate', comment: 'c1', runtime: 'cloudfront-js-2.0', code: ALLOW } });
  assert.equal(created.statusCode, 201, created.body);
  const f = created.json() as { Id: string; ETag: string; Status: string; Stage: string };
  assert.equal(f.Status, 'UNPUBLISHED');
  assert.equal(created.headers.etag, `"${f.ETag}"`);
  expectError(await req('POST', '/v1/connection-functions', { body: { name: 'gate', code: ALLOW } }), 409, 'EntityAlreadyExists');

  assert.equal((await req('GET', `/v1/connection-functions/${f.Id}`)).headers.etag, `"${f.ETag}"`);
  expectError(await req('GET', '/v1/connection-functions/gate?stage=LIVE'), 404, 'EntityNotFound', /not been published/);
  expectError(await req('GET', '/v1/connection-functions/gate?stage=PROD'), 400, 'InvalidArgument', /^stage: /);
  assert.equal(((await req('GET', '/v1/connection-functions?stage=LIVE')).json() as { Quantity: number }).Quantity, 0);
  assert.equal(((await req('GET', '/v1/connection-functions')).json() as { Quantity: number }).Quantity, 1);

  const DENY = 'function connectionHandler(connection) { connection.deny(); }';
  expectError(await req('PUT', '/v1/connection-functions/gate', { body: { code: DENY } }), 400, 'InvalidIfMatchVersion');
  expectError(await req('PUT', '/v1/connection-functions/gate', { body: { code: DENY }, ifMatch: 'ESTALE' }), 412, 'PreconditionFailed');
  expectError(await req('PUT', '/v1/connection-functions/gate?stage=LIVE', { body: { code: DENY }, ifMatch: f.ETag }), 400, 'InvalidArgument', /DEVELOPMENT/);
  expectError(await req('PUT', '/v1/connection-functions/gate', { body: { kode: DENY }, ifMatch: f.ETag }), 400, 'InvalidArgument', /^kode: unknown key$/);

  // Publish DEVELOPMENT (ALLOW) to LIVE, then change DEVELOPMENT to DENY.
  expectError(await req('POST', '/v1/connection-functions/gate/publish'), 400, 'InvalidIfMatchVersion');
  const pub = await req('POST', `/v1/connection-functions/${f.Id}/publish`, { ifMatch: f.ETag });
  assert.equal(pub.statusCode, 200, pub.body);
  assert.equal((pub.json() as { Stage: string }).Stage, 'LIVE');
  const upd = await req('PUT', '/v1/connection-functions/gate', { body: { code: DENY, comment: 'deny all' }, ifMatch: f.ETag });
  assert.equal(upd.statusCode, 200, upd.body);
  const devEtag = (upd.json() as { ETag: string }).ETag;

  const liveCode = await req('GET', '/v1/connection-functions/gate/code?stage=LIVE');
  assert.equal((liveCode.json() as { Code: string }).Code, ALLOW);
  assert.equal(liveCode.headers.etag, `"${(pub.json() as { ETag: string }).ETag}"`);
  assert.equal(((await req('GET', '/v1/connection-functions/gate/code')).json() as { Code: string }).Code, DENY);

  // Test: a PEM chain (LIVE allows, DEVELOPMENT denies), a connection object, validation.
  const live = await req('POST', '/v1/connection-functions/gate/test', { body: { stage: 'LIVE', clientCertificatePem: c.presentedPem, clientIp: '198.51.100.7' } });
  assert.equal(live.statusCode, 200, live.body);
  assert.deepEqual(live.json(), { decision: 'allow', implicit: false, customData: 'cn=yes', logs: ['ip 198.51.100.7'], computeUtilization: (live.json() as { computeUtilization: number }).computeUtilization, error: null });
  const dev = (await req('POST', '/v1/connection-functions/gate/test', { body: { connection: { connectionId: 'x', clientIp: '1.2.3.4', clientPort: 1, endpoint: 'e', distributionId: 'd' } } })).json() as { decision: string };
  assert.equal(dev.decision, 'deny');
  expectError(await req('POST', '/v1/connection-functions/gate/test', { body: {} }), 400, 'InvalidArgument', /exactly one of connection, clientCertificatePem/);
  expectError(await req('POST', '/v1/connection-functions/gate/test', { body: { connection: {}, clientIp: '1.2.3.4' } }), 400, 'InvalidArgument', /^clientIp: /);
  for (const bad of ['999.1.1.1', 'not an ip', '1.2.3.4:80', '<b>', '']) {
    expectError(await req('POST', '/v1/connection-functions/gate/test', { body: { clientCertificatePem: c.presentedPem, clientIp: bad } }), 400, 'InvalidArgument', /^clientIp: must be an IPv4 or IPv6 address/);
  }
  assert.equal((await req('POST', '/v1/connection-functions/gate/test', { body: { clientCertificatePem: c.presentedPem, clientIp: '2001:db8::7' } })).statusCode, 200);
  expectError(await req('POST', '/v1/connection-functions/gate/test', { body: { clientCertificatePem: 'not a pem' } }), 400, 'InvalidArgument');
  expectError(await req('POST', '/v1/connection-functions/nope/test', { body: { connection: {} } }), 404, 'EntityNotFound');

  expectError(await req('DELETE', '/v1/connection-functions/gate'), 400, 'InvalidIfMatchVersion');
  expectError(await req('DELETE', '/v1/connection-functions/gate', { ifMatch: f.ETag }), 412, 'PreconditionFailed');
  assert.equal((await req('DELETE', `/v1/connection-functions/${f.Id}`, { ifMatch: devEtag })).statusCode, 204);
  expectError(await req('GET', '/v1/connection-functions/gate'), 404, 'EntityNotFound');
});

test('function test: sees the associated KVS; a hostile function cannot hang the server', async (t) => {
  const { req } = await setup(t);
  await req('POST', '/v1/key-value-stores', { body: { name: 'list', importData: { data: [{ key: '1.2.3.4', value: 'blocked' }] } } });
  const KVS = "import cf from 'cloudfront';\nasync function connectionHandler(connection) { const kvs = cf.kvs(); if (await kvs.exists(connection.clientIp)) { connection.logCustomData(await kvs.get(connection.clientIp)); connection.deny(); } else connection.allow(); }";
  const created = await req('POST', '/v1/connection-functions', { body: { name: 'kv', code: KVS, keyValueStore: 'list' } });
  assert.equal(created.statusCode, 201, created.body);
  const conn = (ip: string) => ({ connection: { connectionId: 'x', clientIp: ip, clientPort: 1, endpoint: 'e', distributionId: 'd' } });
  const hit = (await req('POST', '/v1/connection-functions/kv/test', { body: conn('1.2.3.4') })).json() as { decision: string; customData: string };
  assert.deepEqual([hit.decision, hit.customData], ['deny', 'blocked']);
  assert.equal(((await req('POST', '/v1/connection-functions/kv/test', { body: conn('5.6.7.8') })).json() as { decision: string }).decision, 'allow');

  const LOOP = 'function connectionHandler(connection) { for (;;) {} }';
  await req('POST', '/v1/connection-functions', { body: { name: 'loop', code: LOOP } });
  const r = await req('POST', '/v1/connection-functions/loop/test', { body: conn('1.1.1.1') });
  assert.equal(r.statusCode, 200, r.body);
  const out = r.json() as { decision: string; error: string };
  assert.equal(out.decision, 'deny');
  assert.ok(out.error, 'the result names the failure');
  assert.equal((await req('GET', '/v1/connection-functions/loop')).statusCode, 200, 'the server still answers');
});

test('distributions: create, validation messages, get by id, update, in-use rules, delete', async (t) => {
  const { req } = await setup(t);
  const c = await chainP;
  const doc = {
    listen: '127.0.0.1:8443', aliases: ['api.example.com'], certificates: [{ certFile: '/etc/pc/server.pem', keyFile: '/etc/pc/server.key' }],
    origin: { url: 'http://127.0.0.1:8080' }, viewerMtls: { mode: 'required', trustStore: 'devices' },
  };
  expectError(await req('POST', '/v1/distributions', { body: { name: 'api', ...doc } }), 404, 'EntityNotFound', /viewerMtls\.trustStore/);
  const ts = (await req('POST', '/v1/trust-stores', { body: { name: 'devices', caBundlePem: c.root.pem } })).json() as { ETag: string };
  expectError(await req('POST', '/v1/distributions', { body: doc }), 400, 'InvalidArgument', /^name: required$/);
  expectError(await req('POST', '/v1/distributions', { body: { name: 'api', ...doc, viewerMtls: { mode: 'sometimes', trustStore: 'devices' } } }), 400, 'InvalidArgument', /viewerMtls\.mode: must be one of/);
  const created = await req('POST', '/v1/distributions', { body: { name: 'api', ...doc } });
  assert.equal(created.statusCode, 201, created.body);
  const d = created.json() as { Id: string; ETag: string; DistributionConfig: { listen: string; aliases: string[] } };
  assert.equal(d.DistributionConfig.listen, '127.0.0.1:8443');
  assert.equal(created.headers.etag, `"${d.ETag}"`);
  expectError(await req('POST', '/v1/distributions', { body: { name: 'api', ...doc } }), 409, 'EntityAlreadyExists');
  expectError(await req('POST', '/v1/distributions', { body: { name: 'api2', ...doc } }), 409, 'CNAMEAlreadyExists');
  assert.equal(((await req('GET', '/v1/distributions')).json() as { Quantity: number }).Quantity, 1);
  assert.equal((await req('GET', `/v1/distributions/${d.Id}`)).headers.etag, `"${d.ETag}"`);

  // The trust store and an associated function cannot be deleted while in use.
  expectError(await req('DELETE', '/v1/trust-stores/devices', { ifMatch: ts.ETag }), 409, 'CannotDeleteEntityWhileInUse', /"api"/);
  const fn = (await req('POST', '/v1/connection-functions', { body: { name: 'gate', code: ALLOW } })).json() as { ETag: string };
  expectError(await req('PUT', '/v1/distributions/api', { body: { ...doc, connectionFunctionAssociation: { name: 'gate' } } }), 400, 'InvalidIfMatchVersion');
  expectError(await req('PUT', '/v1/distributions/api', { body: { ...doc, connectionFunctionAssociation: { name: 'gate' } }, ifMatch: 'ESTALE' }), 412, 'PreconditionFailed');
  expectError(await req('PUT', '/v1/distributions/api', { body: { ...doc, origin: { url: 5 } }, ifMatch: d.ETag }), 400, 'InvalidArgument', /^origin\.url: /);
  const upd = await req('PUT', `/v1/distributions/${d.Id}`, { body: { name: 'api', ...doc, connectionFunctionAssociation: { name: 'gate' } }, ifMatch: d.ETag });
  assert.equal(upd.statusCode, 200, upd.body);
  const etag = (upd.json() as { ETag: string }).ETag;
  expectError(await req('DELETE', '/v1/connection-functions/gate', { ifMatch: fn.ETag }), 409, 'CannotDeleteEntityWhileInUse');

  expectError(await req('DELETE', '/v1/distributions/api'), 400, 'InvalidIfMatchVersion');
  expectError(await req('DELETE', '/v1/distributions/api', { ifMatch: d.ETag }), 412, 'PreconditionFailed');
  assert.equal((await req('DELETE', '/v1/distributions/api', { ifMatch: etag })).statusCode, 204);
  expectError(await req('GET', '/v1/distributions/api'), 404, 'EntityNotFound');
  assert.equal((await req('DELETE', '/v1/trust-stores/devices', { ifMatch: ts.ETag })).statusCode, 204);
});

test('distributions: a listen address overlapping another distribution or the admin listener is 409 CNAMEAlreadyExists naming both', async (t) => {
  const { req } = await setup(t, { adminListen: '127.0.0.1:9901' });
  const c = await chainP;
  await req('POST', '/v1/trust-stores', { body: { name: 'devices', caBundlePem: c.root.pem } });
  const doc = (listen: string, alias: string) => ({
    listen, aliases: [alias], certificates: [{ certFile: '/etc/pc/server.pem', keyFile: '/etc/pc/server.key' }],
    origin: { url: 'http://127.0.0.1:8080' }, viewerMtls: { mode: 'required', trustStore: 'devices' },
  });
  assert.equal((await req('POST', '/v1/distributions', { body: { name: 'specific', ...doc('127.0.0.1:8443', 'a.example.com') } })).statusCode, 201);
  expectError(await req('POST', '/v1/distributions', { body: { name: 'wild', ...doc('0.0.0.0:8443', 'b.example.com') } }), 409, 'CNAMEAlreadyExists', /"wild".*overlaps 127\.0\.0\.1:8443 of distribution "specific"/);
  expectError(await req('POST', '/v1/distributions', { body: { name: 'wild6', ...doc('[::]:8443', 'b.example.com') } }), 409, 'CNAMEAlreadyExists', /"specific"/);
  expectError(await req('POST', '/v1/distributions', { body: { name: 'adm', ...doc('0.0.0.0:9901', 'b.example.com') } }), 409, 'CNAMEAlreadyExists', /admin listener's address 127\.0\.0\.1:9901/);
  const other = (await req('POST', '/v1/distributions', { body: { name: 'other', ...doc('0.0.0.0:8444', 'b.example.com') } })).json() as { ETag: string };
  expectError(await req('PUT', '/v1/distributions/other', { body: doc('0.0.0.0:8443', 'b.example.com'), ifMatch: other.ETag }), 409, 'CNAMEAlreadyExists', /"other".*"specific"/);
  assert.equal((await req('POST', '/v1/distributions', { body: { name: 'shared', ...doc('127.0.0.1:8443', 'c.example.com') } })).statusCode, 201);
});

test('ocsp-cache: list and purge all, by serial, by key; 501 without a cache', async (t) => {
  const cache = new OcspCache();
  const certId = (serial: string) => ({ hashAlgorithm: '1.3.14.3.2.26', issuerNameHash: Buffer.alloc(20, 1), issuerKeyHash: Buffer.alloc(20, 2), serialNumber: Buffer.from(serial, 'hex') });
  const fill = async () => {
    for (const s of ['01', '00ff', '02']) await cache.lookup(certId(s), 'http://127.0.0.1:1/ocsp', async () => ({ kind: 'failure', errorType: 'InternalError', errorDetail: 'refused' }));
  };
  await fill();
  const { req } = await setup(t, { ocspCache: { list: async () => cache.list(), purge: async (f) => cache.purge(f) } });
  const listed = (await req('GET', '/v1/ocsp-cache')).json() as { Items: { key: string; serialNumber: string; state: string; responderUrl: string; expiresAt: string }[]; Quantity: number };
  assert.equal(listed.Quantity, 3);
  assert.equal(listed.Items[0]!.state, 'failure');
  assert.equal(listed.Items[0]!.responderUrl, 'http://127.0.0.1:1/ocsp');
  assert.ok(listed.Items[0]!.expiresAt);
  expectError(await req('DELETE', '/v1/ocsp-cache?serialNumber=zz'), 400, 'InvalidArgument', /^serialNumber: /);
  expectError(await req('DELETE', '/v1/ocsp-cache?serial=01'), 400, 'InvalidArgument', /^serial: unknown query parameter$/);
  assert.equal(((await req('DELETE', '/v1/ocsp-cache?serialNumber=00:FF')).json() as { Purged: number }).Purged, 1);
  const key = listed.Items.find((i) => i.serialNumber === '01')!.key;
  assert.equal(((await req('DELETE', `/v1/ocsp-cache?key=${encodeURIComponent(key)}`)).json() as { Purged: number }).Purged, 1);
  assert.deepEqual(cache.list().map((e) => e.serialNumber), ['02']);
  assert.equal(((await req('DELETE', '/v1/ocsp-cache')).json() as { Purged: number }).Purged, 1);
  assert.equal(cache.list().length, 0);

  const bare = await setup(t, { ocspCacheUnavailable: 'no cache here' });
  expectError(await bare.req('GET', '/v1/ocsp-cache'), 501, 'NotImplemented', /no cache here/);
  expectError(await bare.req('DELETE', '/v1/ocsp-cache'), 501, 'NotImplemented');
});
