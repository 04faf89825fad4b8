/**
 * The edge (issue "The edge", benchmark section): server CPU per mTLS connection — a
 * full TLS handshake with a client certificate plus one HTTP/1.1 request with
 * `Connection: close` — through Portcullis against a bare `node:tls` + `node:http`
 * server with the same server certificate and the same TLS settings
 * (bench/edge-bare-server.ts), in the same run under the same load; and the gate's
 * decision time (connection log `decisionTimeUs`) on a warm cache.
 *
 * Setup: a throwaway PKI with two `openssl ocsp` responders (src/demo), an ECDSA P-256
 * server certificate, two client leaves under the intermediate (ECDSA P-256 and RSA
 * 2048; the chain sent is leaf + intermediate), a 10,000-key KVS. Portcullis runs as
 * `portcullis serve --config` with `workers: 1` (one process; its CPU includes the
 * function worker thread) and two distributions on two ports, both with OCSP on:
 * `fn` with the KVS-lookup function examples/functions/kvs-serial-revocation.js, `nofn`
 * without a function. Its origin (bench/edge-origin.ts) is a separate process whose CPU
 * is not counted (the bare server answers itself). The load generator
 * (bench/edge-load.ts, one process, the same for every contender) opens
 * EDGE_BENCH_CONNECTIONS (default 1500) new connections per round, 8 at a time.
 *
 * Also measured, with the same certificates and load generator: nginx
 * (bench/edge-nginx.ts: one worker, `ssl_verify_client on` against the demo root,
 * `ssl_ocsp on` with `ssl_ocsp_cache` against the demo responders, tickets and session
 * cache off, `proxy_pass` to the same origin; installed with apt-get when missing — if it
 * cannot be installed or started the table has a "nginx: not available — reason" row),
 * and, for reference, the bare server with session tickets on.
 *
 * Rounds: one warm-up round per contender and key type (OCSP cache and function warm),
 * then ROUNDS measured rounds, alternating bare → portcullis fn → portcullis nofn →
 * nginx → bare with tickets for each key type. CPU: utime + stime from /proc/PID/stat
 * (all threads) before and after the round, divided by the connections — of the server
 * process; for nginx of the master and its worker.
 */
import { spawn, fork, execFile, execFileSync, type ChildProcess } from 'node:child_process';
import { appendFile, mkdir, mkdtemp, rm, writeFile, copyFile } from 'node:fs/promises';
import { readFileSync, openSync, readSync, closeSync, fstatSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { OpensslDemoPki, freePort } from '../src/demo/index.js';
import { percentile, type Benchmark, type Figure } from './lib.js';
import { findOrInstallNginx, startNginx, type RunningNginx } from './edge-nginx.js';

const run = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const ROUNDS = Number(process.env.EDGE_BENCH_ROUNDS ?? 5);
const CONNECTIONS = Number(process.env.EDGE_BENCH_CONNECTIONS ?? 1500);
const WARMUP = Math.min(CONNECTIONS, 400);
const CONCURRENCY = 8;
const SEQUENTIAL = Math.max(100, Math.round(CONNECTIONS / 3));
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process (every thread), µs. */
function cpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[11]) + Number(rest[12])) / CLK_TCK) * 1e6;
}

/** Starts a `node --import tsx` child and resolves with it and the first JSON line it prints. */
async function startChild(args: string[], cwd: string): Promise<{ child: ChildProcess; info: { port: number } }> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd, stdio: ['ignore', 'pipe', 'inherit'] });
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

function stop(child: ChildProcess | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return resolve();
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => { clearTimeout(t); resolve(); });
    child.kill('SIGTERM');
  });
}

async function waitForPort(port: number, limitMs = 60_000): Promise<void> {
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

/** Connection-log lines appended to `file` since `offset`, waiting until `count` of them are there. */
async function readLogLines(file: string, offset: number, count: number): Promise<{ lines: Record<string, unknown>[]; offset: number }> {
  const end = Date.now() + 10_000;
  for (;;) {
    const fd = openSync(file, 'r');
    const size = fstatSync(fd).size;
    const buf = Buffer.alloc(size - offset);
    readSync(fd, buf, 0, buf.length, offset);
    closeSync(fd);
    const text = buf.toString('utf8');
    const last = text.lastIndexOf('\n');
    const lines = last < 0 ? [] : text.slice(0, last).split('\n');
    if (lines.length >= count || Date.now() > end) {
      return { lines: lines.map((l) => JSON.parse(l) as Record<string, unknown>), offset: offset + Buffer.byteLength(text.slice(0, last + 1)) };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Issues an RSA 2048 client leaf under the demo intermediate (before the responders start, so they know it). */
async function issueRsaLeaf(pki: OpensslDemoPki, name: string): Promise<{ certFile: string; keyFile: string }> {
  const dir = pki.dir;
  const keyFile = join(dir, `${name}.key`), certFile = join(dir, `${name}.pem`), csr = join(dir, `${name}.csr`), ext = join(dir, `${name}.ext`);
  await writeFile(ext, [
    'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth',
    'subjectKeyIdentifier=hash', 'authorityKeyIdentifier=keyid', `subjectAltName=DNS:${name}.demo.example`,
    `authorityInfoAccess=OCSP;URI:${pki.intermediateResponderUrl}`,
  ].join('\n') + '\n');
  const serialHex = '7A01';
  await run('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', keyFile]);
  await run('openssl', ['req', '-new', '-key', keyFile, '-subj', `/C=US/O=Portcullis Demo/CN=${name}`, '-out', csr]);
  await run('openssl', ['x509', '-req', '-in', csr, '-CA', pki.intermediate.certFile, '-CAkey', pki.intermediate.keyFile,
    '-set_serial', `0x${serialHex}`, '-days', '90', '-sha256', '-extfile', ext, '-out', certFile]);
  const { stdout } = await run('openssl', ['x509', '-in', certFile, '-noout', '-enddate']);
  const notAfter = new Date(stdout.trim().replace(/^notAfter=/, ''));
  const t = notAfter.toISOString().replace(/^\d\d(\d\d)-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d).*$/, '$1$2$3$4$5$6Z');
  await appendFile(join(dir, 'intermediate-index.txt'), ['V', t, '', serialHex, 'unknown', `/C=US/O=Portcullis Demo/CN=${name}`].join('\t') + '\n');
  return { certFile, keyFile };
}

type ContenderName = 'bare' | 'bareTickets' | 'fn' | 'nofn' | 'nginx';
interface Contender { name: ContenderName; port: number; cpu: () => number }
const logged = (n: ContenderName): n is 'fn' | 'nofn' => n === 'fn' || n === 'nofn';

export const edgeBench: Benchmark = {
  name: 'edge',
  description: 'edge: server CPU per mTLS connection (handshake + 1 request) Portcullis vs bare node:tls+http (tickets off, and on for reference) vs nginx (verify_client + ssl_ocsp), ECDSA and RSA clients; gate decision time p50/p99/max with and without a function (warm OCSP cache)',
  async run(): Promise<Figure[]> {
    const dir = await mkdtemp(join(tmpdir(), 'portcullis-bench-edge-'));
    const children: ChildProcess[] = [];
    let pki: OpensslDemoPki | undefined;
    let nginx: RunningNginx | undefined;
    try {
      await mkdir(join(dir, 'pki'));
      pki = await OpensslDemoPki.create({ dir: join(dir, 'pki'), nextUpdateMinutes: 60 });
      const server = await pki.issueServer('server', ['localhost']);
      const ecLeaf = await pki.issueLeaf('ecdsa-client');
      const rsaLeaf = await issueRsaLeaf(pki, 'rsa-client');
      await pki.startResponders();
      const clients = {
        ecdsa: { certFile: await pki.writeChain(ecLeaf), keyFile: ecLeaf.keyFile },
        rsa: { certFile: await pki.writeChain({ ...ecLeaf, name: 'rsa-client', certFile: rsaLeaf.certFile }), keyFile: rsaLeaf.keyFile },
      };
      const data = Array.from({ length: 10_000 }, () => ({ key: randomBytes(8).toString('hex'), value: 'revoked' }));
      await writeFile(join(dir, 'revoked.json'), JSON.stringify({ data }));
      await copyFile(join(root, 'examples/functions/kvs-serial-revocation.js'), join(dir, 'fn.js'));

      const origin = await startChild([join(root, 'bench/edge-origin.ts')], root);
      children.push(origin.child);
      const [fnPort, nofnPort, adminPort] = [await freePort(), await freePort(), await freePort()];
      const dist = (name: string, port: number, fn: boolean): string => `    - name: ${name}
      listen: 127.0.0.1:${port}
      certificates:
        - certFile: ./pki/server.pem
          keyFile: ./pki/server.key
      origin:
        url: http://127.0.0.1:${origin.info.port}
      viewerMtls:
        mode: required
        trustStore: bench-devices
${fn ? '      connectionFunction: kvs-serial-revocation\n' : ''}`;
      const logFile = join(dir, 'connections.jsonl');
      await writeFile(join(dir, 'portcullis.yaml'), `dataDir: ./data
workers: 1
admin:
  listen: 127.0.0.1:${adminPort}
logging:
  level: warn
  connectionLog: ./connections.jsonl
resources:
  trustStores:
    - name: bench-devices
      caBundleFile: ./pki/root.pem
      useClientCertificateOcspEndpoint: true
  keyValueStores:
    - name: revoked
      importFile: ./revoked.json
  connectionFunctions:
    - name: kvs-serial-revocation
      codeFile: ./fn.js
      keyValueStore: revoked
      publish: true
  distributions:
${dist('fn', fnPort, true)}${dist('nofn', nofnPort, false)}`);
      const gwArgs = [...(process.env.EDGE_BENCH_GATEWAY_ARGS?.split(' ').filter(Boolean) ?? []), '--import', 'tsx', join(root, 'src/cli/bin.ts'), 'serve', '--config', join(dir, 'portcullis.yaml')];
      const gw = spawn(process.execPath, gwArgs, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
      children.push(gw);
      const gwExit = new Promise<never>((_, reject) => gw.once('exit', (code) => reject(new Error(`portcullis serve exited with ${code}`))));
      gwExit.catch(() => {});
      await Promise.race([Promise.all([waitForPort(fnPort), waitForPort(nofnPort)]), gwExit]);
      const bare = await startChild([join(root, 'bench/edge-bare-server.ts'), server.certFile, server.keyFile], root);
      children.push(bare.child);
      const bareTickets = await startChild([join(root, 'bench/edge-bare-server.ts'), server.certFile, server.keyFile, 'tickets'], root);
      children.push(bareTickets.child);
      let nginxUnavailable: string | undefined;
      let nginxPort = 0, nginxVersion = '';
      const found = await findOrInstallNginx();
      if ('reason' in found) nginxUnavailable = found.reason;
      else {
        try {
          nginxPort = await freePort();
          nginx = await startNginx({
            bin: found.bin, prefix: join(dir, 'nginx'), port: nginxPort, certFile: server.certFile, keyFile: server.keyFile,
            caFile: pki.root.certFile, originPort: origin.info.port,
          }, cpuUs, waitForPort);
          nginxVersion = found.version;
        } catch (e) {
          nginxUnavailable = `${found.version} did not start: ${(e as Error).message}`;
        }
      }
      if (nginxUnavailable) process.stderr.write(`  nginx: not available — ${nginxUnavailable}\n`);

      const load = fork(join(root, 'bench/edge-load.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      children.push(load);
      await new Promise<void>((resolve) => load.once('message', () => resolve()));
      const drive = (port: number, key: 'ecdsa' | 'rsa', connections: number, concurrency = CONCURRENCY): Promise<{ ok: number; failed: number; ms: number }> =>
        new Promise((resolve) => {
          load.once('message', (m: { ok: number; failed: number; ms: number }) => resolve(m));
          load.send({ type: 'round', port, servername: 'localhost', ...clients[key], connections, concurrency });
        });

      process.stderr.write(`  pids: portcullis ${gw.pid}, bare ${bare.child.pid}, bare+tickets ${bareTickets.child.pid}, nginx ${nginx?.child.pid ?? '-'} (${nginxVersion || 'n/a'}), origin ${origin.child.pid}, load ${load.pid}; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
      const contenders: Contender[] = [
        { name: 'bare', port: bare.info.port, cpu: () => cpuUs(bare.child.pid!) },
        { name: 'fn', port: fnPort, cpu: () => cpuUs(gw.pid!) },
        { name: 'nofn', port: nofnPort, cpu: () => cpuUs(gw.pid!) },
        ...(nginx ? [{ name: 'nginx' as const, port: nginxPort, cpu: nginx.cpuUs }] : []),
        { name: 'bareTickets', port: bareTickets.info.port, cpu: () => cpuUs(bareTickets.child.pid!) },
      ];
      const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 300));
      await settle();
      // Skip the lines of the port probes above (TcpError: closed before the handshake).
      let logOffset = statSync(logFile).size;
      // Warm-up: OCSP cache, function instance, JIT, parse caches.
      for (const key of ['ecdsa', 'rsa'] as const) {
        for (const c of contenders) {
          const r = await drive(c.port, key, WARMUP);
          if (r.failed) {
            const why = c.name === 'nginx' ? ` (nginx error log: ${(await nginx!.errorLog()).trim().split('\n').slice(-3).join(' / ')})` : '';
            throw new Error(`warm-up ${c.name}/${key}: ${r.failed} of ${WARMUP} connections failed${why}`);
          }
          if (logged(c.name)) {
            const got = await readLogLines(logFile, logOffset, WARMUP);
            logOffset = got.offset;
            const bad = got.lines.find((l) => l.connectionStatus !== 'Success');
            if (bad) throw new Error(`warm-up ${c.name}/${key}: denied: ${JSON.stringify(bad)}`);
          }
        }
      }
      if (nginx) {
        // Every nginx connection so far verified (OCSP included: a failed check is a 400, which the generator counts as failed).
        const lines = await nginx.accessLog();
        const bad = lines.filter((l) => !l.startsWith('200 SUCCESS'));
        if (bad.length || lines.length < 2 * WARMUP) throw new Error(`nginx warm-up: ${lines.length} access-log lines, ${bad.length} not '200 SUCCESS' (${bad[0] ?? ''})`);
      }
      const none = (): Record<ContenderName, number[]> => ({ bare: [], bareTickets: [], fn: [], nofn: [], nginx: [] });
      const cpu = { ecdsa: none(), rsa: none() };
      const gate = { fn: { p50: [] as number[], p99: [] as number[], max: [] as number[] }, nofn: { p50: [] as number[], p99: [] as number[], max: [] as number[] } };
      const seq = { fn: { p50: [] as number[], p99: [] as number[], max: [] as number[] }, nofn: { p50: [] as number[], p99: [] as number[], max: [] as number[] } };
      const gateAll = { fn: [] as number[], nofn: [] as number[] };
      for (let round = 0; round < ROUNDS; round++) {
        const perRound = { fn: [] as number[], nofn: [] as number[] };
        for (const key of ['ecdsa', 'rsa'] as const) {
          for (const c of contenders) {
            await settle();
            const before = c.cpu();
            const r = await drive(c.port, key, CONNECTIONS);
            if (logged(c.name)) {
              const got = await readLogLines(logFile, logOffset, CONNECTIONS);
              logOffset = got.offset;
              for (const l of got.lines) {
                if (l.connectionStatus !== 'Success') throw new Error(`${c.name}/${key}: denied: ${JSON.stringify(l)}`);
                perRound[c.name].push(l.decisionTimeUs as number);
              }
            }
            await settle();
            const after = c.cpu();
            if (r.failed) throw new Error(`${c.name}/${key}: ${r.failed} of ${CONNECTIONS} connections failed`);
            cpu[key][c.name].push((after - before) / CONNECTIONS);
            process.stderr.write(`  round ${round + 1} ${key} ${c.name}: ${((after - before) / CONNECTIONS).toFixed(0)} µs CPU/conn, ${(CONNECTIONS / r.ms * 1000).toFixed(0)} conn/s\n`);
          }
        }
        // One connection at a time: the gate without other handshakes queued on the event loop.
        for (const c of contenders) {
          if (!logged(c.name)) continue;
          const r = await drive(c.port, 'ecdsa', SEQUENTIAL, 1);
          if (r.failed) throw new Error(`sequential ${c.name}: ${r.failed} of ${SEQUENTIAL} connections failed`);
          const got = await readLogLines(logFile, logOffset, SEQUENTIAL);
          logOffset = got.offset;
          const sample = got.lines.map((l) => l.decisionTimeUs as number);
          seq[c.name].p50.push(percentile(sample, 50));
          seq[c.name].p99.push(percentile(sample, 99));
          seq[c.name].max.push(Math.max(...sample));
        }
        for (const n of ['fn', 'nofn'] as const) {
          gate[n].p50.push(percentile(perRound[n], 50));
          gate[n].p99.push(percentile(perRound[n], 99));
          gate[n].max.push(Math.max(...perRound[n]));
          gateAll[n].push(...perRound[n]);
        }
      }
      const figures: Figure[] = [];
      for (const key of ['ecdsa', 'rsa'] as const) {
        const label = key === 'ecdsa' ? 'ECDSA P-256' : 'RSA 2048';
        const c = cpu[key];
        figures.push(
          { benchmark: 'edge', metric: `server CPU per connection (handshake + 1 request), bare node:tls+http, ${label} client`, unit: 'µs', rounds: c.bare },
          { benchmark: 'edge', metric: `server CPU per connection, Portcullis (OCSP warm, KVS-lookup function; origin not counted), ${label} client`, unit: 'µs', rounds: c.fn },
          { benchmark: 'edge', metric: `CPU ratio Portcullis / bare, ${label} client (same round)`, unit: '×', rounds: c.fn.map((v, i) => v / c.bare[i]!), target: '≤ 1.15' },
          { benchmark: 'edge', metric: `server CPU per connection, Portcullis without function, ${label} client`, unit: 'µs', rounds: c.nofn },
        );
        if (nginxUnavailable) {
          figures.push({ benchmark: 'edge', metric: `nginx: not available — ${nginxUnavailable} (${label} client)`, unit: '—', rounds: [NaN] });
        } else {
          figures.push(
            { benchmark: 'edge', metric: `server CPU per connection, nginx ${nginxVersion} (1 worker; master + worker counted; ssl_verify_client on, ssl_ocsp on + ssl_ocsp_cache, warm; proxy_pass to the same origin, not counted), ${label} client`, unit: 'µs', rounds: c.nginx },
            { benchmark: 'edge', metric: `CPU ratio Portcullis / nginx, ${label} client (same round)`, unit: '×', rounds: c.fn.map((v, i) => v / c.nginx[i]!), target: 'as measured' },
          );
        }
        figures.push(
          { benchmark: 'edge', metric: `reference: server CPU per connection, bare node:tls+http WITH session tickets on (not resumed), ${label} client`, unit: 'µs', rounds: c.bareTickets },
          { benchmark: 'edge', metric: `reference: CPU ratio bare tickets on / tickets off, ${label} client (same round)`, unit: '×', rounds: c.bareTickets.map((v, i) => v / c.bare[i]!) },
        );
      }
      for (const n of ['fn', 'nofn'] as const) {
        const what = n === 'fn' ? 'with KVS-lookup function' : 'without function';
        figures.push(
          { benchmark: 'edge', metric: `gate decision time (warm OCSP cache), ${what}, one connection at a time, p50`, unit: 'µs', rounds: seq[n].p50 },
          { benchmark: 'edge', metric: `gate decision time, ${what}, one connection at a time, p99`, unit: 'µs', rounds: seq[n].p99, target: '≤ 200 µs' },
          { benchmark: 'edge', metric: `gate decision time, ${what}, one connection at a time, max`, unit: 'µs', rounds: seq[n].max },
          { benchmark: 'edge', metric: `gate decision time, ${what}, under the CPU rounds' load (${CONCURRENCY} concurrent), p50`, unit: 'µs', rounds: gate[n].p50 },
          { benchmark: 'edge', metric: `gate decision time, ${what}, under load, p99`, unit: 'µs', rounds: gate[n].p99 },
          { benchmark: 'edge', metric: `gate decision time, ${what}, under load, max`, unit: 'µs', rounds: gate[n].max },
        );
      }
      process.stderr.write(`  load average at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')} (other work on the machine inflates the wall-clock gate figures more than the CPU ones)\n`);
      process.stderr.write(`  gate pooled: fn p50 ${percentile(gateAll.fn, 50)} p99 ${percentile(gateAll.fn, 99)} max ${Math.max(...gateAll.fn)}; nofn p50 ${percentile(gateAll.nofn, 50)} p99 ${percentile(gateAll.nofn, 99)} max ${Math.max(...gateAll.nofn)} µs\n`);
      if (process.env.EDGE_BENCH_KEEP_LOG) await copyFile(logFile, process.env.EDGE_BENCH_KEEP_LOG);
      return figures;
    } finally {
      await stop(nginx?.child);
      for (const c of children.reverse()) await stop(c);
      await pki?.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
};
