import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, stat, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAdminServer, parseListenAddress, resolveAdminToken, bearerMatches } from './index.js';

test('parseListenAddress accepts host:port and [v6]:port, rejects the rest with the value', () => {
  assert.deepEqual(parseListenAddress('127.0.0.1:9901'), { host: '127.0.0.1', port: 9901 });
  assert.deepEqual(parseListenAddress('[::1]:0'), { host: '::1', port: 0 });
  assert.throws(() => parseListenAddress('localhost'), /"localhost" is not host:port/);
  assert.throws(() => parseListenAddress('h:70000'), /not host:port/);
});

test('bearerMatches: exact token only', () => {
  assert.equal(bearerMatches('Bearer abc', 'abc'), true);
  assert.equal(bearerMatches('bearer abc', 'abc'), true);
  assert.equal(bearerMatches('Bearer abd', 'abc'), false);
  assert.equal(bearerMatches('Bearer abcd', 'abc'), false);
  assert.equal(bearerMatches(undefined, 'abc'), false);
  assert.equal(bearerMatches('Basic abc', 'abc'), false);
});

test('resolveAdminToken: config wins; else generated once with mode 0600 and reused', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pc-admin-'));
  try {
    assert.deepEqual(await resolveAdminToken('given-token-123456', dir), { token: 'given-token-123456', origin: 'config' });
    const a = await resolveAdminToken(undefined, dir);
    assert.equal(a.origin, 'generated');
    assert.equal((await stat(a.file!)).mode & 0o777, 0o600);
    assert.equal((await readFile(a.file!, 'utf8')).trim(), a.token);
    const b = await resolveAdminToken('', dir);
    assert.equal(b.origin, 'file');
    assert.equal(b.token, a.token);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('admin server: /healthz open, /metrics and /readyz need the bearer token', async () => {
  const srv = await startAdminServer({
    listen: '127.0.0.1:0',
    token: 'tok-0123456789abcdef',
    metrics: async () => ({ contentType: 'text/plain; version=0.0.4', body: 'x_total 1\n' }),
    readiness: () => ({ ready: false, status: 'starting', reasons: ['workers starting'] }),
  });
  try {
    const base = `http://127.0.0.1:${srv.address.port}`;
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    const denied = await fetch(`${base}/metrics`);
    assert.equal(denied.status, 401);
    assert.equal(((await denied.json()) as { error: { code: string } }).error.code, 'AccessDenied');
    const auth = { authorization: 'Bearer tok-0123456789abcdef' };
    const m = await fetch(`${base}/metrics`, { headers: auth });
    assert.equal(m.status, 200);
    assert.equal(await m.text(), 'x_total 1\n');
    const r = await fetch(`${base}/readyz`, { headers: auth });
    assert.equal(r.status, 503);
    assert.deepEqual(((await r.json()) as { reasons: string[] }).reasons, ['workers starting']);
    assert.equal((await fetch(`${base}/nope`, { headers: auth })).status, 404);
  } finally {
    await srv.close();
  }
});

test('resolveAdminToken: an unusable token file is an error, a readable-by-others one is set to 0600', async () => {
  const { writeFile: wf, chmod: cm } = await import('node:fs/promises');
  const dir = await mkdtemp(join(tmpdir(), 'pc-admin-'));
  try {
    const file = join(dir, 'admin-token');
    await wf(file, 'short\n');
    await assert.rejects(resolveAdminToken(undefined, dir), /does not hold a usable token/);
    assert.equal((await readFile(file, 'utf8')).trim(), 'short', 'the file is left alone');
    await wf(file, 'a-long-enough-token-0123456789\n');
    await cm(file, 0o644);
    const r = await resolveAdminToken(undefined, dir);
    assert.equal(r.token, 'a-long-enough-token-0123456789');
    assert.equal(r.repairedMode, 0o644);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
