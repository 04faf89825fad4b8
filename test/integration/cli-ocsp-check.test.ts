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
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OpensslDemoPki, type DemoCertificate } from '../../src/demo/index.js';

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
