/**
 * The web console (issue 9) in a real browser: Debian's `chromium` driven by
 * playwright-core against a real `portcullis serve` (test/helpers/gateway.ts) with a
 * trust store, a revocation KVS, the kvs-serial-revocation example function and a
 * distribution that runs it. Covers: a wrong token shows an error (not a blank page),
 * sign-in, creating a KVS key and seeing it listed, revoking a certificate by pasting
 * its PEM, the Test tab (`deny` for the revoked serial, `allow` for a good one), the
 * Matrix tab (unsafe rows highlighted), a compile error at its line, publishing a
 * function (the stage changes), the live connection log (SSE) and the security
 * headers of the console's files. Screenshots of every page, desktop (1280 × 900) and
 * phone (390 × 844), go to test-results/console/.
 *
 * Chromium must be installed (`.ci/run` installs it with apt-get): without it these
 * tests fail, they do not skip.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { freePort } from '../../src/demo/index.js';
import { OID } from '../../src/pki/index.js';
import { startEchoOrigin, type EchoOrigin } from '../helpers/origin.js';
import { buildChain, issueCertificate, type TestChain, type TestCert } from '../helpers/pki.js';
import { issueCrl } from '../helpers/crl.js';
import { REPO_ROOT, curlThrough, startGateway, type RunningGateway } from '../helpers/gateway.js';

const CHROMIUM = process.env.PORTCULLIS_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run',
  '--disable-component-update', '--disable-sync',
];
const SHOTS = join(REPO_ROOT, 'test-results', 'console');
const HOST = 'web.console.test';
const REVOKED_SERIAL_HEX = '1005c0ffee';

let dir: string;
let gw: RunningGateway;
let origin: EchoOrigin;
let browser: Browser;
let desktop: BrowserContext;
let page: Page;
let chain: TestChain;
let revokedLeaf: TestCert;
let port: number;
const files: Record<string, string> = {};

async function shot(p: Page, name: string): Promise<void> {
  await p.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** Polls `check` every 100 ms until it is true; fails after `timeoutMs` naming `what`. (Not page.waitForFunction: the console's CSP forbids string evaluation, as it should.) */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function signIn(p: Page, token: string): Promise<void> {
  await p.goto(`${gw.adminUrl}/console/`);
  await p.getByLabel('Admin token').fill(token);
  await p.getByRole('button', { name: 'Sign in' }).click();
}

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium; .ci/run does) — the console browser tests cannot run without it`);
  // The console must be built for /console/ (npm run build does it; from a checkout, build it here).
  const built = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts', 'ensure-console.mjs')], { cwd: REPO_ROOT, stdio: 'inherit' });
  assert.equal(built.status, 0);
  assert.ok(existsSync(join(REPO_ROOT, 'dist', 'console', 'index.html')), 'dist/console was not built');
  mkdirSync(SHOTS, { recursive: true });

  dir = mkdtempSync(join(tmpdir(), 'portcullis-console-'));
  chain = await buildChain({ name: 'Console' });
  const issuer = chain.intermediates[chain.intermediates.length - 1]!;
  revokedLeaf = await issueCertificate({
    subject: 'C=US,O=Portcullis Test,CN=Revoked Console Client', issuer, eku: [OID.kpClientAuth], serial: REVOKED_SERIAL_HEX,
  });
  const server = await issueCertificate({ subject: `CN=${HOST}`, issuer: chain.root, eku: [OID.kpServerAuth], san: { dns: [HOST] } });
  const write = (name: string, text: string): string => { const f = join(dir, name); writeFileSync(f, text); files[name] = f; return f; };
  write('root.pem', chain.root.pem);
  write('server.pem', server.pem);
  write('server.key', server.keyPem);
  write('good-chain.pem', chain.presentedPem);
  write('good.key', chain.leaf.keyPem);
  write('revoked-chain.pem', [revokedLeaf, ...chain.presented.slice(1)].map((c) => c.pem).join(''));
  write('revoked.key', revokedLeaf.keyPem);
  write('revoked.json', JSON.stringify({ data: [{ key: 'deadbeef', value: 'an unrelated serial' }] }));

  origin = await startEchoOrigin();
  port = await freePort();
  gw = await startGateway({
    dir,
    config: {
      nodeName: 'console-node-1',
      resources: {
        trustStores: [{ name: 'console-ca', caBundleFile: files['root.pem'], useClientCertificateOcspEndpoint: false, comment: 'test PKI' }],
        keyValueStores: [{ name: 'revoked-serials', comment: 'serials revoked by the operator', importFile: files['revoked.json'] }],
        connectionFunctions: [
          { name: 'kvs-revoke', codeFile: join(REPO_ROOT, 'examples/functions/kvs-serial-revocation.js'), keyValueStore: 'revoked-serials', publish: true },
        ],
        distributions: [{
          name: 'web', listen: `127.0.0.1:${port}`, aliases: [HOST], certificates: [{ certFile: files['server.pem'], keyFile: files['server.key'] }],
          origin: { url: origin.url }, viewerMtls: { mode: 'required', trustStore: 'console-ca' }, connectionFunction: 'kvs-revoke',
        }],
      },
    },
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  desktop = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await desktop.newPage();
});

after(async () => {
  await browser?.close().catch(() => {});
  await gw?.stop();
  await origin?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('web console', () => {
  test('the console files are served without a token, with CSP and nosniff; the API still needs the token', async () => {
    const res = await fetch(`${gw.adminUrl}/console/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const html = await res.text();
    const asset = /src="(\/console\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    assert.ok(asset, html);
    const js = await fetch(`${gw.adminUrl}${asset}`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/);
    assert.match(js.headers.get('cache-control') ?? '', /immutable/);
    assert.equal((await fetch(`${gw.adminUrl}/console/kvs/some-route`)).status, 200, 'SPA fallback');
    assert.equal((await fetch(`${gw.adminUrl}/console/assets/missing.js`)).status, 404);
    assert.equal((await fetch(`${gw.adminUrl}/console/..%2f..%2fpackage.json`)).status !== 200, true);
    assert.equal((await fetch(`${gw.adminUrl}/v1/stats`)).status, 401);
  });

  test('a wrong token shows an error, not a blank page', async () => {
    await signIn(page, 'not-the-token-0123456789');
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.match(await alert.innerText(), /refused this token/);
    assert.ok(await page.getByLabel('Admin token').isVisible(), 'the sign-in form stays visible');
    // The token is not a password to be saved by a password manager.
    assert.equal(await page.getByLabel('Admin token').getAttribute('autocomplete'), 'off');
    await shot(page, 'signin-wrong-token-desktop');
  });

  test('sign in: the overview shows the distribution, its function and the counters', async () => {
    await page.getByLabel('Admin token').fill(gw.token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    const row = page.getByRole('row', { name: /web/ });
    await row.waitFor();
    const text = await row.innerText();
    assert.match(text, new RegExp(`127\\.0\\.0\\.1:${port}`));
    assert.match(text, /required/);
    assert.match(text, /console-ca/);
    assert.match(text, /kvs-revoke/);
    await page.getByTestId('allowed').filter({ hasText: /^\d+$/ }).waitFor();
    assert.equal(await page.evaluate('location.href.includes(\'token\')'), false, 'the token is never in the URL');
    // Nodes (GET /v1/nodes): this node, by its nodeName, with its status and applied sequence.
    const nodeRow = page.getByRole('row', { name: /console-node-1/ });
    await nodeRow.waitFor();
    assert.match(await nodeRow.innerText(), /ok[\s\S]*\d+ \/ \d+/);
    await shot(page, 'overview-desktop');
  });

  test('trust stores: the bundle\'s certificates and the OCSP switch', async () => {
    await page.getByRole('link', { name: 'Trust stores' }).click();
    await page.getByRole('heading', { name: 'console-ca' }).waitFor();
    await page.getByText('CN=Console Root CA', { exact: false }).first().waitFor();
    const sw = page.getByLabel(/Check revocation with OCSP/);
    assert.equal(await sw.isChecked(), false);
    await sw.click();
    await until('the OCSP switch to be on', () => page.getByLabel(/Check revocation with OCSP/).isChecked());
    const ts = JSON.parse((await gw.admin('/v1/trust-stores/console-ca')).body) as { UseClientCertificateOcspEndpoint: boolean };
    assert.equal(ts.UseClientCertificateOcspEndpoint, true);
    await page.getByLabel(/Check revocation with OCSP/).click();
    await until('the OCSP switch to be off', async () => !(await page.getByLabel(/Check revocation with OCSP/).isChecked()));
    // Someone else changes the trust store: the switch answers a conflict; Reload clears it.
    const cur = JSON.parse((await gw.admin('/v1/trust-stores/console-ca')).body) as { ETag: string };
    const other = await fetch(`${gw.adminUrl}/v1/trust-stores/console-ca`, {
      method: 'PUT', headers: { authorization: `Bearer ${gw.token}`, 'content-type': 'application/json', 'if-match': `"${cur.ETag}"` }, body: JSON.stringify({ comment: 'changed elsewhere' }),
    });
    assert.equal(other.status, 200);
    await page.getByLabel(/Check revocation with OCSP/).click();
    const conflict = page.getByRole('alert').filter({ hasText: 'Someone else changed this' });
    await conflict.waitFor();
    await conflict.getByRole('button', { name: 'Reload' }).click();
    await conflict.waitFor({ state: 'detached' });
    await page.getByText('changed elsewhere').waitFor();
    await shot(page, 'trust-stores-desktop');
  });

  test('key value stores: create a key and see it listed; revoke a certificate by pasting its PEM', async () => {
    await page.getByRole('link', { name: 'Key value stores' }).click();
    await page.getByRole('heading', { name: 'revoked-serials' }).waitFor();
    await page.getByRole('cell', { name: 'deadbeef', exact: true }).waitFor();
    await page.getByLabel('Key', { exact: true }).fill('console-key');
    await page.getByLabel('Value', { exact: true }).fill('added from the console');
    await page.getByRole('button', { name: 'Save key' }).click();
    await page.getByText('Saved key "console-key".').waitFor();
    await page.getByRole('cell', { name: 'console-key', exact: true }).waitFor();
    assert.equal(JSON.parse((await gw.admin('/v1/key-value-stores/revoked-serials/keys/console-key')).body).Value, 'added from the console');

    // Prefix search.
    await page.getByLabel('Key prefix').fill('conso');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByRole('cell', { name: 'deadbeef', exact: true }).waitFor({ state: 'detached' });
    await page.getByRole('cell', { name: 'console-key', exact: true }).waitFor();

    // Revoke by PEM: the key is computed by the server from the certificate.
    await page.getByLabel('Certificate PEM').fill(revokedLeaf.pem);
    await page.getByRole('button', { name: 'Compute key' }).click();
    // The serial's first byte (0x10) has the high bit clear: no leading 00.
    assert.equal(await page.getByTestId('revoke-key').innerText(), REVOKED_SERIAL_HEX);
    await page.getByRole('button', { name: /^Revoke \(add key/ }).click();
    await page.getByText(/Revoked serial/).waitFor();
    assert.equal((await gw.admin(`/v1/key-value-stores/revoked-serials/keys/${REVOKED_SERIAL_HEX}`)).status, 200);
    await page.getByLabel('Key prefix').fill('');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByRole('cell', { name: REVOKED_SERIAL_HEX, exact: true }).waitFor();
    await shot(page, 'kvs-desktop');
  });

  test('key value stores: a stale ETag is shown as a conflict with a reload', async () => {
    // Someone else writes after the page loaded: the console's ETag is now stale.
    const d = JSON.parse((await gw.admin('/v1/key-value-stores/revoked-serials')).body) as { ETag: string };
    const r = await fetch(`${gw.adminUrl}/v1/key-value-stores/revoked-serials/keys/other-writer`, {
      method: 'PUT', headers: { authorization: `Bearer ${gw.token}`, 'content-type': 'application/json', 'if-match': `"${d.ETag}"` }, body: JSON.stringify({ value: 'x' }),
    });
    assert.equal(r.status, 200);
    await page.getByLabel('Key', { exact: true }).fill('late-key');
    await page.getByLabel('Value', { exact: true }).fill('v');
    await page.getByRole('button', { name: 'Save key' }).click();
    const alert = page.getByRole('alert').filter({ hasText: 'Someone else changed this' });
    await alert.waitFor();
    await shot(page, 'kvs-conflict-desktop');
    await alert.getByRole('button', { name: 'Reload' }).click();
    await page.getByRole('cell', { name: 'other-writer', exact: true }).waitFor();
    await page.getByRole('button', { name: 'Save key' }).click();
    await page.getByText('Saved key "late-key".').waitFor();
  });

  test('key value stores: a bad import file writes nothing and names the entry; a failing batch is named; searches use ?prefix= and the last one wins', async () => {
    const countBefore = Number(await page.getByTestId('item-count').innerText());
    const entries = Array.from({ length: 121 }, (_, i) => ({ key: `imp-${String(i).padStart(3, '0')}`, value: `v${i}` }));
    const file = (data: unknown) => ({ name: 'import.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify({ data })) });
    // data[120] has a key over 512 bytes: refused before the first batch.
    await page.getByLabel(/JSON file/).setInputFiles(file([...entries.slice(0, 120), { key: 'k'.repeat(513), value: 'x' }]));
    let alert = page.getByRole('alert').filter({ hasText: 'data[120]' });
    await alert.waitFor();
    assert.match(await alert.innerText(), /key is 513 bytes \(UTF-8\), over the limit of 512 bytes\. Nothing was imported/);
    await page.getByLabel(/JSON file/).setInputFiles(file([...entries.slice(0, 3), entries[1]]));
    await page.getByRole('alert').filter({ hasText: 'duplicate key (also data[1])' }).waitFor();
    assert.equal(JSON.parse((await gw.admin('/v1/key-value-stores/revoked-serials')).body).ItemCount, countBefore, 'nothing was written');
    // The third batch is refused (simulated quota answer): the error names the batch and says the first two were applied — and stays visible.
    let posts = 0;
    await page.route('**/v1/key-value-stores/revoked-serials/keys', async (route) => {
      if (route.request().method() === 'POST' && ++posts === 3) {
        await route.fulfill({ status: 402, contentType: 'application/json', body: JSON.stringify({ error: { code: 'ServiceQuotaExceeded', message: 'the store would be 5242881 bytes, over its limit' } }) });
      } else await route.continue();
    });
    await page.getByLabel(/JSON file/).setInputFiles(file(entries));
    alert = page.getByRole('alert').filter({ hasText: 'batch 3 of 3' });
    await alert.waitFor();
    await page.unroute('**/v1/key-value-stores/revoked-serials/keys');
    await until('the item count to include the applied batches', async () => Number(await page.getByTestId('item-count').innerText()) === countBefore + 100);
    assert.match(await alert.innerText(), /data\[100\]–data\[120\].*ServiceQuotaExceeded: the store would be 5242881 bytes.*The 2 earlier batches \(100 of 121 keys\) were applied/s);
    await shot(page, 'kvs-import-partial-desktop');

    // Emoji-prefixed keys are found with one request per page (the API's prefix parameter).
    const d = JSON.parse((await gw.admin('/v1/key-value-stores/revoked-serials')).body) as { ETag: string };
    const put = await fetch(`${gw.adminUrl}/v1/key-value-stores/revoked-serials/keys`, {
      method: 'POST', headers: { authorization: `Bearer ${gw.token}`, 'content-type': 'application/json', 'if-match': `"${d.ETag}"` },
      body: JSON.stringify({ puts: [{ key: '😀-smile', value: 'e1' }, { key: '\u{FF01}-bang', value: 'e2' }] }),
    });
    assert.equal(put.status, 200);
    const listed: string[] = [];
    page.on('request', (r) => { if (r.url().includes('/keys?')) listed.push(r.url()); });
    await page.getByLabel('Key prefix').fill('😀');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByRole('cell', { name: '😀-smile', exact: true }).waitFor();
    assert.equal(await page.getByRole('cell', { name: '\u{FF01}-bang', exact: true }).count(), 0);
    assert.equal(listed.length, 1, listed.join('\n'));
    assert.match(listed[0]!, /prefix=%F0%9F%98%80/);
    // A slow earlier search does not overwrite a later one.
    await page.route('**/keys?*prefix=dead*', async (route) => { await new Promise((r) => setTimeout(r, 800)); await route.continue().catch(() => {}); });
    await page.getByLabel('Key prefix').fill('dead');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByLabel('Key prefix').fill('conso');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByRole('cell', { name: 'console-key', exact: true }).waitFor();
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal(await page.getByRole('cell', { name: 'deadbeef', exact: true }).count(), 0, 'the superseded search did not win');
    assert.equal(await page.getByRole('cell', { name: 'console-key', exact: true }).count(), 1);
    await page.unroute('**/keys?*prefix=dead*');
    await page.getByLabel('Key prefix').fill('');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByRole('cell', { name: 'deadbeef', exact: true }).waitFor();
  });

  test('revoke warns about a CA certificate and about several pasted certificates; unknown store/function URLs show only a not-found panel', async () => {
    await page.goto(`${gw.adminUrl}/console/#/kvs/revoked-serials`);
    await page.getByRole('heading', { name: 'revoked-serials' }).waitFor();
    await page.getByLabel('Certificate PEM').fill(chain.presentedPem);
    await page.getByRole('button', { name: 'Compute key' }).click();
    await page.getByTestId('revoke-key').waitFor();
    assert.match(await page.getByTestId('revoke-warning').first().innerText(), new RegExp(`^${chain.presented.length} certificates were pasted; only the first \\(the leaf\\) is used`));
    await page.getByLabel('Certificate PEM').fill(chain.root.pem);
    await page.getByRole('button', { name: 'Compute key' }).click();
    await page.getByTestId('revoke-warning').filter({ hasText: 'This is a CA certificate' }).waitFor();
    // Revoking asks first; dismissing writes nothing.
    const before = JSON.parse((await gw.admin('/v1/key-value-stores/revoked-serials')).body) as { ETag: string };
    let asked = '';
    page.once('dialog', (d) => { asked = d.message(); void d.dismiss(); });
    await page.getByRole('button', { name: /^Revoke \(add key/ }).click();
    await until('the confirmation', async () => asked !== '');
    assert.match(asked, /CA certificate/);
    assert.equal((JSON.parse((await gw.admin('/v1/key-value-stores/revoked-serials')).body) as { ETag: string }).ETag, before.ETag);
    await page.getByLabel('Certificate PEM').fill('');

    // A CRL signed by the issuing intermediate while the trust store holds only the root: imported with the issuer chain.
    const issuing = chain.intermediates[chain.intermediates.length - 1]!;
    const crl = await issueCrl({ issuer: issuing, entries: [{ serial: '0c0ffee1' }] });
    const crlFile = { name: 'issuing.crl', mimeType: 'application/pkix-crl', buffer: Buffer.from(crl.pem) };
    await page.getByLabel('Trust store that signed the CRL').selectOption('console-ca');
    await page.getByLabel(/CRL file/).setInputFiles(crlFile);
    await page.getByRole('alert').filter({ hasText: 'issuerChainPem' }).waitFor();
    await page.getByLabel(/Issuer chain/).fill(chain.intermediates.map((c) => c.pem).join(''));
    await page.getByLabel(/CRL file/).setInputFiles(crlFile);
    await page.getByText('Imported the CRL issuing.crl.').waitFor();
    assert.equal((await gw.admin('/v1/key-value-stores/revoked-serials/keys/0c0ffee1')).status, 200);

    await page.goto(`${gw.adminUrl}/console/#/kvs/no-such-store`);
    await page.getByTestId('not-found').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Save key' }).count(), 0);
    assert.equal(await page.getByRole('alert').count(), 1, 'one message, not a doubled error');
    await page.goto(`${gw.adminUrl}/console/#/functions/no-such-function`);
    await page.getByTestId('not-found').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Save (DEVELOPMENT)' }).count(), 0);
    assert.equal(await page.getByRole('alert').count(), 1);
  });

  test('functions: the Test tab answers deny for the revoked serial and allow for a good one; the matrix highlights unsafe rows', async () => {
    await page.getByRole('link', { name: 'Connection functions' }).click();
    await page.getByRole('heading', { name: 'kvs-revoke' }).waitFor();
    await page.locator('.cm-content').waitFor();
    await shot(page, 'functions-code-desktop');
    await page.getByRole('tab', { name: 'Test' }).click();
    await page.getByLabel(/Client certificate or chain/).fill([revokedLeaf, ...chain.presented.slice(1)].map((c) => c.pem).join(''));
    await page.getByLabel(/Client IP/).fill('999.1.1.1');
    await page.getByRole('button', { name: 'Run test' }).click();
    await page.getByRole('alert').filter({ hasText: 'clientIp: must be an IPv4 or IPv6 address' }).waitFor();
    await page.getByLabel(/Client IP/).fill('198.51.100.7');
    await page.getByRole('button', { name: 'Run test' }).click();
    await page.getByTestId('decision').waitFor();
    assert.equal(await page.getByTestId('decision').innerText(), 'deny');
    await page.getByText('revoked-by-kvs:10:05:c0:ff:ee').waitFor();
    await shot(page, 'functions-test-deny-desktop');
    await page.getByLabel(/Client certificate or chain/).fill(chain.presentedPem);
    await page.getByRole('button', { name: 'Run test' }).click();
    await until('decision allow', async () => (await page.getByTestId('decision').innerText()) === 'allow');
    await shot(page, 'functions-test-allow-desktop');

    await page.getByRole('tab', { name: 'Matrix' }).click();
    await page.getByRole('button', { name: 'Run matrix' }).click();
    await page.locator('table.matrix tbody tr').first().waitFor();
    assert.equal(await page.locator('table.matrix tbody tr').count(), 128);
    // kvs-serial-revocation looks only at the KVS: with OCSP Revoked and a KVS miss it allows.
    const unsafe = await page.locator('table.matrix tbody tr.unsafe').count();
    assert.ok(unsafe > 0, 'rows admitting a revoked certificate are highlighted');
    assert.match(await page.locator('table.matrix tbody tr.unsafe').first().innerText(), /revoked allowed/);
    await shot(page, 'functions-matrix-desktop');
  });

  test('functions: a compile error is shown at its line; publish changes the stage', async () => {
    await page.getByLabel('New function name').fill('console-fn');
    await page.getByRole('button', { name: 'Create function' }).click();
    await page.getByRole('heading', { name: 'console-fn' }).waitFor();
    assert.equal(await page.getByTestId('fn-status').innerText(), 'UNPUBLISHED');
    const editor = page.locator('.cm-content');
    await editor.waitFor();
    await editor.click();
    await page.keyboard.press('Control+A');
    await page.keyboard.insertText("async function connectionHandler(connection) {\n  const x = ;\n  return connection.allow();\n}\n");
    await page.getByRole('button', { name: 'Save (DEVELOPMENT)' }).click();
    const err = page.getByRole('alert').filter({ hasText: 'Compile error at line 2' });
    await err.waitFor();
    await page.locator('.cm-lint-marker-error').first().waitFor();
    await shot(page, 'functions-compile-error-desktop');
    await editor.click();
    await page.keyboard.press('Control+A');
    await page.keyboard.insertText("async function connectionHandler(connection) {\n  console.log('hello from the console');\n  return connection.deny();\n}\n");
    await page.getByRole('button', { name: 'Save (DEVELOPMENT)' }).click();
    await page.getByText('Saved to DEVELOPMENT.').waitFor();
    await page.getByRole('button', { name: 'Publish (LIVE)' }).click();
    await page.getByText(/Published: LIVE is now ETag/).waitFor();
    await until('the stage to change', async () => (await page.getByTestId('fn-status').innerText()) !== 'UNPUBLISHED');
    assert.equal(await page.getByTestId('fn-status').innerText(), 'UNASSOCIATED');
    assert.doesNotMatch(await page.getByTestId('live-etag').innerText(), /not published/);
    const live = JSON.parse((await gw.admin('/v1/connection-functions/console-fn?stage=LIVE')).body) as { Stage: string };
    assert.equal(live.Stage, 'LIVE');
    await page.getByRole('tab', { name: 'Diff' }).click();
    await page.getByText('DEVELOPMENT and LIVE have the same code.').waitFor();
    await shot(page, 'functions-diff-desktop');
  });

  test('functions: unsaved edits are never discarded silently (conflict reload, header reload, navigation)', async () => {
    await page.goto(`${gw.adminUrl}/console/#/functions/console-fn`);
    await page.getByRole('tab', { name: 'Code' }).click();
    const editor = page.locator('.cm-content');
    await editor.waitFor();
    const edited = "async function connectionHandler(connection) {\n  // my unsaved edit\n  return connection.deny();\n}\n";
    await editor.click();
    await page.keyboard.press('Control+A');
    await page.keyboard.insertText(edited);
    await page.getByTestId('unsaved').waitFor();
    // Header Reload asks first; cancelling keeps the edit.
    page.once('dialog', (d) => void d.dismiss());
    await page.getByRole('button', { name: 'Reload', exact: true }).click();
    await until('the edit to survive a cancelled reload', async () => (await editor.innerText()).includes('my unsaved edit'));
    // Navigating away and back restores the draft, with a notice.
    await page.getByRole('link', { name: 'Overview' }).click();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await page.goto(`${gw.adminUrl}/console/#/functions/console-fn`);
    await page.getByTestId('draft-restored').waitFor();
    await until('the restored edit in the editor', async () => (await page.locator('.cm-content').innerText()).includes('my unsaved edit'));
    // Someone else saves: our Save conflicts; the conflict's Reload keeps our edit and asks.
    const cur = JSON.parse((await gw.admin('/v1/connection-functions/console-fn/code?stage=DEVELOPMENT')).body) as { ETag: string };
    const other = await fetch(`${gw.adminUrl}/v1/connection-functions/console-fn`, {
      method: 'PUT', headers: { authorization: `Bearer ${gw.token}`, 'content-type': 'application/json', 'if-match': `"${cur.ETag}"` },
      body: JSON.stringify({ code: "async function connectionHandler(connection) {\n  // other writer\n  return connection.allow();\n}\n" }),
    });
    assert.equal(other.status, 200);
    await page.getByRole('button', { name: 'Save (DEVELOPMENT)' }).click();
    const conflict = page.getByRole('alert').filter({ hasText: 'Someone else changed this' });
    await conflict.waitFor();
    assert.match(await conflict.innerText(), /your changes are still in the editor/);
    await conflict.getByRole('button', { name: 'Reload' }).click();
    await page.getByTestId('incoming-version').waitFor();
    assert.match(await page.locator('.cm-content').innerText(), /my unsaved edit/);
    await shot(page, 'functions-incoming-version-desktop');
    await page.getByRole('button', { name: 'Keep my changes' }).click();
    await page.getByRole('button', { name: 'Save (DEVELOPMENT)' }).click();
    await page.getByText('Saved to DEVELOPMENT.').waitFor();
    const saved = JSON.parse((await gw.admin('/v1/connection-functions/console-fn/code?stage=DEVELOPMENT')).body) as { Code: string };
    assert.match(saved.Code, /my unsaved edit/);
    // A failed save of broken code, then header Reload (confirmed): the server code is back and Publish works again.
    await editor.click();
    await page.keyboard.press('Control+A');
    await page.keyboard.insertText('async function connectionHandler(c) {\n  const = 1;\n}\n');
    await page.getByRole('button', { name: 'Save (DEVELOPMENT)' }).click();
    await page.getByRole('alert').filter({ hasText: 'Compile error' }).waitFor();
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'Reload', exact: true }).click();
    await until('the server code back in the editor', async () => (await page.locator('.cm-content').innerText()).includes('my unsaved edit'));
    assert.equal(await page.getByRole('button', { name: 'Publish (LIVE)' }).isEnabled(), true);
    assert.equal(await page.getByTestId('unsaved').count(), 0);
    // A 401 signs the user out: the unsaved edit survives the sign-in.
    await editor.click();
    await page.keyboard.press('Control+A');
    await page.keyboard.insertText('async function connectionHandler(c) {\n  // edit before the token expired\n  return c.deny();\n}\n');
    await page.getByTestId('unsaved').waitFor();
    await page.evaluate("sessionStorage.setItem('portcullis.adminToken', 'expired-token-0123456789')");
    await page.getByRole('link', { name: 'Overview' }).click();
    await page.getByLabel('Admin token').waitFor();
    await page.getByLabel('Admin token').fill(gw.token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.goto(`${gw.adminUrl}/console/#/functions/console-fn`);
    await page.getByTestId('draft-restored').waitFor();
    await until('the edit made before the sign-out', async () => (await page.locator('.cm-content').innerText()).includes('edit before the token expired'));
    await page.getByRole('button', { name: 'Discard my changes' }).click();
    await until('the server code', async () => !(await page.locator('.cm-content').innerText()).includes('edit before the token expired'));
    assert.equal(await page.getByTestId('draft-restored').count(), 0);
  });

  test('connections: the live tail shows an allowed and a denied connection, and filters by status', async () => {
    await page.getByRole('link', { name: 'Connections' }).click();
    await page.getByText('live', { exact: true }).waitFor();
    const base = { host: HOST, port, cacert: files['root.pem']! };
    const good = await curlThrough({ ...base, cert: files['good-chain.pem']!, key: files['good.key']! });
    assert.equal(good.status, 200, good.stderr);
    const bad = await curlThrough({ ...base, cert: files['revoked-chain.pem']!, key: files['revoked.key']! });
    assert.equal(bad.status, 0);
    await page.locator('table.log tbody tr[data-status="Success"]').first().waitFor();
    await page.locator('table.log tbody tr[data-status^="Failed"]').first().waitFor();
    await shot(page, 'connections-desktop');
    await page.getByLabel('Status').selectOption('denied');
    await page.getByRole('button', { name: 'Apply filter' }).click();
    await page.getByText('live', { exact: true }).waitFor();
    await curlThrough({ ...base, cert: files['good-chain.pem']!, key: files['good.key']! });
    await curlThrough({ ...base, cert: files['revoked-chain.pem']!, key: files['revoked.key']! });
    await page.locator('table.log tbody tr[data-status^="Failed"]').first().waitFor();
    assert.equal(await page.locator('table.log tbody tr[data-status="Success"]').count(), 0);
    // The overview's counters saw the connections.
    await page.getByRole('link', { name: 'Overview' }).click();
    await until('the denied counter to count the connections', async () => Number(await page.getByTestId('denied').innerText()) >= 1, 20_000);
  });

  test('a malformed URL shows "not found" (not a blank app); the Connections page signs out when the token stops working', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    try {
      const p = await ctx.newPage();
      const errors: string[] = [];
      p.on('pageerror', (e) => errors.push(e.message));
      await signIn(p, gw.token);
      await p.getByRole('heading', { name: 'Overview' }).waitFor();
      await p.goto(`${gw.adminUrl}/console/#/kvs/%E0%A4%A`);
      await p.getByRole('heading', { name: 'Not found' }).waitFor();
      assert.match(await p.locator('main').innerText(), /malformed/);
      await p.getByRole('link', { name: 'Back to the overview' }).click();
      await p.getByRole('heading', { name: 'Overview' }).waitFor();
      await p.goto(`${gw.adminUrl}/console/#/no-such-page`);
      await p.getByRole('heading', { name: 'Not found' }).waitFor();
      assert.deepEqual(errors, []);
      // The stream's own fetch gets 401 (the stored token no longer works): back to sign-in with the reason.
      await p.goto(`${gw.adminUrl}/console/#/connections`);
      await p.getByText('live', { exact: true }).waitFor();
      await p.evaluate("sessionStorage.setItem('portcullis.adminToken', 'revoked-token-0123456789')");
      await p.getByRole('button', { name: 'Pause' }).click();
      await p.getByRole('button', { name: 'Resume' }).click();
      await p.getByLabel('Admin token').waitFor();
      await p.getByText('no longer accepts the stored token').waitFor();
    } finally {
      await ctx.close();
    }
  });

  test('phone-size screenshots of every page', async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    try {
      const p = await phone.newPage();
      await signIn(p, gw.token);
      await p.getByRole('heading', { name: 'Overview' }).waitFor();
      await p.getByRole('row', { name: /web/ }).waitFor();
      await shot(p, 'overview-phone');
      const pages: [string, (p: Page) => Promise<void>, string][] = [
        ['trust-stores', (p) => p.getByText('CN=Console Root CA').first().waitFor(), 'trust-stores-phone'],
        ['kvs/revoked-serials', (p) => p.getByText('deadbeef', { exact: true }).waitFor(), 'kvs-phone'],
        ['functions/kvs-revoke', (p) => p.locator('.cm-content').waitFor(), 'functions-phone'],
        ['functions/kvs-revoke', async (p) => {
          // The matrix on a phone: the unsafe marker is in the first column, on screen.
          await p.getByRole('tab', { name: 'Matrix' }).click();
          await p.getByRole('button', { name: 'Run matrix' }).click();
          const mark = p.locator('table.matrix tbody tr.unsafe td:first-child .unsafe-mark').first();
          await mark.waitFor();
          const box = await mark.boundingBox();
          assert.ok(box && box.x >= 0 && box.x + box.width <= 390, `the unsafe marker is on screen: ${JSON.stringify(box)}`);
        }, 'functions-matrix-phone'],
        ['connections', async (p) => {
          await p.getByText('live', { exact: true }).waitFor();
          const base = { host: HOST, port, cacert: files['root.pem']! };
          await curlThrough({ ...base, cert: files['good-chain.pem']!, key: files['good.key']! });
          await curlThrough({ ...base, cert: files['revoked-chain.pem']!, key: files['revoked.key']! });
          await p.locator('table.log tbody tr[data-status^="Failed"]').first().waitFor();
          await p.locator('table.log tbody tr[data-status="Success"]').first().waitFor();
        }, 'connections-phone'],
      ];
      for (const [hash, loaded, name] of pages) {
        await p.goto(`${gw.adminUrl}/console/#/${hash}`);
        await loaded(p);
        await shot(p, name);
      }
      // The menu opens with the keyboard and leads to the pages.
      await p.getByRole('button', { name: 'Menu' }).focus();
      await p.keyboard.press('Enter');
      await p.getByRole('link', { name: 'Key value stores' }).waitFor();
      await shot(p, 'menu-phone');
      // Escape closes it again, focus back on the Menu button.
      await p.keyboard.press('Escape');
      await until('the menu to close', async () => (await p.getByRole('button', { name: 'Menu' }).getAttribute('aria-expanded')) === 'false');
      assert.equal(await p.evaluate('document.activeElement && document.activeElement.textContent'), 'Menu');
      // No page is wider than the phone.
      const wide = await p.evaluate('document.documentElement.scrollWidth') as number;
      assert.ok(wide <= 390, `page is ${wide}px wide on a 390px phone`);
    } finally {
      await phone.close();
    }
  });
});
