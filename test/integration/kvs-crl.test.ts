/**
 * CRL import into a KeyValueStore: a valid CRL, a bad signature, an expired CRL, a
 * newer CRL replacing the previous one atomically (un-listed serials removed, keys put
 * by hand kept), rollback and issuer-change refusals, more than 50 serials, and the
 * `kvs import-crl` command.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseTrustStoreBundle, type TrustAnchorSet } from '../../src/pki/index.js';
import { openSqliteStore, type Store } from '../../src/store/index.js';
import { KeyValueStoreService, KvsReplica, normalizeSerialForKvs } from '../../src/kvs/index.js';
import { main } from '../../src/cli/index.js';
import { kvsIo } from '../../src/cli/kvs.js';
import { generateKey, issueCertificate, type TestCert } from '../helpers/pki.js';
import { issueCrl } from '../helpers/crl.js';

const DAY = 86400_000;
const HOUR = 3600_000;

async function ca(name: string): Promise<TestCert> {
  return issueCertificate({
    subject: `C=US,O=Portcullis KVS Test,CN=${name}`, ca: true, key: await generateKey('ec-p256', `kvs-crl-${name}`),
    notBefore: new Date(Date.now() - DAY), notAfter: new Date(Date.now() + 365 * DAY),
  });
}

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io = { ...kvsIo };
  const ew = process.stderr.write.bind(process.stderr);
  kvsIo.stdout = (t) => { stdout += t; };
  kvsIo.stderr = (t) => { stderr += t; };
  // Usage errors are printed by main()/commander on process.stderr.
  process.stderr.write = ((c: string | Uint8Array) => { stderr += c.toString(); return true; }) as typeof process.stderr.write;
  process.exitCode = undefined;
  try {
    return { code: await main(['node', 'portcullis', ...args]), stdout, stderr };
  } finally {
    Object.assign(kvsIo, io);
    process.stderr.write = ew;
    process.exitCode = undefined;
  }
}

describe('KVS CRL import', () => {
  let rootA: TestCert, rootB: TestCert;
  let anchors: TrustAnchorSet;
  let dir: string;
  let store: Store;
  let kvs: KeyValueStoreService;

  before(async () => {
    [rootA, rootB] = await Promise.all([ca('CRL CA A'), ca('CRL CA B')]);
    anchors = parseTrustStoreBundle(rootA.pem + rootB.pem);
    dir = mkdtempSync(join(tmpdir(), 'portcullis-kvs-crl-'));
    store = await openSqliteStore({ dataDir: join(dir, 'data') });
    kvs = new KeyValueStoreService(store);
  });

  it('a valid CRL: serials become keys in the connection-function form, values carry date and reason', async () => {
    const etag = (await kvs.create({ name: 'crl-valid' })).ETag;
    const revocationDate = new Date(Date.UTC(2026, 5, 1, 12, 0, 0));
    const crl = await issueCrl({
      issuer: rootA, crlNumber: 7,
      entries: [
        { serial: '00:a7:30:9e', reason: 'keyCompromise', revocationDate },
        { serial: '10:03', revocationDate },
      ],
    });
    const r = await kvs.importCrl('crl-valid', { crl: crl.pem, trustStore: anchors, ifMatch: etag });
    assert.equal(r.Entries, 2);
    assert.equal(r.ItemCount, 2);
    assert.equal(r.Crl.CrlNumber, '7');
    assert.equal(r.Crl.Issuer, 'CN=CRL CA A, O=Portcullis KVS Test, C=US');
    const key = normalizeSerialForKvs('00:A7:30:9E');
    assert.equal(key, '00a7309e');
    const v = JSON.parse((await kvs.getKey('crl-valid', key)).Value) as Record<string, string>;
    assert.deepEqual(v, { revocationDate: '2026-06-01T12:00:00Z', reason: 'keyCompromise', crlNumber: '7', issuer: r.Crl.Issuer });
    assert.ok((await kvs.getKey('crl-valid', '1003')).Value);
    const d = await kvs.describe('crl-valid');
    assert.equal(d.CrlImport?.Entries, 2);
    assert.equal(d.CrlImport?.CrlNumber, '7');
    assert.equal(d.ETag, r.ETag);
    // DER works as well as PEM (same CRL again: idempotent).
    const again = await kvs.importCrl('crl-valid', { crl: crl.der, trustStore: anchors, ifMatch: r.ETag });
    assert.equal(again.ItemCount, 2);
    assert.equal(again.Removed, 0);
  });

  it('a bad signature, an unknown issuer, an expired or not-yet-valid CRL: refused, nothing changed', async () => {
    const etag = (await kvs.create({ name: 'crl-bad' })).ETag;
    const before = await kvs.describe('crl-bad');
    const wrongKey = await generateKey('ec-p256', 'kvs-crl-wrong');
    const stranger = await ca('Stranger CA');
    const cases: [string, Promise<{ pem: string }>, RegExp][] = [
      ['bad signature', issueCrl({ issuer: rootA, signWith: wrongKey, entries: [{ serial: '01' }] }), /signature does not verify/],
      ['unknown issuer', issueCrl({ issuer: stranger, entries: [{ serial: '01' }] }), /not in the trust store/],
      ['expired', issueCrl({ issuer: rootA, thisUpdate: new Date(Date.now() - 10 * DAY), nextUpdate: new Date(Date.now() - DAY), entries: [{ serial: '01' }] }), /expired/i],
      ['not yet valid', issueCrl({ issuer: rootA, thisUpdate: new Date(Date.now() + DAY), entries: [{ serial: '01' }] }), /thisUpdate/],
    ];
    for (const [name, crlP, pattern] of cases) {
      const crl = await crlP;
      await assert.rejects(kvs.importCrl('crl-bad', { crl: crl.pem, trustStore: anchors, ifMatch: etag }), (err: unknown) => {
        assert.equal((err as { code: string }).code, 'InvalidCrl', name);
        assert.match((err as Error).message, pattern, name);
        return true;
      });
    }
    await assert.rejects(kvs.importCrl('crl-bad', { crl: Buffer.from('not a crl'), trustStore: anchors, ifMatch: etag }), { code: 'InvalidCrl' });
    assert.deepEqual(await kvs.describe('crl-bad'), before);
  });

  it('a newer CRL replaces the previous one atomically; hand-written keys stay; older CRLs and other issuers are refused', async () => {
    let etag = (await kvs.create({ name: 'crl-replace' })).ETag;
    etag = (await kvs.putKey('crl-replace', { key: 'ff01', value: 'revoked by hand', ifMatch: etag })).ETag;
    const t1 = new Date(Date.now() - 2 * HOUR);
    const first = await issueCrl({ issuer: rootA, crlNumber: 1, thisUpdate: t1, entries: [{ serial: 'aa' }, { serial: 'bb' }, { serial: 'cc', reason: 'certificateHold' }] });
    etag = (await kvs.importCrl('crl-replace', { crl: first.der, trustStore: anchors, ifMatch: etag })).ETag;
    const replica = await KvsReplica.open(store);
    try {
      const old = replica.snapshot('crl-replace')!;
      assert.deepEqual(['aa', 'bb', 'cc', 'ff01'].map((k) => old.has(k)), [true, true, true, true]);
      // cc taken off hold, dd revoked; the CRL also lists the hand-written ff01.
      const second = await issueCrl({ issuer: rootA, crlNumber: 2, thisUpdate: new Date(Date.now() - HOUR), entries: [{ serial: 'aa' }, { serial: 'bb' }, { serial: 'dd', reason: 'keyCompromise' }, { serial: 'ff:01' }] });
      const r = await kvs.importCrl('crl-replace', { crl: second.pem, trustStore: anchors, ifMatch: etag });
      assert.equal(r.Removed, 1);
      assert.equal(r.SkippedManualKeys, 1);
      assert.equal(r.ItemCount, 4);
      etag = r.ETag;
      assert.equal((await kvs.getKey('crl-replace', 'ff01')).Value, 'revoked by hand');
      await assert.rejects(kvs.getKey('crl-replace', 'cc'), { code: 'EntityNotFound' });
      assert.match((await kvs.getKey('crl-replace', 'dd')).Value, /keyCompromise/);
      await replica.waitForSequence(await store.latestSequence(), 2000);
      const now = replica.snapshot('crl-replace')!;
      assert.deepEqual(['aa', 'bb', 'cc', 'dd', 'ff01'].map((k) => now.has(k)), [true, true, false, true, true]);
      assert.deepEqual(['aa', 'bb', 'cc', 'dd', 'ff01'].map((k) => old.has(k)), [true, true, true, false, true], 'the old snapshot saw the old list, whole');

      await assert.rejects(kvs.importCrl('crl-replace', { crl: first.pem, trustStore: anchors, ifMatch: etag }), { code: 'InvalidCrl', message: /older than the one already imported/ });
      const lowerNumber = await issueCrl({ issuer: rootA, crlNumber: 1, entries: [] });
      await assert.rejects(kvs.importCrl('crl-replace', { crl: lowerNumber.pem, trustStore: anchors, ifMatch: etag }), { code: 'InvalidCrl', message: /cRLNumber 1.*older/ });
      const fromB = await issueCrl({ issuer: rootB, entries: [] });
      await assert.rejects(kvs.importCrl('crl-replace', { crl: fromB.pem, trustStore: anchors, ifMatch: etag }), { code: 'InvalidCrl', message: /holds the CRL of "CN=CRL CA A/ });
      await assert.rejects(kvs.importCrl('crl-replace', { crl: second.pem, trustStore: anchors, ifMatch: 'stale' }), { code: 'PreconditionFailed' });
      await assert.rejects(kvs.importCrl('crl-replace', { crl: second.pem, trustStore: anchors, ifMatch: undefined }), { code: 'InvalidIfMatchVersion' });
      assert.equal((await kvs.describe('crl-replace')).ETag, etag);
    } finally {
      replica.close();
    }
  });

  it('a CRL import is not limited to 50 keys but respects the store quota', async () => {
    const etag = (await kvs.create({ name: 'crl-big' })).ETag;
    const entries = Array.from({ length: 600 }, (_, i) => ({ serial: (0x1000 + i).toString(16).padStart(4, '0') }));
    const crl = await issueCrl({ issuer: rootB, entries });
    const r = await kvs.importCrl('crl-big', { crl: crl.der, trustStore: anchors, ifMatch: etag });
    assert.equal(r.ItemCount, 600);
    const small = new KeyValueStoreService(store, { limits: { maxStoreBytes: 10_000 } });
    const etag2 = (await small.create({ name: 'crl-quota' })).ETag;
    await assert.rejects(small.importCrl('crl-quota', { crl: crl.der, trustStore: anchors, ifMatch: etag2 }), { code: 'ServiceQuotaExceeded' });
    assert.equal((await small.describe('crl-quota')).ItemCount, 0);
  });

  it('kvs import-crl: imports, reports, exits 5 for a CRL that does not verify and 64 for a bad trust store', async () => {
    const dd = ['--data-dir', join(dir, 'cli-data')];
    assert.equal((await cli('kvs', 'create', 'cli-crl', ...dd)).code, 0);
    const good = await issueCrl({ issuer: rootA, crlNumber: 3, entries: [{ serial: '01:02' }, { serial: '03' }] });
    const bad = await issueCrl({ issuer: rootA, signWith: await generateKey('ec-p256', 'kvs-crl-wrong'), entries: [{ serial: '09' }] });
    writeFileSync(join(dir, 'good.crl'), good.der);
    writeFileSync(join(dir, 'bad.pem'), bad.pem);
    writeFileSync(join(dir, 'ca.pem'), rootA.pem);
    writeFileSync(join(dir, 'not-ca.pem'), 'nothing here\n');
    let r = await cli('kvs', 'import-crl', 'cli-crl', '--crl', join(dir, 'good.crl'), '--trust-store', join(dir, 'ca.pem'), ...dd);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Entries\s+2$/m);
    assert.match(r.stdout, /^CrlNumber\s+3$/m);
    r = await cli('kvs', 'get', 'cli-crl', '0102', ...dd);
    assert.match(r.stdout, /revocationDate/);
    r = await cli('kvs', 'import-crl', 'cli-crl', '--crl', join(dir, 'bad.pem'), '--trust-store', join(dir, 'ca.pem'), ...dd);
    assert.equal(r.code, 5);
    assert.match(r.stderr, /InvalidCrl: .*signature does not verify/);
    r = await cli('kvs', 'import-crl', 'cli-crl', '--crl', join(dir, 'good.crl'), '--trust-store', join(dir, 'not-ca.pem'), ...dd);
    assert.equal(r.code, 64);
    r = await cli('kvs', 'import-crl', 'cli-crl', '--crl', join(dir, 'good.crl'), ...dd);
    assert.equal(r.code, 64, 'missing --trust-store');
  });

  it('kvs import-crl --issuer-chain: a CRL signed by an intermediate imports when the chain reaches the trust store; without it the error says how; a bad chain file exits 64', async () => {
    const dd = ['--data-dir', join(dir, 'cli-chain-data')];
    assert.equal((await cli('kvs', 'create', 'cli-chain', ...dd)).code, 0);
    const mid = await issueCertificate({ subject: 'CN=CRL Intermediate', ca: true, issuer: rootA, key: await generateKey('ec-p256', 'kvs-crl-mid') });
    const crl = await issueCrl({ issuer: mid, crlNumber: 1, entries: [{ serial: '0c:0d' }] });
    writeFileSync(join(dir, 'mid.crl'), crl.der);
    writeFileSync(join(dir, 'root-only.pem'), rootA.pem);
    writeFileSync(join(dir, 'mid.pem'), mid.pem);
    writeFileSync(join(dir, 'garbage.pem'), 'not a certificate\n');
    let r = await cli('kvs', 'import-crl', 'cli-chain', '--crl', join(dir, 'mid.crl'), '--trust-store', join(dir, 'root-only.pem'), ...dd);
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, /not in the trust store/);
    r = await cli('kvs', 'import-crl', 'cli-chain', '--crl', join(dir, 'mid.crl'), '--trust-store', join(dir, 'root-only.pem'), '--issuer-chain', join(dir, 'garbage.pem'), ...dd);
    assert.equal(r.code, 64, r.stderr);
    assert.match(r.stderr, /issuer-chain file \S*garbage\.pem: .*neither PEM/);
    r = await cli('kvs', 'import-crl', 'cli-chain', '--crl', join(dir, 'mid.crl'), '--trust-store', join(dir, 'root-only.pem'), '--issuer-chain', join(dir, 'mid.pem'), ...dd);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Entries\s+1$/m);
    r = await cli('kvs', 'get', 'cli-chain', '0c0d', ...dd);
    assert.match(r.stdout, /revocationDate/);
  });

  it('kvs keys --prefix: only keys starting with the prefix, in byte order, paged within the prefix', async () => {
    const dd = ['--data-dir', join(dir, 'cli-prefix-data')];
    writeFileSync(join(dir, 'prefix.json'), JSON.stringify({ data: ['a1', 'ab', 'ab2', 'abc', 'b', '😀x', '😀y'].map((key) => ({ key, value: 'v' })) }));
    assert.equal((await cli('kvs', 'create', 'cli-prefix', '--import', join(dir, 'prefix.json'), ...dd)).code, 0);
    let r = await cli('kvs', 'keys', 'cli-prefix', '--prefix', 'ab', ...dd);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'ab\tv\nab2\tv\nabc\tv\n');
    r = await cli('kvs', 'keys', 'cli-prefix', '--prefix', '😀', '--max', '1', '--json', ...dd);
    const page = JSON.parse(r.stdout) as { Items: { Key: string }[]; NextToken?: string };
    assert.deepEqual(page.Items.map((i) => i.Key), ['😀x']);
    assert.match((await cli('kvs', 'keys', 'cli-prefix', '--prefix', '😀', '--max', '1', ...dd)).stderr, /--next-token \S+ \(with the same --prefix\)/);
    r = await cli('kvs', 'keys', 'cli-prefix', '--prefix', '😀', '--next-token', page.NextToken!, ...dd);
    assert.equal(r.stdout, '😀y\tv\n');
    r = await cli('kvs', 'keys', 'cli-prefix', '--prefix', 'zz', ...dd);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, '');
  });

  it('a key the current CRL lists cannot be deleted by hand while the CRL lists it (put by hand or not); it goes with the CRL', async () => {
    let etag = (await kvs.create({ name: 'crl-overlap' })).ETag;
    etag = (await kvs.putKey('crl-overlap', { key: '0a', value: 'by hand', ifMatch: etag })).ETag;
    const t0 = Date.now() - 3 * HOUR;
    const c1 = await issueCrl({ issuer: rootA, crlNumber: 1, thisUpdate: new Date(t0), entries: [{ serial: '0a' }, { serial: '0b' }] });
    etag = (await kvs.importCrl('crl-overlap', { crl: c1.der, trustStore: anchors, ifMatch: etag })).ETag;
    for (const key of ['0a', '0b']) {
      await assert.rejects(kvs.deleteKey('crl-overlap', { key, ifMatch: etag }), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'CannotDeleteEntityWhileInUse');
        assert.match(e.message, new RegExp(`key "${key}" .* is listed by the imported CRL .*cannot be deleted while that CRL lists it`));
        return true;
      });
      await assert.rejects(kvs.updateKeys('crl-overlap', { deletes: [key], ifMatch: etag }), { code: 'CannotDeleteEntityWhileInUse' });
    }
    assert.equal((await kvs.describe('crl-overlap')).ETag, etag, 'nothing changed');
    assert.equal((await kvs.getKey('crl-overlap', '0a')).Value, 'by hand');
    // A value put by hand onto a CRL key: kept, and the key is still protected.
    etag = (await kvs.putKey('crl-overlap', { key: '0b', value: 'note', ifMatch: etag })).ETag;
    await assert.rejects(kvs.deleteKey('crl-overlap', { key: '0b', ifMatch: etag }), { code: 'CannotDeleteEntityWhileInUse' });
    // The next CRL lists 0b again but no longer 0a: both stay (hand-written), now deletable.
    const c2 = await issueCrl({ issuer: rootA, crlNumber: 2, thisUpdate: new Date(t0 + HOUR), entries: [{ serial: '0b' }] });
    const r2 = await kvs.importCrl('crl-overlap', { crl: c2.der, trustStore: anchors, ifMatch: etag });
    assert.equal(r2.SkippedManualKeys, 1);
    assert.equal(r2.Removed, 0);
    etag = (await kvs.deleteKey('crl-overlap', { key: '0a', ifMatch: r2.ETag })).ETag;
    await assert.rejects(kvs.deleteKey('crl-overlap', { key: '0b', ifMatch: etag }), { code: 'CannotDeleteEntityWhileInUse' });
    const c3 = await issueCrl({ issuer: rootA, crlNumber: 3, thisUpdate: new Date(t0 + 2 * HOUR), entries: [] });
    const r3 = await kvs.importCrl('crl-overlap', { crl: c3.der, trustStore: anchors, ifMatch: etag });
    assert.equal((await kvs.getKey('crl-overlap', '0b')).Value, 'note', 'put by hand: kept when the CRL drops it');
    const r4 = await kvs.deleteKey('crl-overlap', { key: '0b', ifMatch: r3.ETag });
    assert.equal(r4.ItemCount, 0);
  });

  it('rollback guard: a CRL that drops the cRLNumber, or has the same thisUpdate or cRLNumber with other content, is refused; the same DER is allowed', async () => {
    const t0 = new Date(Math.floor(Date.now() / 1000) * 1000 - 3 * HOUR);
    const first = await issueCrl({ issuer: rootA, crlNumber: 6, thisUpdate: t0, entries: [{ serial: '0a' }, { serial: '0b' }] });
    const cases: [string, Promise<{ der: Buffer }>, RegExp][] = [
      ['no cRLNumber, same thisUpdate', issueCrl({ issuer: rootA, crlNumber: null, thisUpdate: t0, entries: [{ serial: '0a' }] }), /has no cRLNumber but the one already imported has cRLNumber 6/],
      ['no cRLNumber, newer thisUpdate', issueCrl({ issuer: rootA, crlNumber: null, thisUpdate: new Date(t0.getTime() + HOUR), entries: [] }), /has no cRLNumber/],
      ['same number and thisUpdate, other content', issueCrl({ issuer: rootA, crlNumber: 6, thisUpdate: t0, entries: [] }), /same thisUpdate .* different content/],
      ['higher number, same thisUpdate, other content', issueCrl({ issuer: rootA, crlNumber: 7, thisUpdate: t0, entries: [] }), /same thisUpdate/],
      ['same number, newer thisUpdate', issueCrl({ issuer: rootA, crlNumber: 6, thisUpdate: new Date(t0.getTime() + HOUR), entries: [] }), /same cRLNumber \(6\) .* different content/],
      ['lower number, newer thisUpdate', issueCrl({ issuer: rootA, crlNumber: 3, thisUpdate: new Date(t0.getTime() + HOUR), entries: [] }), /cRLNumber 3.*older/],
    ];
    let etag = (await kvs.create({ name: 'crl-guard' })).ETag;
    etag = (await kvs.importCrl('crl-guard', { crl: first.der, trustStore: anchors, ifMatch: etag })).ETag;
    for (const [label, p, pattern] of cases) {
      const crl = await p;
      await assert.rejects(kvs.importCrl('crl-guard', { crl: crl.der, trustStore: anchors, ifMatch: etag }), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'InvalidCrl', label);
        assert.match(e.message, pattern, label);
        return true;
      });
    }
    assert.deepEqual((await kvs.listKeys('crl-guard')).Items.map((i) => i.Key), ['0a', '0b'], 'nothing removed');
    const same = await kvs.importCrl('crl-guard', { crl: first.pem, trustStore: anchors, ifMatch: etag });
    assert.equal(same.Removed, 0, 're-importing the same CRL (PEM of the same DER) is allowed');
    const newer = await issueCrl({ issuer: rootA, crlNumber: 7, thisUpdate: new Date(t0.getTime() + HOUR), entries: [{ serial: '0a' }] });
    assert.equal((await kvs.importCrl('crl-guard', { crl: newer.der, trustStore: anchors, ifMatch: same.ETag })).Removed, 1);
  });

  it('serials are keyed in minimal DER form: a CRL encoding 0x7f as 00 7f gives key 7f (the only form a certificate can present)', async () => {
    const etag = (await kvs.create({ name: 'crl-minimal' })).ETag;
    const crl = await issueCrl({
      issuer: rootB, crlNumber: 1,
      entries: [{ serial: '00:7f' }, { serial: '00:00:a7:30' }, { serial: '00:a7:30:9e' }, { serial: '7f' }, { serial: 'ff:ff:80' }],
    });
    const r = await kvs.importCrl('crl-minimal', { crl: crl.der, trustStore: anchors, ifMatch: etag });
    assert.deepEqual((await kvs.listKeys('crl-minimal')).Items.map((i) => i.Key), ['00a730', '00a7309e', '7f', '80'], 'ff ff 80 (-128) is 80');
    assert.equal(r.Entries, 4, '00 7f and 7f are one serial');
  });

  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
