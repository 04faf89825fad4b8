import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { openSqliteStore, type Store } from '../store/index.js';
import {
  CannotDeleteEntityWhileInUseError, CnameAlreadyExistsError, EntityAlreadyExistsError, EntityNotFoundError, InvalidArgumentError,
  InvalidIfMatchVersionError, PreconditionFailedError,
} from '../errors.js';
import { buildChain, issueCertificate } from '../../test/helpers/pki.js';
import { DistributionService, TrustStoreService, DISTRIBUTION_DEFAULTS, parseDistributionDocument } from './index.js';

async function setup(t: TestContext): Promise<{ store: Store; ts: TrustStoreService; ds: DistributionService }> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-res-'));
  const store = await openSqliteStore({ dataDir: dir });
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { store, ts: new TrustStoreService(store), ds: new DistributionService(store) };
}

const chain = buildChain({ name: 'Res' });

function dist(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    listen: '127.0.0.1:8443', aliases: ['API.example.com'],
    certificates: [{ certFile: '/etc/pc/server.pem', keyFile: '/etc/pc/server.key' }],
    origin: { url: 'http://127.0.0.1:8080' }, viewerMtls: { mode: 'required', trustStore: 'devices' },
    ...extra,
  };
}

test('trust store: valid bundle → active with count; ETag rules on update; get by id', async (t) => {
  const { ts } = await setup(t);
  const c = await chain;
  const r = await ts.create({ name: 'devices', caBundlePem: `# roots\n${c.root.pem}${c.intermediates[0]!.pem}`, useClientCertificateOcspEndpoint: true });
  assert.equal(r.document.status, 'active');
  assert.equal(r.document.certificateCount, 2);
  assert.equal(r.document.useClientCertificateOcspEndpoint, true);
  assert.match(r.etag, /^E[0-9A-Z]{13}$/);
  assert.equal((await ts.get(r.id)).name, 'devices');
  await assert.rejects(ts.create({ name: 'devices', caBundlePem: c.root.pem }), EntityAlreadyExistsError);

  await assert.rejects(ts.update('devices', '', { comment: 'x' }), InvalidIfMatchVersionError);
  await assert.rejects(ts.update('devices', 'EWRONG', { comment: 'x' }), PreconditionFailedError);
  const u = await ts.update('devices', r.etag, { comment: 'x', caBundlePem: c.root.pem });
  assert.notEqual(u.etag, r.etag);
  assert.equal(u.document.certificateCount, 1);
  assert.equal(u.document.comment, 'x');
  assert.equal(u.document.useClientCertificateOcspEndpoint, true);
  await assert.rejects(ts.update('devices', r.etag, { comment: 'y' }), PreconditionFailedError);
  await assert.rejects(ts.get('nope'), EntityNotFoundError);
});

test('trust store: invalid bundle on create is stored failed naming the block; on update rejected, nothing changed', async (t) => {
  const { ts } = await setup(t);
  const c = await chain;
  const failed = await ts.create({ name: 'bad', caBundlePem: `${c.root.pem}${c.leaf.pem}` });
  assert.equal(failed.document.status, 'failed');
  assert.equal(failed.document.certificateCount, 0);
  assert.match(failed.document.statusReason ?? '', /certificate #2 \(line \d+\).*not a CA/);

  const good = await ts.create({ name: 'good', caBundlePem: c.root.pem });
  await assert.rejects(ts.update('good', good.etag, { caBundlePem: 'garbage' }), (e: unknown) => e instanceof InvalidArgumentError && /nothing was changed/.test(e.message));
  const after = await ts.get('good');
  assert.equal(after.etag, good.etag);
  assert.equal(after.document.status, 'active');

  const fixed = await ts.update('bad', failed.etag, { caBundlePem: c.root.pem });
  assert.equal(fixed.document.status, 'active');
  assert.equal(fixed.document.statusReason, undefined);
});

test('trust store: delete refused while a distribution uses it, naming it', async (t) => {
  const { ts, ds } = await setup(t);
  const c = await chain;
  const r = await ts.create({ name: 'devices', caBundlePem: c.root.pem });
  const d = await ds.create('api', dist());
  await assert.rejects(ts.delete('devices', r.etag), (e: unknown) => e instanceof CannotDeleteEntityWhileInUseError && /"api"/.test(e.message));
  await assert.rejects(ts.delete('devices', 'EOLD'), PreconditionFailedError);
  await ds.delete('api', d.etag);
  await ts.delete('devices', r.etag);
  assert.deepEqual(await ts.list(), []);
});

test('distribution: defaults filled in, aliases lowercased, references checked', async (t) => {
  const { ts, ds, store } = await setup(t);
  await assert.rejects(ds.create('api', dist()), (e: unknown) => e instanceof EntityNotFoundError && /trust store "devices"/.test(e.message));
  await ts.create({ name: 'devices', caBundlePem: (await chain).root.pem });
  const d = await ds.create('api', dist());
  assert.deepEqual(d.document.aliases, ['api.example.com']);
  assert.equal(d.document.origin.connectTimeoutMs, 5000);
  assert.equal(d.document.origin.responseTimeoutMs, 30000);
  assert.equal(d.document.origin.verifyTls, true);
  assert.deepEqual(d.document.limits, DISTRIBUTION_DEFAULTS.limits);
  assert.deepEqual(d.document.forwardCertificateHeaders, DISTRIBUTION_DEFAULTS.forwardCertificateHeaders);
  assert.equal(d.document.connectionFunctionAssociation, null);
  assert.equal(d.document.viewerMtls.sessionResumption, false);

  await assert.rejects(ds.create('fn', dist({ listen: '127.0.0.1:9443', connectionFunctionAssociation: { name: 'nope' } })), /connection function "nope" does not exist/);
  await store.functions.create({ id: 'f1', name: 'gate', etag: 'E1', document: {}, now: 1 });
  const withFn = await ds.create('fn', dist({ listen: '127.0.0.1:9443', connectionFunctionAssociation: { name: 'gate' } }));
  assert.deepEqual(withFn.document.connectionFunctionAssociation, { name: 'gate' });

  await assert.rejects(ds.update('api', 'EWRONG', dist()), PreconditionFailedError);
  await assert.rejects(ds.update('api', '', dist()), InvalidIfMatchVersionError);
  const u = await ds.update('api', d.etag, dist({ comment: 'v2' }));
  assert.equal(u.document.comment, 'v2');
  assert.equal((await ds.get(d.id)).etag, u.etag);
});

test('distribution: two on one listen address may not claim the same alias (both named)', async (t) => {
  const { ts, ds } = await setup(t);
  await ts.create({ name: 'devices', caBundlePem: (await chain).root.pem });
  await ds.create('a', dist({ aliases: ['x.example.com', '*.example.com'] }));
  await assert.rejects(ds.create('b', dist({ aliases: ['X.example.com'] })),
    (e: unknown) => e instanceof CnameAlreadyExistsError && /"a" and "b".*"x\.example\.com"/.test(e.message));
  await ds.create('c', dist({ aliases: ['y.example.com'] }));
  await ds.create('d', dist({ listen: '127.0.0.1:9000', aliases: ['x.example.com'] }));
});

test('distribution: a listen socket overlapping another distribution\'s or the admin listener\'s is refused, naming both', async (t) => {
  const { store, ts } = await setup(t);
  await ts.create({ name: 'devices', caBundlePem: (await chain).root.pem });
  const lookupHost = async (h: string) => {
    if (h === 'localhost') return { address: '127.0.0.1', family: 4 };
    throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${h}`), { code: 'ENOTFOUND' });
  };
  const ds = new DistributionService(store, { adminListen: '127.0.0.1:9901', lookupHost });
  await ds.create('specific', dist({ listen: '127.0.0.1:8443', aliases: ['a.example.com'] }));
  const overlap = (e: unknown, a: string, b: string) => e instanceof CnameAlreadyExistsError && e.message.includes(`"${a}"`) && e.message.includes(`"${b}"`) && /overlaps/.test(e.message);
  await assert.rejects(ds.create('wild4', dist({ listen: '0.0.0.0:8443', aliases: ['b.example.com'] })), (e) => overlap(e, 'wild4', 'specific'));
  await assert.rejects(ds.create('wild6', dist({ listen: '[::]:8443', aliases: ['b.example.com'] })), (e) => overlap(e, 'wild6', 'specific'));
  // The same socket spelled differently is shared (SNI), and then its aliases are compared.
  await ds.create('samesocket', dist({ listen: 'localhost:8443', aliases: ['b.example.com'] }));
  await assert.rejects(ds.create('samealias', dist({ listen: 'localhost:8443', aliases: ['a.example.com'] })),
    (e: unknown) => e instanceof CnameAlreadyExistsError && /"specific" and "samealias".*"a\.example\.com"/.test(e.message));
  // Other ports, port 0, an IPv6 specific address next to an IPv4 wildcard: fine.
  await ds.create('wildother', dist({ listen: '0.0.0.0:8444', aliases: ['c.example.com'] }));
  await ds.create('v6', dist({ listen: '[::1]:8444', aliases: ['c.example.com'] }));
  await ds.create('any0', dist({ listen: '0.0.0.0:0', aliases: ['d.example.com'] }));
  await ds.create('any0b', dist({ listen: '127.0.0.1:0', aliases: ['e.example.com'] }));
  // An update into an overlap is refused too; a name that does not resolve is left to the edge.
  const r = await ds.get('wildother');
  await assert.rejects(ds.update('wildother', r.etag, dist({ listen: '0.0.0.0:8443', aliases: ['c.example.com'] })), (e) => overlap(e, 'wildother', 'specific'));
  await ds.create('unresolved', dist({ listen: 'nowhere.invalid:8443', aliases: ['f.example.com'] }));
  // The admin listener's socket, exactly or through a wildcard.
  for (const listen of ['127.0.0.1:9901', 'localhost:9901', '0.0.0.0:9901', '[::]:9901']) {
    await assert.rejects(ds.create('admin', dist({ listen, aliases: ['g.example.com'] })),
      (e: unknown) => e instanceof CnameAlreadyExistsError && /admin listener's address 127\.0\.0\.1:9901/.test(e.message), listen);
  }
  await ds.create('admin', dist({ listen: '127.0.0.2:9901', aliases: ['g.example.com'] }));
});

test('parseDistributionDocument: precise field.path messages, several at once', () => {
  const bad = (input: Record<string, unknown>, re: RegExp) =>
    assert.throws(() => parseDistributionDocument(input, 'd'), (e: unknown) => e instanceof InvalidArgumentError && re.test(e.message), String(re));
  bad(dist({ listen: 'localhost' }), /^d\.listen: must be host:port/);
  bad(dist({ listen: '[::1:8443' }), /d\.listen: must be host:port/);
  bad(dist({ listen: '[fe80::zz]:8443' }), /not an IPv6 address/);
  bad(dist({ listen: '127.0.0.1:70000' }), /port 70000 is out of range/);
  bad(dist({ aliases: ['bad_name.example.com'] }), /d\.aliases\[0\]: "bad_name\.example\.com" is not a DNS name/);
  bad(dist({ aliases: ['a.example.com', 'A.example.com'] }), /d\.aliases\[1\]: "a\.example\.com" is listed twice/);
  bad(dist({ origin: { url: 'ftp://x' } }), /d\.origin\.url: must be an http:\/\/ or https:\/\/ URL/);
  bad(dist({ origin: { url: 'http://x', connectTimeoutMs: 0 } }), /d\.origin\.connectTimeoutMs: must be at least 1/);
  bad(dist({ certificates: [{ certFile: 'rel.pem', keyFile: '/k' }] }), /d\.certificates\[0\]\.certFile: must be an absolute path/);
  bad(dist({ certificates: [] }), /d\.certificates: at least one/);
  bad(dist({ viewerMtls: { mode: 'optional' } }), /d\.viewerMtls\.trustStore: required unless mode is passthrough/);
  bad(dist({ viewerMtls: { mode: 'strict', trustStore: 't' } }), /d\.viewerMtls\.mode: must be one of "required", "optional", "passthrough"/);
  bad(dist({ viewerMtls: { mod: 'required', trustStore: 't' } }), /d\.viewerMtls\.mod: unknown key/);
  bad(dist({ forwardCertificateHeaders: ['X-Other'] }), /d\.forwardCertificateHeaders\[0\]: "X-Other" is not one of/);
  bad(dist({ limits: { maxConnections: 1.5 } }), /d\.limits\.maxConnections: must be an integer/);
  bad({ listen: 'x' }, /d\.listen: .*; d\.certificates: required; d\.origin: required/);

  const ok = parseDistributionDocument({
    listen: '[::1]:8443', certificates: [{ certFile: '/c', keyFile: '/k' }], origin: { url: 'https://o' },
    viewerMtls: { mode: 'passthrough' }, forwardCertificateHeaders: ['cloudfront-viewer-cert-pem'],
  });
  assert.deepEqual(ok.forwardCertificateHeaders, ['CloudFront-Viewer-Cert-Pem']);
  assert.deepEqual(ok.aliases, []);
  assert.equal(ok.viewerMtls.trustStore, undefined);
  assert.equal('trustStore' in ok.viewerMtls, false);
});

test('trust store: comment and name validation', async (t) => {
  const { ts } = await setup(t);
  const pem = (await issueCertificate({ subject: 'CN=Solo Root', ca: true })).pem;
  await assert.rejects(ts.create({ name: 'a b', caBundlePem: pem }), InvalidArgumentError);
  await assert.rejects(ts.create({ name: 'ok', caBundlePem: pem, comment: 'x'.repeat(129) }), InvalidArgumentError);
});
