import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeName, hasOpenssl, issueCertificate } from '../../test/helpers/pki.js';
import type { NameSpec } from '../../test/helpers/pki.js';
import { CertificateParseError } from '../errors.js';
import { escapeDnValue, formatDn, formatDnRfc2253, formatDnRfc4514, parseDn } from './dn.js';

/** DER TLV with a definite length. */
function tlv(tag: number, ...content: Uint8Array[]): Buffer {
  const body = Buffer.concat(content);
  const len = body.length < 0x80 ? Buffer.from([body.length])
    : body.length < 0x100 ? Buffer.from([0x81, body.length]) : Buffer.from([0x82, body.length >> 8, body.length & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, body]);
}
const OID_CN = Buffer.from('0603550403', 'hex');
/** A Name with one single-valued RDN whose value is the raw TLV `value` (type: CN unless `oidTlv`). */
function nameWithRawValue(value: Buffer, oidTlv = OID_CN): Buffer {
  return tlv(0x30, tlv(0x31, tlv(0x30, oidTlv, value)));
}

const both = (spec: NameSpec) => {
  const der = encodeName(spec);
  return { rfc4514: formatDnRfc4514(der), rfc2253: formatDnRfc2253(der) };
};


test('RDNs come out in reverse DER order with ", " (RFC 4514) or "," (RFC 2253)', () => {
  assert.deepEqual(both('C=US,O=Example Corp,OU=Devices,CN=device-17'), {
    rfc4514: 'CN=device-17, OU=Devices, O=Example Corp, C=US',
    rfc2253: 'CN=device-17,OU=Devices,O=Example Corp,C=US',
  });
  // Order is the DER order reversed, whatever the attribute types.
  assert.equal(formatDnRfc4514(encodeName('CN=first,C=DE')), 'C=DE, CN=first');
});

test('short names for RFC 4514 section 3 types and common extras', () => {
  const der = encodeName([
    [['DC', 'com']], [['DC', 'example']], [['C', 'US']], [['ST', 'CA']], [['L', 'SF']], [['STREET', '1 Main St']],
    [['O', 'O']], [['OU', 'U']], [['UID', 'jdoe']], [['serialNumber', 'SN123']], [['title', 'Eng']],
    [['emailAddress', 'j@example.com']], [['CN', 'J']],
  ]);
  assert.equal(formatDnRfc2253(der),
    'CN=J,emailAddress=j@example.com,title=Eng,serialNumber=SN123,UID=jdoe,OU=U,O=O,STREET=1 Main St,L=SF,ST=CA,C=US,DC=example,DC=com');
});

test('escaping of special characters (RFC 4514 2.4)', () => {
  const cases: [string, string][] = [
    ['a,b', 'a\\,b'],
    ['a+b', 'a\\+b'],
    ['say "hi"', 'say \\"hi\\"'],
    ['back\\slash', 'back\\\\slash'],
    ['<tag>;x', '\\<tag\\>\\;x'],
    ['#lead', '\\#lead'],
    ['mid#dle', 'mid#dle'],
    [' lead', '\\ lead'],
    ['trail ', 'trail\\ '],
    [' ', '\\ '],
    ['  two  ', '\\  two \\ '],
    ['in ner', 'in ner'],
    ['a=b', 'a=b'],
    ['nul\u0000x', 'nul\\00x'],
    ['line\nbreak\r', 'line\\0Abreak\\0D'],
    ['del\u007f', 'del\\7F'],
  ];
  for (const [value, escaped] of cases) {
    assert.equal(formatDnRfc4514(encodeName([[['CN', value]]])), `CN=${escaped}`, JSON.stringify(value));
    assert.equal(escapeDnValue(value), escaped);
  }
});

test('non-ASCII: kept as UTF-8 in the RFC 4514 form, \\XX UTF-8 bytes in the RFC 2253 (header) form', () => {
  assert.deepEqual(both([[['O', 'Bäckerei Müller']], [['CN', '日本語 😀']]]), {
    rfc4514: 'CN=日本語 😀, O=Bäckerei Müller',
    rfc2253: 'CN=\\E6\\97\\A5\\E6\\9C\\AC\\E8\\AA\\9E \\F0\\9F\\98\\80,O=B\\C3\\A4ckerei M\\C3\\BCller',
  });
  assert.equal(escapeDnValue('é,', true), '\\C3\\A9\\,');
});

test('string types: UTF8, Printable, IA5, Teletex (Latin-1), BMP (UTF-16BE), Universal (UTF-32BE)', () => {
  assert.equal(formatDnRfc4514(encodeName([[['CN', 'printable', 'printable']]])), 'CN=printable');
  assert.equal(formatDnRfc4514(encodeName([[['CN', 'ia5@x', 'ia5']]])), 'CN=ia5@x');
  assert.equal(formatDnRfc4514(encodeName([[['CN', 'café', 'teletex']]])), 'CN=café');
  assert.equal(formatDnRfc4514(encodeName([[['CN', 'bmp Ωé', 'bmp']]])), 'CN=bmp Ωé');
  // BMPString with a surrogate pair (U+1F600) decodes as one character.
  assert.equal(formatDnRfc4514(nameWithRawValue(tlv(0x1e, Buffer.from('d83dde00', 'hex')))), 'CN=😀');
  // UniversalString: UTF-32BE.
  const universal = tlv(0x1c, Buffer.from('00000055000000e90001f600', 'hex'));
  assert.equal(formatDnRfc4514(nameWithRawValue(universal)), 'CN=Ué😀');
  assert.equal(formatDnRfc2253(nameWithRawValue(universal)), 'CN=U\\C3\\A9\\F0\\9F\\98\\80');
  // Teletex bytes are Latin-1: 0xE9 is é, and in the header form becomes its UTF-8 bytes.
  assert.equal(formatDnRfc2253(nameWithRawValue(tlv(0x14, Buffer.from([0x63, 0x61, 0x66, 0xe9])))), 'CN=caf\\C3\\A9');
});

test('values that cannot be decoded as text are written as #hex of their DER', () => {
  // Unknown attribute type (dotted OID): always #hex, even for a string value (RFC 4514 2.4).
  assert.equal(formatDnRfc4514(encodeName([[['1.2.3.4', 'xyz']], [['CN', 'a']]])), 'CN=a, 1.2.3.4=#0C0378797A');
  // Known type with a non-string value (INTEGER 5).
  assert.equal(formatDnRfc4514(nameWithRawValue(tlv(0x02, Buffer.from([5])))), 'CN=#020105');
  // Invalid UTF-8 in a UTF8String.
  assert.equal(formatDnRfc4514(nameWithRawValue(tlv(0x0c, Buffer.from([0x61, 0xff])))), 'CN=#0C0261FF');
  // BMPString with a lone surrogate; UniversalString out of range.
  assert.equal(formatDnRfc4514(nameWithRawValue(tlv(0x1e, Buffer.from('d800', 'hex')))), 'CN=#1E02D800');
  assert.equal(formatDnRfc4514(nameWithRawValue(tlv(0x1c, Buffer.from('00110000', 'hex')))), 'CN=#1C0400110000');
  // GeneralString is not decoded (OpenSSL dumps it too).
  assert.equal(formatDnRfc4514(nameWithRawValue(tlv(0x1b, Buffer.from('ab')))), 'CN=#1B026162');
  // A long value uses a long-form length; the dump is the whole TLV.
  const long = formatDnRfc4514(nameWithRawValue(tlv(0x04, Buffer.alloc(200, 0x41))));
  assert.equal(long, `CN=#0481C8${'41'.repeat(200)}`);
});

test('multi-valued RDNs: attributes joined with "+", in reverse DER order like OpenSSL', () => {
  const der = encodeName([[['C', 'US']], [['O', 'Org']], [['CN', 'alice'], ['UID', 'a1'], ['OU', 'eng']]]);
  assert.equal(formatDnRfc4514(der), 'OU=eng+UID=a1+CN=alice, O=Org, C=US');
  assert.equal(formatDnRfc2253(der), 'OU=eng+UID=a1+CN=alice,O=Org,C=US');
  const parsed = parseDn(der);
  assert.equal(parsed.length, 3);
  assert.deepEqual(parsed[2]!.map((a) => [a.oid, a.name, a.value]), [
    ['2.5.4.3', 'CN', 'alice'], ['0.9.2342.19200300.100.1.1', 'UID', 'a1'], ['2.5.4.11', 'OU', 'eng'],
  ]);
  // Escaping applies inside multi-valued RDNs too.
  assert.equal(formatDnRfc4514(encodeName([[['CN', 'a+b'], ['OU', ' x']]])), 'OU=\\ x+CN=a\\+b');
});

test('formatDn accepts a parsed Name and a custom separator; an empty Name is ""', () => {
  const parsed = parseDn(encodeName('C=US,CN=x'));
  assert.equal(formatDn(parsed), 'CN=x, C=US');
  assert.equal(formatDn(parsed, { separator: ' / ' }), 'CN=x / C=US');
  assert.equal(formatDnRfc4514(Buffer.from('3000', 'hex')), '');
  assert.deepEqual(parseDn(Buffer.from('3000', 'hex')), []);
});

test('malformed Names throw CertificateParseError', () => {
  const bad: Buffer[] = [
    Buffer.from('', 'hex'),
    Buffer.from('3100', 'hex'), // SET, not SEQUENCE
    Buffer.from('30003000', 'hex'), // trailing bytes
    tlv(0x30, tlv(0x31)), // empty RDN
    tlv(0x30, tlv(0x31, tlv(0x30, OID_CN))), // attribute without a value
    tlv(0x30, tlv(0x31, tlv(0x30, tlv(0x02, Buffer.from([1])), tlv(0x0c, Buffer.from('a'))))), // type not an OID
    Buffer.from('3005310330', 'hex'), // truncated
    nameWithRawValue(tlv(0x1e, Buffer.from([0, 0x61, 0]))), // odd-length BMPString (asn1js rejects it, as it does in a certificate)
  ];
  for (const der of bad) assert.throws(() => formatDnRfc4514(der), CertificateParseError, der.toString('hex'));
});

test('header form equals `openssl x509 -nameopt RFC2253` (ordinary and awkward names)', { skip: !hasOpenssl && 'openssl not installed' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-dn-'));
  try {
    const names: NameSpec[] = [
      'C=US,ST=Washington,L=Seattle,O=mTLS,OU=rootCA,CN=rootcamtls.com',
      'C=GB,O=Example Ltd,CN=client_.com',
      [[['DC', 'org']], [['DC', 'example']], [['O', 'Acme, Inc.']], [['CN', 'Smith "Jr" + Co']], [['emailAddress', 'a@example.org']]],
      [[['C', 'FR']], [['O', 'Société Générale']], [['CN', '#1 leader '], ['OU', ' ops']], [['CN', 'x\\y;z<w>']]],
      [[['CN', 'bmp é', 'bmp']], [['CN', 'tel é', 'teletex']], [['CN', '日本']], [['1.2.3.4', 'oid']], [['CN', 'nul\u0000\n']]],
      [[['serialNumber', '1234']], [['title', 'T']], [['UID', 'u']], [['CN', 'a'], ['O', 'b'], ['OU', 'c']]],
    ];
    for (const [i, subject] of names.entries()) {
      const c = await issueCertificate({ subject });
      const file = join(dir, `c${i}.pem`);
      writeFileSync(file, c.pem);
      const out = execFileSync('openssl', ['x509', '-in', file, '-noout', '-subject', '-issuer', '-nameopt', 'RFC2253'], { encoding: 'utf8' });
      const [subjectLine, issuerLine] = out.trimEnd().split('\n');
      assert.equal(`subject=${formatDnRfc2253(c.cert.subjectDer)}`, subjectLine);
      assert.equal(`issuer=${formatDnRfc2253(c.cert.issuerDer)}`, issuerLine);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
