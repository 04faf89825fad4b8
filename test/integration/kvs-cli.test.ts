/**
 * `portcullis kvs …` end to end on a temporary data directory: output, --json, ETag
 * handling, exit codes. Most cases run the CLI in-process through `main()` (fast); one
 * runs the real executable as a subprocess.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/index.js';
import { kvsIo } from '../../src/cli/kvs.js';

const BIN = fileURLToPath(new URL('../../src/cli/bin.ts', import.meta.url));

/** Runs the CLI in-process, capturing its output and the exit code. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io = { ...kvsIo };
  // Commander's own usage messages go to process.stderr; the test runner reports on
  // stdout, which is never replaced.
  const ew = process.stderr.write.bind(process.stderr);
  kvsIo.stdout = (text) => { stdout += text; };
  kvsIo.stderr = (text) => { stderr += text; };
  process.stderr.write = ((c: string | Uint8Array) => { stderr += c.toString(); return true; }) as typeof process.stderr.write;
  process.exitCode = undefined;
  try {
    const code = await main(['node', 'portcullis', ...args]);
    return { code, stdout, stderr };
  } finally {
    Object.assign(kvsIo, io);
    process.stderr.write = ew;
    process.exitCode = undefined;
  }
}

function tempDir(t: { after(fn: () => unknown): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-kvs-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('kvs CLI: create with import, describe, list, keys, get, put, delete-key, update, delete', async (t) => {
  const dir = tempDir(t);
  const dd = ['--data-dir', join(dir, 'data')];
  const imp = join(dir, 'import.json');
  writeFileSync(imp, JSON.stringify({ data: Array.from({ length: 12 }, (_, i) => ({ key: `k${String(i).padStart(2, '0')}`, value: `v${i}` })) }));

  let r = await cli('kvs', 'create', 'revoked', '--import', imp, '--comment', 'test store', '--json', ...dd);
  assert.equal(r.code, 0, r.stderr);
  const created = JSON.parse(r.stdout) as { Status: string; ItemCount: number; ETag: string; Comment: string };
  assert.equal(created.Status, 'READY');
  assert.equal(created.ItemCount, 12);
  assert.equal(created.Comment, 'test store');

  r = await cli('kvs', 'describe', 'revoked', ...dd);
  assert.match(r.stdout, /^Status\s+READY$/m);
  assert.match(r.stdout, /^ItemCount\s+12$/m);

  r = await cli('kvs', 'list', ...dd);
  assert.match(r.stdout, /^NAME\s+STATUS/);
  assert.match(r.stdout, /^revoked\s+READY\s+12\s/m);

  r = await cli('kvs', 'keys', 'revoked', ...dd);
  assert.equal(r.stdout.trim().split('\n').length, 10, 'default page size 10');
  const token = /--next-token (\S+)/.exec(r.stderr)?.[1];
  assert.ok(token);
  r = await cli('kvs', 'keys', 'revoked', '--next-token', token, '--json', ...dd);
  assert.deepEqual((JSON.parse(r.stdout) as { Items: { Key: string }[] }).Items.map((i) => i.Key), ['k10', 'k11']);
  r = await cli('kvs', 'keys', 'revoked', '--max', '51', ...dd);
  assert.equal(r.code, 64);
  assert.match(r.stderr, /InvalidArgument: MaxResults must be an integer from 1 to 50/);

  r = await cli('kvs', 'get', 'revoked', 'k03', ...dd);
  assert.equal(r.stdout, 'v3\n');
  r = await cli('kvs', 'get', 'revoked', 'absent', ...dd);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /EntityNotFound: key "absent" does not exist/);

  r = await cli('kvs', 'put', 'revoked', 'new', 'value', '--json', ...dd);
  assert.equal(r.code, 0, r.stderr);
  const put = JSON.parse(r.stdout) as { ETag: string; ItemCount: number };
  assert.equal(put.ItemCount, 13);
  r = await cli('kvs', 'put', 'revoked', 'new', 'again', '--if-match', created.ETag, ...dd);
  assert.equal(r.code, 3, 'stale --if-match is a conflict');
  assert.match(r.stderr, /PreconditionFailed/);
  r = await cli('kvs', 'put', 'revoked', 'new', 'again', '--if-match', put.ETag, ...dd);
  assert.equal(r.code, 0, r.stderr);
  r = await cli('kvs', 'put', 'revoked', 'x'.repeat(513), 'v', ...dd);
  assert.equal(r.code, 4);
  assert.match(r.stderr, /EntitySizeLimitExceeded: key "x+…": key is 513 bytes/);

  r = await cli('kvs', 'delete-key', 'revoked', 'k00', ...dd);
  assert.equal(r.code, 0, r.stderr);
  r = await cli('kvs', 'delete-key', 'revoked', 'k00', ...dd);
  assert.equal(r.code, 2);

  const puts = join(dir, 'puts.json');
  const deletes = join(dir, 'deletes.json');
  writeFileSync(puts, JSON.stringify([{ Key: 'p1', Value: '1' }, { Key: 'p2', Value: '2' }]));
  writeFileSync(deletes, JSON.stringify([{ Key: 'k01' }, 'k02']));
  r = await cli('kvs', 'update', 'revoked', '--puts', puts, '--deletes', deletes, '--json', ...dd);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { ItemCount: number }).ItemCount, 12 + 1 - 1 + 2 - 2);
  writeFileSync(deletes, JSON.stringify(['p1']));
  r = await cli('kvs', 'update', 'revoked', '--puts', puts, '--deletes', deletes, ...dd);
  assert.equal(r.code, 64);
  assert.match(r.stderr, /both put and deleted/);
  r = await cli('kvs', 'update', 'revoked', ...dd);
  assert.equal(r.code, 64);

  r = await cli('kvs', 'delete', 'revoked', '--if-match', 'stale', ...dd);
  assert.equal(r.code, 3);
  r = await cli('kvs', 'delete', 'revoked', ...dd);
  assert.equal(r.code, 0, r.stderr);
  r = await cli('kvs', 'describe', 'revoked', ...dd);
  assert.equal(r.code, 2);
});

test('kvs CLI: a refused import exits 5 and leaves a FAILED store with the reason; usage errors exit 64', async (t) => {
  const dir = tempDir(t);
  const dd = ['--data-dir', join(dir, 'data')];
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ data: [{ key: 'a', value: '1' }, { key: 'a', value: '2' }] }));
  let r = await cli('kvs', 'create', 'dup', '--import', bad, ...dd);
  assert.equal(r.code, 5);
  assert.match(r.stdout, /^Status\s+FAILED$/m);
  assert.match(r.stdout, /FailureReason\s+data\[1\] \(key "a"\): duplicate key \(first at data\[0\]\)/);
  assert.match(r.stderr, /import failed/);
  r = await cli('kvs', 'keys', 'dup', '--json', ...dd);
  assert.deepEqual(JSON.parse(r.stdout), { Items: [] });
  r = await cli('kvs', 'put', 'dup', 'k', 'v', ...dd);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /EntityNotReady/);

  r = await cli('kvs', 'create', 'nofile', '--import', join(dir, 'missing.json'), ...dd);
  assert.equal(r.code, 64);
  assert.match(r.stderr, /cannot read import file .*no such file/);
  r = await cli('kvs', 'list', '--json', ...dd);
  assert.deepEqual((JSON.parse(r.stdout) as { KeyValueStoreList: { Items: { Name: string }[] } }).KeyValueStoreList.Items.map((i) => i.Name), ['dup'], 'no store created for an unreadable local file');
  r = await cli('kvs', 'create', 'bad name', ...dd);
  assert.equal(r.code, 64);
  r = await cli('kvs', 'get', 'dup', ...dd);
  assert.equal(r.code, 64, 'missing argument');
});

test('kvs CLI: the real executable, value from standard input', async (t) => {
  const dir = tempDir(t);
  const env = { ...process.env, PORTCULLIS_DATA_DIR: join(dir, 'data') };
  const run = (args: string[], input?: string) => spawnSync(process.execPath, ['--import', 'tsx', BIN, ...args], { env, input, encoding: 'utf8' });
  let r = run(['kvs', 'create', 'stdin']);
  assert.equal(r.status, 0, r.stderr);
  r = run(['kvs', 'put', 'stdin', 'key'], 'from stdin\n');
  assert.equal(r.status, 0, r.stderr);
  r = run(['kvs', 'get', 'stdin', 'key']);
  assert.equal(r.stdout, 'from stdin\n');
  r = run(['kvs', 'get', 'stdin', 'nokey']);
  assert.equal(r.status, 2);
});

test('kvs CLI: input checks before anything is created — not a regular file (64), over the size limit (4), empty --data-dir (64)', async (t) => {
  const dir = tempDir(t);
  const dd = ['--data-dir', join(dir, 'data')];
  const fifo = join(dir, 'fifo');
  const inputs = [dir, '/dev/null', ...(spawnSync('mkfifo', [fifo]).status === 0 ? [fifo] : [])];
  for (const input of inputs) {
    const r = await cli('kvs', 'create', 'x', '--import', input, ...dd);
    assert.equal(r.code, 64, input);
    assert.match(r.stderr, /not a regular file/, input);
  }
  const big = join(dir, 'big.json');
  writeFileSync(big, Buffer.alloc(5 * 1024 * 1024 + 1, 0x20));
  let r = await cli('kvs', 'create', 'x', '--import', big, ...dd);
  assert.equal(r.code, 4);
  assert.match(r.stderr, /EntitySizeLimitExceeded: import file .* is 5242881 bytes, over the limit of 5242880 bytes; nothing was created/);
  r = await cli('kvs', 'list', '--json', ...dd);
  assert.equal(r.stdout.includes('"Name"'), false, 'nothing created');
  r = await cli('kvs', 'list', '--data-dir', '');
  assert.equal(r.code, 64);
  assert.match(r.stderr, /--data-dir must not be empty/);
});

test('kvs CLI: --puts/--deletes documents — strict UTF-8 with the offset, BOM ignored, duplicate members refused, one standard input', async (t) => {
  const dir = tempDir(t);
  const dd = ['--data-dir', join(dir, 'data')];
  assert.equal((await cli('kvs', 'create', 'u', ...dd)).code, 0);
  const f = (name: string, content: string | Buffer) => {
    const p = join(dir, name);
    writeFileSync(p, content);
    return p;
  };
  let r = await cli('kvs', 'update', 'u', '--puts', f('bad.json', Buffer.concat([Buffer.from('[{"Key":"a","Value":"'), Buffer.from([0xff]), Buffer.from('"}]')])), ...dd);
  assert.equal(r.code, 64);
  assert.match(r.stderr, /--puts file .*bad\.json is not valid UTF-8 \(first invalid byte at offset 21\)/);
  r = await cli('kvs', 'update', 'u', '--puts', f('dup.json', '{"data":[{"key":"a","value":"v"}],"data":[]}'), ...dd);
  assert.equal(r.code, 64);
  assert.match(r.stderr, /duplicate member "data" in the top-level object/);
  r = await cli('kvs', 'update', 'u', '--puts', f('dup2.json', '[{"Key":"a","Value":"v","Key":"b"}]'), ...dd);
  assert.match(r.stderr, /duplicate member "Key" in \[0\]/);
  r = await cli('kvs', 'update', 'u', '--deletes', f('dup3.json', '[{"Key":"a","Key":"b"}]'), ...dd);
  assert.match(r.stderr, /--deletes file .* duplicate member "Key" in \[0\]/);
  r = await cli('kvs', 'update', 'u', '--puts', '-', '--deletes', '-', ...dd);
  assert.equal(r.code, 64);
  assert.match(r.stderr, /only one input can be standard input/);
  r = await cli('kvs', 'update', 'u', '--puts', f('bom.json', '\ufeff[{"Key":"a\\tb","Value":"x\\ny\\\\"}]'), ...dd);
  assert.equal(r.code, 0, r.stderr);
  // keys output escapes tab, newline, CR and backslash so every line is one KEY<TAB>VALUE.
  r = await cli('kvs', 'keys', 'u', ...dd);
  assert.equal(r.stdout, 'a\\tb\tx\\ny\\\\\n');
  r = await cli('kvs', 'keys', 'u', '--json', ...dd);
  assert.equal((JSON.parse(r.stdout) as { Items: { Key: string }[] }).Items[0]!.Key, 'a\tb');
});

test('kvs CLI: invalid UTF-8 in an argument or on standard input is refused, not turned into U+FFFD', (t) => {
  const dir = tempDir(t);
  const env = { ...process.env, PORTCULLIS_DATA_DIR: join(dir, 'data') };
  const run = (args: string[], input?: Buffer) => spawnSync(process.execPath, ['--import', 'tsx', BIN, ...args], { env, input });
  assert.equal(run(['kvs', 'create', 'u8']).status, 0);
  // spawn() cannot pass invalid UTF-8 in argv; a shell can.
  const sh = spawnSync('sh', ['-c', `exec "$0" --import tsx "$1" kvs put u8 "$(printf 'k\\377x')" v`, process.execPath, BIN], { env, encoding: 'utf8' });
  assert.equal(sh.status, 64, sh.stderr);
  assert.match(sh.stderr, /is not valid UTF-8 \(first invalid byte at offset 1\)/);
  const r = run(['kvs', 'put', 'u8', 'k'], Buffer.from([0x76, 0xfe]));
  assert.equal(r.status, 64);
  assert.match(r.stderr.toString(), /the value read from standard input is not valid UTF-8 \(first invalid byte at offset 1\)/);
  // A real U+FFFD typed by the user is a valid character.
  assert.equal(run(['kvs', 'put', 'u8', 'k\ufffd', 'v']).status, 0);
  assert.equal(run(['kvs', 'get', 'u8', 'k\ufffd']).stdout.toString(), 'v\n');
});

test('kvs CLI: import-crl names the file that is not a CRL; a trust-store name that is not a file says names are not supported yet', async (t) => {
  const dir = tempDir(t);
  const dd = ['--data-dir', join(dir, 'data')];
  assert.equal((await cli('kvs', 'create', 'c', ...dd)).code, 0);
  const notCrl = join(dir, 'notes.txt');
  writeFileSync(notCrl, 'hello\n');
  let r = await cli('kvs', 'import-crl', 'c', '--crl', notCrl, '--trust-store', 'my-trust-store', ...dd);
  assert.equal(r.code, 64);
  assert.match(r.stderr, /cannot read trust-store file my-trust-store: no such file \(naming a stored trust store is not supported yet/);
  const { buildChain } = await import('../helpers/pki.js');
  writeFileSync(join(dir, 'ca.pem'), (await buildChain({ name: 'cli-crl-msg' })).intermediates[0]!.pem);
  r = await cli('kvs', 'import-crl', 'c', '--crl', notCrl, '--trust-store', join(dir, 'ca.pem'), ...dd);
  assert.equal(r.code, 5);
  assert.match(r.stderr, /InvalidCrl: CRL file .*notes\.txt: /);
});
