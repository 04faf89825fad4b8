import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, createPublicKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { buildChain, hasOpenssl, issueCertificate } from '../../test/helpers/pki.js';
import type { TestCert } from '../../test/helpers/pki.js';
import { CertificateParseError, InvalidArgumentError } from '../errors.js';
import { ParsedCertificate } from './certificate.js';
import { OID } from './oids.js';
import {
  VIEWER_CERT_HEADER_NAMES, certificateView, chainView, formatFingerprint, formatIsoSeconds,
  formatSubjectAltName, viewerCertAbsentHeaders, viewerCertHeaders,
} from './view.js';

const VIEW_KEYS = ['issuer', 'san', 'sanHex', 'serialNumber', 'sha256Fingerprint', 'spki', 'subject', 'validity'];
const ISO_SECONDS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;


/** Runs `openssl x509 … -in <cert>` and returns stdout. */
function openssl(cert: TestCert, args: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-view-'));
  try {
    const file = join(dir, 'c.pem');
    writeFileSync(file, cert.pem);
    return execFileSync('openssl', ['x509', '-in', file, '-noout', ...args], { encoding: 'utf8' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** DER TLV with a definite length. */
function tlv(tag: number, ...content: Uint8Array[]): Buffer {
  const body = Buffer.concat(content);
  const len = body.length < 0x80 ? Buffer.from([body.length]) : Buffer.from([0x81, body.length]);
  return Buffer.concat([Buffer.from([tag]), len, body]);
}

/** A certificate whose subjectAltName extension value is exactly `sanDer`. */
function withRawSan(sanDer: Buffer): Promise<TestCert> {
  const ab = sanDer.buffer.slice(sanDer.byteOffset, sanDer.byteOffset + sanDer.byteLength) as ArrayBuffer;
  return issueCertificate({ subject: 'CN=raw san', extensions: [new pkijs.Extension({ extnID: OID.subjectAltName, critical: false, extnValue: ab })] });
}

test('certificateView has exactly the SPEC section 4 fields', async () => {
  const chain = await buildChain({ name: 'View', intermediates: 1, ocspUrl: (d) => `http://ocsp.example/${d}` });
  const view = certificateView(chain.leaf.cert);
  assert.deepEqual(Object.keys(view).sort(), [...VIEW_KEYS, 'ocspEndpoint'].sort());
  assert.deepEqual(Object.keys(view.validity).sort(), ['notAfter', 'notBefore']);
  assert.equal(view.subject, 'CN=View Client, O=Portcullis Test, C=US');
  assert.equal(view.issuer, 'CN=View Intermediate CA 1, O=Portcullis Test, C=US');
  assert.equal(view.ocspEndpoint, 'http://ocsp.example/0');
  assert.equal(view.san, 'DNS:client.example.com');
  assert.match(view.validity.notBefore, ISO_SECONDS);
  assert.match(view.validity.notAfter, ISO_SECONDS);
  assert.match(view.serialNumber, /^[0-9a-f]{2}(:[0-9a-f]{2})*$/);
  assert.match(view.sha256Fingerprint, /^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/);
  // Plain data: survives a JSON round trip unchanged (what the sandbox marshalling does).
  assert.deepEqual(JSON.parse(JSON.stringify(view)), view);
});

test('fingerprint, spki and sanHex are derived from the DER', async () => {
  const c = await issueCertificate({ subject: 'CN=derive', key: 'rsa-2048', san: { dns: ['a.example.com'], ip: ['10.0.0.1'] } });
  const view = certificateView(c.cert);
  const sha = createHash('sha256').update(c.der).digest('hex').toUpperCase();
  assert.equal(view.sha256Fingerprint, sha.match(/../g)!.join(':'));
  assert.equal(view.sha256Fingerprint, new X509Certificate(c.der).fingerprint256);
  const spki = createPublicKey(c.keyPem).export({ type: 'spki', format: 'der' });
  assert.equal(view.spki, spki.toString('hex'));
  assert.equal(view.sanHex, c.cert.subjectAltNameDer!.toString('hex'));
  assert.match(view.sanHex, /^30[0-9a-f]+$/);
  assert.equal(view.san, 'DNS:a.example.com,IP:10.0.0.1');
});

test('validity: ISO 8601 UTC, Z, whole seconds (UTCTime and GeneralizedTime)', async () => {
  const c = await issueCertificate({
    subject: 'CN=dates', notBefore: new Date('2024-01-02T03:04:05.678Z'), notAfter: new Date('2049-12-31T23:59:59Z'),
  });
  assert.deepEqual(certificateView(c.cert).validity, { notBefore: '2024-01-02T03:04:05Z', notAfter: '2049-12-31T23:59:59Z' });
  // GeneralizedTime (from 2050, RFC 5280 4.1.2.5), including the 99991231235959Z "no expiry" date
  // and a fractional second (not DER, truncated). The signature is stale; the view does not check it.
  const p = new pkijs.Certificate({ schema: asn1js.fromBER(c.der).result });
  p.notBefore = new pkijs.Time({ type: 1, value: new Date('2051-06-07T08:09:10.500Z') });
  p.notAfter = new pkijs.Time({ type: 1, value: new Date('9999-12-31T23:59:59Z') });
  const generalized = ParsedCertificate.fromDer(Buffer.from(p.toSchema(true).toBER(false)));
  assert.deepEqual(certificateView(generalized).validity, { notBefore: '2051-06-07T08:09:10Z', notAfter: '9999-12-31T23:59:59Z' });
  assert.equal(formatIsoSeconds(new Date('2025-02-03T04:05:06.999Z')), '2025-02-03T04:05:06Z');
  assert.equal(formatIsoSeconds(new Date(0)), '1970-01-01T00:00:00Z');
});

test('subject, issuer, serial, fingerprint and validity agree with openssl', { skip: !hasOpenssl && 'openssl not installed' }, async () => {
  const chain = await buildChain({ name: 'Cross', intermediates: 2 });
  const highBit = await issueCertificate({ subject: 'C=US,ST=Washington,L=Seattle,O=mTLS,OU=client-3,CN=client_.com', issuer: chain.root, serial: '00a7309e' });
  for (const c of [chain.leaf, ...chain.intermediates, chain.root, highBit]) {
    const view = certificateView(c.cert);
    const headers = viewerCertHeaders(c.cert);
    const out = openssl(c, ['-subject', '-issuer', '-serial', '-fingerprint', '-sha256', '-startdate', '-enddate', '-nameopt', 'RFC2253']);
    const f = Object.fromEntries(out.trimEnd().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    assert.equal(headers['CloudFront-Viewer-Cert-Subject'], f.subject);
    assert.equal(headers['CloudFront-Viewer-Cert-Issuer'], f.issuer);
    // Ordinary names: the connection-object form is the same with ", " separators.
    assert.equal(view.subject, f.subject!.split(',').join(', '));
    assert.equal(view.issuer, f.issuer!.split(',').join(', '));
    // openssl prints the INTEGER value (no 00 sign octet, uppercase, no colons).
    assert.equal(view.serialNumber.replaceAll(':', '').replace(/^00(?=[89a-f])/, '').toUpperCase(), f.serial);
    assert.equal(view.sha256Fingerprint, f['sha256 Fingerprint']);
    assert.equal(Date.parse(view.validity.notBefore), Date.parse(f.notBefore!));
    assert.equal(Date.parse(view.validity.notAfter), Date.parse(f.notAfter!));
  }
  assert.equal(certificateView(highBit.cert).serialNumber, '00:a7:30:9e');
  assert.equal(certificateView(highBit.cert).subject, 'CN=client_.com, OU=client-3, O=mTLS, L=Seattle, ST=Washington, C=US');
});

test('SANs: DNS, IPv4, IPv6, email and URI in DER order, OpenSSL names/IPv6 style', async () => {
  const c = await issueCertificate({
    subject: 'CN=sans',
    san: {
      dns: ['a.example.com', '*.wild.example.com'], email: ['ops@example.com'], uri: ['spiffe://example.org/ns/prod/sa/api'],
      ip: ['10.0.0.1', '2001:db8::1', '::1', 'fe80::1:abcd', '2001:db8:85a3::8a2e:370:7334'],
    },
  });
  const expected = 'DNS:a.example.com,DNS:*.wild.example.com,email:ops@example.com,URI:spiffe://example.org/ns/prod/sa/api,'
    + 'IP:10.0.0.1,IP:2001:DB8:0:0:0:0:0:1,IP:0:0:0:0:0:0:0:1,IP:FE80:0:0:0:0:0:1:ABCD,IP:2001:DB8:85A3:0:0:8A2E:370:7334';
  assert.equal(certificateView(c.cert).san, expected);
  if (hasOpenssl) {
    // Same entries as OpenSSL's own printing, modulo its "IP Address" label and ", " separator.
    const line = openssl(c, ['-ext', 'subjectAltName']).trim().split('\n').pop()!.trim();
    assert.equal(line.replaceAll('IP Address:', 'IP:').split(', ').join(','), expected);
  }
});

test('SANs: dirName, otherName, registeredID, x400Address, odd IP lengths (raw GeneralNames)', async () => {
  const name = tlv(0x30, tlv(0x31, tlv(0x30, Buffer.from('0603550406', 'hex'), tlv(0x13, Buffer.from('US')))),
    tlv(0x31, tlv(0x30, Buffer.from('0603550403', 'hex'), tlv(0x0c, Buffer.from('Dir, Name')))));
  const upnOid = Buffer.from('060a2b060104018237140203', 'hex');
  const san = tlv(0x30,
    tlv(0xa4, name),
    tlv(0xa0, upnOid, tlv(0xa0, tlv(0x0c, Buffer.from('user@corp.example')))),
    tlv(0xa0, Buffer.from('06032a0304', 'hex'), tlv(0xa0, tlv(0x02, Buffer.from([7])))),
    tlv(0xa0, Buffer.from('06032a0305', 'hex'), tlv(0xa0, tlv(0x16, Buffer.from('srv')))),
    tlv(0x88, Buffer.from('2a0304', 'hex')),
    tlv(0x88, Buffer.from('2b0601040182371402', 'hex')),
    tlv(0xa3, Buffer.alloc(0)),
    tlv(0xa5, Buffer.alloc(0)),
    tlv(0x87, Buffer.from('0a00000118', 'hex')),
  );
  assert.equal(formatSubjectAltName(san), [
    'dirName:CN=Dir\\\\\\, Name\\,C=US',
    'otherName:1.3.6.1.4.1.311.20.2.3;UTF8:user@corp.example',
    'otherName:1.2.3.4;#020107',
    'otherName:1.2.3.5;IA5:srv',
    'RID:1.2.3.4',
    'RID:1.3.6.1.4.1.311.20.2',
    'x400Address:#A300',
    'ediPartyName:#A500',
    'IP:#0A00000118',
  ].join(','));
  const c = await withRawSan(san);
  assert.equal(certificateView(c.cert).san, formatSubjectAltName(san));
  assert.equal(certificateView(c.cert).sanHex, san.toString('hex'));
});

test('SANs: commas, backslashes and control characters inside a value are escaped', async () => {
  const c = await issueCertificate({ subject: 'CN=tricky', san: { dns: ['evil.example,DNS:good.example'], uri: ['https://x.example/a\\b?c=1,2'] } });
  const { san } = certificateView(c.cert);
  assert.equal(san, 'DNS:evil.example\\,DNS:good.example,URI:https://x.example/a\\\\b?c=1\\,2');
  // Splitting on unescaped commas yields whole entries only.
  assert.deepEqual(san.split(/(?<!\\),/), ['DNS:evil.example\\,DNS:good.example', 'URI:https://x.example/a\\\\b?c=1\\,2']);
  assert.equal(formatSubjectAltName(tlv(0x30, tlv(0x82, Buffer.from('a\nb')))), 'DNS:a\\0Ab');
});

test('no SAN → san and sanHex are ""; empty GeneralNames → ""', async () => {
  const c = await issueCertificate({ subject: 'CN=no san' });
  const view = certificateView(c.cert);
  assert.equal(view.san, '');
  assert.equal(view.sanHex, '');
  assert.equal(formatSubjectAltName(Buffer.from('3000', 'hex')), '');
});

test('malformed subjectAltName → CertificateParseError', async () => {
  for (const bad of ['0401ff', '3003820161ff', '30030401ff', '3002a000', '3001']) {
    assert.throws(() => formatSubjectAltName(Buffer.from(bad, 'hex')), CertificateParseError, bad);
  }
  // The certificate parser keeps the raw extension; the view reports it.
  const c = await withRawSan(Buffer.from('040100', 'hex'));
  assert.throws(() => certificateView(c.cert), CertificateParseError);
});

test('ocspEndpoint: first AIA OCSP URL; absent (not undefined-valued) without one', async () => {
  const two = await issueCertificate({ subject: 'CN=two', ocspUrls: ['http://first.example/ocsp', 'http://second.example/ocsp'], caIssuersUrls: ['http://ca.example/ca.crt'] });
  assert.equal(certificateView(two.cert).ocspEndpoint, 'http://first.example/ocsp');
  const none = await issueCertificate({ subject: 'CN=none' });
  assert.equal('ocspEndpoint' in certificateView(none.cert), false);
  const caIssuersOnly = await issueCertificate({ subject: 'CN=ca only', caIssuersUrls: ['http://ca.example/ca.crt'] });
  assert.equal('ocspEndpoint' in certificateView(caIssuersOnly.cert), false);
  assert.deepEqual(Object.keys(certificateView(none.cert)).sort(), VIEW_KEYS);
});

test('views are computed once per certificate and frozen', async () => {
  const c = await issueCertificate({ subject: 'CN=cache' });
  const v = certificateView(c.cert);
  assert.equal(certificateView(c.cert), v);
  assert.ok(Object.isFrozen(v) && Object.isFrozen(v.validity));
  assert.throws(() => { (v as { subject: string }).subject = 'x'; }, TypeError);
  // Parsing the same DER again returns the cached certificate, hence the same view.
  const again = certificateView(ParsedCertificate.fromDer(Buffer.from(c.der)));
  assert.equal(again, v);
  assert.equal(viewerCertHeaders(c.cert), viewerCertHeaders(c.cert));
  assert.ok(Object.isFrozen(viewerCertHeaders(c.cert)));
});

test('chainView: leaf first, intermediates in the order sent', async () => {
  const chain = await buildChain({ name: 'Chain', intermediates: 3 });
  const cv = chainView(chain.presented.map((c) => c.cert));
  assert.deepEqual(Object.keys(cv).sort(), ['intermediates', 'leaf']);
  assert.equal(cv.leaf, certificateView(chain.leaf.cert));
  assert.deepEqual(cv.intermediates.map((v) => v.subject), [
    'CN=Chain Intermediate CA 3, O=Portcullis Test, C=US',
    'CN=Chain Intermediate CA 2, O=Portcullis Test, C=US',
    'CN=Chain Intermediate CA 1, O=Portcullis Test, C=US',
  ]);
  assert.equal(cv.leaf.issuer, cv.intermediates[0]!.subject);
  assert.deepEqual(chainView([chain.leaf.cert]), { leaf: certificateView(chain.leaf.cert), intermediates: [] });
  assert.throws(() => chainView([]), InvalidArgumentError);
});

test('viewerCertHeaders: the SPEC section 6 header forms', async () => {
  const c = await issueCertificate({
    subject: 'C=US,O=Example,CN=client', serial: '00a7309e',
    notBefore: new Date('2023-09-21T01:50:17Z'), notAfter: new Date('2024-09-20T01:50:17Z'),
  });
  const h = viewerCertHeaders(c.cert);
  assert.deepEqual(Object.keys(h).sort(), [...VIEWER_CERT_HEADER_NAMES].sort());
  assert.equal(h['CloudFront-Viewer-Cert-Present'], '1');
  assert.equal(h['CloudFront-Viewer-Cert-Serial-Number'], '00:a7:30:9e');
  assert.equal(h['CloudFront-Viewer-Cert-Subject'], 'CN=client,O=Example,C=US');
  assert.equal(h['CloudFront-Viewer-Cert-Issuer'], 'CN=client,O=Example,C=US');
  assert.equal(h['CloudFront-Viewer-Cert-Sha256'], createHash('sha256').update(c.der).digest('hex'));
  assert.match(h['CloudFront-Viewer-Cert-Sha256'], /^[0-9a-f]{64}$/);
  assert.equal(h['CloudFront-Viewer-Cert-Validity'], 'NotBefore=2023-09-21T01:50:17Z;NotAfter=2024-09-20T01:50:17Z');
  const pem = h['CloudFront-Viewer-Cert-Pem'];
  assert.ok(pem.startsWith('-----BEGIN%20CERTIFICATE-----%0A'), pem.slice(0, 40));
  assert.ok(pem.endsWith('%0A-----END%20CERTIFICATE-----%0A'));
  assert.equal(decodeURIComponent(pem), c.pem);
  assert.doesNotMatch(pem, /[ \n+/=]/);
  assert.deepEqual(viewerCertAbsentHeaders(), { 'CloudFront-Viewer-Cert-Present': '0' });
});

test('header values are printable ASCII even for non-ASCII and control characters in names', async () => {
  const c = await issueCertificate({ subject: [[['C', 'DE']], [['O', 'Müller GmbH']], [['CN', '日本\nx', 'bmp']]] });
  const h = viewerCertHeaders(c.cert);
  for (const [name, value] of Object.entries(h)) assert.match(value, /^[\x20-\x7e]*$/, name);
  assert.equal(h['CloudFront-Viewer-Cert-Subject'], 'CN=\\E6\\97\\A5\\E6\\9C\\AC\\0Ax,O=M\\C3\\BCller GmbH,C=DE');
  // The connection object keeps the UTF-8 text.
  assert.equal(certificateView(c.cert).subject, 'CN=日本\\0Ax, O=Müller GmbH, C=DE');
});

test('formatFingerprint: uppercase colon-separated bytes', () => {
  assert.equal(formatFingerprint(Buffer.from('00ff1a', 'hex')), '00:FF:1A');
  assert.equal(formatFingerprint(new Uint8Array(0)), '');
});
