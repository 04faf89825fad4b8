/**
 * `portcullis cert inspect FILE [--json]`: prints the CloudFront-shaped certificate
 * view (SPEC section 4) of every certificate in a PEM file (several blocks and `#`
 * comment lines allowed) or a DER file. An offline helper: it reads only FILE
 * (`-` for standard input) and needs no running node.
 */
import type { Command } from 'commander';
import { certificateView, signatureAlgorithmName, viewerCertHeaders } from '../pki/index.js';
import type { CertificateView, ParsedCertificate, ViewerCertHeaders } from '../pki/index.js';
import { CertificateParseError } from '../errors.js';
import { CliUsageError, readCertificateFile, shownFileName } from './common.js';

/**
 * Information `cert inspect --json` adds beside the view. It is not part of the
 * CloudFront connection object; it sits under the `extras` key of each element.
 */
export interface CertInspectExtras {
  /** Which block of FILE this is, e.g. `certificate #2 (line 14)`. */
  source: string;
  /** X.509 version (1, 2 or 3). */
  version: number;
  isCA: boolean;
  selfIssued: boolean;
  /** e.g. `ECDSA P-256`, `RSA 2048`. */
  publicKey: string;
  /** e.g. `ecdsa-with-SHA256`. */
  signatureAlgorithm: string;
  /** Every AIA OCSP URI (the view shows only the first). */
  ocspUrls: string[];
  /** AIA caIssuers URIs. */
  caIssuersUrls: string[];
  /** The SPEC section 6 headers this certificate would produce as a leaf, except `-Pem`. */
  viewerCertHeaders: Omit<ViewerCertHeaders, 'CloudFront-Viewer-Cert-Pem'>;
}

/** One element of the `--json` output: the view's own fields plus `extras`. */
export type CertInspectJson = CertificateView & { extras: CertInspectExtras };

interface Inspected {
  where: string;
  cert: ParsedCertificate;
  view: CertificateView;
}

/**
 * Reads and parses FILE with the shared reader of the other commands.
 * @throws CliUsageError naming the file (and the block, for a parse error) when the
 *   file cannot be read (`cannot read x.pem: no such file`), a block is not a
 *   certificate, or a certificate is not valid DER (its
 *   {@link ParsedCertificate.encodingProblem}, e.g. a non-minimal serial).
 */
function inspectFile(file: string): Inspected[] {
  const shownName = shownFileName(file);
  return readCertificateFile(file, '').map(({ where, cert }) => {
    if (cert.encodingProblem) throw new CliUsageError(`${shownName}: ${where}: not a valid DER X.509 certificate: ${cert.encodingProblem}`);
    try {
      return { where, cert, view: certificateView(cert) };
    } catch (err) {
      if (err instanceof CertificateParseError) throw new CliUsageError(`${shownName}: ${where}: ${err.message}`);
      throw err;
    }
  });
}

function extrasOf(item: Inspected): CertInspectExtras {
  const { cert } = item;
  const { 'CloudFront-Viewer-Cert-Pem': _pem, ...headers } = viewerCertHeaders(cert);
  return {
    source: item.where,
    version: cert.version,
    isCA: cert.isCA,
    selfIssued: cert.selfIssued,
    publicKey: cert.publicKey.description,
    signatureAlgorithm: signatureAlgorithmName(cert.signatureAlgorithmOid),
    ocspUrls: [...cert.ocspUrls],
    caIssuersUrls: [...cert.caIssuersUrls],
    viewerCertHeaders: headers,
  };
}

/** Human-readable text: one aligned block per certificate, view fields first, then a few extras. */
function formatText(items: Inspected[]): string {
  const out: string[] = [];
  for (const item of items) {
    const { view, cert } = item;
    const rows: [string, string][] = [
      ['subject', view.subject],
      ['issuer', view.issuer],
      ['serialNumber', view.serialNumber],
      ['notBefore', view.validity.notBefore],
      ['notAfter', view.validity.notAfter],
      ['sha256Fingerprint', view.sha256Fingerprint],
      ['ocspEndpoint', view.ocspEndpoint ?? '(none)'],
      ['san', view.san || '(none)'],
      ['spki', view.spki],
      ['sanHex', view.sanHex || '(none)'],
      ['-- extras (not part of the connection object)', ''],
      ['CA', cert.isCA ? 'yes' : 'no'],
      ['publicKey', cert.publicKey.description],
      ['signatureAlgorithm', signatureAlgorithmName(cert.signatureAlgorithmOid)],
    ];
    const width = Math.max(...rows.filter(([, v]) => v !== '').map(([k]) => k.length));
    out.push(`${item.where[0]!.toUpperCase()}${item.where.slice(1)}`);
    for (const [k, v] of rows) out.push(v === '' ? `  ${k}` : `  ${k.padEnd(width)}  ${v}`);
    out.push('');
  }
  return out.join('\n');
}

/** Registers `portcullis cert …` commands: `cert inspect FILE [--json]`. */
export function registerCertCommands(program: Command): void {
  const cert = program.command('cert').description('offline certificate tools');
  cert
    .command('inspect')
    .description(
      'print the connection-function view (SPEC section 4) of each certificate in FILE ' +
      '(PEM with one or more blocks and # comments, or DER; "-" reads standard input)',
    )
    .argument('<file>', 'PEM or DER certificate file, or - for standard input')
    .option('--json', 'print a JSON array: each element is the view plus an "extras" object (not part of the connection object)')
    .action((file: string, opts: { json?: boolean }) => {
      const items = inspectFile(file);
      if (opts.json) {
        const json: CertInspectJson[] = items.map((item) => ({ ...item.view, extras: extrasOf(item) }));
        process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
      } else {
        process.stdout.write(formatText(items));
      }
    });
}
