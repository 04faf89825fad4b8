/** Shared CLI helpers: exit codes, usage errors, reading certificate files. */
import { readFileSync } from 'node:fs';
import { ParsedCertificate, splitCertificates } from '../pki/index.js';
import { CertificateParseError } from '../errors.js';

/** Exit code for usage errors (sysexits EX_USAGE). */
export const EXIT_USAGE = 64;

/** Thrown by a command for a bad argument or unreadable input file; exits with {@link EXIT_USAGE}. */
export class CliUsageError extends Error {}

/** Parses a positive integer option value, or throws CliUsageError naming the option. */
export function parsePositiveInt(value: string, option: string): number {
  if (!/^\d+$/.test(value) || Number(value) <= 0) throw new CliUsageError(`${option} must be a positive integer, got "${value}"`);
  return Number(value);
}


/** One certificate read from a file, with the block it came from (`certificate #2 (line 14)`). */
export interface CertificateFromFile {
  where: string;
  cert: ParsedCertificate;
}

/** Reads a file (`-` = standard input) as bytes, or throws CliUsageError naming it. */
export function readInputFile(file: string, what = 'file'): Buffer {
  try {
    return readFileSync(file === '-' ? 0 : file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new CliUsageError(`cannot read ${what} ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  }
}

/**
 * Reads every certificate of a PEM (several blocks, `#` comments) or DER file.
 * @throws CliUsageError naming the file and the offending block.
 */
export function readCertificateFile(file: string, what = 'certificate file'): CertificateFromFile[] {
  const input = readInputFile(file, what);
  const shownName = file === '-' ? '<stdin>' : file;
  try {
    return splitCertificates(input).map((block) => ({ where: block.where, cert: ParsedCertificate.fromDer(block.der, block.where) }));
  } catch (err) {
    if (err instanceof CertificateParseError) throw new CliUsageError(`${what} ${shownName}: ${err.message}`);
    throw err;
  }
}
