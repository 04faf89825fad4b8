/**
 * The CLI's client of the admin REST API (`/v1`, src/admin). Where the API is:
 *
 * 1. `--admin-url URL` and `--token TOKEN` (flags win);
 * 2. `--config FILE`: `http://<admin.listen>` (a wildcard host becomes loopback) and
 *    `admin.token`, else the token file `<dataDir>/admin-token` written by `serve`;
 * 3. `PORTCULLIS_ADMIN_URL` and `PORTCULLIS_ADMIN_TOKEN`.
 *
 * A failed request prints `portcullis: <Code>: <message>` on stderr and sets the exit
 * code of the shared resource table ({@link resourceExitCode}: AccessDenied 77, not
 * found 2, conflicts incl. PreconditionFailed 3, limits 4, bad input 64, unreachable or
 * unavailable 69, anything else 1). A server that cannot be reached is reported naming
 * the URL (exit 69), and so is one that answers 404 without the API's error body (not
 * the admin API: `NotAdminApi`, exit 69). An invalid URL is a usage error naming where
 * it came from (exit 64). ETags are read quoted or unquoted and sent quoted in If-Match.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { request } from 'undici';
import { loadConfig } from '../config/index.js';
import { ConfigError } from '../errors.js';
import { CliUsageError, RESOURCE_EXIT, resourceExitCode } from './common.js';

/** Where the API commands write (tests replace these to capture output in-process). */
export const apiIo = {
  stdout(text: string): void {
    process.stdout.write(text);
  },
  stderr(text: string): void {
    process.stderr.write(text);
  },
};

/** Writes `text` to {@link apiIo}.stdout with a trailing newline. */
export function out(text: string): void {
  apiIo.stdout(text.endsWith('\n') ? text : `${text}\n`);
}

/** Pretty JSON on stdout. */
export function printJson(value: unknown): void {
  out(JSON.stringify(value, null, 2));
}

/** The admin-API options every API command takes. */
export interface AdminOptions {
  adminUrl?: string;
  token?: string;
  config?: string;
}

/** Where to send requests. */
export interface AdminTarget {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:9901`. */
  url: string;
  token: string;
}

/** Adds `--admin-url`, `--token` and `--config` to `cmd`. */
export function adminOptions(cmd: Command): Command {
  return cmd
    .option('--admin-url <url>', 'admin API base URL (default $PORTCULLIS_ADMIN_URL, or from --config)')
    .option('--token <token>', 'admin bearer token (default $PORTCULLIS_ADMIN_TOKEN, or from --config); visible to other local users in the process list, prefer the environment')
    .option('--config <file>', 'node config file: admin.listen and admin.token (or the token file <dataDir>/admin-token)');
}

/**
 * The options of a command that works only through the admin API: the admin options
 * plus `--json` (print the API's JSON response).
 */
export function apiCommandOptions(cmd: Command): Command {
  return adminOptions(cmd).option('--json', "print the API's JSON response");
}

/**
 * The options of a command that works on the local store or through the admin API
 * (kvs, function lifecycle): the admin options, `--data-dir` and `--json`.
 */
export function localOrApiCommandOptions(cmd: Command): Command {
  return adminOptions(cmd
    .option('--data-dir <dir>', 'local store: data directory holding portcullis.db (default, when no admin API is configured: $PORTCULLIS_DATA_DIR or ./data)'))
    .option('--json', 'print the CloudFront-shaped JSON response');
}

/**
 * `--if-match` of an API write that requires it (trust stores, distributions).
 * @throws CliUsageError naming the command that reads the current ETag (`portcullis RESOURCE get NAME`).
 */
export function requireIfMatchOption(ifMatch: string | undefined, resource: 'trust-store' | 'distribution', name: string, verb: string): string {
  if (ifMatch === undefined || ifMatch === '') {
    throw new CliUsageError(`${resource} ${verb} needs --if-match ETAG: get the current ETag with \`portcullis ${resource} get ${name}\``);
  }
  return ifMatch;
}

/** True when the options or the environment name an admin API (the kvs/function commands then use it). */
export function adminConfigured(opts: AdminOptions, env: NodeJS.ProcessEnv = process.env): boolean {
  return opts.adminUrl !== undefined || opts.config !== undefined || (env.PORTCULLIS_ADMIN_URL ?? '') !== '';
}

/** `host:port` of a listen address → a URL host a client can connect to (wildcards → loopback). */
function connectHost(listen: string): string {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(listen);
  if (!m) throw new CliUsageError(`admin.listen "${listen}" is not host:port`);
  const host = m[1] ?? m[2]!;
  if (host === '0.0.0.0') return `127.0.0.1:${m[3]}`;
  if (host === '::') return `[::1]:${m[3]}`;
  return m[1] !== undefined ? `[${host}]:${m[3]}` : `${host}:${m[3]}`;
}

/**
 * Resolves the API's URL and token (see the file comment for the order).
 * @throws CliUsageError when no URL or no token can be found, the URL is not http(s),
 *   or the config / token file cannot be read (the message names it).
 */
export async function resolveAdminTarget(opts: AdminOptions, env: NodeJS.ProcessEnv = process.env): Promise<AdminTarget> {
  let url = opts.adminUrl;
  let urlFrom = '--admin-url';
  let token = opts.token;
  if (opts.config !== undefined && (url === undefined || token === undefined)) {
    let config;
    try {
      config = await loadConfig(opts.config, env);
    } catch (err) {
      if (err instanceof ConfigError) throw new CliUsageError(err.message);
      throw err;
    }
    if (url === undefined) {
      url = `http://${connectHost(config.admin.listen)}`;
      urlFrom = `admin.listen of --config ${opts.config}`;
    }
    if (token === undefined) {
      if (config.admin.token !== undefined) {
        token = config.admin.token;
      } else {
        const file = join(config.dataDir, 'admin-token');
        try {
          token = (await readFile(file, 'utf8')).trim();
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          throw new CliUsageError(`--config ${opts.config} sets no admin.token and the token file ${file} cannot be read: ${code === 'ENOENT' ? 'no such file (has `portcullis serve` run with this config?)' : code === 'EACCES' ? 'permission denied' : (err as Error).message}`);
        }
      }
    }
  }
  if (url === undefined && env.PORTCULLIS_ADMIN_URL) {
    url = env.PORTCULLIS_ADMIN_URL;
    urlFrom = '$PORTCULLIS_ADMIN_URL';
  }
  token ??= env.PORTCULLIS_ADMIN_TOKEN || undefined;
  if (url === undefined) throw new CliUsageError('no admin API: give --admin-url URL or --config FILE, or set PORTCULLIS_ADMIN_URL');
  if (!/^https?:\/\/[^/]/i.test(url)) throw new CliUsageError(`${urlFrom}: admin URL "${url}" must start with http:// or https://`);
  try {
    new URL(url);
  } catch {
    throw new CliUsageError(`${urlFrom}: "${url}" is not a valid URL (check the host and the port)`);
  }
  if (token === undefined || token === '') throw new CliUsageError('no admin token: give --token, or --config FILE, or set PORTCULLIS_ADMIN_TOKEN');
  return { url: url.replace(/\/+$/, ''), token };
}

/** An error answer of the API (or a transport failure, code `Unreachable`). */
export class ApiRequestError extends Error {
  constructor(readonly code: string, message: string, readonly status: number) {
    super(message);
  }
}

/** A successful answer. */
export interface ApiResponse<T = unknown> {
  status: number;
  /** The `ETag` header without quotes or `W/` ({@link normalizeEtag}); undefined when absent. */
  etag: string | undefined;
  body: T;
}

/** Codes for error answers whose body is not the API's JSON (a proxy, another server). */
const STATUS_CODES: Record<number, string> = {
  400: 'InvalidArgument', 401: 'AccessDenied', 403: 'AccessDenied', 404: 'EntityNotFound', 409: 'EntityAlreadyExists',
  412: 'PreconditionFailed', 413: 'EntitySizeLimitExceeded', 500: 'Internal', 501: 'NotImplemented', 503: 'StoreUnavailable',
};

/**
 * An ETag as the CLI keeps and shows it: without the quotes and `W/` prefix of the HTTP
 * form (RFC 9110 `"ABC"`, `W/"ABC"`), so a quoted and an unquoted ETag compare equal.
 * Every ETag the client reads (headers and `ETag` body fields) goes through this.
 */
export function normalizeEtag(etag: string): string;
export function normalizeEtag(etag: string | undefined): string | undefined;
export function normalizeEtag(etag: string | undefined): string | undefined {
  if (etag === undefined) return undefined;
  const m = /^\s*(?:W\/)?"([^"]*)"\s*$/.exec(etag);
  return m ? m[1]! : etag.trim();
}

/** Normalizes the `ETag` field of an answer, and of each of its `Items`, in place. */
function normalizeBodyEtags(body: unknown): void {
  if (body === null || typeof body !== 'object') return;
  const b = body as { ETag?: unknown; Items?: unknown };
  if (typeof b.ETag === 'string') b.ETag = normalizeEtag(b.ETag);
  if (Array.isArray(b.Items)) {
    for (const item of b.Items as unknown[]) {
      if (item !== null && typeof item === 'object' && typeof (item as { ETag?: unknown }).ETag === 'string') {
        (item as { ETag: string }).ETag = normalizeEtag((item as { ETag: string }).ETag);
      }
    }
  }
}

/** The `If-Match` header for `etag` (quoted or not): always the quoted form, which the API accepts. */
export function ifMatchHeader(etag: string): string {
  return `"${normalizeEtag(etag)}"`;
}

/** A small client of one admin API. */
export class ApiClient {
  constructor(readonly target: AdminTarget) {}

  /**
   * Sends one request. `ifMatch` becomes the `If-Match` header (quoted).
   * @throws ApiRequestError with the API's code and message, or `Unreachable` naming the URL.
   */
  async call<T = unknown>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, options: { body?: unknown; ifMatch?: string; query?: Record<string, string | undefined> } = {}): Promise<ApiResponse<T>> {
    const q = Object.entries(options.query ?? {}).filter(([, v]) => v !== undefined) as [string, string][];
    const url = `${this.target.url}${path}${q.length > 0 ? `?${new URLSearchParams(q).toString()}` : ''}`;
    const headers: Record<string, string> = { authorization: `Bearer ${this.target.token}`, accept: 'application/json' };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (options.ifMatch !== undefined) headers['if-match'] = ifMatchHeader(options.ifMatch);
    let res;
    try {
      res = await request(url, {
        method, headers, ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
        headersTimeout: 120_000, bodyTimeout: 120_000,
      });
    } catch (err) {
      throw new ApiRequestError('Unreachable', `cannot reach the admin API at ${this.target.url}: ${transportReason(err)} (is \`portcullis serve\` running there? check --admin-url / $PORTCULLIS_ADMIN_URL)`, 0);
    }
    const text = await res.body.text();
    const etagHeader = res.headers.etag;
    const etag = typeof etagHeader === 'string' ? normalizeEtag(etagHeader) : undefined;
    let body: unknown = undefined;
    if (text !== '') {
      try {
        body = JSON.parse(text) as unknown;
      } catch {
        body = text;
      }
    }
    if (res.statusCode >= 400) {
      const e = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
      if (e && typeof e.code === 'string') throw new ApiRequestError(e.code, typeof e.message === 'string' ? e.message : '', res.statusCode);
      // The API answers every unknown path and missing resource with {"error":{"code":…}}:
      // a bare 404 comes from something else at that URL (another server, a proxy).
      if (res.statusCode === 404) {
        throw new ApiRequestError('NotAdminApi', `${this.target.url} does not look like the Portcullis admin API (HTTP 404 from ${url}); check --admin-url / $PORTCULLIS_ADMIN_URL`, res.statusCode);
      }
      throw new ApiRequestError(STATUS_CODES[res.statusCode] ?? 'Internal', `HTTP ${res.statusCode} from ${url}${typeof body === 'string' && body ? `: ${body.slice(0, 200)}` : ''}`, res.statusCode);
    }
    normalizeBodyEtags(body);
    return { status: res.statusCode, etag, body: body as T };
  }

  /** GET that answers undefined for EntityNotFound (404). */
  async find<T = unknown>(path: string, query?: Record<string, string | undefined>): Promise<ApiResponse<T> | undefined> {
    try {
      return await this.call<T>('GET', path, query ? { query } : {});
    } catch (err) {
      if (err instanceof ApiRequestError && err.code === 'EntityNotFound' && err.status === 404) return undefined;
      throw err;
    }
  }
}

function transportReason(err: unknown): string {
  const e = err as { code?: string; cause?: { code?: string }; message?: string };
  const code = e.code ?? e.cause?.code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND') return 'host not found';
  if (code === 'ECONNRESET') return 'connection reset';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'ETIMEDOUT') return 'timed out';
  return e.message ?? String(err);
}

/** Exit code of an API error code: the shared resource table; `Unreachable` and `NotAdminApi` are 69 (unavailable). */
export function apiExitCode(code: string): number {
  if (code === 'Unreachable' || code === 'NotAdminApi') return RESOURCE_EXIT.unavailable;
  return resourceExitCode(code);
}

/** A hint appended to some errors: where to get an ETag. */
export type EtagHint = string | undefined;

/**
 * Resolves the target, runs `fn` with a client, and turns an API error into
 * `portcullis: <Code>: <message>` on stderr and the exit code of {@link apiExitCode}.
 * `etagHint` (e.g. `portcullis trust-store get NAME`) is added to PreconditionFailed
 * and InvalidIfMatchVersion messages. A non-zero number returned by `fn` becomes the
 * exit code.
 */
export async function withApi(
  opts: AdminOptions, fn: (api: ApiClient) => Promise<number | void>, etagHint?: EtagHint, stderr: (t: string) => void = (t) => apiIo.stderr(t),
): Promise<void> {
  const api = new ApiClient(await resolveAdminTarget(opts));
  try {
    const code = await fn(api);
    if (typeof code === 'number' && code !== 0) process.exitCode = code;
  } catch (err) {
    if (!(err instanceof ApiRequestError)) throw err;
    let message = err.message;
    if (etagHint && (err.code === 'PreconditionFailed' || err.code === 'InvalidIfMatchVersion')) {
      message += ` (get the current ETag with \`${etagHint}\` and pass it as --if-match ETAG)`;
    }
    stderr(`portcullis: ${err.code}: ${message}\n`);
    process.exitCode = apiExitCode(err.code);
  }
}

/** Path segment for a resource name or id. */
export function seg(s: string): string {
  return encodeURIComponent(s);
}

/** Aligned `key  value` rows. */
export function rowsText(rows: [string, string | number | boolean][]): string {
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}

/** A table with a header row, columns padded to their widest cell. */
export function tableText(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}
