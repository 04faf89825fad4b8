import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildChain } from '../../test/helpers/pki.js';
import type { TestChain } from '../../test/helpers/pki.js';
import { certificateView } from '../pki/index.js';
import type { CertInspectJson } from './cert-inspect.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
let dir: string;
let chain: TestChain;

/** Spawns the real CLI: `npx tsx src/cli/bin.ts …`. */
function cli(args: string[], input?: Buffer) {
  const r = spawnSync('npx', ['tsx', 'src/cli/bin.ts', ...args], { cwd: repoRoot, encoding: 'utf8', input, timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'portcullis-cert-inspect-'));
  chain = await buildChain({ name: 'Inspect', intermediates: 1, ocspUrl: (d) => (d === 0 ? 'http://ocsp.example/leaf' : undefined) });
  writeFileSync(join(dir, 'chain.pem'), `# client chain\n# leaf first\n\n${chain.leaf.pem}\n# the intermediate\n${chain.intermediates[0]!.pem}`);
  writeFileSync(join(dir, 'leaf.der'), chain.leaf.der);
  const broken = chain.root.pem.replace(/\n[A-Za-z0-9+/]{64}\n/, '\nAAAA\n');
  writeFileSync(join(dir, 'broken.pem'), `${chain.leaf.pem}${broken}`);
  writeFileSync(join(dir, 'comments-only.pem'), '# nothing here\n\n');
  writeFileSync(join(dir, 'key.pem'), chain.leaf.keyPem);
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('text output: every certificate with its view fields, aligned', () => {
  const r = cli(['cert', 'inspect', join(dir, 'chain.pem')]);
  assert.equal(r.code, 0, r.stderr);
  const leaf = certificateView(chain.leaf.cert);
  const inter = certificateView(chain.intermediates[0]!.cert);
  assert.match(r.stdout, /^Certificate #1 \(line 4\)$/m);
  assert.match(r.stdout, /^Certificate #2 \(line \d+\)$/m);
  for (const v of [leaf, inter]) {
    for (const value of [v.subject, v.issuer, v.serialNumber, v.validity.notBefore, v.validity.notAfter, v.sha256Fingerprint, v.spki]) {
      assert.ok(r.stdout.includes(value), `missing ${value}`);
    }
  }
  assert.match(r.stdout, /^ {2}subject {13}CN=Inspect Client, O=Portcullis Test, C=US$/m);
  assert.match(r.stdout, /^ {2}ocspEndpoint {8}http:\/\/ocsp\.example\/leaf$/m);
  assert.match(r.stdout, /^ {2}ocspEndpoint {8}\(none\)$/m);
  assert.match(r.stdout, /^ {2}san {17}DNS:client\.example\.com$/m);
  assert.match(r.stdout, /^ {2}san {17}\(none\)$/m);
});

test('--json: an array of views plus clearly separated extras', () => {
  const r = cli(['cert', 'inspect', '--json', join(dir, 'chain.pem')]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as CertInspectJson[];
  assert.equal(out.length, 2);
  const [leaf, inter] = out as [CertInspectJson, CertInspectJson];
  const { extras, ...leafView } = leaf;
  assert.deepEqual(leafView, certificateView(chain.leaf.cert));
  const { extras: interExtras, ...interView } = inter;
  assert.deepEqual(interView, certificateView(chain.intermediates[0]!.cert));
  assert.equal(extras.source, 'certificate #1 (line 4)');
  assert.equal(extras.isCA, false);
  assert.equal(interExtras.isCA, true);
  assert.equal(extras.publicKey, 'ECDSA P-256');
  assert.equal(extras.signatureAlgorithm, 'ecdsa-with-SHA256');
  assert.deepEqual(extras.ocspUrls, ['http://ocsp.example/leaf']);
  assert.equal(extras.viewerCertHeaders['CloudFront-Viewer-Cert-Subject'], 'CN=Inspect Client,O=Portcullis Test,C=US');
  assert.equal('CloudFront-Viewer-Cert-Pem' in extras.viewerCertHeaders, false);
  assert.equal('ocspEndpoint' in inter, false);
});

test('DER input and standard input', () => {
  const r = cli(['cert', 'inspect', '--json', join(dir, 'leaf.der')]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as CertInspectJson[];
  assert.equal(out.length, 1);
  assert.equal(out[0]!.extras.source, 'certificate #1 (DER)');
  assert.equal(out[0]!.sha256Fingerprint, certificateView(chain.leaf.cert).sha256Fingerprint);
  const s = cli(['cert', 'inspect', '-'], Buffer.from(chain.leaf.pem));
  assert.equal(s.code, 0, s.stderr);
  assert.ok(s.stdout.includes(certificateView(chain.leaf.cert).serialNumber));
});

test('unreadable file → exit 64 naming the file', () => {
  const missing = join(dir, 'missing.pem');
  const r = cli(['cert', 'inspect', missing]);
  assert.equal(r.code, 64);
  assert.equal(r.stderr, `portcullis: cannot read ${missing}: no such file\n`);
  assert.equal(r.stdout, '');
  const d = cli(['cert', 'inspect', dir]);
  assert.equal(d.code, 64);
  assert.equal(d.stderr, `portcullis: cannot read ${dir}: is a directory\n`);
});

test('unparsable block → exit 64 naming the file and the block', () => {
  const file = join(dir, 'broken.pem');
  const r = cli(['cert', 'inspect', file]);
  assert.equal(r.code, 64);
  assert.match(r.stderr, new RegExp(`^portcullis: ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: certificate #2 \\(line \\d+\\): `, 'm'));
  assert.equal(r.stdout, '');
});

test('no certificate, a non-certificate block, a missing argument → exit 64', () => {
  const none = cli(['cert', 'inspect', join(dir, 'comments-only.pem')]);
  assert.equal(none.code, 64);
  // Bytes without a BEGIN marker are tried as DER; pem.ts explains both readings.
  assert.match(none.stderr, /comments-only\.pem: no certificate found/);
  const key = cli(['cert', 'inspect', join(dir, 'key.pem')]);
  assert.equal(key.code, 64);
  assert.match(key.stderr, /key\.pem: certificate #1 \(line 1\): block of type "PRIVATE KEY" is not a certificate/);
  const noArg = cli(['cert', 'inspect']);
  assert.equal(noArg.code, 64);
  assert.match(noArg.stderr, /missing required argument 'file'/);
});
