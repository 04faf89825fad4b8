/**
 * Serves the web console (the single-page app built from `console/` by
 * `npm run build:console` into `dist/console/`) at `/console/`. The assets need no
 * token: the app signs in with the admin token and sends it as a bearer header on its
 * API calls (kept in the tab's session storage, never in a URL).
 *
 * Security headers: a Content-Security-Policy allowing only this origin (styles also
 * with a per-response nonce, which the app hands to CodeMirror for the style elements
 * it may create), `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`,
 * `X-Frame-Options: DENY`. Hashed build assets are cached for a year (immutable); the
 * page itself is never cached (it carries the nonce).
 */
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';

/** URL prefix of the console. */
export const CONSOLE_PATH = '/console';

const CONTENT_TYPES: Readonly<Record<string, string>> = Object.freeze({
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
});

/**
 * Where the built console is: `dist/console/` next to the running module's folder —
 * `dist/admin/console.js` → `dist/console/`, or `src/admin/console.ts` (run through
 * tsx) → `<repo>/dist/console/`. Undefined when neither holds an `index.html`.
 */
export function findConsoleAssets(moduleUrl: string = import.meta.url): string | undefined {
  const here = fileURLToPath(new URL('.', moduleUrl));
  for (const dir of [resolve(here, '..', 'console'), resolve(here, '..', '..', 'dist', 'console')]) {
    if (existsSync(join(dir, 'index.html'))) return dir;
  }
  return undefined;
}

/** True for `/console`, `/console/…` and `/console?…` (the routes that need no token). */
export function isConsoleUrl(url: string): boolean {
  return url === CONSOLE_PATH || url.startsWith(`${CONSOLE_PATH}/`) || url.startsWith(`${CONSOLE_PATH}?`);
}

function securityHeaders(reply: FastifyReply, nonce?: string): FastifyReply {
  const style = nonce ? `style-src 'self' 'nonce-${nonce}'` : "style-src 'self'";
  return reply
    .header('content-security-policy', `default-src 'self'; ${style}; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'`)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY');
}

const NOT_BUILT_PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Portcullis console</title></head>
<body><h1>Portcullis console not built</h1><p>The web console's files were not found. Run <code>npm run build</code>
(or <code>npm run build:console</code>) in the Portcullis checkout, then reload this page. The admin API works without it.</p></body></html>`;

/**
 * Registers `GET /console` (redirect to `/console/`) and `GET /console/*`: a file of
 * the build when the path names one, `index.html` for any other path without a file
 * extension (the app's own routes), 404 for a missing asset.
 * @param dirOption the built console (default {@link findConsoleAssets}); `null` or
 *   not found: every console page answers 503 with a page saying how to build it.
 */
export function registerConsoleRoutes(app: FastifyInstance, dirOption?: string | null): void {
  const dir = dirOption === null ? undefined : dirOption ?? findConsoleAssets();
  let indexTemplate: Promise<string> | undefined;
  const sendIndex = async (reply: FastifyReply): Promise<FastifyReply> => {
    if (!dir) return securityHeaders(reply.code(503)).header('cache-control', 'no-store').type('text/html; charset=utf-8').send(NOT_BUILT_PAGE);
    indexTemplate ??= readFile(join(dir, 'index.html'), 'utf8');
    const nonce = randomBytes(16).toString('base64');
    const html = (await indexTemplate).replace('<head>', `<head>\n    <meta name="csp-nonce" content="${nonce}">`);
    return securityHeaders(reply, nonce).header('cache-control', 'no-store').type('text/html; charset=utf-8').send(html);
  };
  app.get(CONSOLE_PATH, async (_req, reply) => reply.redirect(`${CONSOLE_PATH}/`, 308));
  app.get(`${CONSOLE_PATH}/*`, async (req, reply) => {
    const rel = (req.params as Record<string, string>)['*'] ?? '';
    if (rel === '' || rel === 'index.html' || !extname(rel)) return sendIndex(reply);
    if (!dir) return reply.code(404).send({ error: { code: 'EntityNotFound', message: `no console file ${rel}` } });
    const file = resolve(dir, rel);
    const type = CONTENT_TYPES[extname(file).toLowerCase()];
    const inside = file.startsWith(dir + sep);
    const st = inside && type ? await stat(file).catch(() => undefined) : undefined;
    if (!st?.isFile()) return reply.code(404).send({ error: { code: 'EntityNotFound', message: `no console file ${rel}` } });
    const immutable = rel.startsWith('assets/');
    return securityHeaders(reply)
      .header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
      .type(type!)
      .send(await readFile(file));
  });
}
