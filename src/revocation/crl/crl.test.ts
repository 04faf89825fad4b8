import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CrlError, InvalidArgumentError } from '../../errors.js';
import { formatSerialNumber, parseTrustStoreBundle, type TrustAnchorSet } from '../../pki/index.js';
import { generateKey, issueCertificate, type TestCert } from '../../../test/helpers/pki.js';
import { issueCrl, opensslGenCrl } from '../../../test/helpers/crl.js';
import { crlToKvsEntries, parseCrl, verifyCrl, CRL_KVS_MAX_VALUE_BYTES } from './index.js';
// The public surface is also reachable from the revocation entry file.
import * as revocation from '../index.js';

const DAY = 86400_000;

async function ca(name: string, key: Parameters<typeof generateKey>[0], opts: { keyUsage?: string[] } = {}): Promise<TestCert> {
  return issueCertificate({
    subject: `C=US,O=Portcullis Test,CN=${name}`, ca: true, key: await generateKey(key, `crl-${name}`),
    notBefore: new Date(Date.now() - DAY), notAfter: new Date(Date.now() + 365 * DAY),
    ...(opts.keyUsage ? { keyUsage: opts.keyUsage } : {}),
  });
}

function store(...certs: TestCert[]): TrustAnchorSet {
  return parseTrustStoreBundle(certs.map((c) => c.pem).join(''));
}

function criticalExtension(oid: string): pkijs.Extension {
  return new pkijs.Extension({ extnID: oid, critical: true, extnValue: new asn1js.Null().toBER(false) });
}

function assertCrlError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CrlError, `expected CrlError, got ${String(err)}`);
    assert.equal(err.code, 'InvalidCrl');
    assert.match(err.message, pattern);
    return true;
  });
}

describe('CRL: parse, verify, KVS entries', () => {
  let rsaCa: TestCert, ecCa: TestCert, p384Ca: TestCert, otherCa: TestCert;
  before(async () => {
    [rsaCa, ecCa, p384Ca, otherCa] = await Promise.all([
      ca('CRL RSA CA', 'rsa-2048'), ca('CRL EC CA', 'ec-p256'), ca('CRL P-384 CA', 'ec-p384'), ca('Unrelated CA', 'ec-p256'),
    ]);
  });
  const now = () => new Date();

  it('parses and verifies an RSA-signed CRL; entries become KVS items', async () => {
    const revDate = new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678));
    const crl = await issueCrl({
      issuer: rsaCa, crlNumber: 4096,
      entries: [
        { serial: '01:02:03', reason: 'keyCompromise', revocationDate: revDate },
        { serial: '7f', reason: 'certificateHold' },
        { serial: '0a0b' },
      ],
    });
    const parsed = parseCrl(crl.der);
    assert.equal(parsed.version, 2);
    assert.equal(parsed.issuer, 'CN=CRL RSA CA, O=Portcullis Test, C=US');
    assert.deepEqual(parsed.issuerDer, rsaCa.subjectDer);
    assert.equal(parsed.crlNumber, 4096n);
    assert.equal(parsed.signatureAlgorithmOid, '1.2.840.113549.1.1.11');
    assert.equal(parsed.isDelta, false);
    assert.equal(parsed.isIndirect, false);
    assert.deepEqual(parsed.unhandledCriticalExtensions, []);
    assert.ok(parsed.nextUpdate && parsed.nextUpdate > parsed.thisUpdate);
    assert.deepEqual(parsed.authorityKeyIdentifier, rsaCa.cert.subjectKeyIdentifier);
    assert.equal(parsed.revoked.length, 3);
    assert.equal(parsed.revoked[0]!.serialNumberBytes.toString('hex'), '010203');
    assert.equal(parsed.revoked[0]!.reason, 'keyCompromise');
    assert.equal(parsed.revoked[0]!.revocationDate.getTime(), Math.floor(revDate.getTime() / 1000) * 1000);
    assert.equal(parsed.revoked[1]!.reason, 'certificateHold');
    assert.equal(parsed.revoked[2]!.reason, undefined);
    assert.ok(Object.isFrozen(parsed));

    const { issuer } = verifyCrl(parsed, store(otherCa, rsaCa), { now: now() });
    assert.equal(issuer, rsaCa.cert);

    const items = crlToKvsEntries(parsed);
    assert.deepEqual(items[0], {
      key: '010203',
      value: '{"revocationDate":"2026-01-02T03:04:05Z","reason":"keyCompromise","crlNumber":"4096","issuer":"CN=CRL RSA CA, O=Portcullis Test, C=US"}',
    });
    assert.equal(items[1]!.key, '7f');
    assert.equal(JSON.parse(items[1]!.value).reason, 'certificateHold');
    assert.equal(items[2]!.key, '0a0b');
    assert.equal('reason' in JSON.parse(items[2]!.value), false);
  });

  it('verifies ECDSA P-256 and P-384 CRLs', async () => {
    for (const c of [ecCa, p384Ca]) {
      const parsed = parseCrl((await issueCrl({ issuer: c, entries: [{ serial: '42', reason: 'superseded' }] })).der);
      assert.match(parsed.signatureAlgorithmOid, /^1\.2\.840\.10045\.4\.3\.[23]$/);
      assert.equal(verifyCrl(parsed, store(c), { now: now() }).issuer, c.cert);
    }
  });

  it('verifies an RSASSA-PSS CRL', async () => {
    const pssCa = await ca('CRL PSS CA', 'rsa-pss-2048');
    const parsed = parseCrl((await issueCrl({ issuer: pssCa, entries: [{ serial: '01' }] })).der);
    assert.equal(parsed.signatureAlgorithmOid, '1.2.840.113549.1.1.10');
    assert.equal(verifyCrl(parsed, store(pssCa), { now: now() }).issuer, pssCa.cert);
  });

  it('keeps the 00 sign octet of a high-bit serial: the key equals the certificate serial without colons', async () => {
    const leaf = await issueCertificate({ subject: 'CN=high bit leaf', issuer: ecCa, serial: '00:a7:30:9e:ff:01' });
    const parsed = parseCrl((await issueCrl({ issuer: ecCa, entries: [{ serial: leaf.cert.serialNumberBytes }] })).der);
    assert.equal(parsed.revoked[0]!.serialNumberBytes.toString('hex'), '00a7309eff01');
    const [item] = crlToKvsEntries(parsed);
    assert.equal(item!.key, '00a7309eff01');
    assert.equal(item!.key, formatSerialNumber(leaf.cert.serialNumberBytes).replaceAll(':', ''));
  });

  it('refuses a CRL whose signature does not verify, naming the trust-store certificate', async () => {
    const bad = await issueCrl({ issuer: ecCa, signWith: otherCa.key });
    assertCrlError(() => verifyCrl(parseCrl(bad.der), store(otherCa, ecCa), { now: now() }),
      /^CRL signature does not verify with the key of "CN=CRL EC CA, O=Portcullis Test, C=US" \(trust store certificate #2\)$/);
    // A flipped byte in the signed part
    const good = await issueCrl({ issuer: ecCa, entries: [{ serial: '05' }] });
    const tampered = Buffer.from(good.der);
    const at = tampered.indexOf(Buffer.from([0x02, 0x01, 0x05]));
    tampered[at + 2] = 0x06;
    assertCrlError(() => verifyCrl(parseCrl(tampered), store(ecCa), { now: now() }), /does not verify/);
  });

  it('refuses a CRL whose issuer is not in the trust store', async () => {
    const crl = await issueCrl({ issuer: ecCa });
    assertCrlError(() => verifyCrl(parseCrl(crl.der), store(otherCa), { now: now() }),
      /^CRL issuer "CN=CRL EC CA, O=Portcullis Test, C=US" is not in the trust store/);
  });

  it('refuses a CRL issuer whose keyUsage lacks cRLSign', async () => {
    const noCrlSign = await ca('No cRLSign CA', 'ec-p256', { keyUsage: ['keyCertSign'] });
    const crl = await issueCrl({ issuer: noCrlSign });
    assertCrlError(() => verifyCrl(parseCrl(crl.der), store(noCrlSign), { now: now() }),
      /^CRL issuer "CN=No cRLSign CA, O=Portcullis Test, C=US" may not sign CRLs: its keyUsage extension lacks cRLSign .*trust store certificate #1 has keyUsage keyCertSign$/);
  });

  it('picks among same-named CAs by the CRL authorityKeyIdentifier and signature', async () => {
    const a = await issueCertificate({ subject: 'C=US,O=Portcullis Test,CN=Rekeyed CA', ca: true, key: await generateKey('ec-p256', 'crl-rekey-a') });
    const b = await issueCertificate({ subject: 'C=US,O=Portcullis Test,CN=Rekeyed CA', ca: true, key: await generateKey('ec-p256', 'crl-rekey-b') });
    const crl = parseCrl((await issueCrl({ issuer: b })).der);
    assert.equal(verifyCrl(crl, store(a, b), { now: now() }).issuer, b.cert);
    const noAki = parseCrl((await issueCrl({ issuer: b, authorityKeyIdentifier: false })).der);
    assert.equal(verifyCrl(noAki, store(a, b), { now: now() }).issuer, b.cert);
  });

  it('refuses an expired CRL and a CRL from the future, allowing the clock skew', async () => {
    const t = Date.now();
    const expired = parseCrl((await issueCrl({ issuer: ecCa, thisUpdate: new Date(Date.UTC(2025, 11, 26)), nextUpdate: new Date(Date.UTC(2026, 0, 2)) })).der);
    assertCrlError(() => verifyCrl(expired, store(ecCa), { now: new Date(Date.UTC(2026, 0, 3)) }),
      /^CRL expired: nextUpdate 2026-01-02T00:00:00Z is before now \(2026-01-03T00:00:00Z\) minus clock skew 300000 ms$/);
    const future = parseCrl((await issueCrl({ issuer: ecCa, thisUpdate: new Date(t + 3600_000) })).der);
    assertCrlError(() => verifyCrl(future, store(ecCa), { now: new Date(t) }), /^CRL not yet valid: thisUpdate .* is after now/);

    const nearly = parseCrl((await issueCrl({ issuer: ecCa, thisUpdate: new Date(t - DAY), nextUpdate: new Date(t - 60_000) })).der);
    verifyCrl(nearly, store(ecCa), { now: new Date(t) });
    assertCrlError(() => verifyCrl(nearly, store(ecCa), { now: new Date(t), clockSkewMs: 0 }), /^CRL expired/);

    const noNext = parseCrl((await issueCrl({ issuer: ecCa, nextUpdate: null })).der);
    assert.equal(noNext.nextUpdate, undefined);
    verifyCrl(noNext, store(ecCa), { now: new Date(t + 365 * DAY) });
  });

  it('rejects invalid verify options', async () => {
    const crl = parseCrl((await issueCrl({ issuer: ecCa })).der);
    assert.throws(() => verifyCrl(crl, store(ecCa), { now: new Date(NaN) }), InvalidArgumentError);
    assert.throws(() => verifyCrl(crl, store(ecCa), { now: now(), clockSkewMs: -1 }), InvalidArgumentError);
  });

  it('refuses delta CRLs', async () => {
    const parsed = parseCrl((await issueCrl({ issuer: ecCa, deltaBase: 7 })).der);
    assert.equal(parsed.isDelta, true);
    assert.equal(parsed.baseCrlNumber, 7n);
    assertCrlError(() => verifyCrl(parsed, store(ecCa), { now: now() }), /is a delta CRL .*delta CRLs are not supported/);
  });

  it('refuses indirect CRLs (issuingDistributionPoint indirectCRL, or a certificateIssuer entry)', async () => {
    const idp = parseCrl((await issueCrl({ issuer: ecCa, indirect: true })).der);
    assert.equal(idp.isIndirect, true);
    assert.equal(idp.issuingDistributionPoint?.indirectCRL, true);
    assertCrlError(() => verifyCrl(idp, store(ecCa), { now: now() }), /is an indirect CRL \(issuingDistributionPoint indirectCRL\): indirect CRLs are not supported/);

    const entry = parseCrl((await issueCrl({ issuer: ecCa, entries: [{ serial: '01' }, { serial: '02', certificateIssuer: 'CN=Other CA' }] })).der);
    assert.equal(entry.isIndirect, true);
    assert.equal(entry.revoked[1]!.hasCertificateIssuer, true);
    assertCrlError(() => verifyCrl(entry, store(ecCa), { now: now() }), /entry #2 \(serial 02\) has a certificateIssuer extension/);
  });

  it('refuses unknown critical CRL and CRL entry extensions; ignores unknown non-critical ones', async () => {
    const crlExt = parseCrl((await issueCrl({ issuer: ecCa, extensions: [criticalExtension('1.3.6.1.4.1.99999.1')] })).der);
    assert.deepEqual(crlExt.unhandledCriticalExtensions, ['1.3.6.1.4.1.99999.1']);
    assertCrlError(() => verifyCrl(crlExt, store(ecCa), { now: now() }), /critical CRL extension Portcullis does not process \(1\.3\.6\.1\.4\.1\.99999\.1\)/);

    const entryExt = parseCrl((await issueCrl({ issuer: ecCa, entries: [{ serial: '0c', extensions: [criticalExtension('1.3.6.1.4.1.99999.2')] }] })).der);
    assertCrlError(() => verifyCrl(entryExt, store(ecCa), { now: now() }), /entry #1 \(serial 0c\) has a critical CRL entry extension .*1\.3\.6\.1\.4\.1\.99999\.2/);

    const nonCritical = new pkijs.Extension({ extnID: '1.3.6.1.4.1.99999.3', critical: false, extnValue: new asn1js.Null().toBER(false) });
    const fine = parseCrl((await issueCrl({ issuer: ecCa, extensions: [nonCritical], entries: [{ serial: '0d', extensions: [nonCritical] }] })).der);
    verifyCrl(fine, store(ecCa), { now: now() });
  });

  it('refuses removeFromCRL in a complete CRL and SHA-1 signatures', async () => {
    const remove = parseCrl((await issueCrl({ issuer: ecCa, entries: [{ serial: '0e', reason: 'removeFromCRL' }] })).der);
    assertCrlError(() => verifyCrl(remove, store(ecCa), { now: now() }), /reason removeFromCRL, which RFC 5280 5\.3\.1 allows only in delta CRLs/);
    const sha1 = parseCrl((await issueCrl({ issuer: rsaCa, hash: 'SHA-1' })).der);
    assertCrlError(() => verifyCrl(sha1, store(rsaCa), { now: now() }), /cannot be verified: sha1WithRSAEncryption is too weak/);
  });

  it('reads PEM with # comment lines, CRLF and a BOM, as string or bytes', async () => {
    const crl = await issueCrl({ issuer: ecCa, entries: [{ serial: '01' }] });
    const text = `\ufeff# revoked client certificates\r\n# issued by CRL EC CA\r\n\r\n${crl.pem.replace(/\n/g, '\r\n')}\r\n# end\r\n`;
    for (const input of [text, Buffer.from(text, 'utf8')]) {
      const parsed = parseCrl(input);
      assert.deepEqual(parsed.der, crl.der);
      verifyCrl(parsed, store(ecCa), { now: now() });
    }
  });

  it('throws CrlError naming what is wrong for garbage and malformed input', async () => {
    const crl = await issueCrl({ issuer: ecCa, entries: [{ serial: '01' }] });
    assertCrlError(() => parseCrl(''), /input is empty/);
    assertCrlError(() => parseCrl(new Uint8Array(0)), /input is empty/);
    assertCrlError(() => parseCrl(Buffer.from('hello world, not a CRL')), /neither PEM .* nor DER/);
    assertCrlError(() => parseCrl('hello world'), /line 1: unexpected text outside the PEM block: "hello world"/);
    assertCrlError(() => parseCrl('# only a comment\n\n'), /no CRL found/);
    assertCrlError(() => parseCrl(Buffer.from('# only a comment\n')), /no CRL found/);
    assertCrlError(() => parseCrl(ecCa.pem), /PEM block "CERTIFICATE" is not a CRL/);
    assertCrlError(() => parseCrl(ecCa.der), /not a valid X\.509 CRL/);
    assertCrlError(() => parseCrl(crl.pem + crl.pem), /a second X509 CRL block/);
    assertCrlError(() => parseCrl(crl.pem.replace(/\n-----END X509 CRL-----\n/, '\n')), /has no -----END X509 CRL----- marker/);
    assertCrlError(() => parseCrl(crl.pem.replace(/^(-----BEGIN X509 CRL-----\n)./, '$1!')), /invalid base64/);
    assertCrlError(() => parseCrl(Buffer.concat([crl.der, Buffer.from([0, 0])])), /2 trailing bytes after the CertificateList/);
    assertCrlError(() => parseCrl(crl.der.subarray(0, crl.der.length - 10)), /truncated/);
    assertCrlError(() => parseCrl(Buffer.from([0x30, 0x80, 0, 0])), /indefinite length/);
    assertCrlError(() => parseCrl(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01])), /not a valid X\.509 CRL/);
    assertCrlError(() => parseCrl(crl.der, { maxBytes: 100 }), /the CRL is \d+ bytes; the limit is 100 bytes/);
    // Every single-byte corruption either still parses or fails with a CrlError (never a TypeError from deep inside).
    for (let i = 0; i < crl.der.length; i++) {
      for (const mask of [0xff, 0x01, 0x80]) {
        const junk = Buffer.from(crl.der);
        junk[i] = junk[i]! ^ mask;
        try {
          parseCrl(junk);
        } catch (err) {
          assert.ok(err instanceof CrlError, `flipping byte ${i} with ${mask} gave ${String(err)}`);
        }
      }
    }
  });

  it('checks the outer signatureAlgorithm against tbsCertList.signature', async () => {
    const crl = await issueCrl({ issuer: rsaCa });
    const der = Buffer.from(crl.der);
    // sha256WithRSAEncryption is 1.2.840.113549.1.1.11; change the outer one (the last occurrence) to .12
    const oid = Buffer.from('2a864886f70d01010b', 'hex');
    der[der.lastIndexOf(oid) + oid.length - 1] = 0x0c;
    assertCrlError(() => parseCrl(der), /signatureAlgorithm differs from tbsCertList\.signature/);
  });

  it('parses an empty CRL (no revokedCertificates) to zero KVS items', async () => {
    const parsed = parseCrl((await issueCrl({ issuer: ecCa, crlNumber: null })).der);
    assert.deepEqual(parsed.revoked, []);
    assert.equal(parsed.crlNumber, undefined);
    verifyCrl(parsed, store(ecCa), { now: now() });
    assert.deepEqual(crlToKvsEntries(parsed), []);
  });

  it('keeps the first of duplicate serials', async () => {
    const parsed = parseCrl((await issueCrl({ issuer: ecCa, entries: [
      { serial: '0f', reason: 'superseded' }, { serial: '10' }, { serial: '0f', reason: 'keyCompromise' },
    ] })).der);
    assert.equal(parsed.revoked.length, 3);
    const items = crlToKvsEntries(parsed);
    assert.deepEqual(items.map((i) => i.key), ['0f', '10']);
    assert.equal(JSON.parse(items[0]!.value).reason, 'superseded');
  });

  it('keeps values within 1 KB by dropping an overlong issuer', async () => {
    const longCa = await issueCertificate({ subject: `C=US,O=${'x'.repeat(600)},CN=${'y'.repeat(600)}`, ca: true, key: await generateKey('ec-p256', 'crl-long') });
    const items = crlToKvsEntries(parseCrl((await issueCrl({ issuer: longCa, entries: [{ serial: '01', reason: 'keyCompromise' }] })).der));
    assert.ok(Buffer.byteLength(items[0]!.value) <= CRL_KVS_MAX_VALUE_BYTES);
    assert.deepEqual(Object.keys(JSON.parse(items[0]!.value)), ['revocationDate', 'reason', 'crlNumber']);
  });

  it('parses CRLs beyond asn1js\' default 10 000-node limit (3 000 entries)', async () => {
    const entries = Array.from({ length: 3000 }, (_, i) => ({ serial: (0x10000 + i).toString(16).padStart(6, '0'), reason: 'keyCompromise' }));
    const parsed = parseCrl((await issueCrl({ issuer: ecCa, entries })).der);
    assert.equal(parsed.revoked.length, 3000);
    verifyCrl(parsed, store(ecCa), { now: now() });
    const items = crlToKvsEntries(parsed);
    assert.equal(items.length, 3000);
    assert.equal(items[2999]!.key, '010bb7');
  });

  it('reads a CRL made by openssl ca -gencrl, with reasons and a high-bit serial', async () => {
    const made = await opensslGenCrl({ revoked: [
      { serialHex: '1001', reason: 'keyCompromise', revocationDate: new Date(Date.UTC(2025, 5, 1, 12, 0, 0)) },
      { serialHex: 'A7309E01', reason: 'superseded' },
      { serialHex: '1003', reason: 'CACompromise' },
      { serialHex: '1004', reason: 'certificateHold' },
      { serialHex: '1005' },
    ] });
    const trust = parseTrustStoreBundle(made.caPem);
    for (const input of [made.crlPem, made.crlDer]) {
      const parsed = parseCrl(input);
      assert.equal(parsed.issuer, 'CN=OpenSSL CRL CA, O=Portcullis Test, C=US');
      assert.equal(parsed.crlNumber, 0x1000n);
      assert.equal(verifyCrl(parsed, trust, { now: now() }).issuer, trust.anchors[0]);
      const items = crlToKvsEntries(parsed);
      const byKey = new Map(items.map((i) => [i.key, JSON.parse(i.value) as Record<string, string>]));
      assert.deepEqual([...byKey.keys()].sort(), ['00a7309e01', '1001', '1003', '1004', '1005']);
      assert.deepEqual(byKey.get('1001'), { revocationDate: '2025-06-01T12:00:00Z', reason: 'keyCompromise', crlNumber: '4096', issuer: 'CN=OpenSSL CRL CA, O=Portcullis Test, C=US' });
      assert.equal(byKey.get('00a7309e01')!.reason, 'superseded');
      assert.equal(byKey.get('1003')!.reason, 'cACompromise');
      assert.equal(byKey.get('1004')!.reason, 'certificateHold');
      assert.equal(byKey.get('1005')!.reason, undefined);
    }
  });

  it('is exported from the revocation entry file', () => {
    assert.equal(revocation.parseCrl, parseCrl);
    assert.equal(revocation.verifyCrl, verifyCrl);
    assert.equal(revocation.crlToKvsEntries, crlToKvsEntries);
  });
});
