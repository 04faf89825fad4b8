/**
 * Test CRLs: {@link issueCrl} builds X.509 CRLs with pkijs, signed by a test-PKI CA
 * (test/helpers/pki.ts), and can make any field wrong on purpose (delta, indirect,
 * unknown critical extensions, wrong signer, SHA-1, odd serials). {@link opensslGenCrl}
 * makes a CRL with the real `openssl ca -gencrl` over an index file.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { toPem } from '../../src/pki/index.js';
import { CRL_REASONS } from '../../src/revocation/index.js';
import { encodeName, signingKeyFor, type NameSpec, type TestCert, type TestKey } from './pki.js';

const run = promisify(execFile);

/** One revokedCertificates entry of {@link issueCrl}. */
export interface CrlEntrySpec {
  /** Serial INTEGER content bytes exactly as they will be encoded (hex, colons allowed, or bytes). */
  serial: string | Uint8Array;
  /** Default: one hour before now. */
  revocationDate?: Date;
  /** CRLReason name (`keyCompromise`, …) or code; omitted → no reasonCode extension. */
  reason?: string | number;
  /** Adds a certificateIssuer entry extension naming this CA (critical, RFC 5280 5.3.3). */
  certificateIssuer?: NameSpec;
  /** Extra raw entry extensions. */
  extensions?: pkijs.Extension[];
}

/** Options of {@link issueCrl}. */
export interface IssueCrlOptions {
  /** The CA whose subject becomes the CRL issuer and whose key signs (unless `signWith`). */
  issuer: TestCert;
  entries?: CrlEntrySpec[];
  /** Default: one hour before now. */
  thisUpdate?: Date;
  /** Default: seven days after now; null omits nextUpdate. */
  nextUpdate?: Date | null;
  /** cRLNumber; default 1; null omits the extension. */
  crlNumber?: number | bigint | null;
  /** Adds a critical deltaCRLIndicator with this BaseCRLNumber. */
  deltaBase?: number;
  /** Adds a critical issuingDistributionPoint with indirectCRL TRUE. */
  indirect?: boolean;
  /** Adds an authorityKeyIdentifier with the issuer's SKI (default true). */
  authorityKeyIdentifier?: boolean;
  /** Extra raw CRL extensions (e.g. an unknown critical one). */
  extensions?: pkijs.Extension[];
  /** Sign with another key (a wrong signature for the issuer's public key). */
  signWith?: TestKey;
  /** Override the issuer Name (the key still comes from `issuer`/`signWith`). */
  issuerName?: NameSpec;
  /** Signature hash; default SHA-256 (SHA-384 for P-384 keys). */
  hash?: 'SHA-1' | 'SHA-256' | 'SHA-384' | 'SHA-512';
}

/** A generated CRL. */
export interface TestCrl {
  der: Buffer;
  pem: string;
}

const REASON_CODES: Record<string, number> = Object.fromEntries(Object.entries(CRL_REASONS).map(([code, name]) => [name, Number(code)]));

function timeOf(d: Date): pkijs.Time {
  // RFC 5280 5.1.2.4: UTCTime through 2049, GeneralizedTime from 2050.
  return new pkijs.Time({ type: d.getUTCFullYear() >= 2050 ? 1 : 0, value: d });
}

/** A pkijs Name that re-encodes to exactly `der`. */
function nameFromDer(der: Buffer): pkijs.RelativeDistinguishedNames {
  const rdn = new pkijs.RelativeDistinguishedNames({ schema: asn1js.fromBER(der).result });
  rdn.valueBeforeDecode = der.buffer.slice(der.byteOffset, der.byteOffset + der.byteLength) as ArrayBuffer;
  return rdn;
}

function integerFromNumber(n: number | bigint): asn1js.Integer {
  return asn1js.Integer.fromBigInt(BigInt(n));
}

/** Issues a v2 CRL signed by `opts.issuer` (or `opts.signWith`). */
export async function issueCrl(opts: IssueCrlOptions): Promise<TestCrl> {
  const now = Date.now();
  const crl = new pkijs.CertificateRevocationList();
  crl.version = 1; // v2
  const issuerDer = opts.issuerName !== undefined ? encodeName(opts.issuerName) : opts.issuer.subjectDer;
  crl.issuer = nameFromDer(issuerDer);
  crl.thisUpdate = timeOf(opts.thisUpdate ?? new Date(now - 3600_000));
  if (opts.nextUpdate !== null) crl.nextUpdate = timeOf(opts.nextUpdate ?? new Date(now + 7 * 86400_000));

  const entries = opts.entries ?? [];
  if (entries.length) {
    crl.revokedCertificates = entries.map((e) => {
      const serial = typeof e.serial === 'string' ? Buffer.from(e.serial.replace(/:/g, ''), 'hex') : e.serial;
      const exts: pkijs.Extension[] = [];
      if (e.reason !== undefined) {
        const code = typeof e.reason === 'number' ? e.reason : REASON_CODES[e.reason];
        if (code === undefined) throw new Error(`unknown CRL reason ${e.reason}`);
        exts.push(new pkijs.Extension({ extnID: '2.5.29.21', critical: false, extnValue: new asn1js.Enumerated({ value: code }).toBER(false) }));
      }
      if (e.certificateIssuer !== undefined) {
        const name = new pkijs.GeneralName({ type: 4, value: nameFromDer(encodeName(e.certificateIssuer)) });
        exts.push(new pkijs.Extension({ extnID: '2.5.29.29', critical: true, extnValue: new pkijs.GeneralNames({ names: [name] }).toSchema().toBER(false) }));
      }
      exts.push(...(e.extensions ?? []));
      return new pkijs.RevokedCertificate({
        userCertificate: new asn1js.Integer({ valueHex: serial }),
        revocationDate: timeOf(e.revocationDate ?? new Date(now - 3600_000)),
        ...(exts.length ? { crlEntryExtensions: new pkijs.Extensions({ extensions: exts }) } : {}),
      });
    });
  }

  const exts: pkijs.Extension[] = [];
  if (opts.authorityKeyIdentifier !== false && opts.issuer.cert.subjectKeyIdentifier) {
    exts.push(new pkijs.Extension({
      extnID: '2.5.29.35', critical: false,
      extnValue: new pkijs.AuthorityKeyIdentifier({ keyIdentifier: new asn1js.OctetString({ valueHex: opts.issuer.cert.subjectKeyIdentifier }) }).toSchema().toBER(false),
    }));
  }
  if (opts.crlNumber !== null) {
    exts.push(new pkijs.Extension({ extnID: '2.5.29.20', critical: false, extnValue: integerFromNumber(opts.crlNumber ?? 1).toBER(false) }));
  }
  if (opts.deltaBase !== undefined) {
    exts.push(new pkijs.Extension({ extnID: '2.5.29.27', critical: true, extnValue: integerFromNumber(opts.deltaBase).toBER(false) }));
  }
  if (opts.indirect) {
    exts.push(new pkijs.Extension({ extnID: '2.5.29.28', critical: true, extnValue: new pkijs.IssuingDistributionPoint({ indirectCRL: true }).toSchema().toBER(false) }));
  }
  exts.push(...(opts.extensions ?? []));
  if (exts.length) crl.crlExtensions = new pkijs.Extensions({ extensions: exts });

  const signer = opts.signWith ?? opts.issuer.key;
  const hash = opts.hash ?? (signer.type === 'ec-p384' ? 'SHA-384' : 'SHA-256');
  const signingKey = await signingKeyFor(signer, hash);
  await crl.sign(signingKey, hash);
  const der = Buffer.from(crl.toSchema(true).toBER(false));
  return { der, pem: toPem(der, 'X509 CRL') };
}

/** One `R` line of an openssl CA index (`openssl ca` database). */
export interface OpensslRevokedSpec {
  /** Serial as uppercase/lowercase hex digits, even length (openssl writes the INTEGER from it). */
  serialHex: string;
  /** openssl reason name: unspecified, keyCompromise, CACompromise, affiliationChanged, superseded, cessationOfOperation, certificateHold, removeFromCRL. */
  reason?: string;
  /** Default: one day before now. */
  revocationDate?: Date;
}

/** A CRL made by `openssl ca -gencrl`, with the CA certificate that signed it. */
export interface OpensslCrl {
  crlPem: string;
  crlDer: Buffer;
  caPem: string;
}

function opensslTime(d: Date): string {
  // index.txt uses UTCTime: YYMMDDHHMMSSZ
  return d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
}

/**
 * Creates a throwaway CA (ECDSA P-256, keyUsage keyCertSign+cRLSign) with the openssl
 * CLI in a temporary directory, writes an index with the given revoked entries and runs
 * `openssl ca -gencrl` (cRLNumber 0x1000, authorityKeyIdentifier, nextUpdate in 7 days).
 * Requires `openssl` on PATH. The directory is removed before returning.
 */
export async function opensslGenCrl(opts: { subject?: string; revoked: OpensslRevokedSpec[] }): Promise<OpensslCrl> {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-crl-'));
  try {
    const subject = opts.subject ?? '/C=US/O=Portcullis Test/CN=OpenSSL CRL CA';
    await writeFile(join(dir, 'ca.cnf'), [
      '[ req ]', 'distinguished_name = dn', '[ dn ]',
      '[ ca_ext ]', 'basicConstraints = critical,CA:TRUE', 'keyUsage = critical,keyCertSign,cRLSign',
      'subjectKeyIdentifier = hash',
      '[ ca ]', 'default_ca = CA_default',
      '[ CA_default ]', `dir = ${dir}`, 'database = $dir/index.txt', 'crlnumber = $dir/crlnumber',
      'certificate = $dir/ca.pem', 'private_key = $dir/ca.key', 'default_md = sha256', 'default_crl_days = 7',
      'crl_extensions = crl_ext',
      '[ crl_ext ]', 'authorityKeyIdentifier = keyid:always', '',
    ].join('\n'));
    await run('openssl', ['req', '-x509', '-new', '-config', join(dir, 'ca.cnf'), '-extensions', 'ca_ext',
      '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.pem'), '-subj', subject, '-days', '30']);
    const expiry = opensslTime(new Date(Date.now() + 365 * 86400_000));
    const lines = opts.revoked.map((r, i) => {
      const when = opensslTime(r.revocationDate ?? new Date(Date.now() - 86400_000));
      return `R\t${expiry}\t${when}${r.reason ? `,${r.reason}` : ''}\t${r.serialHex.toUpperCase()}\tunknown\t/CN=revoked ${i}\n`;
    });
    await writeFile(join(dir, 'index.txt'), lines.join(''));
    await writeFile(join(dir, 'crlnumber'), '1000\n');
    await run('openssl', ['ca', '-config', join(dir, 'ca.cnf'), '-gencrl', '-out', join(dir, 'crl.pem'), '-batch']);
    await run('openssl', ['crl', '-in', join(dir, 'crl.pem'), '-outform', 'DER', '-out', join(dir, 'crl.der')]);
    return {
      crlPem: await readFile(join(dir, 'crl.pem'), 'utf8'),
      crlDer: await readFile(join(dir, 'crl.der')),
      caPem: await readFile(join(dir, 'ca.pem'), 'utf8'),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
