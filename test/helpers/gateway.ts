/**
 * Test helper: runs `portcullis serve --config FILE` as a child process (the real CLI,
 * through tsx, cwd = the repository root) and drives it from the outside — admin
 * readiness, connection-log lines (SPEC section 7), the CLI on the same data
 * directory, curl and `openssl s_client` clients.
 *
 * ```ts
 * const gw = await startGateway({ dir, config: { resources: { … } } });
 * const r = await curlThrough({ host: 'api.test', port, cacert, cert, key });
 * const line = await gw.waitForLog((l) => l.tlsSni === 'api.test', 5000, mark);
 * await gw.stop();   // always, in after()
 * ```
 *
 * The config is normalised before it is written: `workers: 1`, an admin listener on a
 * free 127.0.0.1 port with a generated token, and a connection-log file in `dir` are
 * filled in unless the config sets them (a config with `connectionLog: stdout` is read
 * from the child's stdout instead).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { freePort } from '../../src/demo/index.js';

/** The repository root (where `src/cli/bin.ts` lives). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** One parsed connection-log line. */
export type LogLine = Record<string, unknown>;

/** Options of {@link startGateway}. */
export interface StartGatewayOptions {
  /** Directory for the config file, the connection log and (by default) the data directory. */
  dir: string;
  /** The node config as YAML text (parsed, normalised, written as JSON). */
  configYaml?: string;
  /** The node config as an object (same keys as examples/portcullis.yaml). */
  config?: Record<string, unknown>;
  /** Extra environment for the child. */
  env?: NodeJS.ProcessEnv;
  /** How long to wait for `GET /readyz` → 200 (default 90 s: start-up compiles every function a few times — validate, apply, load — which is slow on a loaded 2-core machine). */
  readyTimeoutMs?: number;
}

/** A running `portcullis serve`. */
export interface RunningGateway {
  /** `http://127.0.0.1:PORT` of the admin listener. */
  adminUrl: string;
  /** Bearer token of the admin listener. */
  token: string;
  /** Absolute path of the written config (JSON). */
  configFile: string;
  /** Absolute data directory (pass to the CLI as `--data-dir`). */
  dataDir: string;
  /** The child process. */
  process: ChildProcess;
  /** Application log (stderr) captured so far. */
  stderr(): string;
  /** Every connection-log line written so far, parsed (lines that are not JSON are skipped). */
  connectionLogLines(): LogLine[];
  /**
   * Waits for a connection-log line matching `predicate` at index `from` or later
   * (polling every 50 ms). Rejects after `timeoutMs` with the lines seen since `from`.
   */
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs?: number, from?: number): Promise<LogLine>;
  /** `GET` an admin path with the bearer token (or without it: `auth: false`). */
  admin(path: string, auth?: boolean): Promise<{ status: number; body: string }>;
  /** Runs `portcullis ARGS… --data-dir DATADIR` (the CLI on the same store). */
  cli(args: string[], timeoutMs?: number): Promise<CliResult>;
  /** SIGTERM, then SIGKILL after 5 s; resolves when the process has exited. Idempotent. */
  stop(): Promise<void>;
}

/** Result of a CLI run. */
export interface CliResult { code: number; stdout: string; stderr: string }

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs the portcullis CLI (tsx) from the repository root. */
export function runCli(args: string[], timeoutMs = 30_000): Promise<CliResult> {
  return new Promise((resolveRun) => {
    execFile(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', ...args], { cwd: REPO_ROOT, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
        resolveRun({ code, stdout, stderr });
      });
  });
}

function parseLines(text: string): LogLine[] {
  const out: LogLine[] = [];
  for (const l of text.split('\n')) {
    const s = l.trim();
    if (!s.startsWith('{')) continue;
    try {
      out.push(JSON.parse(s) as LogLine);
    } catch {
      // a partially written last line: picked up on the next read
    }
  }
  return out;
}

/**
 * Writes the config and starts `portcullis serve --config FILE`; resolves once
 * `GET /readyz` answers 200 with the token.
 * @throws Error with the captured stderr when the process exits or is not ready in time.
 */
export async function startGateway(options: StartGatewayOptions): Promise<RunningGateway> {
  const dir = resolve(options.dir);
  const tree: Record<string, unknown> = structuredClone(
    options.config ?? (options.configYaml !== undefined ? (parseYaml(options.configYaml) as Record<string, unknown>) : {}),
  );
  tree.workers ??= 1;
  tree.dataDir ??= join(dir, 'data');
  const admin = { ...((tree.admin as Record<string, unknown> | undefined) ?? {}) };
  admin.listen ??= `127.0.0.1:${await freePort()}`;
  admin.token ??= `test-${randomBytes(16).toString('hex')}`;
  tree.admin = admin;
  const logging = { ...((tree.logging as Record<string, unknown> | undefined) ?? {}) };
  logging.level ??= 'info';
  logging.connectionLog ??= join(dir, 'connections.log');
  tree.logging = logging;
  const configFile = join(dir, 'portcullis.json');
  await writeFile(configFile, `${JSON.stringify(tree, null, 2)}\n`);

  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(dir, p));
  const dataDir = abs(String(tree.dataDir));
  const logTarget = String(logging.connectionLog);
  const logFile = logTarget === 'stdout' ? undefined : abs(logTarget);
  const adminUrl = `http://${String(admin.listen)}`;
  const token = String(admin.token);

  let stdout = '';
  let stderr = '';
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', 'serve', '--config', configFile], {
    cwd: REPO_ROOT, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exitPromise = new Promise<void>((r) => child.once('exit', (code, signal) => { exited = { code, signal }; r(); }));

  const adminGet = async (path: string, auth = true): Promise<{ status: number; body: string }> => {
    const res = await fetch(`${adminUrl}${path}`, { headers: auth ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(5000) });
    return { status: res.status, body: await res.text() };
  };

  const stop = async (): Promise<void> => {
    if (exited) return;
    child.kill('SIGTERM');
    const killer = setTimeout(() => { if (!exited) child.kill('SIGKILL'); }, 5000);
    await exitPromise;
    clearTimeout(killer);
  };

  const readyTimeout = options.readyTimeoutMs ?? 90_000;
  const deadline = Date.now() + readyTimeout;
  let last = 'no answer yet';
  for (;;) {
    if (exited) {
      throw new Error(`portcullis serve exited (${exited.signal ?? exited.code}) before it was ready; stderr:\n${stderr}`);
    }
    try {
      const r = await adminGet('/readyz');
      if (r.status === 200) break;
      last = `${r.status} ${r.body}`;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`portcullis serve was not ready within ${readyTimeout} ms (last /readyz: ${last}); stderr:\n${stderr}`);
    }
    await sleep(100);
  }

  const connectionLogLines = (): LogLine[] => {
    if (!logFile) return parseLines(stdout);
    if (!existsSync(logFile)) return [];
    return parseLines(readFileSync(logFile, 'utf8'));
  };

  return {
    adminUrl, token, configFile, dataDir, process: child,
    stderr: () => stderr,
    connectionLogLines,
    async waitForLog(predicate, timeoutMs = 5000, from = 0) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const lines = connectionLogLines().slice(from);
        const hit = lines.find(predicate);
        if (hit) return hit;
        if (Date.now() > end) {
          throw new Error(`no matching connection-log line within ${timeoutMs} ms; lines since #${from}:\n${lines.map((l) => JSON.stringify(l)).join('\n') || '(none)'}`);
        }
        await sleep(50);
      }
    },
    admin: adminGet,
    cli: (args, timeoutMs) => runCli([...args, '--data-dir', dataDir], timeoutMs),
    stop,
  };
}

/** Options of {@link curlThrough}. */
export interface CurlOptions {
  /** SNI / Host name; resolved to 127.0.0.1 with `--resolve`. */
  host: string;
  port: number;
  /** CA file to verify the gateway's server certificate. */
  cacert: string;
  /** Client certificate chain (PEM, leaf first) and key; omit to present none. */
  cert?: string;
  key?: string;
  path?: string;
  http2?: boolean;
  /** Extra request headers, `Name: value`. */
  headers?: string[];
  extraArgs?: string[];
  /** curl `--max-time`, seconds (default 10). */
  maxTimeSeconds?: number;
}

/** What curl reported. */
export interface CurlResult {
  /** curl's exit code (0 = a response was received). */
  exitCode: number;
  /** HTTP status (0 when there was no response). */
  status: number;
  /** `1.1`, `2`, or `0`. */
  httpVersion: string;
  body: string;
  stderr: string;
}

/** One HTTPS request through the gateway with curl (`-sS`, `--resolve host:port:127.0.0.1`). */
export function curlThrough(o: CurlOptions): Promise<CurlResult> {
  const args = [
    '-sS', '--max-time', String(o.maxTimeSeconds ?? 10), '--cacert', o.cacert,
    '--resolve', `${o.host}:${o.port}:127.0.0.1`, '-w', '\n%{http_code} %{http_version}',
    o.http2 ? '--http2' : '--http1.1',
  ];
  if (o.cert) args.push('--cert', o.cert);
  if (o.key) args.push('--key', o.key);
  for (const h of o.headers ?? []) args.push('-H', h);
  args.push(...(o.extraArgs ?? []), `https://${o.host}:${o.port}${o.path ?? '/'}`);
  return new Promise((resolveCurl) => {
    execFile('curl', args, { maxBuffer: 16 * 1024 * 1024, timeout: ((o.maxTimeSeconds ?? 10) + 5) * 1000 }, (err, stdout, stderr) => {
      const i = stdout.lastIndexOf('\n');
      const [status, httpVersion] = stdout.slice(i + 1).split(' ');
      const exitCode = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolveCurl({ exitCode, status: Number(status) || 0, httpVersion: httpVersion ?? '0', body: i >= 0 ? stdout.slice(0, i) : stdout, stderr });
    });
  });
}

/** Options of {@link sClient}. */
export interface SClientOptions {
  host: string;
  port: number;
  cafile: string;
  /** Leaf certificate file (s_client sends only the FIRST certificate of this file). */
  cert?: string;
  key?: string;
  /** Intermediates to send after the leaf (`-cert_chain`): without it s_client presents the leaf alone. */
  certChain?: string;
  /** Extra s_client arguments (`-reconnect`, `-sess_out F`, `-sess_in F`, `-tls1_2`, …). */
  args?: string[];
  /** Written to stdin (default: an HTTP/1.1 GET with `Connection: close`). */
  input?: string;
  /** Pass `-ign_eof` (default true: wait for the server to close). false: s_client closes at the end of its input. */
  ignEof?: boolean;
  timeoutMs?: number;
}

/** Output of `openssl s_client`. */
export interface SClientResult { code: number; stdout: string; stderr: string; reused: boolean; http200: boolean }

/**
 * Runs `openssl s_client -connect 127.0.0.1:PORT -servername HOST -ign_eof` with an
 * HTTP request on stdin; `reused` when the output says "Reused", `http200` when an
 * `HTTP/1.1 200` status line came back (anywhere: s_client prints the response right
 * after the session-ticket hex dump, without a newline).
 *
 * Note (OpenSSL 3.0): `-reconnect` over TLS 1.3 never resumes, even against a server
 * that resumes (it reconnects before the post-handshake ticket arrives); use it with
 * `-tls1_2`, and `-sess_out`/`-sess_in` for TLS 1.3.
 */
export function sClient(o: SClientOptions): Promise<SClientResult> {
  const args = ['s_client', '-connect', `127.0.0.1:${o.port}`, '-servername', o.host, '-CAfile', o.cafile, '-verify_return_error'];
  if (o.ignEof !== false) args.push('-ign_eof');
  if (o.cert) args.push('-cert', o.cert);
  if (o.key) args.push('-key', o.key);
  if (o.certChain) args.push('-cert_chain', o.certChain);
  args.push(...(o.args ?? []));
  const input = o.input ?? `GET /s_client HTTP/1.1\r\nHost: ${o.host}\r\nConnection: close\r\n\r\n`;
  return new Promise((resolveRun) => {
    const child = execFile('openssl', args, { timeout: o.timeoutMs ?? 10_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolveRun({ code, stdout, stderr, reused: /\bReused\b/.test(stdout), http200: /HTTP\/1\.1 200 /.test(stdout) });
    });
    child.stdin!.end(input);
  });
}
