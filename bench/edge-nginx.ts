/**
 * The nginx contender of the edge benchmark (bench/edge.ts): finds nginx (installing the
 * Debian package `nginx-light`, else `nginx`, with apt-get when it is missing and we run
 * as root), writes a configuration into a temp prefix and runs it in the foreground
 * (`daemon off;`, `nginx -p PREFIX -c FILE`), so the bench owns the master process and
 * stops it afterwards.
 *
 * `BENCH_NGINX_UNAVAILABLE=1` makes it report nginx as not available (to exercise the
 * benchmarks' "not available — reason" rows).
 *
 * Configured like the Portcullis distribution it is compared with: `worker_processes 1`
 * (or `workers`),
 * the same server certificate, `ssl_verify_client on` against the demo root
 * (`ssl_verify_depth 2`; the client sends leaf + intermediate), `ssl_ocsp on` (leaf and
 * intermediate, from the certificates' AIA URLs, i.e. the demo's `openssl ocsp`
 * responders) with `ssl_ocsp_cache shared:ocsp:1m`, `ssl_session_tickets off;
 * ssl_session_cache off;`, TLS 1.2–1.3, HTTP/1.1 only, and `proxy_pass` to the same origin
 * process over kept-alive upstream connections. Every connection is logged (access log
 * with `$ssl_client_verify`), as Portcullis logs every connection. Everything listens on
 * 127.0.0.1 only.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { track, treeCpuUs, waitForPort } from './proc.js';

const run = promisify(execFile);

async function nginxVersion(bin: string): Promise<string | undefined> {
  try {
    const { stderr, stdout } = await run(bin, ['-v']);
    return (stderr || stdout).trim().replace(/^nginx version: /, '');
  } catch {
    return undefined;
  }
}

/** The nginx binary and its version, installing it from Debian packages when missing; or why it is not available. */
export async function findOrInstallNginx(): Promise<{ bin: string; version: string } | { reason: string }> {
  if (process.env.BENCH_NGINX_UNAVAILABLE === '1') return { reason: 'forced by BENCH_NGINX_UNAVAILABLE=1 (checks the not-available row)' };
  for (const bin of ['nginx', '/usr/sbin/nginx']) {
    const version = await nginxVersion(bin);
    if (version) return { bin, version };
  }
  if (process.getuid?.() !== 0) return { reason: 'nginx not installed and not running as root to apt-get install it' };
  process.stderr.write('  nginx missing: apt-get update && apt-get install -y nginx-light (or nginx)\n');
  let lastError = '';
  try {
    await run('apt-get', ['update'], { timeout: 300_000 });
  } catch (e) {
    lastError = `apt-get update failed: ${(e as Error).message.split('\n')[0]}`;
  }
  for (const pkg of ['nginx-light', 'nginx']) {
    try {
      await run('apt-get', ['install', '-y', pkg], { timeout: 600_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
      const version = await nginxVersion('/usr/sbin/nginx');
      if (version) return { bin: '/usr/sbin/nginx', version };
    } catch (e) {
      lastError = `apt-get install ${pkg} failed: ${(e as Error).message.split('\n')[0]}`;
    }
  }
  return { reason: lastError || 'apt-get install reported success but no nginx binary was found' };
}

export interface NginxOptions {
  bin: string;
  prefix: string;
  port: number;
  certFile: string;
  keyFile: string;
  caFile: string;
  originPort: number;
  /** `worker_processes`; default 1. */
  workers?: number;
  /** Session tickets and a shared session cache on (the reference row); default off. */
  tickets?: boolean;
}

export interface RunningNginx {
  child: ChildProcess;
  port: number;
  /** utime + stime of the master and its workers, µs. */
  cpuUs(): number;
  /** access-log lines (`$status $ssl_client_verify`) so far. */
  accessLog(): Promise<string[]>;
  errorLog(): Promise<string>;
}

/** Starts nginx in the foreground with the configuration described above; resolves once it listens. */
export async function startNginx(o: NginxOptions): Promise<RunningNginx> {
  await mkdir(join(o.prefix, 'logs'), { recursive: true });
  await mkdir(join(o.prefix, 'tmp'), { recursive: true });
  const conf = join(o.prefix, 'nginx.conf');
  // As root, nginx would switch the worker to `nobody`, which cannot enter the 0700 temp dir.
  const user = process.getuid?.() === 0 ? 'user root root;\n' : '';
  const sessions = o.tickets
    ? 'ssl_session_tickets on;\n    ssl_session_cache shared:SSL:1m;'
    : 'ssl_session_tickets off;\n    ssl_session_cache off;';
  await writeFile(conf, `${user}worker_processes ${o.workers ?? 1};
daemon off;
master_process on;
pid ${join(o.prefix, 'nginx.pid')};
error_log ${join(o.prefix, 'logs/error.log')} warn;
events { worker_connections 1024; }
http {
  client_body_temp_path ${join(o.prefix, 'tmp/body')};
  proxy_temp_path ${join(o.prefix, 'tmp/proxy')};
  fastcgi_temp_path ${join(o.prefix, 'tmp/fastcgi')};
  uwsgi_temp_path ${join(o.prefix, 'tmp/uwsgi')};
  scgi_temp_path ${join(o.prefix, 'tmp/scgi')};
  log_format bench '$status $ssl_client_verify $ssl_protocol';
  access_log ${join(o.prefix, 'logs/access.log')} bench;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  upstream origin {
    server 127.0.0.1:${o.originPort};
    keepalive 16;
  }
  server {
    listen 127.0.0.1:${o.port} ssl;
    server_name localhost;
    ssl_certificate ${o.certFile};
    ssl_certificate_key ${o.keyFile};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_client_certificate ${o.caFile};
    ssl_verify_client on;
    ssl_verify_depth 2;
    ssl_ocsp on;
    ssl_ocsp_cache shared:ocsp:1m;
    ${sessions}
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`);
  const child = track(spawn(o.bin, ['-p', o.prefix, '-c', conf], { stdio: ['ignore', 'inherit', 'inherit'] }));
  const exited = new Promise<never>((_, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => reject(new Error(`nginx exited with ${code ?? signal}`)));
  });
  exited.catch(() => {});
  try {
    await Promise.race([waitForPort(o.port, 20_000), exited]);
  } catch (e) {
    const log = await readFile(join(o.prefix, 'logs/error.log'), 'utf8').catch(() => '');
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    throw new Error(`${(e as Error).message}${log ? `: ${log.trim().split('\n').slice(-2).join(' / ')}` : ''}`);
  }
  return {
    child,
    port: o.port,
    cpuUs: () => treeCpuUs(child.pid!),
    accessLog: async () => (await readFile(join(o.prefix, 'logs/access.log'), 'utf8').catch(() => '')).split('\n').filter(Boolean),
    errorLog: () => readFile(join(o.prefix, 'logs/error.log'), 'utf8').catch(() => ''),
  };
}
