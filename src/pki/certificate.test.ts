import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { buildChain, issueCertificate, type TestChain } from '../../test/helpers/pki.js';
import { ParsedCertificate } from './certificate.js';

/** `der` with `from` (found once) replaced by `to`, the two outer SEQUENCE lengths (82 xx xx) fixed up. */
function splice(der: Buffer, from: string, to: string): Buffer {
  const at = der.indexOf(Buffer.from(from, 'hex'));
  assert.ok(at > 0, `${from} not found`);
  const out = Buffer.concat([der.subarray(0, at), Buffer.from(to, 'hex'), der.subarray(at + from.length / 2)]);
  const delta = (to.length - from.length) / 2;
  assert.equal(out[1], 0x82);
  assert.equal(out[5], 0x82);
  out.writeUInt16BE(out.readUInt16BE(2) + delta, 2);
  out.writeUInt16BE(out.readUInt16BE(6) + delta, 6);
  return out;
}

describe('ParsedCertificate.encodingProblem (DER that OpenSSL refuses)', () => {
  let chain: TestChain;
  before(async () => {
    chain = await buildChain({ name: 'Cert Enc', intermediates: 1 });
  });

  it('is undefined for valid certificates, whose node X509Certificate is built at parse time', () => {
    for (const c of [chain.root, chain.intermediates[0]!, chain.leaf]) {
      assert.equal(c.cert.encodingProblem, undefined);
      assert.ok(c.cert.x509 instanceof X509Certificate);
      assert.ok(c === chain.root || c.cert.isSignedBy(c === chain.leaf ? chain.intermediates[0]!.cert : chain.root.cert));
    }
  });

  it('names a non-minimal or empty serialNumber INTEGER (X.690 8.3), and the certificate never verifies', async () => {
    const cases: [string, RegExp][] = [
      ['0001', /^its serialNumber INTEGER is not minimally encoded \(it starts 00 01; X\.690 8\.3\.2 forbids a leading 00 octet/],
      ['007f', /^its serialNumber INTEGER is not minimally encoded \(it starts 00 7f;/],
      ['ff80', /^its serialNumber INTEGER is not minimally encoded \(it starts ff 80; X\.690 8\.3\.2 forbids a leading ff octet/],
      ['ffff01', /not minimally encoded \(it starts ff ff;/],
      ['', /^its serialNumber INTEGER is empty \(X\.690 8\.3\.1/],
    ];
    for (const [serial, expected] of cases) {
      const c = await issueCertificate({ subject: 'CN=Enc Leaf', issuer: chain.intermediates[0]!, serial });
      assert.match(c.cert.encodingProblem ?? '(none)', expected, serial);
      assert.throws(() => new X509Certificate(c.der), 'OpenSSL refuses it too');
      assert.equal(c.cert.isSignedBy(chain.intermediates[0]!.cert), false);
      assert.throws(() => c.cert.x509);
      // Still parsed (fields available for messages), and cached like any other parse.
      assert.equal(c.cert.serialNumberBytes.toString('hex'), serial);
      assert.equal(ParsedCertificate.fromDer(c.der), ParsedCertificate.fromDer(c.der));
    }
  });

  it('accepts minimal serials that RFC 5280 4.1.2.2 only discourages (negative, zero, over 20 octets)', async () => {
    for (const serial of ['00ff', '80', 'ff01', '00', `7f${'11'.repeat(24)}`]) {
      const c = await issueCertificate({ subject: 'CN=Odd Serial', issuer: chain.intermediates[0]!, serial });
      assert.equal(c.cert.encodingProblem, undefined, serial);
      assert.ok(c.cert.isSignedBy(chain.intermediates[0]!.cert), serial);
    }
  });

  it('names other INTEGERs and padded OBJECT IDENTIFIERs; tolerates the BER lengths OpenSSL tolerates', () => {
    const der = chain.intermediates[0]!.der;
    // version [0] { INTEGER 2 } written as 00 02
    const version = ParsedCertificate.fromDer(splice(der, 'a003020102', 'a00402020002'));
    assert.match(version.encodingProblem ?? '(none)', /^it is not DER: an INTEGER at byte 10 is not minimally encoded \(it starts 00 02;/);
    // ecdsa-with-SHA256 with a padded subidentifier (…04 03 80 02)
    const oid = ParsedCertificate.fromDer(splice(der, '300a06082a8648ce3d040302', '300b06092a8648ce3d04038002'));
    assert.match(oid.encodingProblem ?? '(none)', /OBJECT IDENTIFIER at byte \d+ has a subidentifier padded with a leading 80 octet \(X\.690 8\.19\.2\)/);
    // a long-form outer length with a leading zero octet: BER, but OpenSSL reads it
    const ber = Buffer.concat([Buffer.from([0x30, 0x83, 0x00]), der.subarray(2)]);
    assert.equal(ParsedCertificate.fromDer(ber).encodingProblem, undefined);
  });
});
