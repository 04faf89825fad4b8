/**
 * Process plumbing shared by the end-to-end benchmarks (edge, ocsp-cold, revocation,
 * throughput): CPU time of a process tree from /proc, child processes that print their
 * port, a real `portcullis serve --config FILE`, the connection log, the admin API and
 * the load generator (bench/edge-load.ts) over IPC.
 */
import { spawn, fork, execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, openSync, readSync, closeSync, fstatSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root. */
export const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const live = new Set<ChildProcess>();
const dirs = new Set<string>();
const aborts = new Set<() => void>();

/** Registers a child process so {@link abortAll} kills it (and its descendants) if the run is interrupted. */
export function track<T extends ChildProcess>(child: T): T {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** Registers a synchronous clean-up for {@link abortAll} (e.g. `pki.killResponders()`); returns its unregister function. */
export function onAbort(fn: () => void): () => void {
  aborts.add(fn);
  return () => aborts.delete(fn);
}

/** A new temp directory `PREFIX…` that {@link abortAll} removes if the run is interrupted. */
export async function tempDir(prefix: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  dirs.add(d);
  return d;
}

/** Removes a directory made by {@link tempDir}. */
export async function removeTempDir(d: string): Promise<void> {
  await rm(d, { recursive: true, force: true });
  dirs.delete(d);
}

/**
 * On SIGINT/SIGTERM of the runner (the benchmarks' own `finally` blocks clean up after
 * an error): SIGKILLs every tracked child and its descendants (nginx workers outlive
 * their master), runs the registered clean-ups and removes the temp directories. Sync.
 */
export function abortAll(): void {
  for (const c of live) {
    if (c.pid === undefined) continue;
    for (const pid of processTree(c.pid).reverse()) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
  }
  for (const fn of aborts) {
    try { fn(); } catch { /* best effort */ }
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of one process (every thread), µs; 0 when it is gone. */
export function cpuUs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(rest[11]) + Number(rest[12])) / CLK_TCK) * 1e6;
  } catch {
    return 0;
  }
}

/** `pid` and all its live descendants (from /proc/PID/stat ppid). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(d));
      children.set(ppid, list);
    } catch { /* gone */ }
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    out.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(pid);
  return out;
}

/** utime + stime of `pid` and every live descendant (Portcullis primary + workers, nginx master + workers), µs. */
export function treeCpuUs(pid: number): number {
  return processTree(pid).reduce((sum, p) => sum + cpuUs(p), 0);
}

/** Starts a `node --import tsx` child and resolves with it and the first JSON line it prints. */
export async function startChild(args: string[]): Promise<{ child: ChildProcess; info: { port: number } }> {
  const child = track(spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] }));
  const info = await new Promise<{ port: number }>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const i = buf.indexOf('\n');
      if (i >= 0) resolve(JSON.parse(buf.slice(0, i)) as { port: number });
    });
    child.once('exit', (code) => reject(new Error(`${args[0]} exited with ${code}`)));
  });
  return { child, info };
}

/** SIGTERM, then SIGKILL after 10 s; resolves once the process has exited. */
export function stop(child: ChildProcess | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return resolve();
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => { clearTimeout(t); resolve(); });
    child.kill('SIGTERM');
  });
}

/** Resolves once 127.0.0.1:`port` accepts a TCP connection. */
export async function waitForPort(port: number, limitMs = 60_000): Promise<void> {
  const end = Date.now() + limitMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`port ${port} did not open within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A connection-log line (the fields the benchmarks read). */
export interface ConnLogLine { connectionStatus: string; decisionTimeUs: number; [k: string]: unknown }

/** Connection-log lines appended to `file` since `offset`, waiting (≤ `waitMs`) until `count` of them are there. */
export async function readLogLines(file: string, offset: number, count: number, waitMs = 10_000): Promise<{ lines: ConnLogLine[]; offset: number }> {
  const end = Date.now() + waitMs;
  for (;;) {
    let size = 0;
    let text = '';
    try {
      const fd = openSync(file, 'r');
      size = fstatSync(fd).size;
      const buf = Buffer.alloc(Math.max(0, size - offset));
      readSync(fd, buf, 0, buf.length, offset);
      closeSync(fd);
      text = buf.toString('utf8');
    } catch { /* not yet created */ }
    const last = text.lastIndexOf('\n');
    const lines = last < 0 ? [] : text.slice(0, last).split('\n');
    if (lines.length >= count || Date.now() > end) {
      return { lines: lines.map((l) => JSON.parse(l) as ConnLogLine), offset: offset + Buffer.byteLength(text.slice(0, last + 1)) };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Size of `file` in bytes, 0 when missing. */
export function fileSize(file: string): number {
  try {
    const fd = openSync(file, 'r');
    const s = fstatSync(fd).size;
    closeSync(fd);
    return s;
  } catch {
    return 0;
  }
}

/** A running `portcullis serve`. */
export interface Gateway {
  child: ChildProcess;
  /** CPU of the primary and every worker, µs. */
  cpuUs(): number;
  /** Rejects when the process exits. */
  exited: Promise<never>;
}

/**
 * Starts `node --import tsx src/cli/bin.ts serve --config CONFIG` (cwd: the repository),
 * and waits until every listed port accepts connections. The admin listener opens only
 * after every cluster worker reported ready, so listing the admin port waits for all
 * workers.
 */
export async function startGateway(config: string, ports: number[], extraNodeArgs: string[] = []): Promise<Gateway> {
  const child = track(spawn(process.execPath, [...extraNodeArgs, '--import', 'tsx', join(root, 'src/cli/bin.ts'), 'serve', '--config', config], {
    cwd: root, stdio: ['ignore', 'inherit', 'inherit'],
  }));
  const exited = new Promise<never>((_, reject) => child.once('exit', (code, signal) => reject(new Error(`portcullis serve exited with ${code ?? signal}`))));
  exited.catch(() => {});
  try {
    await Promise.race([Promise.all(ports.map((p) => waitForPort(p, 120_000))), exited]);
  } catch (e) {
    await stop(child);
    throw e;
  }
  return { child, cpuUs: () => treeCpuUs(child.pid!), exited };
}

/** One admin API call; resolves with status, ETag header and the parsed JSON body. */
export function admin(port: number, token: string, method: string, path: string, body?: unknown, ifMatch?: string): Promise<{ status: number; etag?: string; body: unknown }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request({
      host: '127.0.0.1', port, method, path, headers: {
        authorization: `Bearer ${token}`,
        ...(data ? { 'content-type': 'application/json', 'content-length': String(data.length) } : {}),
        ...(ifMatch ? { 'if-match': ifMatch } : {}),
      },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => {
        let parsed: unknown = text;
        try { parsed = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode ?? 0, etag: res.headers.etag, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

/** Client certificate chain + key files. */
export interface ClientFiles { certFile: string; keyFile: string }

/** What one load-generator round returns (bench/edge-load.ts). */
export interface RoundResult {
  ok: number;
  failed: number;
  ms: number;
  /** Per-connection (or per-request, keep-alive) latency in ms, when asked for. */
  latencies?: number[];
  /** New connections opened by a keep-alive round. */
  newConnections?: number;
}

/** The load generator process (bench/edge-load.ts), driven over IPC. */
export interface LoadGenerator {
  child: ChildProcess;
  /**
   * New TLS connections (`mode: 'close'`, default): `connections` of them, `concurrency`
   * at a time, client certificates round-robin over `clients`, one request each with
   * `Connection: close`. Keep-alive (`mode: 'keepalive'`): `concurrency` connections,
   * each sending requests back to back for `durationMs`.
   */
  round(o: { port: number; clients: ClientFiles[]; connections?: number; concurrency: number; latencies?: boolean; mode?: 'close' | 'keepalive'; durationMs?: number; timeoutMs?: number }): Promise<RoundResult>;
}

/** Forks bench/edge-load.ts and waits until it is ready. */
export async function startLoad(): Promise<LoadGenerator> {
  const child = track(fork(join(root, 'bench/edge-load.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`load generator exited with ${code}`)));
  });
  return {
    child,
    round: (o) => new Promise((resolve) => {
      child.once('message', (m: RoundResult) => resolve(m));
      child.send({ type: 'round', servername: 'localhost', mode: 'close', connections: 0, ...o });
    }),
  };
}

/** Sleeps `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
