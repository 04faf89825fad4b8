/** Shared CLI helpers: exit codes, usage errors, option parsing, reading certificate files. */
import { readFileSync } from 'node:fs';
import { ParsedCertificate, splitCertificates } from '../pki/index.js';
import { CertificateParseError, PortcullisError } from '../errors.js';
import { openStore, type Store } from '../store/index.js';

/** Exit code for usage errors (sysexits EX_USAGE). */
export const EXIT_USAGE = 64;

/** Thrown by a command for a bad argument or unreadable input file; exits with {@link EXIT_USAGE}. */
export class CliUsageError extends Error {}

/** Inclusive range of a numeric option, with the unit shown in messages (`ms`, `bytes`, `seconds`). */
export interface IntegerRange {
  min: number;
  max: number;
  unit: string;
}

/**
 * Parses the value of an integer option (decimal digits only: no sign, exponent, fraction
 * or whitespace) and checks it against `range`. Every numeric option goes through this,
 * so none can reach a timer, a buffer size or a date computation out of range (e.g.
 * `setTimeout` silently turns a delay above 2^31−1 ms into 1 ms).
 * @throws CliUsageError naming the option, the allowed range and the value given.
 */
export function parseIntegerOption(value: string, option: string, range: IntegerRange): number {
  const allowed = `an integer from ${range.min} to ${range.max} (${range.unit})`;
  if (!/^\d+$/.test(value)) throw new CliUsageError(`${option} must be ${allowed}, got "${value}"`);
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < range.min || n > range.max) {
    throw new CliUsageError(`${option} ${value} is out of range: it must be ${allowed}`);
  }
  return n;
}

/** One certificate read from a file, with the block it came from (`certificate #2 (line 14)`). */
export interface CertificateFromFile {
  where: string;
  cert: ParsedCertificate;
}

/** `<stdin>` for `-`, else the file name as given: how messages name an input. */
export function shownFileName(file: string): string {
  return file === '-' ? '<stdin>' : file;
}

/** Prefix of messages about `file`: `chain client.pem` with a label, `client.pem` without. */
function named(what: string, file: string): string {
  return what ? `${what} ${shownFileName(file)}` : shownFileName(file);
}

/**
 * Reads a file (`-` = standard input) as bytes, or throws CliUsageError naming it
 * (`cannot read chain x.pem: no such file`). `what` labels the input in the message;
 * pass `''` when the command has a single input and the file name is enough.
 */
export function readInputFile(file: string, what = 'file'): Buffer {
  try {
    return readFileSync(file === '-' ? 0 : file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const reason = e.code === 'ENOENT' ? 'no such file'
      : e.code === 'EISDIR' ? 'is a directory'
        : e.code === 'EACCES' ? 'permission denied'
          : e.message;
    throw new CliUsageError(`cannot read ${named(what, file)}: ${reason}`);
  }
}

/**
 * Reads every certificate of a PEM (several blocks, `#` comments) or DER file.
 * Certificates are returned as parsed, including any whose
 * {@link ParsedCertificate.encodingProblem} is set: path validation reports those as
 * `ClientCertInvalid`; commands that only display certificates must check it.
 * @param what labels the input in messages (`''`: the file name alone).
 * @throws CliUsageError naming the file and the offending block.
 */
export function readCertificateFile(file: string, what = 'certificate file'): CertificateFromFile[] {
  const input = readInputFile(file, what);
  try {
    return splitCertificates(input).map((block) => ({ where: block.where, cert: ParsedCertificate.fromDer(block.der, block.where) }));
  } catch (err) {
    if (err instanceof CertificateParseError) throw new CliUsageError(`${named(what, file)}: ${err.message}`);
    throw err;
  }
}

/**
 * Checks that at most one of `inputs` (option name → file) is standard input (`-`):
 * there is only one standard input to read.
 * @throws CliUsageError naming the options that ask for it.
 */
export function checkOneStdin(inputs: Record<string, string | undefined>): void {
  const stdin = Object.entries(inputs).filter(([, f]) => f === '-').map(([o]) => o);
  if (stdin.length > 1) {
    throw new CliUsageError(`${stdin.join(' and ')} both read standard input ("-"); only one input can be standard input`);
  }
}

/**
 * Exit codes of the commands that act on stored resources (`kvs …`, `function
 * create|update|publish|…`, `trust-store …`, `distribution …`, `apply`), on the local
 * store or through the admin API: one table for every resource, derived from the error
 * catalogue's stable codes (src/errors.ts).
 */
export const RESOURCE_EXIT = {
  ok: 0,
  error: 1,
  notFound: 2,
  conflict: 3,
  limit: 4,
  refused: 5,
  usage: EXIT_USAGE,
  unavailable: 69,
  /** The admin API refused the bearer token (sysexits EX_NOPERM). */
  denied: 77,
} as const;

/**
 * Maps a catalogue error code to a {@link RESOURCE_EXIT} code: not found 2; conflicts
 * (stale ETag, name taken, alias taken (`CNAMEAlreadyExists`), not READY, in use) 3; size limits and quotas 4; refused
 * content (failed import, CRL that does not verify) 5; bad input (arguments, If-Match,
 * function code that does not compile) 64; store unavailable, or the admin API
 * unreachable or not an admin API at all (`Unreachable`, `NotAdminApi`: the CLI's own
 * codes) 69; admin token refused
 * (`AccessDenied`) 77; anything else 1.
 */
export function resourceExitCode(code: string): number {
  switch (code) {
    case 'EntityNotFound': return RESOURCE_EXIT.notFound;
    case 'PreconditionFailed':
    case 'EntityAlreadyExists':
    case 'CNAMEAlreadyExists':
    case 'EntityNotReady':
    case 'CannotDeleteEntityWhileInUse': return RESOURCE_EXIT.conflict;
    case 'EntitySizeLimitExceeded':
    case 'ServiceQuotaExceeded':
    case 'FunctionSizeLimitExceeded': return RESOURCE_EXIT.limit;
    case 'InvalidCrl':
    case 'ImportFailed': return RESOURCE_EXIT.refused;
    case 'InvalidArgument':
    case 'InvalidIfMatchVersion':
    case 'InvalidFunctionCode': return RESOURCE_EXIT.usage;
    case 'StoreUnavailable':
    case 'Unreachable':
    case 'NotAdminApi': return RESOURCE_EXIT.unavailable;
    case 'AccessDenied': return RESOURCE_EXIT.denied;
    default: return RESOURCE_EXIT.error;
  }
}

/**
 * Runs a resource command on the local store of `dataDir`: opens it, runs `fn`, closes
 * it, and turns a catalogue error into `portcullis: <Code>: <message>` on `stderr` and
 * the {@link resourceExitCode} as the process exit code. A non-zero number returned by
 * `fn` becomes the exit code. Other errors propagate.
 * @throws CliUsageError when `dataDir` is empty.
 */
export async function withLocalStore(
  dataDir: string, stderr: (text: string) => void, fn: (store: Store) => Promise<number | void>,
): Promise<void> {
  if (dataDir.trim() === '') throw new CliUsageError('--data-dir must not be empty');
  let store: Store | undefined;
  try {
    store = await openStore({ kind: 'sqlite', dataDir });
    const code = await fn(store);
    if (typeof code === 'number' && code !== 0) process.exitCode = code;
  } catch (err) {
    if (err instanceof PortcullisError) {
      stderr(`portcullis: ${err.code}: ${err.message}\n`);
      process.exitCode = resourceExitCode(err.code);
      return;
    }
    throw err;
  } finally {
    await store?.close();
  }
}
