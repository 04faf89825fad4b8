/**
 * Serving the built web console (console.ts): files with their content types and
 * security headers, no token for the files (the API still needs it), SPA fallback,
 * no path traversal, the "not built" page, and finding dist/console from src/ and dist/.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createAdminApp } from './index.js';
import { findConsoleAssets, isConsoleUrl } from './console.js';
import { openSqliteStore } from '../store/index.js';

const TOKEN = 'console-test-token-0123456789';

async function app(consoleDir: string | null) {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-console-store-'));
  const store = await openSqliteStore({ dataDir: dir });
  const a = await createAdminApp({
    token: TOKEN, metrics: async () => ({ contentType: 'text/plain', body: '' }), readiness: () => ({ ready: true, status: 'ok', reasons: [] }),
    api: { store }, consoleDir,
  });
  return { a, close: async () => { await a.close(); await store.close(); rmSync(dir, { recursive: true, force: true }); } };
}

test('console files: no token needed, content types, CSP with a nonce on the page, immutable assets, SPA fallback, no traversal', async (t) => {
  const built = mkdtempSync(join(tmpdir(), 'portcullis-console-'));
  mkdirSync(join(built, 'assets'));
  writeFileSync(join(built, 'index.html'), '<!doctype html><html><head><title>x</title></head><body></body></html>');
  writeFileSync(join(built, 'assets', 'index-abc.js'), 'console.log(1)');
  writeFileSync(join(built, 'assets', 'index-abc.css'), 'body{}');
  writeFileSync(join(tmpdir(), 'portcullis-secret.txt'), 'TOP-SECRET-CONTENT');
  const { a, close } = await app(built);
  t.after(async () => { await close(); rmSync(built, { recursive: true, force: true }); });

  const redirect = await a.inject({ method: 'GET', url: '/console' });
  assert.equal(redirect.statusCode, 308);
  assert.equal(redirect.headers.location, '/console/');
  const page = await a.inject({ method: 'GET', url: '/console/' });
  assert.equal(page.statusCode, 200);
  assert.match(String(page.headers['content-type']), /^text\/html; charset=utf-8/);
  const csp = String(page.headers['content-security-policy']);
  assert.match(csp, /^default-src 'self';/);
  const nonce = /'nonce-([^']+)'/.exec(csp)?.[1];
  assert.ok(nonce);
  assert.match(page.body, new RegExp(`<meta name="csp-nonce" content="${nonce.replace(/[+/=]/g, '\\$&')}">`));
  assert.equal(page.headers['x-content-type-options'], 'nosniff');
  assert.equal(page.headers['cache-control'], 'no-store');
  const second = await a.inject({ method: 'GET', url: '/console/' });
  assert.notEqual(/'nonce-([^']+)'/.exec(String(second.headers['content-security-policy']))?.[1], nonce, 'a fresh nonce per response');

  const js = await a.inject({ method: 'GET', url: '/console/assets/index-abc.js' });
  assert.equal(js.statusCode, 200);
  assert.match(String(js.headers['content-type']), /^text\/javascript/);
  assert.equal(js.headers['cache-control'], 'public, max-age=31536000, immutable');
  assert.equal(js.headers['x-content-type-options'], 'nosniff');
  assert.match(String((await a.inject({ method: 'GET', url: '/console/assets/index-abc.css' })).headers['content-type']), /^text\/css/);

  assert.equal((await a.inject({ method: 'GET', url: '/console/functions/abc' })).statusCode, 200, 'app routes get the page');
  assert.equal((await a.inject({ method: 'GET', url: '/console/assets/nope.js' })).statusCode, 404);
  for (const url of ['/console/../portcullis-secret.txt', '/console/%2e%2e/portcullis-secret.txt', '/console/assets/..%2f..%2fportcullis-secret.txt']) {
    const r = await a.inject({ method: 'GET', url });
    assert.notEqual(r.statusCode, 200, url);
    assert.doesNotMatch(r.body, /TOP-SECRET-CONTENT/, url);
  }
  // The API is not opened by the console exemption, however the path is spelled.
  assert.equal((await a.inject({ method: 'GET', url: '/v1/trust-stores' })).statusCode, 401);
  for (const url of ['/console/../v1/trust-stores', '/console/%2e%2e/v1/trust-stores', '/console/..%2fv1%2ftrust-stores', '/console?/../v1/trust-stores']) {
    const r = await a.inject({ method: 'GET', url });
    assert.doesNotMatch(r.body, /"Items"/, url);
  }
  assert.equal((await a.inject({ method: 'GET', url: '/consolex' })).statusCode, 401);
});

test('console not built: the pages say how to build it (503), the API is unaffected', async (t) => {
  const { a, close } = await app(null);
  t.after(close);
  const r = await a.inject({ method: 'GET', url: '/console/' });
  assert.equal(r.statusCode, 503);
  assert.match(r.body, /npm run build/);
  assert.equal((await a.inject({ method: 'GET', url: '/v1/trust-stores', headers: { authorization: `Bearer ${TOKEN}` } })).statusCode, 200);
});

test('findConsoleAssets: dist/console next to dist/admin, or <repo>/dist/console from src/admin', () => {
  const root = mkdtempSync(join(tmpdir(), 'portcullis-find-'));
  try {
    mkdirSync(join(root, 'dist', 'admin'), { recursive: true });
    mkdirSync(join(root, 'src', 'admin'), { recursive: true });
    assert.equal(findConsoleAssets(pathToFileURL(join(root, 'dist', 'admin', 'console.js')).href), undefined);
    mkdirSync(join(root, 'dist', 'console'));
    writeFileSync(join(root, 'dist', 'console', 'index.html'), '');
    assert.equal(findConsoleAssets(pathToFileURL(join(root, 'dist', 'admin', 'console.js')).href), join(root, 'dist', 'console'));
    assert.equal(findConsoleAssets(pathToFileURL(join(root, 'src', 'admin', 'console.ts')).href), join(root, 'dist', 'console'));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  assert.equal(isConsoleUrl('/console'), true);
  assert.equal(isConsoleUrl('/console/assets/a.js'), true);
  assert.equal(isConsoleUrl('/consoles'), false);
  assert.equal(isConsoleUrl('/v1/console'), false);
});
