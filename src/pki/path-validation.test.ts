import { webcrypto } from 'node:crypto';
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { buildChain, encodeName, generateKey, issueCertificate, type TestCert, type TestChain, type TestKey } from '../../test/helpers/pki.js';
import { InvalidArgumentError } from '../errors.js';
import { OID } from './oids.js';
import { parseTrustStoreBundle, TrustAnchorSet } from './trust-store.js';
import {
  validateClientChain, MAX_ISSUER_CANDIDATES_EXAMINED,
  type PathValidationFailureCode, type PathValidationOptions, type PathValidationResult, type PathValidationSuccess,
} from './path-validation.js';

const DAY = 86_400_000;
const NOW = new Date();
const ago = (days: number) => new Date(NOW.getTime() - days * DAY);
const ahead = (days: number) => new Date(NOW.getTime() + days * DAY);

function store(...certs: TestCert[]): TrustAnchorSet {
  return parseTrustStoreBundle(certs.map((c) => c.pem).join(''));
}

function run(presented: TestCert[], anchors: TrustAnchorSet, opts: Partial<PathValidationOptions> = {}): PathValidationResult {
  return validateClientChain(presented.map((c) => c.cert), anchors, { now: NOW, ignoreCertificateExpiry: false, ...opts });
}

function ok(r: PathValidationResult): PathValidationSuccess {
  if (!r.ok) assert.fail(`expected a valid path, got ${r.code}: ${r.reason}`);
  return r;
}

/** Asserts a failure; `index` null means certificateIndex must be absent. */
function failed(r: PathValidationResult, code: PathValidationFailureCode, index: number | null, pattern?: RegExp): void {
  if (r.ok) assert.fail(`expected ${code}, got a valid path of ${r.path.length}`);
  assert.equal(r.code, code, r.reason);
  if (index === null) assert.ok(!('certificateIndex' in r), `unexpected certificateIndex ${r.certificateIndex}`);
  else assert.equal(r.certificateIndex, index, r.reason);
  if (pattern) assert.match(r.reason, pattern);
}

function ders(path: readonly { der: Buffer }[]): string[] {
  return path.map((c) => c.der.toString('hex'));
}

/** RSA 2048 key whose private half signs with SHA-1 (pkijs uses the key's import hash for RSA PKCS#1 v1.5). */
async function rsaSha1Key(): Promise<TestKey> {
  const base = await generateKey('rsa-2048', 'pv-rsa2048');
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', base.pair.privateKey);
  const privateKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-1' }, true, ['sign']);
  return { ...base, pair: { publicKey: base.pair.publicKey, privateKey } };
}

function privateExtension(critical: boolean): pkijs.Extension {
  return new pkijs.Extension({ extnID: '1.3.6.1.4.1.99999.1', critical, extnValue: new asn1js.Null().toBER(false) });
}

const CLIENT_AUTH = { eku: [OID.kpClientAuth] };

describe('validateClientChain: valid paths', () => {
  let ec: TestChain, rsa: TestChain, three: TestChain, other: TestChain;
  before(async () => {
    [ec, rsa, three, other] = await Promise.all([
      buildChain({ name: 'PV EC', intermediates: 1 }),
      buildChain({ name: 'PV RSA', keyType: 'rsa-2048', intermediates: 2 }),
      buildChain({ name: 'PV Three', intermediates: 3 }),
      buildChain({ name: 'PV Other', intermediates: 1 }),
    ]);
  });

  it('ECDSA leaf → 1 intermediate → root', () => {
    const anchors = store(ec.root);
    const r = ok(run(ec.presented, anchors));
    assert.deepEqual(ders(r.path), ders([ec.leaf, ec.intermediates[0]!, ec.root]));
    assert.deepEqual(ders(r.intermediates), ders([ec.intermediates[0]!]));
    assert.equal(r.anchor, anchors.anchors[0]);
    assert.ok(Object.isFrozen(r.path) && Object.isFrozen(r.intermediates));
  });

  it('RSA leaf → 2 intermediates → root', () => {
    const r = ok(run(rsa.presented, store(rsa.root)));
    assert.deepEqual(ders(r.path), ders([rsa.leaf, rsa.intermediates[1]!, rsa.intermediates[0]!, rsa.root]));
  });

  it('3 intermediates (the default maximum depth of 4)', () => {
    const r = ok(run(three.presented, store(three.root)));
    assert.equal(r.path.length, 5);
    assert.equal(r.intermediates.length, 3);
  });

  it('shuffled intermediates with extra unrelated certificates', () => {
    const [i0, i1, i2] = three.intermediates as [TestCert, TestCert, TestCert];
    const presented = [three.leaf, i0, other.root, i2, other.leaf, i1, other.intermediates[0]!];
    const r = ok(run(presented, store(three.root, other.root)));
    assert.deepEqual(ders(r.path), ders([three.leaf, i2, i1, i0, three.root]));
  });

  it('a presented copy of the root stops at the trust store\'s anchor object', () => {
    const anchors = store(ec.root);
    const r = ok(run([...ec.presented, ec.root], anchors));
    assert.equal(r.path.length, 3);
    assert.equal(r.anchor, anchors.anchors[0]);
  });

  it('an intermediate in the trust store is an anchor (sent by the client or not)', () => {
    const anchors = store(rsa.intermediates[0]!);
    const sent = ok(run(rsa.presented, anchors));
    assert.deepEqual(ders(sent.path), ders([rsa.leaf, rsa.intermediates[1]!, rsa.intermediates[0]!]));
    assert.equal(sent.anchor, anchors.anchors[0]);
    assert.deepEqual(ders(sent.intermediates), ders([rsa.intermediates[1]!]));
    const notSent = ok(run([rsa.leaf, rsa.intermediates[1]!], anchors));
    assert.deepEqual(ders(notSent.path), ders(sent.path));
  });

  it('stops at the first anchor when root and intermediate are both in the store', () => {
    const r = ok(run(rsa.presented, store(rsa.root, rsa.intermediates[0]!)));
    assert.equal(r.path.length, 3);
    assert.deepEqual(r.anchor.der, rsa.intermediates[0]!.der);
  });

  it('tolerates repeated certificates', () => {
    ok(run([ec.leaf, ec.intermediates[0]!, ec.intermediates[0]!, ec.leaf], store(ec.root)));
  });

  it('accepts a leaf without EKU, and one with clientAuth among others', async () => {
    const noEku = await issueCertificate({ subject: 'CN=PV No EKU', issuer: ec.intermediates[0]! });
    ok(run([noEku, ec.intermediates[0]!], store(ec.root)));
    const both = await issueCertificate({ subject: 'CN=PV Both', issuer: ec.intermediates[0]!, eku: [OID.kpServerAuth, OID.kpClientAuth] });
    ok(run([both, ec.intermediates[0]!], store(ec.root)));
  });

  it('backtracks over same-named candidate issuers whose signatures do not verify', async () => {
    const decoyKey = await generateKey('ec-p256', 'pv-decoy');
    const real = ec.intermediates[0]!;
    const decoys = await Promise.all([1, 2, 3].map(() => issueCertificate({
      subject: 'C=US,O=Portcullis Test,CN=PV EC Intermediate CA 1', issuer: ec.root, ca: true, key: decoyKey, keyIdentifiers: false,
    })));
    const leaf = await issueCertificate({ subject: 'CN=PV Backtrack', issuer: real, keyIdentifiers: false, ...CLIENT_AUTH });
    const r = ok(run([leaf, ...decoys, real], store(ec.root)));
    assert.deepEqual(ders(r.path), ders([leaf, real, ec.root]));
  });

  it('prefers a valid alternative path over one ending at an expired anchor (cross-signing)', async () => {
    const key = await generateKey('ec-p256', 'pv-cross-int');
    const oldRoot = await issueCertificate({ subject: 'CN=PV Old Root', ca: true, notBefore: ago(400), notAfter: ago(10) });
    const newRoot = await issueCertificate({ subject: 'CN=PV New Root', ca: true });
    const viaOld = await issueCertificate({ subject: 'CN=PV Cross Int', issuer: oldRoot, ca: true, key });
    const viaNew = await issueCertificate({ subject: 'CN=PV Cross Int', issuer: newRoot, ca: true, key });
    const leaf = await issueCertificate({ subject: 'CN=PV Cross Leaf', issuer: viaOld, ...CLIENT_AUTH });
    const anchors = store(oldRoot, newRoot);
    const r = ok(run([leaf, viaOld, viaNew], anchors));
    assert.deepEqual(r.anchor.der, newRoot.der);
    // Only the old path: the expired anchor is reported (not presented → no index) …
    failed(run([leaf, viaOld], anchors), 'ClientCertExpired', null, /^trust anchor "CN=PV Old Root" \(serial [0-9a-f:]+\) expired at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/);
    // … or, when the client sent a copy of it, with the copy's index.
    failed(run([leaf, viaOld, oldRoot], anchors), 'ClientCertExpired', 2);
    ok(run([leaf, viaOld], anchors, { ignoreCertificateExpiry: true }));
  });

  it('accepts RSA-PSS signatures', async () => {
    const root = await issueCertificate({ subject: 'CN=PV PSS Root', ca: true, key: await generateKey('rsa-pss-2048', 'pv-pss') });
    const leaf = await issueCertificate({ subject: 'CN=PV PSS Leaf', issuer: root, ...CLIENT_AUTH });
    assert.equal(leaf.cert.signatureAlgorithmOid, OID.rsassaPss);
    ok(run([leaf], store(root)));
  });

  it('is deterministic and keeps no state between calls', () => {
    const anchors = store(ec.root);
    const a = run(ec.presented, anchors), b = run(ec.presented, anchors);
    assert.deepEqual(a, b);
    failed(run([ec.leaf], anchors), 'ClientCertUntrusted', 0);
    ok(run(ec.presented, anchors));
  });
});

describe('validateClientChain: failures', () => {
  let ec: TestChain, other: TestChain;
  let int: TestCert;
  before(async () => {
    [ec, other] = await Promise.all([
      buildChain({ name: 'PF EC', intermediates: 1 }),
      buildChain({ name: 'PF Other', intermediates: 1 }),
    ]);
    int = ec.intermediates[0]!;
  });
  const leafUnder = (issuer: TestCert, o: Partial<Parameters<typeof issueCertificate>[0]> = {}) =>
    issueCertificate({ subject: 'C=US,CN=PF Leaf', issuer, ...CLIENT_AUTH, ...o });

  describe('trust', () => {
    it('missing intermediate → ClientCertUntrusted naming the unknown issuer', () => {
      failed(run([ec.leaf], store(ec.root)), 'ClientCertUntrusted', 0,
        /^client certificate "CN=PF EC Client, O=Portcullis Test, C=US" \(serial [0-9a-f:]+\) was issued by "CN=PF EC Intermediate CA 1, O=Portcullis Test, C=US", which is neither in the trust store nor among the presented certificates$/);
    });

    it('a chain to another root → ClientCertUntrusted at the foreign root', () => {
      failed(run([...other.presented, other.root], store(ec.root)), 'ClientCertUntrusted', 2, /"CN=PF Other Root CA.* is self-issued and is not in the trust store/);
    });

    it('bad signature: issued by a different key under the intermediate\'s name', async () => {
      const fake = await issueCertificate({ subject: 'C=US,O=Portcullis Test,CN=PF EC Intermediate CA 1', issuer: ec.root, ca: true, key: 'ec-p256' });
      const forged = await leafUnder(fake, { subject: 'CN=PF Forged' });
      for (const ignoreCertificateExpiry of [false, true]) {
        failed(run([forged, int], store(ec.root), { ignoreCertificateExpiry }), 'ClientCertUntrusted', 0,
          /the signature of client certificate "CN=PF Forged" .* does not verify with the public key of presented certificate "CN=PF EC Intermediate CA 1/);
      }
      // A leaf forged under the trusted root's name, signed by another key:
      const fakeRoot = await issueCertificate({ subject: 'C=US,O=Portcullis Test,CN=PF EC Root CA', ca: true, key: 'ec-p256' });
      const forged2 = await leafUnder(fakeRoot, { subject: 'CN=PF Forged 2', keyIdentifiers: false });
      failed(run([forged2], store(ec.root)), 'ClientCertUntrusted', 0, /does not verify with the public key of trust anchor "CN=PF EC Root CA/);
    });

    it('loops among presented CAs terminate → ClientCertUntrusted', async () => {
      const keyA = await generateKey('ec-p256', 'pf-loop-a'), keyB = await generateKey('ec-p256', 'pf-loop-b');
      const b0 = await issueCertificate({ subject: 'CN=PF Loop B', ca: true, key: keyB });
      const a = await issueCertificate({ subject: 'CN=PF Loop A', issuer: b0, ca: true, key: keyA });
      const b = await issueCertificate({ subject: 'CN=PF Loop B', issuer: a, ca: true, key: keyB });
      const leaf = await leafUnder(a);
      failed(run([leaf, a, b], store(ec.root)), 'ClientCertUntrusted', 2, /leads back into its own chain/);
    });

    it('an issuer Name equal to a trust anchor\'s only once decoded (PrintableString vs UTF8String) → ClientCertUntrusted saying so', async () => {
      const key = await generateKey('ec-p256', 'pf-enc-root');
      const printable = await issueCertificate({ subject: [[['C', 'US']], [['O', 'PF Enc', 'printable']], [['CN', 'PF Enc Root', 'printable']]], ca: true, key });
      const utf8Name = encodeName([[['C', 'US']], [['O', 'PF Enc', 'utf8']], [['CN', 'PF Enc Root', 'utf8']]]);
      assert.ok(!utf8Name.equals(printable.subjectDer), 'different DER');
      // Signed by the root's own key, but naming its issuer with UTF8String values.
      const leaf = await leafUnder({ ...printable, subjectDer: utf8Name }, { subject: 'CN=PF Enc Leaf' });
      failed(run([leaf], store(printable)), 'ClientCertUntrusted', 0,
        /^client certificate "CN=PF Enc Leaf" .* names its issuer "CN=PF Enc Root, O=PF Enc, C=US"; that issuer name matches trust anchor "CN=PF Enc Root, O=PF Enc, C=US" \(serial [0-9a-f:]+\) only in its text form; the DER encodings differ \(RFC 5280 7\.1 name chaining compares /);
      // The same between presented certificates (an intermediate re-encoded by its CA).
      const intP = await issueCertificate({ subject: [[['CN', 'PF Enc Int', 'printable']]], issuer: ec.root, ca: true, key });
      const leaf2 = await leafUnder({ ...intP, subjectDer: encodeName([[['CN', 'PF Enc Int', 'utf8']]]) }, { subject: 'CN=PF Enc Leaf 2' });
      failed(run([leaf2, intP], store(ec.root)), 'ClientCertUntrusted', 0, /matches presented certificate "CN=PF Enc Int" .* only in its text form; the DER encodings differ/);
      // A really unknown issuer keeps the plain message.
      failed(run([ec.leaf], store(printable)), 'ClientCertUntrusted', 0, /which is neither in the trust store nor among the presented certificates$/);
    });

    it(`gives up after ${MAX_ISSUER_CANDIDATES_EXAMINED} candidate issuers`, async () => {
      const decoyKey = await generateKey('ec-p256', 'pf-decoy');
      const decoys: TestCert[] = [];
      for (let i = 0; i < MAX_ISSUER_CANDIDATES_EXAMINED + 6; i++) {
        decoys.push(await issueCertificate({ subject: 'C=US,O=Portcullis Test,CN=PF EC Intermediate CA 1', issuer: ec.root, ca: true, key: decoyKey, keyIdentifiers: false }));
      }
      const leaf = await leafUnder(int, { keyIdentifiers: false });
      failed(run([leaf, ...decoys, int], store(ec.root)), 'ClientCertUntrusted', 0, new RegExp(`after examining ${MAX_ISSUER_CANDIDATES_EXAMINED} candidate issuers`));
      // with the real intermediate first it is found at once
      ok(run([leaf, int, ...decoys], store(ec.root)));
    });
  });

  describe('validity dates', () => {
    it('expired leaf → ClientCertExpired; valid with ignoreCertificateExpiry', async () => {
      const leaf = await leafUnder(int, { notBefore: ago(20), notAfter: ago(10) });
      failed(run([leaf, int], store(ec.root)), 'ClientCertExpired', 0, /^client certificate "CN=PF Leaf, C=US" .* expired at /);
      ok(run([leaf, int], store(ec.root), { ignoreCertificateExpiry: true }));
    });

    it('not-yet-valid leaf → ClientCertNotYetValid; valid with ignoreCertificateExpiry', async () => {
      const leaf = await leafUnder(int, { notBefore: ahead(1), notAfter: ahead(30) });
      failed(run([leaf, int], store(ec.root)), 'ClientCertNotYetValid', 0, /is not valid before /);
      ok(run([leaf, int], store(ec.root), { ignoreCertificateExpiry: true }));
    });

    it('expired / not-yet-valid intermediate', async () => {
      const expired = await issueCertificate({ subject: 'CN=PF Old Int', issuer: ec.root, ca: true, notBefore: ago(30), notAfter: ago(1) });
      const leaf1 = await leafUnder(expired);
      failed(run([leaf1, expired], store(ec.root)), 'ClientCertExpired', 1, /^intermediate CA certificate "CN=PF Old Int"/);
      ok(run([leaf1, expired], store(ec.root), { ignoreCertificateExpiry: true }));
      const future = await issueCertificate({ subject: 'CN=PF Future Int', issuer: ec.root, ca: true, notBefore: ahead(2), notAfter: ahead(300) });
      const leaf2 = await leafUnder(future);
      failed(run([leaf2, future], store(ec.root)), 'ClientCertNotYetValid', 1, /^intermediate CA certificate "CN=PF Future Int"/);
      ok(run([leaf2, future], store(ec.root), { ignoreCertificateExpiry: true }));
    });

    it('uses the injected time', () => {
      failed(run(ec.presented, store(ec.root), { now: ahead(31) }), 'ClientCertExpired', 0);
      failed(run(ec.presented, store(ec.root), { now: ago(1 / 12) }), 'ClientCertNotYetValid', 0);
    });
  });

  describe('intent (leaf)', () => {
    it('serverAuth-only EKU → ClientCertIntentInvalid', async () => {
      const leaf = await leafUnder(int, { eku: [OID.kpServerAuth] });
      failed(run([leaf, int], store(ec.root)), 'ClientCertIntentInvalid', 0, /extendedKeyUsage extension without clientAuth \(found: serverAuth\)/);
    });

    it('anyExtendedKeyUsage alone is not accepted', async () => {
      const leaf = await leafUnder(int, { eku: [OID.anyExtendedKeyUsage] });
      failed(run([leaf, int], store(ec.root)), 'ClientCertIntentInvalid', 0, /found: anyExtendedKeyUsage/);
    });

    it('a CA certificate as leaf → ClientCertIntentInvalid', async () => {
      const leaf = await leafUnder(int, { ca: true });
      failed(run([leaf, int], store(ec.root)), 'ClientCertIntentInvalid', 0, /is a CA certificate/);
      // a trust anchor presented as the client certificate
      failed(run([int], store(int)), 'ClientCertIntentInvalid', 0, /is a CA certificate/);
    });

    it('keyUsage without digitalSignature → ClientCertIntentInvalid', async () => {
      const leaf = await leafUnder(int, { keyUsage: ['keyEncipherment'] });
      failed(run([leaf, int], store(ec.root)), 'ClientCertIntentInvalid', 0, /without digitalSignature \(found: keyEncipherment\)/);
    });
  });

  describe('CA constraints', () => {
    it('intermediate with cA=FALSE or without basicConstraints → ClientCertInvalid', async () => {
      const notCa = await issueCertificate({ subject: 'CN=PF Not CA', issuer: ec.root, ca: false, keyUsage: ['keyCertSign'] });
      failed(run([await leafUnder(notCa), notCa], store(ec.root)), 'ClientCertInvalid', 1, /"CN=PF Not CA" .* is not a CA certificate \(basicConstraints has cA=FALSE\)/);
      const noBc = await issueCertificate({ subject: 'CN=PF No BC', issuer: ec.root, keyUsage: ['keyCertSign'] });
      failed(run([await leafUnder(noBc), noBc], store(ec.root)), 'ClientCertInvalid', 1, /basicConstraints extension is absent/);
    });

    it('intermediate whose keyUsage lacks keyCertSign → ClientCertInvalid', async () => {
      const noSign = await issueCertificate({ subject: 'CN=PF No Sign', issuer: ec.root, ca: true, keyUsage: ['digitalSignature', 'cRLSign'] });
      failed(run([await leafUnder(noSign), noSign], store(ec.root)), 'ClientCertInvalid', 1, /keyUsage lacks keyCertSign \(found: digitalSignature, cRLSign\)/);
    });

    it('pathLenConstraint of an intermediate', async () => {
      const i1 = await issueCertificate({ subject: 'CN=PF PL Int 1', issuer: ec.root, ca: true, pathLen: 0 });
      const i2 = await issueCertificate({ subject: 'CN=PF PL Int 2', issuer: i1, ca: true });
      failed(run([await leafUnder(i2), i1, i2], store(ec.root)), 'ClientCertInvalid', 2,
        /intermediate CA certificate "CN=PF PL Int 2" .* violates the pathLenConstraint of 0 of intermediate CA certificate "CN=PF PL Int 1"/);
      ok(run([await leafUnder(i1), i1], store(ec.root)));
    });

    it('pathLenConstraint of the trust anchor', async () => {
      const root = await issueCertificate({ subject: 'CN=PF PL Root', ca: true, pathLen: 0 });
      const i1 = await issueCertificate({ subject: 'CN=PF PL Root Int', issuer: root, ca: true });
      failed(run([await leafUnder(i1), i1], store(root)), 'ClientCertInvalid', 1, /pathLenConstraint of 0 of trust anchor "CN=PF PL Root"/);
      ok(run([await leafUnder(root)], store(root)));
    });

    it('self-issued intermediates do not count against pathLenConstraint (RFC 5280 6.1.4 (l))', async () => {
      const i1 = await issueCertificate({ subject: 'CN=PF Rollover Int', issuer: ec.root, ca: true, pathLen: 0 });
      const rolled = await issueCertificate({ subject: 'CN=PF Rollover Int', issuer: i1, ca: true, key: 'ec-p256' });
      assert.ok(rolled.cert.selfIssued);
      const leaf = await leafUnder(rolled);
      const r = ok(run([leaf, i1, rolled], store(ec.root)));
      assert.deepEqual(ders(r.path), ders([leaf, rolled, i1, ec.root]));
    });

    it('nameConstraints on an intermediate or the anchor, critical or not → ClientCertInvalid (not supported)', async () => {
      const permitted = new pkijs.NameConstraints({
        permittedSubtrees: [new pkijs.GeneralSubtree({ base: new pkijs.GeneralName({ type: 2, value: 'allowed.example' }) })],
      }).toSchema().toBER(false);
      const nc = (critical: boolean) => new pkijs.Extension({ extnID: OID.nameConstraints, critical, extnValue: permitted });
      for (const critical of [false, true]) {
        const kind = critical ? 'critical' : 'non-critical';
        const i = await issueCertificate({ subject: `CN=PF NC Int ${kind}`, issuer: ec.root, ca: true, extensions: [nc(critical)] });
        // Outside the permitted subtree (the fail-open case) and inside it: both refused.
        for (const dns of ['evil.example', 'allowed.example']) {
          failed(run([await leafUnder(i, { san: { dns: [dns] } }), i], store(ec.root)), 'ClientCertInvalid', 1,
            new RegExp(`^intermediate CA certificate "CN=PF NC Int ${kind}" .* has a ${kind} nameConstraints extension \\(2\\.5\\.29\\.30\\); name constraints are not supported`));
        }
        // An anchor with nameConstraints (a TrustAnchorSet built without parseTrustStoreBundle's checks).
        const root = await issueCertificate({ subject: `CN=PF NC Root ${kind}`, ca: true, extensions: [nc(critical)] });
        failed(run([await leafUnder(root)], new TrustAnchorSet([root.cert])), 'ClientCertInvalid', null,
          new RegExp(`^trust anchor "CN=PF NC Root ${kind}" .* ${kind} nameConstraints extension .*name constraints are not supported`));
      }
    });

    it('more than maxChainDepth certificates below the anchor → ClientCertMaxChainDepthExceeded', async () => {
      const four = await buildChain({ name: 'PF Four', intermediates: 4 });
      failed(run(four.presented, store(four.root)), 'ClientCertMaxChainDepthExceeded', 4,
        /has 5 certificates below the anchor \(the leaf and 4 intermediates\); at most 4 are allowed \(the leaf and 3 intermediates\)$/);
      ok(run(four.presented, store(four.root), { maxChainDepth: 5 }));
      failed(run(ec.presented, store(ec.root), { maxChainDepth: 1 }), 'ClientCertMaxChainDepthExceeded', 1);
      // the depth counts below the anchor: an intermediate anchor shortens the path
      ok(run(four.presented, store(four.intermediates[0]!)));
    });
  });

  describe('types, extensions and size', () => {
    it('RSA-1024 and P-521 leaves → ClientCertTypeUnsupported', async () => {
      const rsa1024 = await leafUnder(int, { key: await generateKey('rsa-1024', 'pf-rsa1024') });
      failed(run([rsa1024, int], store(ec.root)), 'ClientCertTypeUnsupported', 0, /unsupported public key \(RSA 1024\)/);
      const p521 = await leafUnder(int, { key: 'ec-p521' });
      failed(run([p521, int], store(ec.root)), 'ClientCertTypeUnsupported', 0, /unsupported public key \(ECDSA P-521\)/);
    });

    it('SHA-1 signed leaves (ECDSA and RSA) → ClientCertTypeUnsupported', async () => {
      const ecSha1 = await leafUnder(int, { hash: 'SHA-1' });
      failed(run([ecSha1, int], store(ec.root)), 'ClientCertTypeUnsupported', 0, /unsupported signature algorithm \(ecdsa-with-SHA1\)/);
      const rsaInt = await issueCertificate({ subject: 'CN=PF RSA Int', issuer: ec.root, ca: true, key: await rsaSha1Key() });
      const rsaSha1 = await leafUnder(rsaInt, { hash: 'SHA-1' });
      assert.equal(rsaSha1.cert.signatureAlgorithmOid, OID.sha1WithRSA);
      failed(run([rsaSha1, rsaInt], store(ec.root)), 'ClientCertTypeUnsupported', 0, /sha1WithRSAEncryption/);
    });

    it('unsupported intermediate key or signature → ClientCertTypeUnsupported at the intermediate', async () => {
      const weak = await issueCertificate({ subject: 'CN=PF Weak Int', issuer: ec.root, ca: true, key: await generateKey('rsa-1024', 'pf-rsa1024') });
      failed(run([await leafUnder(weak), weak], store(ec.root)), 'ClientCertTypeUnsupported', 1, /^intermediate CA certificate "CN=PF Weak Int" .*RSA 1024/);
      const sha1 = await issueCertificate({ subject: 'CN=PF SHA1 Int', issuer: ec.root, ca: true, hash: 'SHA-1' });
      failed(run([await leafUnder(sha1), sha1], store(ec.root)), 'ClientCertTypeUnsupported', 1, /ecdsa-with-SHA1/);
    });

    it('unknown critical extension → ClientCertInvalid (non-critical is fine)', async () => {
      const leafCrit = await leafUnder(int, { extensions: [privateExtension(true)] });
      failed(run([leafCrit, int], store(ec.root)), 'ClientCertInvalid', 0, /critical extension Portcullis does not process \(1\.3\.6\.1\.4\.1\.99999\.1\)/);
      ok(run([await leafUnder(int, { extensions: [privateExtension(false)] }), int], store(ec.root)));
      const intCrit = await issueCertificate({ subject: 'CN=PF Crit Int', issuer: ec.root, ca: true, extensions: [privateExtension(true)] });
      failed(run([await leafUnder(intCrit), intCrit], store(ec.root)), 'ClientCertInvalid', 1, /^intermediate CA certificate "CN=PF Crit Int"/);
    });

    it('a certificate that is not DER (non-minimal or empty serial) → ClientCertInvalid naming it and why, not a bad signature', async () => {
      const cases: [string, RegExp][] = [
        ['0001', /serialNumber INTEGER is not minimally encoded \(it starts 00 01; X\.690 8\.3\.2/],
        ['ff80', /serialNumber INTEGER is not minimally encoded \(it starts ff 80; X\.690 8\.3\.2/],
        ['', /serialNumber INTEGER is empty \(X\.690 8\.3\.1/],
      ];
      for (const [serial, why] of cases) {
        const leaf = await leafUnder(int, { subject: `CN=PF Serial ${serial || 'empty'}`, serial });
        assert.ok(leaf.cert.encodingProblem, serial);
        failed(run([leaf, int], store(ec.root)), 'ClientCertInvalid', 0,
          new RegExp(`^client certificate "CN=PF Serial ${serial || 'empty'}" \\(${serial ? 'serial [0-9a-f:]+' : 'empty serial'}\\) is not a valid DER X\\.509 certificate: `));
        failed(run([leaf, int], store(ec.root)), 'ClientCertInvalid', 0, why);
        // as any presented certificate, used on the path or not
        const badInt = await issueCertificate({ subject: 'CN=PF Serial Int', issuer: ec.root, ca: true, serial });
        failed(run([await leafUnder(badInt), badInt], store(ec.root)), 'ClientCertInvalid', 1, /^presented certificate #2 "CN=PF Serial Int" .*is not a valid DER X\.509 certificate/);
        failed(run([...ec.presented, leaf], store(ec.root)), 'ClientCertInvalid', 2, why);
      }
      // Minimal encodings stay valid, including a negative, a zero and a long serial (RFC 5280 4.1.2.2 is a CA's SHOULD).
      for (const serial of ['00ff', '80', '00', `7f${'11'.repeat(24)}`]) {
        const leaf = await leafUnder(int, { serial });
        assert.equal(leaf.cert.encodingProblem, undefined, serial);
        ok(run([leaf, int], store(ec.root)));
      }
    });

    it('certificate over 16 KiB → ClientCertMaxSizeExceeded (leaf or any presented certificate)', async () => {
      const dns = Array.from({ length: 500 }, (_, i) => `host-${i}.a-rather-long-subdomain.example.com`);
      const big = await leafUnder(int, { san: { dns } });
      assert.ok(big.der.length > 16_384);
      failed(run([big, int], store(ec.root)), 'ClientCertMaxSizeExceeded', 0, new RegExp(`is ${big.der.length} bytes; the limit is 16384 bytes per certificate$`));
      ok(run([big, int], store(ec.root), { maxCertificateBytes: 65_536 }));
      const bigExtra = await issueCertificate({ subject: 'CN=PF Big Extra', san: { dns } });
      failed(run([...ec.presented, bigExtra], store(ec.root)), 'ClientCertMaxSizeExceeded', 2, /^presented certificate #3 "CN=PF Big Extra"/);
    });
  });

  describe('precedence', () => {
    it('size before encoding, encoding before type, type before trust', async () => {
      const weakUntrusted = await issueCertificate({ subject: 'CN=PF Weak Stray', key: await generateKey('rsa-1024', 'pf-rsa1024') });
      const bigExtra = await issueCertificate({ subject: 'CN=PF Big', san: { dns: Array.from({ length: 500 }, (_, i) => `h${i}.a-rather-long-subdomain.example.com`) } });
      const nonDer = await issueCertificate({ subject: 'CN=PF Non DER', serial: '0001' });
      failed(run([weakUntrusted, nonDer, bigExtra], store(ec.root)), 'ClientCertMaxSizeExceeded', 2);
      failed(run([weakUntrusted, nonDer], store(ec.root)), 'ClientCertInvalid', 1);
      failed(run([weakUntrusted], store(ec.root)), 'ClientCertTypeUnsupported', 0);
    });

    it('untrusted before expired and before intent', async () => {
      const stray = await issueCertificate({ subject: 'CN=PF Stray', issuer: other.intermediates[0]!, eku: [OID.kpServerAuth], notAfter: ago(1), notBefore: ago(5) });
      failed(run([stray, other.intermediates[0]!], store(ec.root)), 'ClientCertUntrusted', 1);
    });

    it('depth before structure; structure before intent; intent before time', async () => {
      const four = await buildChain({ name: 'PF Four B', intermediates: 4, leaf: { notAfter: ago(1), notBefore: ago(3), eku: [OID.kpServerAuth] } });
      failed(run(four.presented, store(four.root)), 'ClientCertMaxChainDepthExceeded', 4);
      const notCa = await issueCertificate({ subject: 'CN=PF Not CA 2', issuer: ec.root, ca: false, keyUsage: ['keyCertSign'] });
      const leaf = await leafUnder(notCa, { eku: [OID.kpServerAuth], notAfter: ago(1), notBefore: ago(3) });
      failed(run([leaf, notCa], store(ec.root)), 'ClientCertInvalid', 1);
      const leaf2 = await leafUnder(int, { eku: [OID.kpServerAuth], notAfter: ago(1), notBefore: ago(3) });
      failed(run([leaf2, int], store(ec.root)), 'ClientCertIntentInvalid', 0);
    });

    it('leaf first among expired certificates on the path', async () => {
      const expiredInt = await issueCertificate({ subject: 'CN=PF Old Int 2', issuer: ec.root, ca: true, notBefore: ago(30), notAfter: ago(1) });
      const leaf = await leafUnder(expiredInt, { notBefore: ago(30), notAfter: ago(2) });
      failed(run([leaf, expiredInt], store(ec.root)), 'ClientCertExpired', 0);
    });
  });

  describe('inputs', () => {
    it('no certificate → ClientCertInvalid', () => {
      failed(validateClientChain([], store(ec.root), { now: NOW }), 'ClientCertInvalid', null);
    });

    it('an empty trust store trusts nothing', () => {
      failed(run(ec.presented, new TrustAnchorSet([])), 'ClientCertUntrusted', 1);
    });

    it('rejects invalid options', () => {
      const anchors = store(ec.root);
      const certs = ec.presented.map((c) => c.cert);
      assert.throws(() => validateClientChain(certs, anchors, { now: new Date(NaN) }), InvalidArgumentError);
      assert.throws(() => validateClientChain(certs, anchors, { now: NOW, maxChainDepth: 0 }), InvalidArgumentError);
      assert.throws(() => validateClientChain(certs, anchors, { now: NOW, maxCertificateBytes: -1 }), InvalidArgumentError);
    });
  });
});
