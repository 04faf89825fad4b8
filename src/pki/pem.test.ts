import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { buildChain, issueCertificate, type TestChain } from '../../test/helpers/pki.js';
import { CertificateParseError } from '../errors.js';
import { looksLikePem, splitCertificates } from './pem.js';

function parseError(input: Uint8Array | string, pattern: RegExp): void {
  assert.throws(() => splitCertificates(input), (err: unknown) => err instanceof CertificateParseError && pattern.test(err.message));
}

describe('splitCertificates / looksLikePem: PEM or DER detection', () => {
  let chain: TestChain;
  before(async () => {
    chain = await buildChain({ name: 'PEM', intermediates: 1 });
  });

  it('reads PEM after any amount of leading # comments (more than 4 KiB, or 200 KiB)', () => {
    for (const lines of [80, 3000]) {
      const header = Array.from({ length: lines }, (_, i) => `# comment line ${i} ${'x'.repeat(60)}`).join('\n') + '\n';
      assert.ok(header.length > 4096);
      const bytes = Buffer.from(header + chain.presentedPem);
      assert.equal(looksLikePem(bytes), true);
      const blocks = splitCertificates(bytes);
      assert.equal(blocks.length, 2);
      assert.deepEqual(blocks[0]!.der, chain.leaf.der);
      assert.equal(blocks[0]!.where, `certificate #1 (line ${lines + 1})`);
    }
  });

  it('reads CRLF line ends and a UTF-8 BOM', () => {
    const crlf = Buffer.from(`\ufeff# bundle\r\n${chain.leaf.pem.replace(/\n/g, '\r\n')}`);
    const blocks = splitCertificates(crlf);
    assert.deepEqual(blocks.map((b) => b.where), ['certificate #1 (line 2)']);
    assert.deepEqual(blocks[0]!.der, chain.leaf.der);
  });

  it('DER is whatever starts with a SEQUENCE tag, even when its bytes contain a BEGIN marker', async () => {
    const tricky = await issueCertificate({ subject: 'CN=-----BEGIN CERTIFICATE-----', san: { uri: ['http://x/-----BEGIN CERTIFICATE-----'] } });
    assert.ok(tricky.der.includes('-----BEGIN '));
    assert.equal(looksLikePem(tricky.der), false);
    const blocks = splitCertificates(tricky.der);
    assert.deepEqual(blocks.map((b) => b.where), ['certificate #1 (DER)']);
    assert.deepEqual(blocks[0]!.der, tricky.der);
  });

  it('rejects input that is neither, however large, quickly', () => {
    const junk = randomBytes(16 * 1024 * 1024);
    junk[0] = 0x42;
    junk.fill(0x41, 1, 128); // no NUL in the first bytes
    const started = performance.now();
    parseError(junk, /neither PEM .* nor DER \(does not start with a SEQUENCE\)/);
    // Binary that happens to contain the marker after a NUL is not decoded as text either.
    Buffer.from('-----BEGIN CERTIFICATE-----\n').copy(junk, 8 * 1024 * 1024);
    junk[100] = 0;
    parseError(junk, /neither PEM \(binary data, a NUL byte at offset 100, before the first -----BEGIN marker\)/);
    assert.ok(performance.now() - started < 2000, `took ${performance.now() - started} ms`);
  });

  it('still explains empty, comment-only and marker-less text input', () => {
    parseError(Buffer.alloc(0), /input is empty/);
    parseError(Buffer.from('# nothing here\n\n'), /no certificate found \(only comment or blank lines/);
    parseError(Buffer.from('hello\n'), /neither PEM \(no -----BEGIN marker\) nor DER/);
    // text after a long comment header is reported at its line
    const header = '#'.repeat(100) + '\n';
    parseError(Buffer.from(header.repeat(60) + 'junk\n' + chain.leaf.pem), /^line 61: unexpected text outside a PEM block: "junk"/);
  });
});
