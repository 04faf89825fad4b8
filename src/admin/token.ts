/**
 * The admin bearer token (control-plane issue): from config or the environment, else
 * generated once into the data directory with mode 0600 and reused on later starts.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** File name of the generated token inside the data directory. */
export const ADMIN_TOKEN_FILE = 'admin-token';

/** Where the token came from, for the start-up log line. */
export interface AdminTokenSource {
  token: string;
  /** `config` when given, `generated` when written now, `file` when read from a previous start. */
  origin: 'config' | 'generated' | 'file';
  /** The token file when origin is `generated` or `file`. */
  file?: string;
  /** Set when the file was readable by others: its previous mode (it is now 0600). */
  repairedMode?: number;
}

/**
 * Returns the configured token, or the one stored in `<dataDir>/admin-token` (its mode
 * is set back to 0600 when others could read it), or a new 32-byte random token
 * (base64url) written there with mode 0600.
 * @throws Error when the data directory or token file cannot be read or written, or the
 *   file holds no usable token (the message names the path).
 */
export async function resolveAdminToken(configured: string | undefined, dataDir: string): Promise<AdminTokenSource> {
  if (configured !== undefined && configured !== '') return { token: configured, origin: 'config' };
  const file = join(dataDir, ADMIN_TOKEN_FILE);
  let existing: string | undefined;
  try {
    existing = (await readFile(file, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read admin token file ${file}: ${(err as Error).message}`);
  }
  if (existing !== undefined) {
    // Never silently replace an operator's file: a token that cannot be used is an error.
    if (!/^[\x21-\x7e]{16,}$/.test(existing)) {
      throw new Error(`admin token file ${file} does not hold a usable token (at least 16 printable ASCII characters, no spaces); fix it, or delete it to have a new one generated`);
    }
    // Anyone who can read the file can administer the node: keep it 0600.
    const mode = (await stat(file)).mode & 0o777;
    if (mode & 0o077) await chmod(file, 0o600);
    return { token: existing, origin: 'file', file, ...(mode & 0o077 ? { repairedMode: mode } : {}) };
  }
  const token = randomBytes(32).toString('base64url');
  await mkdir(dataDir, { recursive: true });
  await writeFile(file, `${token}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  return { token, origin: 'generated', file };
}

/**
 * Constant-time check of an `Authorization` header value against `Bearer <token>`.
 * Returns false for a missing or malformed header.
 */
export function bearerMatches(header: string | undefined, token: string): boolean {
  if (typeof header !== 'string') return false;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) return false;
  const a = Buffer.from(m[1]!);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}
