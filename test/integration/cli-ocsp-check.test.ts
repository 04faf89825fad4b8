/**
 * Integration: the `portcullis ocsp check` and `portcullis cert inspect` commands as a
 * user runs them (`node --import tsx src/cli/bin.ts …`), against files and REAL
 * `openssl ocsp` responders from OpensslDemoPki. Asserts exit codes (0 good, 1 revoked,
 * 2 unknown/error, 3 invalid path or missing OCSP URL, 64 usage) and the --json shape.
 *
 * Two PKIs: `live` (responders running) and `dark` (responders never started, so every
 * OCSP URL of its certificates points at a closed port on 127.0.0.1).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OpensslDemoPki, type DemoCertificate } from '../../src/demo/index.js';
import { buildChain, issueCertificate } from '../helpers/pki.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with `args`; resolves with exit code and output (kills it after 30 s). */
function portcullis(...args: string[]): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('error', (e) => { clearTimeout(timer); reject(e); });
    child.once('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

function explain(r: CliRun): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

let live: OpensslDemoPki;
let dark: OpensslDemoPki;
const files: Record<string, string> = {};

before(async () => {
  [live, dark] = await Promise.all([OpensslDemoPki.create(), OpensslDemoPki.create()]);
  const good = await live.issueLeaf('good');
  const revoked = await live.issueLeaf('revoked');
  const noOcsp = await live.issueLeaf('no-ocsp', { ocsp: false });
  await live.revoke(revoked);
  await live.startResponders();
  const darkLeaf: DemoCertificate = await dark.issueLeaf('dark');
  files.goodChain = await live.writeChain(good);
  files.revokedChain = await live.writeChain(revoked);
  files.noOcspChain = await live.writeChain(noOcsp);
  files.liveTrust = live.trustStoreFile;
  files.darkChain = await dark.writeChain(darkLeaf);
  files.darkTrust = dark.trustStoreFile;
  files.leafAsTrustStore = good.certFile;
  files.notPem = join(live.dir, 'not-a-bundle.txt');
  await writeFile(files.notPem, 'this is not a PEM bundle\n');
});

after(async () => {
  await Promise.all([live?.close(), dark?.close()]);
});

describe('portcullis ocsp check', { concurrency: true }, () => {
  test('good leaf → exit 0', async () => {
    const r = await portcullis('ocsp', 'check', '--chain', files.goodChain!, '--trust-store', files.liveTrust!);
    assert.equal(r.code, 0, explain(r));
    assert.match(r.stdout, /chainValidity: Valid/);
    assert.match(r.stdout, /leaf\s+Good/);
  });

  test('revoked leaf → exit 1, reason keyCompromise shown', async () => {
    const r = await portcullis('ocsp', 'check', '--chain', files.revokedChain!, '--trust-store', files.liveTrust!);
    assert.equal(r.code, 1, explain(r));
    assert.match(r.stdout, /Revoked/);
    assert.match(r.stdout, /keyCompromise/);
    assert.match(r.stdout, /chainValidity: Invalid/);
  });

  test('responders down (closed ports) → exit 2, InternalError shown', async () => {
    const r = await portcullis('ocsp', 'check', '--chain', files.darkChain!, '--trust-store', files.darkTrust!, '--timeout-ms', '1000');
    assert.equal(r.code, 2, explain(r));
    assert.match(r.stdout, /InternalError/);
    assert.match(r.stdout, /chainValidity: Unknown/);
  });

  test('untrusted chain (trust store of another PKI) → exit 3', async () => {
    const r = await portcullis('ocsp', 'check', '--chain', files.goodChain!, '--trust-store', files.darkTrust!);
    assert.equal(r.code, 3, explain(r));
    assert.match(r.stdout, /ClientCertUntrusted/);
  });

  test('leaf without an OCSP URL → exit 3, ClientCertOcspEndpointMissing', async () => {
    const r = await portcullis('ocsp', 'check', '--chain', files.noOcspChain!, '--trust-store', files.liveTrust!);
    assert.equal(r.code, 3, explain(r));
    assert.match(r.stdout, /ClientCertOcspEndpointMissing/);
  });

  test('--json on a good chain: parses; chainValidity, leaf status, intermediate responder, source', async () => {
    const r = await portcullis('ocsp', 'check', '--chain', files.goodChain!, '--trust-store', files.liveTrust!, '--json');
    assert.equal(r.code, 0, explain(r));
    const json = JSON.parse(r.stdout) as {
      chainValidity: string;
      certificates: { leaf: { status: string; source: string; responder: string }; intermediates: { status: string; responder: string; source: string }[] };
      path: string[];
    };
    assert.equal(json.chainValidity, 'Valid');
    assert.equal(json.certificates.leaf.status, 'Good');
    assert.equal(json.certificates.leaf.source, 'network');
    assert.equal(json.certificates.leaf.responder, live.intermediateResponderUrl);
    assert.equal(json.certificates.intermediates.length, 1);
    assert.equal(json.certificates.intermediates[0]!.responder, live.rootResponderUrl);
    assert.equal(json.certificates.intermediates[0]!.source, 'network');
    assert.equal(json.path.length, 3);
  });

  test('--json on a revoked chain: exit 1, leaf Revoked with revocationReason', async () => {
    const r = await portcullis('ocsp', 'check', '--chain', files.revokedChain!, '--trust-store', files.liveTrust!, '--json');
    assert.equal(r.code, 1, explain(r));
    const json = JSON.parse(r.stdout) as { chainValidity: string; certificates: { leaf: { status: string; revocationReason: string } } };
    assert.equal(json.chainValidity, 'Invalid');
    assert.equal(json.certificates.leaf.status, 'Revoked');
    assert.equal(json.certificates.leaf.revocationReason, 'keyCompromise');
  });

  test('--json on a path failure: exit 3 and an error object', async () => {
    const r = await portcullis('ocsp', 'check', '--chain', files.noOcspChain!, '--trust-store', files.liveTrust!, '--json');
    assert.equal(r.code, 3, explain(r));
    const json = JSON.parse(r.stdout) as { error: { code: string; reason: string } };
    assert.equal(json.error.code, 'ClientCertOcspEndpointMissing');
    assert.equal(typeof json.error.reason, 'string');
  });

  test('missing --chain → exit 64', async () => {
    const r = await portcullis('ocsp', 'check', '--trust-store', files.liveTrust!);
    assert.equal(r.code, 64, explain(r));
    assert.match(r.stderr, /--chain/);
  });

  test('unreadable chain file → exit 64', async () => {
    const r = await portcullis('ocsp', 'check', '--chain', join(live.dir, 'does-not-exist.pem'), '--trust-store', files.liveTrust!);
    assert.equal(r.code, 64, explain(r));
    assert.match(r.stderr, /does-not-exist\.pem/);
  });

  test('unreadable trust store file → exit 64', async () => {
    const r = await portcullis('ocsp', 'check', '--chain', files.goodChain!, '--trust-store', join(live.dir, 'no-trust.pem'));
    assert.equal(r.code, 64, explain(r));
  });

  test('invalid trust store (a leaf certificate in the bundle) → exit 64', async () => {
    const r = await portcullis('ocsp', 'check', '--chain', files.goodChain!, '--trust-store', files.leafAsTrustStore!);
    assert.equal(r.code, 64, explain(r));
    assert.match(r.stderr, /trust store/);
  });

  test('invalid trust store (not PEM) → exit 64', async () => {
    const r = await portcullis('ocsp', 'check', '--chain', files.goodChain!, '--trust-store', files.notPem!);
    assert.equal(r.code, 64, explain(r));
  });

  test('bad option value (--timeout-ms abc) → exit 64', async () => {
    const r = await portcullis('ocsp', 'check', '--chain', files.goodChain!, '--trust-store', files.liveTrust!, '--timeout-ms', 'abc');
    assert.equal(r.code, 64, explain(r));
  });

  test('--demo → exit 0', async () => {
    const r = await portcullis('ocsp', 'check', '--demo');
    assert.equal(r.code, 0, explain(r));
    assert.match(r.stdout, /good-client/);
    assert.match(r.stdout, /revoked-client/);
    assert.match(r.stdout, /keyCompromise/);
  });
});

describe('portcullis cert inspect', { concurrency: true }, () => {
  test('a chain file prints both certificates', async () => {
    const r = await portcullis('cert', 'inspect', files.goodChain!);
    assert.equal(r.code, 0, explain(r));
    assert.match(r.stdout, /^Certificate #1\b/m);
    assert.match(r.stdout, /^Certificate #2\b/m);
    assert.doesNotMatch(r.stdout, /^Certificate #3\b/m);
    assert.match(r.stdout, /CN=good\b/);
    assert.match(r.stdout, /CN=Portcullis Demo Intermediate CA/);
  });

  test('--json lists both certificates', async () => {
    const r = await portcullis('cert', 'inspect', files.goodChain!, '--json');
    assert.equal(r.code, 0, explain(r));
    const json = JSON.parse(r.stdout) as { subject: string }[];
    assert.equal(json.length, 2);
    assert.match(json[0]!.subject, /CN=good\b/);
    assert.match(json[1]!.subject, /Intermediate CA/);
  });
});

describe('portcullis: option ranges, inputs and usage errors', { concurrency: true }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portcullis-cli-inputs-'));
    const root = await readFile(files.liveTrust!, 'utf8');
    const chain = await readFile(files.goodChain!, 'utf8');
    // More than 4 KiB of comments before the first BEGIN marker.
    const header = Array.from({ length: 80 }, (_, i) => `# comment line ${i} ${'x'.repeat(60)}`).join('\n');
    files.longCommentChain = join(dir, 'long-comment-chain.pem');
    await writeFile(files.longCommentChain, `${header}\n${chain}`);
    // The live root 26 times: one distinct certificate.
    files.rootTimes26 = join(dir, 'root-x26.pem');
    await writeFile(files.rootTimes26, root.repeat(26));
    // A leaf whose serialNumber INTEGER is not minimal DER (00 01).
    const t = await buildChain({ name: 'CLI Serial', intermediates: 0 });
    const leaf = await issueCertificate({ subject: 'C=US,CN=CLI Serial Leaf', issuer: t.root, serial: '0001', ocspUrls: ['http://127.0.0.1:9/'] });
    files.serialChain = join(dir, 'serial-0001.pem');
    await writeFile(files.serialChain, `# a sloppy CA's leaf\n${leaf.pem}`);
    files.serialTrust = join(dir, 'serial-root.pem');
    await writeFile(files.serialTrust, t.root.pem);
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const check = (...extra: string[]) => portcullis('ocsp', 'check', '--chain', files.goodChain!, '--trust-store', files.liveTrust!, ...extra);

  test('numeric options out of range → exit 64 naming the option and the allowed range', async () => {
    const cases: [string, string, RegExp][] = [
      ['--timeout-ms', '99999999999', /--timeout-ms 99999999999 is out of range: it must be an integer from 1 to 60000 \(ms\)/],
      ['--timeout-ms', '3000000000', /--timeout-ms 3000000000 is out of range: it must be an integer from 1 to 60000 \(ms\)/],
      ['--timeout-ms', '60001', /--timeout-ms 60001 is out of range/],
      ['--timeout-ms', '0', /--timeout-ms 0 is out of range: it must be an integer from 1 to 60000 \(ms\)/],
      ['--timeout-ms', '1e3', /--timeout-ms must be an integer from 1 to 60000 \(ms\), got "1e3"/],
      ['--timeout-ms', ' 5', /--timeout-ms must be an integer from 1 to 60000 \(ms\), got " 5"/],
      ['--timeout-ms', '-1', /--timeout-ms must be an integer from 1 to 60000 \(ms\), got "-1"/],
      ['--max-response-bytes', '0', /--max-response-bytes 0 is out of range: it must be an integer from 1 to 16777216 \(bytes\)/],
      ['--max-response-bytes', '16777217', /--max-response-bytes 16777217 is out of range/],
      ['--clock-skew-seconds', '99999999999999999999', /--clock-skew-seconds 99999999999999999999 is out of range: it must be an integer from 0 to 86400 \(seconds\)/],
      ['--clock-skew-seconds', '86401', /--clock-skew-seconds 86401 is out of range/],
    ];
    await Promise.all(cases.map(async ([option, value, message]) => {
      const r = await check(option, value);
      assert.equal(r.code, 64, `${option} ${value}: ${explain(r)}`);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /RangeError|at .*\.ts:\d+/, 'no stack trace');
      assert.equal(r.stdout, '');
    }));
  });

  test('numeric options at the ends of their ranges are accepted', async () => {
    const r = await check('--timeout-ms', '60000', '--max-response-bytes', '16777216', '--clock-skew-seconds', '86400');
    assert.equal(r.code, 0, explain(r));
    const r2 = await check('--clock-skew-seconds', '0', '--max-response-bytes', '65536');
    assert.equal(r2.code, 0, explain(r2));
  });

  test('--chain - --trust-store - → exit 64: only one input can be standard input', async () => {
    const r = await portcullis('ocsp', 'check', '--chain', '-', '--trust-store', '-');
    assert.equal(r.code, 64, explain(r));
    assert.match(r.stderr, /--chain and --trust-store both read standard input \("-"\); only one input can be standard input/);
  });

  test('a command group without its subcommand prints help to stderr and exits 64', async () => {
    for (const args of [[], ['ocsp'], ['cert']]) {
      const r = await portcullis(...args);
      assert.equal(r.code, 64, `portcullis ${args.join(' ')}: ${explain(r)}`);
      assert.match(r.stderr, new RegExp(`^Usage: portcullis${args.length ? ` ${args[0]}` : ''} \\[options\\] \\[command\\]`, 'm'));
      assert.equal(r.stdout, '');
    }
    // Asking for help is not an error.
    const help = await portcullis('--help');
    assert.equal(help.code, 0, explain(help));
    assert.match(help.stdout, /^Usage: portcullis/m);
    const sub = await portcullis('ocsp', 'help');
    assert.equal(sub.code, 0, explain(sub));
  });

  test('cert inspect on a missing file says "no such file", like ocsp check', async () => {
    const missing = join(dir, 'missing.pem');
    const r = await portcullis('cert', 'inspect', missing);
    assert.equal(r.code, 64, explain(r));
    assert.equal(r.stderr, `portcullis: cannot read ${missing}: no such file\n`);
    const o = await portcullis('ocsp', 'check', '--chain', missing, '--trust-store', files.liveTrust!);
    assert.equal(o.code, 64, explain(o));
    assert.equal(o.stderr, `portcullis: cannot read chain ${missing}: no such file\n`);
  });

  test('a trust store with 26 byte-identical copies of one root is one anchor (duplicates are dropped, not counted)', async () => {
    const r = await check();
    assert.equal(r.code, 0, explain(r));
    const r26 = await portcullis('ocsp', 'check', '--chain', files.goodChain!, '--trust-store', files.rootTimes26!);
    assert.equal(r26.code, 0, explain(r26));
  });

  test('a chain file with more than 4 KiB of leading # comments is read as PEM', async () => {
    const r = await portcullis('ocsp', 'check', '--chain', files.longCommentChain!, '--trust-store', files.liveTrust!);
    assert.equal(r.code, 0, explain(r));
    const i = await portcullis('cert', 'inspect', files.longCommentChain!);
    assert.equal(i.code, 0, explain(i));
    assert.match(i.stdout, /^Certificate #1 \(line 81\)$/m);
  });

  test('a certificate that is not DER (serial 00 01): ocsp check → exit 3 ClientCertInvalid; cert inspect → exit 64 naming the block', async () => {
    const r = await portcullis('ocsp', 'check', '--chain', files.serialChain!, '--trust-store', files.serialTrust!, '--json');
    assert.equal(r.code, 3, explain(r));
    const json = JSON.parse(r.stdout) as { error: { code: string; reason: string } };
    assert.equal(json.error.code, 'ClientCertInvalid');
    assert.match(json.error.reason, /^client certificate "CN=CLI Serial Leaf, C=US" \(serial 00:01\) is not a valid DER X\.509 certificate: its serialNumber INTEGER is not minimally encoded/);
    assert.doesNotMatch(json.error.reason, /signature/);
    const i = await portcullis('cert', 'inspect', files.serialChain!);
    assert.equal(i.code, 64, explain(i));
    assert.equal(i.stdout, '');
    assert.match(i.stderr, /serial-0001\.pem: certificate #1 \(line 2\): not a valid DER X\.509 certificate: its serialNumber INTEGER is not minimally encoded \(it starts 00 01;/);
  });
});
