/**
 * `portcullis ocsp check --chain FILE --trust-store FILE [--json] [--timeout-ms N]`:
 * validates the presented chain against a trust-store bundle (SPEC section 2), then
 * checks the leaf and every intermediate below the anchor over OCSP (SPEC section 3)
 * and prints each certificate's status, error type and detail, responder, source and
 * time, and the chainValidity. `--demo` runs the same check against a throwaway PKI
 * with real `openssl ocsp` responders (the quickstart).
 *
 * Exit codes: 0 every checked certificate Good; 1 any Revoked; 2 any Unknown/Error
 * (none Revoked); 3 path validation failed or a certificate lacks an OCSP URL;
 * 64 usage error (bad option, a numeric option outside its range — see
 * {@link OCSP_CHECK_OPTION_RANGES}, both inputs on standard input, unreadable file,
 * invalid trust-store bundle).
 */
import type { Command } from 'commander';
import {
  formatDnRfc4514, parseTrustStoreBundle, validateClientChain,
  type ParsedCertificate, type TrustAnchorSet,
} from '../pki/index.js';
import { RevocationChecker, DEFAULT_REVOCATION_OPTIONS, type RevocationStatus, type CertificateRevocationStatus } from '../revocation/index.js';
import { OpensslDemoPki } from '../demo/index.js';
import { TrustStoreBundleError } from '../errors.js';
import { CliUsageError, checkOneStdin, parseIntegerOption, readCertificateFile, readInputFile, type IntegerRange } from './common.js';

/** Exit codes of `ocsp check`. */
export const OCSP_CHECK_EXIT = { good: 0, revoked: 1, unknown: 2, invalidPath: 3 } as const;

/**
 * Allowed ranges of the numeric options of `ocsp check` (README option table). A value
 * outside its range is a usage error (exit 64), never clamped:
 * - `--timeout-ms` 1…60 000: the budget is per handshake, a minute is already far longer
 *   than any client waits, and timers cannot take more than 2^31−1 ms;
 * - `--max-response-bytes` 1…16 MiB: OCSP responses are a few KiB, and the body is buffered;
 * - `--clock-skew-seconds` 0…86 400: a day; more would let long-expired responses through.
 */
export const OCSP_CHECK_OPTION_RANGES: Readonly<Record<'timeoutMs' | 'maxResponseBytes' | 'clockSkewSeconds', IntegerRange>> = Object.freeze({
  timeoutMs: { min: 1, max: 60_000, unit: 'ms' },
  maxResponseBytes: { min: 1, max: 16 * 1024 * 1024, unit: 'bytes' },
  clockSkewSeconds: { min: 0, max: 86_400, unit: 'seconds' },
});

/** Options of one check (from the command line). */
export interface OcspCheckOptions {
  timeoutMs: number;
  nonce: boolean;
  ignoreCertificateExpiry: boolean;
  maxResponseBytes: number;
  clockSkewMs: number;
}

/**
 * The `--json` output: on success the `revocationStatus` object (SPEC 3) plus
 * `durationMs` and the validated `path` (subjects, leaf first); on a path or AIA failure,
 * `{ error: { code, reason } }`.
 */
export type OcspCheckJson =
  | (RevocationStatus & { durationMs: number; path: string[] })
  | { error: { code: string; reason: string }; path?: string[] };

/** Result of {@link runOcspCheck}: what to print and the exit code. */
export interface OcspCheckOutcome {
  exitCode: number;
  json: OcspCheckJson;
  text: string;
}

/**
 * Validates `presented` against `anchors` and checks revocation. Never throws for
 * certificate problems (they are outcomes). Uses `shared` when given (its cache then
 * carries over between calls); otherwise a new checker, closed afterwards.
 */
export async function runOcspCheck(
  presented: ParsedCertificate[], anchors: TrustAnchorSet, opts: OcspCheckOptions, shared?: RevocationChecker,
): Promise<OcspCheckOutcome> {
  const validation = validateClientChain(presented, anchors, { now: new Date(), ignoreCertificateExpiry: opts.ignoreCertificateExpiry });
  if (!validation.ok) {
    return {
      exitCode: OCSP_CHECK_EXIT.invalidPath,
      json: { error: { code: validation.code, reason: validation.reason } },
      text: `path validation failed: ${validation.code}\n  ${validation.reason}\n`,
    };
  }
  const path = validation.path.map((c) => formatDnRfc4514(c.subjectDer));
  const checker = shared ?? newChecker(opts);
  try {
    const result = await checker.check(validation.path);
    if (!result.ok) {
      return {
        exitCode: OCSP_CHECK_EXIT.invalidPath,
        json: { error: { code: result.code, reason: result.reason }, path },
        text: `${pathText(path)}revocation check refused: ${result.code}\n  ${result.reason}\n`,
      };
    }
    const status = result.revocationStatus;
    const all = [status.certificates.leaf, ...status.certificates.intermediates];
    const exitCode = all.some((c) => c.status === 'Revoked') ? OCSP_CHECK_EXIT.revoked
      : all.every((c) => c.status === 'Good') ? OCSP_CHECK_EXIT.good : OCSP_CHECK_EXIT.unknown;
    return {
      exitCode,
      json: { ...status, durationMs: round(result.durationMs), path },
      text: pathText(path) + statusText(status, path, result.durationMs),
    };
  } finally {
    if (!shared) await checker.close();
  }
}

function newChecker(opts: OcspCheckOptions): RevocationChecker {
  return new RevocationChecker({
    timeoutMs: opts.timeoutMs, nonce: opts.nonce, maxResponseBytes: opts.maxResponseBytes, clockSkewMs: opts.clockSkewMs,
  });
}

function pathText(path: string[]): string {
  const roles = path.map((_, i) => (i === 0 ? 'leaf' : i === path.length - 1 ? 'trust anchor' : `intermediate ${i}`));
  return `path (validated):\n${path.map((s, i) => `  ${roles[i]!.padEnd(15)} ${s}`).join('\n')}\n`;
}

function statusText(status: RevocationStatus, path: string[], durationMs: number): string {
  const rows: string[] = ['revocation (OCSP):'];
  const all: [string, CertificateRevocationStatus][] = [
    ['leaf', status.certificates.leaf],
    ...status.certificates.intermediates.map((c, i): [string, CertificateRevocationStatus] => [`intermediate ${i + 1}`, c]),
  ];
  for (const [role, c] of all) {
    rows.push(`  ${role.padEnd(15)} ${c.status.padEnd(8)} serial ${c.serialNumber}`);
    rows.push(`  ${''.padEnd(15)} responder ${c.responder} (source ${c.source}, ${round(c.durationMs)} ms)`);
    if (c.status === 'Revoked') rows.push(`  ${''.padEnd(15)} revoked at ${c.revocationTime ?? '?'}${c.revocationReason ? `, reason ${c.revocationReason}` : ''}`);
    if (c.errorType) rows.push(`  ${''.padEnd(15)} errorType: ${c.errorType}`);
    if (c.errorDetail) rows.push(`  ${''.padEnd(15)} errorDetail: ${c.errorDetail}`);
    if (c.thisUpdate) rows.push(`  ${''.padEnd(15)} thisUpdate ${c.thisUpdate}${c.nextUpdate ? `, nextUpdate ${c.nextUpdate}` : ', no nextUpdate'}`);
  }
  void path;
  rows.push(`chainValidity: ${status.chainValidity}  (${round(durationMs)} ms)`);
  return rows.join('\n') + '\n';
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

function loadTrustStore(file: string): TrustAnchorSet {
  const bytes = readInputFile(file, 'trust store');
  try {
    return parseTrustStoreBundle(bytes);
  } catch (err) {
    if (err instanceof TrustStoreBundleError) throw new CliUsageError(`trust store ${file}: ${err.message}`);
    throw err;
  }
}

/** `--demo`: a throwaway openssl PKI with one good and one revoked client, both checked. */
async function runDemo(opts: OcspCheckOptions, json: boolean): Promise<number> {
  const log = (s: string) => process.stderr.write(s);
  log('demo: creating a throwaway PKI with openssl and starting two `openssl ocsp` responders on 127.0.0.1…\n');
  let pki: OpensslDemoPki;
  try {
    pki = await OpensslDemoPki.create();
  } catch (err) {
    throw new CliUsageError(`--demo needs the openssl command (OpenSSL 3): ${(err as Error).message}`);
  }
  try {
    const good = await pki.issueLeaf('good-client');
    const revoked = await pki.issueLeaf('revoked-client');
    await pki.revoke(revoked);
    await pki.startResponders();
    const anchors = loadTrustStore(pki.trustStoreFile);
    const results: Record<string, OcspCheckJson> = {};
    let asExpected = true;
    // One checker for both clients: the shared intermediate is answered from the cache
    // the second time (source "cache").
    const checker = newChecker(opts);
    for (const [leaf, expected] of [[good, OCSP_CHECK_EXIT.good], [revoked, OCSP_CHECK_EXIT.revoked]] as const) {
      const chainFile = await pki.writeChain(leaf);
      const presented = readCertificateFile(chainFile, 'chain').map((c) => c.cert);
      const out = await runOcspCheck(presented, anchors, opts, checker);
      results[leaf.name] = out.json;
      asExpected &&= out.exitCode === expected;
      if (!json) {
        process.stdout.write(`\n== ${leaf.name}: portcullis ocsp check --chain ${chainFile} --trust-store ${pki.trustStoreFile}\n`);
        process.stdout.write(out.text);
        process.stdout.write(`exit code would be ${out.exitCode}\n`);
      }
    }
    await checker.close();
    if (json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    if (!asExpected) log('demo: results differ from what the demo expects (good → Good, revoked → Revoked)\n');
    return asExpected ? 0 : 2;
  } finally {
    await pki.close();
  }
}

/** Registers `portcullis ocsp …` commands: `ocsp check`. */
export function registerOcspCommands(program: Command): void {
  const ocsp = program.command('ocsp').description('OCSP revocation tools');
  ocsp
    .command('check')
    .description('validate a client chain against a trust store and check the leaf and intermediates over OCSP')
    .option('--chain <file>', 'PEM (or DER) file: the leaf first, then the intermediates the client would send, any order')
    .option('--trust-store <file>', 'PEM CA bundle of trust anchors (# comment lines allowed)')
    .option('--json', 'print the revocationStatus object (SPEC 3) with per-certificate extras as JSON')
    .option('--timeout-ms <n>', `total OCSP time budget for the whole chain, in ms (${rangeText(OCSP_CHECK_OPTION_RANGES.timeoutMs)})`, String(DEFAULT_REVOCATION_OPTIONS.timeoutMs))
    .option('--nonce', 'send a nonce (RFC 8954) and verify it when the responder echoes it')
    .option('--ignore-certificate-expiry', 'skip validity-date checks during path validation (signatures still checked)')
    .option('--max-response-bytes <n>', `largest accepted OCSP response body (${rangeText(OCSP_CHECK_OPTION_RANGES.maxResponseBytes)})`, String(DEFAULT_REVOCATION_OPTIONS.maxResponseBytes))
    .option('--clock-skew-seconds <n>', `tolerance for thisUpdate/nextUpdate (${rangeText(OCSP_CHECK_OPTION_RANGES.clockSkewSeconds)})`, String(DEFAULT_REVOCATION_OPTIONS.clockSkewMs / 1000))
    .option('--demo', 'run against a throwaway PKI with real `openssl ocsp` responders (one good and one revoked client)')
    .action(async (o: {
      chain?: string; trustStore?: string; json?: boolean; timeoutMs: string; nonce?: boolean;
      ignoreCertificateExpiry?: boolean; maxResponseBytes: string; clockSkewSeconds: string; demo?: boolean;
    }) => {
      const opts: OcspCheckOptions = {
        timeoutMs: parseIntegerOption(o.timeoutMs, '--timeout-ms', OCSP_CHECK_OPTION_RANGES.timeoutMs),
        nonce: o.nonce === true,
        ignoreCertificateExpiry: o.ignoreCertificateExpiry === true,
        maxResponseBytes: parseIntegerOption(o.maxResponseBytes, '--max-response-bytes', OCSP_CHECK_OPTION_RANGES.maxResponseBytes),
        clockSkewMs: parseIntegerOption(o.clockSkewSeconds, '--clock-skew-seconds', OCSP_CHECK_OPTION_RANGES.clockSkewSeconds) * 1000,
      };
      if (o.demo) {
        if (o.chain || o.trustStore) throw new CliUsageError('--demo makes its own chain and trust store; do not combine it with --chain/--trust-store');
        process.exitCode = await runDemo(opts, o.json === true);
        return;
      }
      if (!o.chain || !o.trustStore) throw new CliUsageError('ocsp check needs --chain FILE and --trust-store FILE (or --demo)');
      checkOneStdin({ '--chain': o.chain, '--trust-store': o.trustStore });
      const anchors = loadTrustStore(o.trustStore);
      const presented = readCertificateFile(o.chain, 'chain').map((c) => c.cert);
      const out = await runOcspCheck(presented, anchors, opts);
      process.stdout.write(o.json ? `${JSON.stringify(out.json, null, 2)}\n` : out.text);
      process.exitCode = out.exitCode;
    });
}

function rangeText(r: IntegerRange): string {
  return `${r.min}–${r.max} ${r.unit}`;
}
