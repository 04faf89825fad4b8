/**
 * Test PKI generator: builds real X.509 certificates (RSA and ECDSA) with pkijs and
 * WebCrypto, so tests need no committed keys. Every option maps to one RFC 5280 field
 * or extension, and anything can be made wrong on purpose (wrong EKU, expired, no AIA,
 * odd serial encodings, multi-valued RDNs, delegated OCSP responders, …).
 */
import { execFileSync } from 'node:child_process';
import { webcrypto, createPrivateKey } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { ParsedCertificate, toPem, OID } from '../../src/pki/index.js';

type CryptoKeyPair = webcrypto.CryptoKeyPair;
const subtle = webcrypto.subtle;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
pkijs.setEngine('node-webcrypto', new pkijs.CryptoEngine({ name: 'node-webcrypto', crypto: webcrypto as any }));

/** Key types the generator can make. */
export type KeyType = 'ec-p256' | 'ec-p384' | 'ec-p521' | 'rsa-1024' | 'rsa-2048' | 'rsa-3072' | 'rsa-4096' | 'rsa-pss-2048';

/** A generated key pair with its PKCS#8 PEM (for openssl and node:tls). */
export interface TestKey {
  type: KeyType;
  pair: CryptoKeyPair;
  privateKeyPem: string;
}

const keyCache = new Map<string, Promise<TestKey>>();

/** Generates a key pair. Pass `cacheId` to reuse one key across calls (RSA generation is slow). */
export function generateKey(type: KeyType, cacheId?: string): Promise<TestKey> {
  if (cacheId) {
    const k = `${type}:${cacheId}`;
    let p = keyCache.get(k);
    if (!p) keyCache.set(k, (p = generateKey(type)));
    return p;
  }
  return (async () => {
    let alg: webcrypto.RsaHashedKeyGenParams | webcrypto.EcKeyGenParams;
    if (type.startsWith('ec-')) {
      alg = { name: 'ECDSA', namedCurve: type === 'ec-p256' ? 'P-256' : type === 'ec-p384' ? 'P-384' : 'P-521' };
    } else {
      const bits = Number(type.split('-').pop());
      alg = {
        name: type.startsWith('rsa-pss') ? 'RSA-PSS' : 'RSASSA-PKCS1-v1_5',
        modulusLength: bits, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256',
      };
    }
    const pair = (await subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
    const pkcs8 = Buffer.from(await subtle.exportKey('pkcs8', pair.privateKey));
    return { type, pair, privateKeyPem: toPem(pkcs8, 'PRIVATE KEY') };
  })();
}

/** Attribute type short names → OIDs (RFC 4514 section 3 plus common extras). */
export const ATTRIBUTE_OIDS: Record<string, string> = {
  CN: '2.5.4.3', C: '2.5.4.6', L: '2.5.4.7', ST: '2.5.4.8', O: '2.5.4.10', OU: '2.5.4.11',
  STREET: '2.5.4.9', DC: '0.9.2342.19200300.100.1.25', UID: '0.9.2342.19200300.100.1.1',
  serialNumber: '2.5.4.5', emailAddress: '1.2.840.113549.1.9.1', title: '2.5.4.12',
};

/**
 * One attribute: `[type, value]` or `[type, value, encoding]` where type is a short
 * name from {@link ATTRIBUTE_OIDS} or a dotted OID; encoding defaults to UTF8String
 * (PrintableString for C, IA5String for emailAddress and DC).
 */
export type Attribute = [string, string] | [string, string, 'utf8' | 'printable' | 'ia5' | 'bmp' | 'teletex'];
/** A Name: a list of RDNs in DER order; each RDN is one or more attributes (multi-valued when more). */
export type NameSpec = string | Attribute[][];

/** Encodes a Name (RFC 5280 4.1.2.4). A string `'C=US,O=Org,CN=x'` lists RDNs in DER order, no escaping. */
export function encodeName(spec: NameSpec): Buffer {
  const rdns: Attribute[][] = typeof spec === 'string'
    ? spec.split(',').filter(Boolean).map((p) => {
        const i = p.indexOf('=');
        return [[p.slice(0, i).trim(), p.slice(i + 1).trim()] as Attribute];
      })
    : spec;
  const seq = new asn1js.Sequence({
    value: rdns.map((rdn) => new asn1js.Set({
      value: rdn.map(([type, value, enc]) => {
        const oid = ATTRIBUTE_OIDS[type] ?? type;
        const e = enc ?? (type === 'C' ? 'printable' : type === 'emailAddress' || type === 'DC' ? 'ia5' : 'utf8');
        const v = e === 'printable' ? new asn1js.PrintableString({ value })
          : e === 'ia5' ? new asn1js.IA5String({ value })
          : e === 'bmp' ? new asn1js.BmpString({ value })
          : e === 'teletex' ? new asn1js.TeletexString({ value })
          : new asn1js.Utf8String({ value });
        return new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: oid }), v] });
      }),
    })),
  });
  return Buffer.from(seq.toBER(false));
}

function nameFromDer(der: Buffer): pkijs.RelativeDistinguishedNames {
  const rdn = new pkijs.RelativeDistinguishedNames({ schema: asn1js.fromBER(der).result });
  rdn.valueBeforeDecode = der.buffer.slice(der.byteOffset, der.byteOffset + der.byteLength) as ArrayBuffer;
  return rdn;
}

/** Subject alternative names (RFC 5280 4.2.1.6). */
export interface SanSpec {
  dns?: string[];
  ip?: string[];
  email?: string[];
  uri?: string[];
}

/** Options of {@link issueCertificate}. Omitted extensions are omitted from the certificate. */
export interface IssueOptions {
  subject: NameSpec;
  /** Issuing CA; omit for a self-signed certificate. */
  issuer?: TestCert;
  key?: KeyType | TestKey;
  /** Serial INTEGER content bytes, exactly as they will be encoded (hex string or bytes). Default: 16 random bytes, high bit clear. */
  serial?: string | Uint8Array;
  notBefore?: Date;
  notAfter?: Date;
  /** basicConstraints: true → cA=TRUE (critical), false → cA=FALSE, undefined → absent for leaves, present for CA certs. */
  ca?: boolean;
  pathLen?: number;
  /** keyUsage names; null omits the extension. Default: CA → keyCertSign+cRLSign, leaf → digitalSignature. */
  keyUsage?: string[] | null;
  /** extKeyUsage OIDs; null/undefined omits it. */
  eku?: string[] | null;
  ocspUrls?: string[];
  caIssuersUrls?: string[];
  san?: SanSpec;
  /** Signature hash: SHA-256 default. */
  hash?: 'SHA-1' | 'SHA-256' | 'SHA-384' | 'SHA-512';
  ocspNoCheck?: boolean;
  /** Add subjectKeyIdentifier/authorityKeyIdentifier (default true). */
  keyIdentifiers?: boolean;
  /** Extra raw extensions. */
  extensions?: pkijs.Extension[];
}

/** A generated certificate with its key. */
export interface TestCert {
  der: Buffer;
  pem: string;
  cert: ParsedCertificate;
  key: TestKey;
  /** Subject Name DER. */
  subjectDer: Buffer;
  /** For convenience: PEM of the private key. */
  keyPem: string;
}

const KU_BITS = ['digitalSignature', 'nonRepudiation', 'keyEncipherment', 'dataEncipherment', 'keyAgreement', 'keyCertSign', 'cRLSign', 'encipherOnly', 'decipherOnly'];

function keyUsageExtension(names: string[]): pkijs.Extension {
  let max = -1;
  const bytes = new Uint8Array(2);
  for (const n of names) {
    const i = KU_BITS.indexOf(n);
    if (i < 0) throw new Error(`unknown keyUsage ${n}`);
    bytes[i >> 3]! |= 0x80 >> (i & 7);
    max = Math.max(max, i);
  }
  const len = max >= 8 ? 2 : 1;
  const unused = len * 8 - (max + 1);
  const bits = new asn1js.BitString({ valueHex: bytes.slice(0, len), unusedBits: Math.max(0, unused) });
  return new pkijs.Extension({ extnID: OID.keyUsage, critical: true, extnValue: bits.toBER(false) });
}

function generalNames(san: SanSpec): pkijs.GeneralNames {
  const names: pkijs.GeneralName[] = [];
  for (const d of san.dns ?? []) names.push(new pkijs.GeneralName({ type: 2, value: d }));
  for (const e of san.email ?? []) names.push(new pkijs.GeneralName({ type: 1, value: e }));
  for (const u of san.uri ?? []) names.push(new pkijs.GeneralName({ type: 6, value: u }));
  for (const ip of san.ip ?? []) {
    const bytes = ip.includes(':') ? ipv6Bytes(ip) : Buffer.from(ip.split('.').map(Number));
    names.push(new pkijs.GeneralName({ type: 7, value: new asn1js.OctetString({ valueHex: bytes }) }));
  }
  return new pkijs.GeneralNames({ names });
}

function ipv6Bytes(ip: string): Buffer {
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail ? tail.split(':') : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return Buffer.from(groups.flatMap((g: string) => { const n = parseInt(g, 16); return [n >> 8, n & 0xff]; }));
}

let serialCounter = 0;

/** Issues one certificate. Dates default to now−1h … now+30d. */
export async function issueCertificate(opts: IssueOptions): Promise<TestCert> {
  const key = typeof opts.key === 'object' ? opts.key : await generateKey(opts.key ?? 'ec-p256');
  const cert = new pkijs.Certificate();
  cert.version = 2;
  let serial: Uint8Array;
  if (opts.serial === undefined) {
    serial = webcrypto.getRandomValues(new Uint8Array(16));
    serial[0] = (serial[0]! & 0x7f) | 0x01;
    serial[15] = ++serialCounter & 0xff;
  } else {
    serial = typeof opts.serial === 'string' ? Buffer.from(opts.serial.replace(/:/g, ''), 'hex') : opts.serial;
  }
  cert.serialNumber = new asn1js.Integer({ valueHex: serial });
  const subjectDer = encodeName(opts.subject);
  cert.subject = nameFromDer(subjectDer);
  cert.issuer = nameFromDer(opts.issuer ? opts.issuer.subjectDer : subjectDer);
  const now = Date.now();
  // RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
  const timeOf = (d: Date) => new pkijs.Time({ type: d.getUTCFullYear() >= 2050 ? 1 : 0, value: d });
  cert.notBefore = timeOf(opts.notBefore ?? new Date(now - 3600_000));
  cert.notAfter = timeOf(opts.notAfter ?? new Date(now + 30 * 86400_000));
  await cert.subjectPublicKeyInfo.importKey(key.pair.publicKey);

  const isCA = opts.ca === true;
  const exts: pkijs.Extension[] = [];
  if (opts.ca !== undefined) {
    exts.push(new pkijs.Extension({
      extnID: OID.basicConstraints, critical: true,
      extnValue: new pkijs.BasicConstraints({ cA: isCA, ...(opts.pathLen !== undefined ? { pathLenConstraint: opts.pathLen } : {}) }).toSchema().toBER(false),
    }));
  }
  const ku = opts.keyUsage === undefined ? (isCA ? ['keyCertSign', 'cRLSign'] : ['digitalSignature']) : opts.keyUsage;
  if (ku) exts.push(keyUsageExtension(ku));
  if (opts.eku) {
    exts.push(new pkijs.Extension({ extnID: OID.extKeyUsage, critical: false, extnValue: new pkijs.ExtKeyUsage({ keyPurposes: opts.eku }).toSchema().toBER(false) }));
  }
  const aia: pkijs.AccessDescription[] = [];
  for (const u of opts.ocspUrls ?? []) aia.push(new pkijs.AccessDescription({ accessMethod: OID.adOcsp, accessLocation: new pkijs.GeneralName({ type: 6, value: u }) }));
  for (const u of opts.caIssuersUrls ?? []) aia.push(new pkijs.AccessDescription({ accessMethod: OID.adCaIssuers, accessLocation: new pkijs.GeneralName({ type: 6, value: u }) }));
  if (aia.length) {
    exts.push(new pkijs.Extension({ extnID: OID.authorityInfoAccess, critical: false, extnValue: new pkijs.InfoAccess({ accessDescriptions: aia }).toSchema().toBER(false) }));
  }
  if (opts.san) {
    exts.push(new pkijs.Extension({ extnID: OID.subjectAltName, critical: false, extnValue: generalNames(opts.san).toSchema().toBER(false) }));
  }
  if (opts.keyIdentifiers !== false) {
    const spkiBits = cert.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView;
    const ski = Buffer.from(await subtle.digest('SHA-1', spkiBits));
    exts.push(new pkijs.Extension({ extnID: OID.subjectKeyIdentifier, critical: false, extnValue: new asn1js.OctetString({ valueHex: ski }).toBER(false) }));
    const issuerSki = opts.issuer?.cert.subjectKeyIdentifier ?? (opts.issuer ? undefined : ski);
    if (issuerSki) {
      exts.push(new pkijs.Extension({ extnID: OID.authorityKeyIdentifier, critical: false, extnValue: new pkijs.AuthorityKeyIdentifier({ keyIdentifier: new asn1js.OctetString({ valueHex: issuerSki }) }).toSchema().toBER(false) }));
    }
  }
  if (opts.ocspNoCheck) exts.push(new pkijs.Extension({ extnID: OID.ocspNoCheck, critical: false, extnValue: new asn1js.Null().toBER(false) }));
  exts.push(...(opts.extensions ?? []));
  if (exts.length) cert.extensions = exts;

  const signer = opts.issuer ? opts.issuer.key : key;
  const hash = opts.hash ?? (signer.type === 'ec-p384' ? 'SHA-384' : 'SHA-256');
  const signingKey = await signingKeyFor(signer, hash);
  await cert.sign(signingKey, hash);
  const der = Buffer.from(cert.toSchema(true).toBER(false));
  return { der, pem: toPem(der), cert: ParsedCertificate.fromDer(der), key, subjectDer, keyPem: key.privateKeyPem };
}

/** Options of {@link buildChain}. */
export interface ChainOptions {
  keyType?: KeyType;
  /** Number of intermediates below the root (0–3+). */
  intermediates?: number;
  /** OCSP URL put in the AIA of each non-root certificate, by depth (0 = leaf); undefined → no AIA. */
  ocspUrl?: (depth: number) => string | undefined;
  leaf?: Partial<IssueOptions>;
  name?: string;
}

/** A root, its intermediates (root-most first) and a leaf. */
export interface TestChain {
  root: TestCert;
  /** Intermediates from the one under the root down to the leaf's issuer. */
  intermediates: TestCert[];
  leaf: TestCert;
  /** Leaf first, then intermediates from the leaf's issuer upwards (what a TLS client sends). */
  presented: TestCert[];
  /** PEM of `presented`. */
  presentedPem: string;
}

/** Builds root → intermediates → leaf (leaf with clientAuth EKU). Keys are cached per name/level to keep tests fast. */
export async function buildChain(opts: ChainOptions = {}): Promise<TestChain> {
  const kt = opts.keyType ?? 'ec-p256';
  const name = opts.name ?? 'Test';
  const n = opts.intermediates ?? 1;
  const root = await issueCertificate({ subject: `C=US,O=Portcullis Test,CN=${name} Root CA`, ca: true, key: await generateKey(kt, `${name}-root`), notAfter: new Date(Date.now() + 3650 * 86400_000), notBefore: new Date(Date.now() - 86400_000) });
  const intermediates: TestCert[] = [];
  let issuer = root;
  for (let i = 0; i < n; i++) {
    const depth = n - i; // leaf is depth 0; the intermediate just above the leaf is depth 1
    const url = opts.ocspUrl?.(depth);
    const ic = await issueCertificate({
      subject: `C=US,O=Portcullis Test,CN=${name} Intermediate CA ${i + 1}`, issuer, ca: true,
      key: await generateKey(kt, `${name}-int-${i}`), ocspUrls: url ? [url] : [],
      notAfter: new Date(Date.now() + 1825 * 86400_000), notBefore: new Date(Date.now() - 86400_000),
    });
    intermediates.push(ic);
    issuer = ic;
  }
  const leafUrl = opts.ocspUrl?.(0);
  const leaf = await issueCertificate({
    subject: `C=US,O=Portcullis Test,CN=${name} Client`, issuer, key: await generateKey(kt, `${name}-leaf`),
    eku: [OID.kpClientAuth], ocspUrls: leafUrl ? [leafUrl] : [], san: { dns: ['client.example.com'] },
    ...opts.leaf,
  });
  const presented = [leaf, ...intermediates.slice().reverse()];
  return { root, intermediates, leaf, presented, presentedPem: presented.map((c) => c.pem).join('') };
}

/**
 * The private key to sign with `hash`. WebCrypto binds the hash to an RSA key when it is
 * generated (SHA-256 here), and pkijs signs with the key's own hash whatever it is
 * asked, so an RSA key is re-imported with the requested hash; ECDSA keys take the hash
 * per signature.
 */
export async function signingKeyFor(key: TestKey, hash: string): Promise<webcrypto.CryptoKey> {
  const privateKey = key.pair.privateKey;
  const alg = privateKey.algorithm as webcrypto.RsaHashedKeyAlgorithm;
  if (alg.name !== 'RSASSA-PKCS1-v1_5' && alg.name !== 'RSA-PSS') return privateKey;
  if (alg.hash.name === hash) return privateKey;
  const pkcs8 = await subtle.exportKey('pkcs8', privateKey);
  return subtle.importKey('pkcs8', pkcs8, { name: alg.name, hash }, false, ['sign']);
}

/** True when the `openssl` command is available (tests that cross-check with it skip otherwise). */
export const hasOpenssl: boolean = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** Node-usable private key object from a TestKey (for node:tls / crypto.sign). */
export function nodePrivateKey(key: TestKey) {
  return createPrivateKey(key.privateKeyPem);
}
