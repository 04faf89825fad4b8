import { webcrypto } from 'node:crypto';
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { buildChain, encodeName, generateKey, issueCertificate, type TestCert, type TestChain, type TestKey } from '../../test/helpers/pki.js';
import { InvalidArgumentError, TrustStoreBundleError } from '../errors.js';
import { OID } from './oids.js';
import { parseTrustStoreBundle, TrustAnchorSet, DEFAULT_TRUST_STORE_LIMITS } from './trust-store.js';

/**
 * An RSA 2048 test key whose private half is imported for SHA-1: pkijs signs RSA PKCS#1
 * v1.5 with the hash the WebCrypto key was imported with, so the helper's `hash: 'SHA-1'`
 * alone still yields sha256WithRSAEncryption.
 */
async function rsaSha1Key(): Promise<TestKey> {
  const base = await generateKey('rsa-2048', 'ts-rsa2048');
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', base.pair.privateKey);
  const privateKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-1' }, true, ['sign']);
  return { ...base, pair: { publicKey: base.pair.publicKey, privateKey } };
}

/** 1-based line of the n-th (1-based) BEGIN marker in `text`. */
function beginLine(text: string, n: number): number {
  const lines = text.split('\n');
  let seen = 0;
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.startsWith('-----BEGIN')) {
      if (++seen === n) return i + 1;
    }
  }
  throw new Error(`no BEGIN #${n}`);
}

function rejects(bundle: string | Buffer, pattern: RegExp, limits?: Parameters<typeof parseTrustStoreBundle>[1]): TrustStoreBundleError {
  let caught: unknown;
  try {
    parseTrustStoreBundle(bundle, limits);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof TrustStoreBundleError, `expected TrustStoreBundleError, got ${String(caught)}`);
  assert.equal(caught.code, 'InvalidTrustStoreBundle');
  assert.match(caught.message, pattern);
  return caught;
}

describe('parseTrustStoreBundle', () => {
  let chain: TestChain;
  let other: TestChain;
  before(async () => {
    chain = await buildChain({ name: 'TS', intermediates: 2 });
    other = await buildChain({ name: 'TS Other', intermediates: 0 });
  });

  it('accepts roots and intermediates with comment lines and blank lines, in bundle order', () => {
    const bundle = [
      '# Portcullis test bundle',
      '# root first',
      '',
      chain.root.pem.trim(),
      '',
      '# an intermediate is an anchor too',
      chain.intermediates[0]!.pem.trim(),
      '#',
      other.root.pem.trim(),
      '',
    ].join('\n');
    const set = parseTrustStoreBundle(bundle);
    assert.ok(set instanceof TrustAnchorSet);
    assert.equal(set.count, 3);
    assert.deepEqual(set.anchors.map((a) => a.der), [chain.root.der, chain.intermediates[0]!.der, other.root.der]);
    assert.deepEqual(set.subjectNames, [chain.root.subjectDer, chain.intermediates[0]!.subjectDer, other.root.subjectDer]);
    assert.deepEqual(set.duplicates, []);
    assert.ok(Object.isFrozen(set.anchors));
    // lookups
    assert.equal(set.bySubject(chain.root.subjectDer).length, 1);
    assert.equal(set.bySubject(Buffer.from('nope')).length, 0);
    assert.deepEqual(set.byKeyIdentifier(chain.root.cert.subjectKeyIdentifier!)[0]!.der, chain.root.der);
    assert.deepEqual(set.issuersOf(chain.intermediates[1]!.cert)[0]!.der, chain.intermediates[0]!.der);
    assert.equal(set.issuersOf(chain.leaf.cert).length, 0);
    assert.equal(set.find(chain.root.cert), set.anchors[0]);
    assert.equal(set.find(chain.leaf.cert), undefined);
  });

  it('accepts a Buffer and a leading UTF-8 byte order mark', () => {
    const set = parseTrustStoreBundle(Buffer.from(`\uFEFF${chain.root.pem}`, 'utf8'));
    assert.equal(set.count, 1);
  });

  it('accepts RSA 2048/3072, ECDSA P-384 and RSA-PSS CAs', async () => {
    const certs = await Promise.all([
      issueCertificate({ subject: 'CN=RSA 2048 CA', ca: true, key: await generateKey('rsa-2048', 'ts-rsa2048') }),
      issueCertificate({ subject: 'CN=RSA 3072 CA', ca: true, key: await generateKey('rsa-3072', 'ts-rsa3072') }),
      issueCertificate({ subject: 'CN=P-384 CA', ca: true, key: await generateKey('ec-p384', 'ts-p384') }),
      issueCertificate({ subject: 'CN=RSA-PSS CA', ca: true, key: await generateKey('rsa-pss-2048', 'ts-pss') }),
    ]);
    const set = parseTrustStoreBundle(certs.map((c) => c.pem).join(''));
    assert.equal(set.count, 4);
  });

  it('drops byte-identical duplicates silently and reports them', () => {
    const bundle = `${chain.root.pem}# again\n${chain.root.pem}${other.root.pem}`;
    const set = parseTrustStoreBundle(bundle);
    assert.equal(set.count, 2);
    assert.deepEqual(set.duplicates, [{
      where: `certificate #2 (line ${beginLine(bundle, 2)})`,
      duplicateOf: 'certificate #1 (line 1)',
    }]);
  });

  it('keeps different certificates with the same subject (re-issued CA)', async () => {
    const again = await issueCertificate({ subject: 'C=US,O=Portcullis Test,CN=TS Root CA', ca: true, key: chain.root.key });
    const set = parseTrustStoreBundle(chain.root.pem + again.pem);
    assert.equal(set.count, 2);
    assert.equal(set.subjectNames.length, 1);
    assert.equal(set.bySubject(chain.root.subjectDer).length, 2);
  });

  it('rejects a bundle without certificates', () => {
    rejects('', /no certificate/);
    rejects('# only a comment\n\n# and another\n', /no certificate/);
  });

  it('rejects a non-PEM (DER) bundle', () => {
    rejects(chain.root.der, /not PEM/);
  });

  it('names the line of stray text outside blocks', () => {
    const bundle = `# ok\n${chain.root.pem}garbage here\n`;
    const line = bundle.split('\n').indexOf('garbage here') + 1;
    rejects(bundle, new RegExp(`^line ${line}: unexpected text outside a PEM block: "garbage here"`));
  });

  it('names an unparsable block with its number and line', () => {
    const junk = `-----BEGIN CERTIFICATE-----\n${Buffer.from('definitely not DER').toString('base64')}\n-----END CERTIFICATE-----\n`;
    const bundle = `# one\n# two\n${chain.root.pem}\n# three\n${junk}`;
    rejects(bundle, new RegExp(`^certificate #2 \\(line ${beginLine(bundle, 2)}\\): not a valid X\\.509 certificate`));
  });

  it('names a block with bad base64', () => {
    const bundle = `${chain.root.pem}-----BEGIN CERTIFICATE-----\nAB$%\n-----END CERTIFICATE-----\n`;
    rejects(bundle, new RegExp(`^certificate #2 \\(line ${beginLine(bundle, 2)}\\): invalid base64`));
  });

  it('names a private key block', () => {
    const bundle = `${chain.root.pem}# oops, the key\n${chain.root.keyPem}`;
    rejects(bundle, new RegExp(`^certificate #2 \\(line ${beginLine(bundle, 2)}\\): block of type "PRIVATE KEY" is not a certificate`));
  });

  it('rejects a non-CA certificate and says what was found', async () => {
    const bundle = `${chain.root.pem}#\n#\n${chain.leaf.pem}`;
    const err = rejects(bundle, new RegExp(`^certificate #2 \\(line ${beginLine(bundle, 2)}\\): "CN=TS Client, O=Portcullis Test, C=US" \\(serial [0-9a-f:]+\\) is not a CA certificate \\(basicConstraints extension is absent\\)`));
    assert.doesNotMatch(err.message, /cA=FALSE/);
    const caFalse = await issueCertificate({ subject: 'CN=Not A CA', ca: false });
    rejects(caFalse.pem, /^certificate #1 \(line 1\): "CN=Not A CA" .* is not a CA certificate \(basicConstraints has cA=FALSE\)/);
  });

  it('rejects a CA whose keyUsage lacks keyCertSign', async () => {
    const c = await issueCertificate({ subject: 'CN=No CertSign CA', ca: true, keyUsage: ['cRLSign', 'digitalSignature'] });
    rejects(c.pem, /"CN=No CertSign CA" .* keyUsage extension without keyCertSign \(found: digitalSignature, cRLSign\)/);
  });

  it('rejects unsupported keys and names them', async () => {
    const rsa1024 = await issueCertificate({ subject: 'CN=Weak CA', ca: true, key: await generateKey('rsa-1024', 'ts-rsa1024') });
    rejects(`${chain.root.pem}${rsa1024.pem}`, /^certificate #2 \(line \d+\): "CN=Weak CA" .* unsupported public key \(RSA 1024\)/);
    const p521 = await issueCertificate({ subject: 'CN=P521 CA', ca: true, key: 'ec-p521' });
    rejects(p521.pem, /^certificate #1 \(line 1\): .* unsupported public key \(ECDSA P-521\)/);
  });

  it('rejects an unsupported signature algorithm, including a self-signed root\'s own', async () => {
    const sha1Rsa = await issueCertificate({ subject: 'CN=SHA1 RSA Root', ca: true, key: await rsaSha1Key(), hash: 'SHA-1' });
    assert.equal(sha1Rsa.cert.signatureAlgorithmOid, OID.sha1WithRSA);
    rejects(sha1Rsa.pem, /"CN=SHA1 RSA Root" .* unsupported signature algorithm \(sha1WithRSAEncryption\)/);
    const sha1Ec = await issueCertificate({ subject: 'CN=SHA1 EC Int', ca: true, issuer: chain.root, hash: 'SHA-1' });
    rejects(chain.root.pem + sha1Ec.pem, /^certificate #2 .* unsupported signature algorithm \(ecdsa-with-SHA1\)/);
  });

  it('rejects a CA with a critical extension it does not process', async () => {
    const pc = new pkijs.Extension({ extnID: OID.policyConstraints, critical: true, extnValue: new asn1js.Sequence().toBER(false) });
    const c = await issueCertificate({ subject: 'CN=Policy CA', ca: true, extensions: [pc] });
    rejects(c.pem, /critical extension .*2\.5\.29\.36 \(policyConstraints\)/);
  });

  it('rejects a CA with nameConstraints, critical or not: name constraints are not supported', async () => {
    const permitted = new pkijs.NameConstraints({
      permittedSubtrees: [new pkijs.GeneralSubtree({ base: new pkijs.GeneralName({ type: 2, value: 'allowed.example' }) })],
    }).toSchema().toBER(false);
    for (const critical of [true, false]) {
      const nc = new pkijs.Extension({ extnID: OID.nameConstraints, critical, extnValue: permitted });
      const c = await issueCertificate({ subject: `CN=Constrained CA ${critical}`, ca: true, extensions: [nc] });
      const err = rejects(`# constrained\n${c.pem}`, new RegExp(`^certificate #1 \\(line 2\\): "CN=Constrained CA ${critical}" .* has a ${critical ? 'critical' : 'non-critical'} nameConstraints extension \\(2\\.5\\.29\\.30\\); name constraints are not supported`));
      assert.doesNotMatch(err.message, /does not process/);
    }
  });

  it('rejects a CA that is not valid DER (non-minimal or empty serial), naming the block and the reason', async () => {
    for (const [serial, why] of [['0001', /serialNumber INTEGER is not minimally encoded \(it starts 00 01/], ['', /\(empty serial\) .*serialNumber INTEGER is empty/]] as const) {
      const c = await issueCertificate({ subject: 'CN=Sloppy CA', ca: true, serial });
      assert.ok(c.cert.encodingProblem);
      const err = rejects(chain.root.pem + c.pem, /^certificate #2 \(line \d+\): "CN=Sloppy CA" .*is not a valid DER X\.509 certificate: /);
      assert.match(err.message, why);
    }
  });

  it('enforces the certificate count limit on distinct certificates and names limit and actual', async () => {
    rejects(chain.root.pem + other.root.pem + chain.intermediates[0]!.pem, /holds 3 distinct certificates; the limit is 2$/, { maxCertificates: 2 });
    rejects(chain.root.pem + other.root.pem + chain.root.pem + chain.intermediates[0]!.pem + other.root.pem,
      /holds 3 distinct certificates \(5 blocks, 2 of them duplicates\); the limit is 2$/, { maxCertificates: 2 });
    assert.equal(DEFAULT_TRUST_STORE_LIMITS.maxCertificates, 25);
    // Byte-identical copies are dropped and not counted: 26 copies of one root is one anchor.
    const copies = parseTrustStoreBundle(chain.root.pem.repeat(26));
    assert.equal(copies.count, 1);
    assert.equal(copies.duplicates.length, 25);
    const key = await generateKey('ec-p256', 'ts-many');
    const many = await Promise.all(Array.from({ length: 26 }, (_, i) => issueCertificate({ subject: `CN=Many CA ${i}`, ca: true, key })));
    assert.equal(parseTrustStoreBundle(many.slice(0, 25).map((c) => c.pem).join('') + many[0]!.pem).count, 25);
    rejects(many.map((c) => c.pem).join(''), /holds 26 distinct certificates; the limit is 25$/);
  });

  it('enforces the byte limit before parsing and names limit and actual', () => {
    const pem = chain.root.pem;
    rejects(pem, new RegExp(`is ${Buffer.byteLength(pem)} bytes; the limit is 100 bytes$`), { maxBundleBytes: 100 });
    const padded = `${'#'.repeat(80)}\n`.repeat(820) + pem;
    assert.ok(Buffer.byteLength(padded) > 65_536);
    rejects(padded, new RegExp(`is ${Buffer.byteLength(padded)} bytes; the limit is 65536 bytes$`));
    // multi-byte comment characters count as bytes, not characters
    const utf8 = `# ${'é'.repeat(60)}\n${pem}`;
    rejects(utf8, new RegExp(`is ${Buffer.byteLength(utf8)} bytes`), { maxBundleBytes: utf8.length });
  });

  it('checks its limits', () => {
    assert.throws(() => parseTrustStoreBundle(chain.root.pem, { maxCertificates: 0 }), InvalidArgumentError);
    assert.throws(() => parseTrustStoreBundle(chain.root.pem, { maxBundleBytes: 1.5 }), InvalidArgumentError);
    assert.equal(parseTrustStoreBundle(chain.root.pem, { maxCertificates: undefined }).count, 1);
  });

  it('reports the first offending block in bundle order', async () => {
    const weak: TestCert = await issueCertificate({ subject: 'CN=Weak CA 2', ca: true, key: await generateKey('rsa-1024', 'ts-rsa1024') });
    const bundle = chain.root.pem + chain.leaf.pem + weak.pem;
    rejects(bundle, /^certificate #2 .* is not a CA certificate/);
  });
});

describe('TrustAnchorSet.bySubjectText', () => {
  it('finds anchors whose subject reads the same whatever its string types, case or spacing', async () => {
    const printable = await issueCertificate({ subject: [[['C', 'US']], [['O', 'TS Enc', 'printable']], [['CN', 'TS Enc Root', 'printable']]], ca: true });
    const anchors = parseTrustStoreBundle(printable.pem);
    const utf8 = encodeName([[['C', 'US']], [['O', 'TS Enc', 'utf8']], [['CN', 'TS Enc Root', 'utf8']]]);
    assert.ok(!utf8.equals(printable.subjectDer));
    assert.deepEqual(anchors.bySubject(utf8), [], 'name chaining compares bytes');
    assert.deepEqual(anchors.bySubjectText(utf8), [anchors.anchors[0]]);
    assert.deepEqual(anchors.bySubjectText(printable.subjectDer), [anchors.anchors[0]]);
    assert.deepEqual(anchors.bySubjectText(encodeName('C=US,O=TS Enc,CN=ts  enc ROOT')), [anchors.anchors[0]]);
    assert.deepEqual(anchors.bySubjectText(encodeName('C=US,O=TS Enc,CN=TS Enc Root 2')), []);
  });
});
