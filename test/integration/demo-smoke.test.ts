/**
 * Integration (issue 6, "a demo smoke test"): starts `portcullis demo` as a user does
 * (`node --import tsx src/cli/bin.ts demo`, on free ports, `--dir` in a temporary
 * directory), parses what it prints — per client `# NAME: expect allow|deny — …` and the
 * curl command on the next line, then `# revoke NAME: …` and the command — runs every
 * curl and checks the promised outcome, runs the live-revoke command and checks that the
 * client is refused within 1 s, then sends SIGINT and checks that the demo exits and
 * leaves no `openssl ocsp` responder behind. Needs `openssl` and `curl` on PATH.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../src/demo/index.js';
import { DEMO_FUNCTION_SOURCE } from '../../src/gateway/index.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

interface Shell { code: number | null; stdout: string; stderr: string }

/** Runs a printed command line with sh (cwd: the repository), killing it after `timeoutMs`. */
function sh(line: string, timeoutMs = 15_000): Promise<Shell> {
  return new Promise((resolve) => {
    execFile('sh', ['-c', line], { cwd: REPO, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs a printed curl command; `status` is the HTTP status (0 when none was received). */
async function curl(line: string): Promise<Shell & { status: number; body: string }> {
  const r = await sh(`${line} --silent --show-error --max-time 10 --write-out '\\n%{http_code}'`);
  const i = r.stdout.lastIndexOf('\n');
  return { ...r, status: Number(r.stdout.slice(i + 1)) || 0, body: r.stdout.slice(0, Math.max(i, 0)) };
}

/** `openssl` processes whose parent is `pid`, and every `openssl ocsp` process that mentions `dir`. */
async function responders(pid: number, dir: string): Promise<{ children: number[]; forDir: number[] }> {
  const r = await sh('ps -A -o pid= -o ppid= -o args=');
  const children: number[] = [];
  const forDir: number[] = [];
  for (const l of r.stdout.split('\n')) {
    const m = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(l);
    if (!m) continue;
    const [p, pp, args] = [Number(m[1]), Number(m[2]), m[3]!];
    if (!/^(\S*\/)?openssl\s/.test(args)) continue;
    if (pp === pid) children.push(p);
    if (args.includes(' ocsp ') && args.includes(dir)) forDir.push(p);
  }
  return { children, forDir };
}

let tmp: string;
let dir: string;
let demo: ChildProcessWithoutNullStreams;
let stdout = '';
let stderr = '';
let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'portcullis-demo-smoke-'));
  dir = join(tmp, 'demo');
  const [port, adminPort] = [await freePort(), await freePort()];
  demo = spawn(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', 'demo', '--dir', dir, '--port', String(port), '--admin-port', String(adminPort)], {
    cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'],
  });
  exited = new Promise((resolve) => demo.once('exit', (code, signal) => resolve({ code, signal })));
  demo.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
  demo.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the demo printed no "Ready." within 30 s\n--- stdout\n${stdout}\n--- stderr\n${stderr}`)), 30_000);
    const check = (): void => {
      if (stdout.includes('\nReady.')) { clearTimeout(timer); resolve(); }
    };
    demo.stdout.on('data', check);
    void exited.then(({ code, signal }) => { clearTimeout(timer); reject(new Error(`the demo exited (${code ?? signal}) before it was ready\n--- stderr\n${stderr}`)); });
  });
});

after(async () => {
  if (demo && demo.exitCode === null && demo.signalCode === null) {
    demo.kill('SIGKILL');
    await exited;
  }
  // Should the test have failed half-way, leave no responder of this run behind.
  if (dir) for (const p of (await responders(-1, dir)).forDir) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

test('portcullis demo: every printed command does what the demo promises; Ctrl-C stops everything', { timeout: 60_000 }, async () => {
  const explain = (what: string, r?: Shell): string => `${what}${r ? `\nexit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}` : ''}\n--- demo stdout\n${stdout}`;
  // Parse: `# NAME: expect allow|deny — why` + command; `# revoke NAME: …` + command.
  const lines = stdout.slice(0, stdout.indexOf('\nReady.')).split('\n');
  const clients: { name: string; expect: 'allow' | 'deny'; command: string }[] = [];
  let revoke: { name: string; command: string } | undefined;
  lines.forEach((l, i) => {
    const c = /^# (\S+): expect (allow|deny)\b/.exec(l);
    if (c) clients.push({ name: c[1]!, expect: c[2] as 'allow' | 'deny', command: lines[i + 1]! });
    const r = /^# revoke (\S+):/.exec(l);
    if (r) revoke = { name: r[1]!, command: lines[i + 1]! };
  });
  // The issue's clients: good, revoked by OCSP, to-be-revoked by KVS, expired, untrusted CA (+ none).
  assert.deepEqual(clients.map((c) => `${c.name}:${c.expect}`),
    ['alice:allow', 'mallory:deny', 'eve:allow', 'expired:deny', 'stranger:deny', 'anonymous:deny'], explain('printed clients'));
  for (const c of clients) assert.match(c.command, /^curl /, explain(`${c.name}'s command`));
  assert.ok(revoke, explain('no "# revoke NAME:" block'));
  assert.equal(revoke.name, 'eve');
  assert.match(revoke.command, / kvs put revoked-serials [0-9a-f]+ \S+ /, explain('revoke command'));

  // The function is the repository's example, copied; the embedded fallback is the same text.
  const example = await readFile(join(REPO, 'examples/functions/kvs-then-ocsp-grace.js'), 'utf8');
  assert.equal(await readFile(join(dir, 'kvs-then-ocsp-grace.js'), 'utf8'), example);
  assert.equal(DEMO_FUNCTION_SOURCE, example, 'DEMO_FUNCTION_SOURCE (src/gateway/demo.ts) must equal examples/functions/kvs-then-ocsp-grace.js');

  for (const c of clients) {
    const r = await curl(c.command);
    if (c.expect === 'allow') {
      assert.equal(r.code, 0, explain(`${c.name}: curl failed`, r));
      assert.equal(r.status, 200, explain(`${c.name}: HTTP status`, r));
      const echo = JSON.parse(r.body) as { headers: Record<string, string> };
      assert.match(echo.headers['cloudfront-viewer-cert-serial-number'] ?? '', /^[0-9a-f]{2}(:[0-9a-f]{2})*$/, explain(`${c.name}: no CloudFront-Viewer-Cert-Serial-Number at the origin`, r));
    } else {
      assert.notEqual(r.code, 0, explain(`${c.name}: expected the connection to be refused`, r));
      assert.notEqual(r.status, 200, explain(`${c.name}: got HTTP 200`, r));
    }
  }
  const statuses = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => (JSON.parse(l) as { connectionStatus: string }).connectionStatus);
  assert.deepEqual(statuses, ['Success', 'Failed:ConnectionFunctionDenied', 'Success', 'Failed:ClientCertExpired', 'Failed:ClientCertUntrusted', 'Failed:ClientCertMissing'],
    explain('connection log'));

  // Live revocation through the printed command: eve is refused within 1 s of it.
  const eve = clients.find((c) => c.name === 'eve')!;
  const r = await sh(revoke.command, 30_000);
  assert.equal(r.code, 0, explain('revoke command failed', r));
  const deadline = Date.now() + 1000;
  let last: Awaited<ReturnType<typeof curl>>;
  for (;;) {
    last = await curl(eve.command);
    if (last.code !== 0 && last.status !== 200) break;
    assert.ok(Date.now() < deadline, explain('eve still admitted 1 s after the revoke command', last));
    await new Promise((res) => setTimeout(res, 50));
  }
  for (let i = 0; i < 20 && !stdout.includes('"connectionLogCustomData":"kvs:'); i++) await new Promise((res) => setTimeout(res, 50));
  assert.match(stdout, /"connectionStatus":"Failed:ConnectionFunctionDenied".*"connectionLogCustomData":"kvs:/, explain('the refusal is the KVS\'s'));

  // Ctrl-C: the demo exits, and so do its responders.
  const before = await responders(demo.pid!, dir);
  assert.equal(before.children.length, 2, explain(`expected two openssl ocsp children, found ${before.children.join(', ')}`));
  demo.kill('SIGINT');
  const exit = await Promise.race([exited, new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), 10_000))]);
  assert.notEqual(exit, 'timeout', explain('the demo did not exit within 10 s of SIGINT'));
  assert.deepEqual(exit, { code: 0, signal: null }, `demo exit\n--- stderr\n${stderr}`);
  let left: number[] = [];
  let alive: number[] = [];
  for (let i = 0; i < 20; i++) {
    left = (await responders(demo.pid!, dir)).forDir;
    alive = before.children.filter((p) => { try { process.kill(p, 0); return true; } catch { return false; } });
    if (left.length === 0 && alive.length === 0) break;
    await new Promise((res) => setTimeout(res, 50));
  }
  assert.deepEqual(left, [], 'openssl ocsp responders of the demo left running after it exited');
  assert.deepEqual(alive, [], 'the demo\'s openssl children still exist after it exited');
  // --dir is kept.
  assert.match(await readFile(join(dir, 'portcullis.yaml'), 'utf8'), /kvs-then-ocsp-grace\.js/);
});
