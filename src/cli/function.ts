/**
 * `portcullis function test` and `portcullis function matrix`: offline tools for
 * connection functions (SPEC section 4 "Test" and "Decision matrix"). No server, no
 * store, no network.
 *
 * Exit codes ({@link FUNCTION_EXIT}): `test` 0 allow, 1 deny (explicit or implicit),
 * 2 the function failed (threw, CPU or memory limit, never settled); `matrix` 0 no row
 * admits a revoked certificate, 1 at least one does; both 64 usage (bad arguments,
 * unreadable or invalid input file, code over the size limit or that does not compile —
 * the message gives line and column).
 */
import type { Command } from 'commander';
import { FunctionCompileError, FunctionSizeLimitExceededError } from '../errors.js';
import {
  buildConnection, connectionJson, matrixKvsData, runDecisionMatrixWith, syntheticRevocationStatus, SandboxWorker,
  SAMPLE_CHAIN_PEM, type IsolatedFunction, type FunctionResult, type MatrixRow,
} from '../functions/index.js';
import { parseKvsImport, resolveKvsLimits } from '../kvs/index.js';
import { chainView, ParsedCertificate, splitCertificates, type ChainView } from '../pki/index.js';
import type { RevocationStatus } from '../revocation/index.js';
import { checkOneStdin, CliUsageError, readCertificateFile, readInputFile, shownFileName } from './common.js';
import { registerFunctionLifecycleCommands } from './function-lifecycle.js';

/** Output sink of the `function` commands (tests replace it; the test runner owns process.stdout). */
export const functionIo = { stdout: (text: string): void => { process.stdout.write(text); } };

/** Exit codes of the `function` commands. */
export const FUNCTION_EXIT = { allow: 0, deny: 1, error: 2, revokedAllowed: 1, usage: 64 } as const;

/**
 * Compiles the function in a sandbox worker (under its watchdog: top-level code or a
 * handler that loops in C fails with a message naming the timeout instead of hanging).
 */
async function loadFunction(sandbox: SandboxWorker, file: string, kvs: Record<string, ReadonlyMap<string, string>>): Promise<IsolatedFunction> {
  const code = readInputFile(file, 'function').toString('utf8');
  try {
    return await sandbox.load(code, { name: shownFileName(file) }, kvs);
  } catch (err) {
    if (err instanceof FunctionCompileError || err instanceof FunctionSizeLimitExceededError) throw new CliUsageError(err.message);
    throw err;
  }
}

function readJson(file: string, what: string): unknown {
  const text = readInputFile(file, what).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new CliUsageError(`${what} ${shownFileName(file)} is not valid JSON: ${(err as Error).message}`);
  }
}

function readKvs(file: string | undefined): Map<string, string> | undefined {
  if (file === undefined) return undefined;
  const parsed = parseKvsImport(readInputFile(file, 'KVS data'), resolveKvsLimits());
  if (!parsed.ok) throw new CliUsageError(`KVS data ${shownFileName(file)}: ${parsed.reason}`);
  return new Map(parsed.items.map((i) => [i.key, i.value]));
}

function readChain(file: string): ChainView {
  const certs = readCertificateFile(file, 'chain');
  if (certs.length === 0) throw new CliUsageError(`chain ${shownFileName(file)} holds no certificate`);
  return chainView(certs.map((c) => c.cert));
}

/** The built-in sample chain (see functions/sample-chain.ts) as a chain view. */
export function sampleChain(): ChainView {
  return chainView(splitCertificates(Buffer.from(SAMPLE_CHAIN_PEM)).map((b) => ParsedCertificate.fromDer(b.der, b.where)));
}

interface TestOptions {
  cert?: string;
  connection?: string;
  clientIp?: string;
  kvs?: string;
  revocationStatus?: string;
  json?: boolean;
}

function formatResult(r: FunctionResult): string {
  const lines = [
    `decision            ${r.decision}${r.implicit ? ' (implicit)' : ''}`,
    `customData          ${r.customData ?? '-'}`,
    `computeUtilization  ${r.computeUtilization}%`,
  ];
  if (r.error !== undefined) lines.push(`error               ${r.error}`);
  lines.push(`logs                ${r.logs.length === 0 ? '-' : ''}`);
  for (const l of r.logs) lines.push(`  ${l}`);
  return `${lines.join('\n')}\n`;
}

async function runTest(file: string, opts: TestOptions): Promise<number> {
  checkOneStdin({ FILE: file, '--cert': opts.cert, '--connection': opts.connection, '--kvs': opts.kvs, '--revocation-status': opts.revocationStatus });
  if ((opts.cert === undefined) === (opts.connection === undefined)) {
    throw new CliUsageError('give exactly one of --cert CHAIN.pem and --connection FILE.json');
  }
  let json: string;
  if (opts.connection !== undefined) {
    if (opts.clientIp !== undefined || opts.revocationStatus !== undefined) {
      throw new CliUsageError('--client-ip and --revocation-status apply to --cert; a --connection file holds the whole connection object');
    }
    const conn = readJson(opts.connection, 'connection');
    if (conn === null || typeof conn !== 'object' || Array.isArray(conn)) {
      throw new CliUsageError(`connection ${shownFileName(opts.connection)} must hold a JSON object (the SPEC section 4 connection object)`);
    }
    json = JSON.stringify(conn);
  } else {
    const chain = readChain(opts.cert as string);
    let revocationStatus: RevocationStatus;
    if (opts.revocationStatus !== undefined) {
      const rs = readJson(opts.revocationStatus, 'revocation status');
      if (rs === null || typeof rs !== 'object' || Array.isArray(rs)) {
        throw new CliUsageError(`revocation status ${shownFileName(opts.revocationStatus)} must hold a JSON object`);
      }
      revocationStatus = rs as RevocationStatus;
    } else {
      revocationStatus = syntheticRevocationStatus(chain, 'Good', 'Good');
    }
    json = connectionJson(buildConnection({
      clientIp: opts.clientIp ?? '203.0.113.10', clientPort: 50000, endpoint: 'test.example.test', distributionId: 'test',
      certificates: chain, revocationStatus,
    }));
  }
  const kvsMap = readKvs(opts.kvs);
  const sandbox = new SandboxWorker();
  let r: FunctionResult;
  try {
    const instance = await loadFunction(sandbox, file, kvsMap ? { kvs: kvsMap } : {});
    r = await instance.invoke(json, kvsMap ? { kvs: 'kvs' } : {});
  } finally {
    await sandbox.close();
  }
  if (opts.json) {
    const out = {
      decision: r.decision, implicit: r.implicit, customData: r.customData ?? null, logs: r.logs,
      computeUtilization: r.computeUtilization, error: r.error ?? null,
    };
    functionIo.stdout(`${JSON.stringify(out, null, 2)}\n`);
  } else {
    functionIo.stdout(formatResult(r));
  }
  if (r.error !== undefined) return FUNCTION_EXIT.error;
  return r.decision === 'allow' ? FUNCTION_EXIT.allow : FUNCTION_EXIT.deny;
}

function formatMatrix(rows: MatrixRow[]): string {
  const header = ['leaf', 'intermediate', 'kvs', 'clientIp', 'decision', 'customData / error', ''];
  const table = rows.map((r) => [
    r.leafStatus, r.intermediateStatus, r.kvs, r.clientIp, `${r.decision}${r.implicit ? ' (implicit)' : ''}`,
    r.error !== undefined ? `error: ${r.error}` : r.customData ?? '',
    r.revokedAllowed ? '<-- REVOKED ALLOWED' : '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => (row[i] ?? '').length)));
  const fmt = (row: string[]): string => row.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  const flagged = rows.filter((r) => r.revokedAllowed).length;
  const summary = flagged === 0
    ? `${rows.length} rows; no row admits a revoked certificate\n`
    : `${rows.length} rows; ${flagged} admit a revoked certificate (flagged)\n`;
  return `${fmt(header)}\n${table.map(fmt).join('\n')}\n\n${summary}`;
}

async function runMatrix(file: string, opts: { kvs?: string; cert?: string; json?: boolean }): Promise<number> {
  checkOneStdin({ FILE: file, '--kvs': opts.kvs, '--cert': opts.cert });
  const kvsData = readKvs(opts.kvs);
  const chain = opts.cert !== undefined ? readChain(opts.cert) : sampleChain();
  const sandbox = new SandboxWorker();
  let rows: MatrixRow[];
  try {
    const instance = await loadFunction(sandbox, file, matrixKvsData({ chain, kvsData }));
    rows = await runDecisionMatrixWith((conn, kvs, now) => instance.invoke(conn, { kvs, now }), { chain, kvsData });
  } finally {
    await sandbox.close();
  }
  const flagged = rows.filter((r) => r.revokedAllowed).length;
  if (opts.json) {
    functionIo.stdout(`${JSON.stringify({ rows, revokedAllowed: flagged }, null, 2)}\n`);
  } else {
    functionIo.stdout(formatMatrix(rows));
  }
  return flagged > 0 ? FUNCTION_EXIT.revokedAllowed : 0;
}

/** Registers `function test` and `function matrix` on `program`. */
export function registerFunctionCommands(program: Command): void {
  const fn = program.command('function').description('connection functions (SPEC section 4): offline test and matrix, lifecycle on the local store');
  fn
    .command('test')
    .description('run a connection function once against a certificate chain or a full connection object')
    .argument('<file>', 'the function code (.js), or - for standard input')
    .option('--cert <file>', 'client chain, PEM or DER, leaf first ("-" reads standard input)')
    .option('--connection <file>', 'a full SPEC section 4 connection object (JSON) instead of --cert')
    .option('--client-ip <ip>', 'connection.clientIp (default 203.0.113.10)')
    .option('--kvs <file>', 'associated KVS content, a KVS import document {"data":[{"key","value"}]}')
    .option('--revocation-status <file>', 'revocationStatus override (JSON); default: every certificate Good')
    .option('--json', 'print {decision, implicit, customData, logs, computeUtilization, error}')
    .action(async (file: string, opts: TestOptions) => {
      process.exitCode = await runTest(file, opts);
    });
  fn
    .command('matrix')
    .description('run a function over leaf × intermediate OCSP status × KVS hit/miss × client IPs and flag revoked chains it admits')
    .argument('<file>', 'the function code (.js), or - for standard input')
    .option('--kvs <file>', 'base KVS content (KVS import document); "hit" rows add the leaf serial key, "miss" rows remove it')
    .option('--cert <file>', 'client chain to use instead of the built-in sample chain (CN=device-0042)')
    .option('--json', 'print {rows, revokedAllowed} as JSON')
    .action(async (file: string, opts: { kvs?: string; cert?: string; json?: boolean }) => {
      process.exitCode = await runMatrix(file, opts);
    });
  registerFunctionLifecycleCommands(fn);
}
