/**
 * Header rewriting between the client and the origin (SPEC section 6): what the origin
 * receives in place of what the client sent, and what the client receives in place of
 * what the origin answered. Pure functions over header lists; no I/O.
 *
 * Request side, in this order:
 * 1. hop-by-hop headers removed (RFC 9110 7.6.1): `Connection` and every header it
 *    names, `Keep-Alive`, `Proxy-Connection`, `TE` (kept only as `TE: trailers` when the
 *    client offered trailers), `Transfer-Encoding`, `Upgrade` (re-added for a WebSocket
 *    upgrade only), `Proxy-Authorization`, `Proxy-Authenticate`, `HTTP2-Settings`;
 *    also `Expect` (Node has already answered `100-continue`; undici refuses it);
 * 2. every client copy of `CloudFront-Viewer-Cert-*`, `Client-Cert`, `Client-Cert-Chain`
 *    and of any name in the gate's certificate headers removed — compared
 *    case-insensitively and with `_` read as `-`, because CGI/WSGI-style origins map
 *    `Client_Cert` and `Client-Cert` to the same variable;
 * 3. the gateway-owned headers (`Host`, `X-Forwarded-For`, `X-Forwarded-Proto`,
 *    `X-Forwarded-Host`, `Forwarded`, `Via`) rebuilt: underscore spellings of them are
 *    dropped, `X-Forwarded-For`, `Forwarded` and `Via` get this hop appended to the
 *    client's list, the others are replaced;
 * 4. the gate's certificate headers added.
 */

/** A header list in order: `[name, value]` pairs, names as received (any case). */
export type HeaderPairs = Array<[string, string]>;

/** Response headers as undici returns them: lowercase names, repeated headers as arrays. */
export type ResponseHeaders = Record<string, string | string[] | undefined>;

/** The hop-by-hop headers of RFC 9110 7.6.1 (plus the legacy and HTTP/2-upgrade ones), lowercase. */
export const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'transfer-encoding', 'upgrade',
  'proxy-authorization', 'proxy-authenticate', 'http2-settings',
]);

/** Headers the gateway sets itself (lowercase); client copies never pass as they are. */
const GATEWAY_HEADERS: ReadonlySet<string> = new Set([
  'host', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded', 'via',
]);

/** The product token used in `Via` (RFC 9110 7.6.3 pseudonym). */
export const VIA_PSEUDONYM = 'portcullis';

/**
 * True when `name` (any case, `_` or `-`) is a client-certificate header that only the
 * gateway may set: `CloudFront-Viewer-Cert-*` (any suffix), `Client-Cert`,
 * `Client-Cert-Chain` (RFC 9440).
 */
export function isCertificateHeaderName(name: string): boolean {
  const n = normaliseName(name);
  return n.startsWith('cloudfront-viewer-cert') || n === 'client-cert' || n === 'client-cert-chain';
}

/** Lowercase, `_` read as `-`. */
function normaliseName(name: string): string {
  return name.toLowerCase().replace(/_/g, '-');
}

/** Comma-separated tokens of every `Connection` header, lowercase (RFC 9110 7.6.1). */
function connectionTokens(headers: HeaderPairs): Set<string> {
  const out = new Set<string>();
  for (const [name, value] of headers) {
    if (name.toLowerCase() !== 'connection') continue;
    for (const t of value.split(',')) {
      const tok = t.trim().toLowerCase();
      if (tok) out.add(tok);
    }
  }
  return out;
}

/** What {@link buildOriginRequestHeaders} needs to know about the request and the connection. */
export interface OriginHeaderContext {
  /** The client's IP address as the socket reports it (IPv6 without brackets). */
  clientIp: string;
  /**
   * The client's host: `Host` for HTTP/1.1, `:authority` (else `Host`) for HTTP/2.
   * Undefined when the client sent none (HTTP/1.0).
   */
  clientHost: string | undefined;
  /** `Host` sent to the origin when the client sent none: the origin URL's `host`. */
  fallbackHost: string;
  /** Headers the gate computed for this connection, added last (canonical case). */
  certificateHeaders: Record<string, string>;
  /** The client's HTTP version for `Via`: `'1.0'`, `'1.1'` or `'2'`. */
  httpVersion: string;
  /** For a WebSocket upgrade: the client's `Upgrade` value, re-sent with `Connection: Upgrade`. */
  websocketUpgrade?: string;
}

/**
 * The header list for the origin request (see the module comment for the rules).
 * `headers` must not contain HTTP/2 pseudo-headers. `Host` comes first; the result has
 * no hop-by-hop header except `Connection: Upgrade` + `Upgrade` for a WebSocket upgrade
 * and `TE: trailers`. Never throws.
 */
export function buildOriginRequestHeaders(headers: HeaderPairs, ctx: OriginHeaderContext): HeaderPairs {
  const named = connectionTokens(headers);
  const certNames = new Set(Object.keys(ctx.certificateHeaders).map(normaliseName));
  const out: HeaderPairs = [];
  const xff: string[] = [];
  const forwarded: string[] = [];
  const via: string[] = [];
  let teTrailers = false;
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    const norm = normaliseName(name);
    if (lower === 'te') {
      teTrailers ||= value.split(',').some((t) => t.trim().toLowerCase().split(';')[0] === 'trailers');
      continue;
    }
    if (HOP_BY_HOP_HEADERS.has(lower) || named.has(lower) || lower === 'expect') continue;
    if (isCertificateHeaderName(name) || certNames.has(norm)) continue;
    if (GATEWAY_HEADERS.has(norm)) {
      if (lower !== norm) continue; // an underscore spelling of a gateway header
      if (lower === 'x-forwarded-for') xff.push(value);
      else if (lower === 'forwarded') forwarded.push(value);
      else if (lower === 'via') via.push(value);
      continue; // host, x-forwarded-proto, x-forwarded-host: rebuilt below
    }
    out.push([name, value]);
  }
  const host = ctx.clientHost ?? ctx.fallbackHost;
  const head: HeaderPairs = [['host', host]];
  if (ctx.websocketUpgrade !== undefined) {
    head.push(['connection', 'Upgrade'], ['upgrade', ctx.websocketUpgrade]);
  }
  if (teTrailers) head.push(['te', 'trailers']);
  out.unshift(...head);
  out.push(['x-forwarded-for', [...xff, ctx.clientIp].join(', ')]);
  out.push(['x-forwarded-proto', 'https']);
  if (ctx.clientHost !== undefined) out.push(['x-forwarded-host', ctx.clientHost]);
  out.push(['forwarded', [...forwarded, forwardedElement(ctx.clientIp, ctx.clientHost)].join(', ')]);
  out.push(['via', [...via, `${ctx.httpVersion} ${VIA_PSEUDONYM}`].join(', ')]);
  for (const [name, value] of Object.entries(ctx.certificateHeaders)) out.push([name, value]);
  return out;
}

/** RFC 7230 tchar run: a value that needs no quoting in `Forwarded`. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** A quoted-string (RFC 9110 5.6.4) unless `v` is a token. */
function tokenOrQuoted(v: string): string {
  return TOKEN.test(v) ? v : `"${v.replace(/["\\]/g, '\\$&')}"`;
}

/**
 * This hop's `Forwarded` element (RFC 7239 4): `for=<client>;host=<host>;proto=https`.
 * IPv6 addresses are bracketed and quoted (RFC 7239 6); `host` is omitted when the
 * client sent none.
 */
export function forwardedElement(clientIp: string, host: string | undefined): string {
  const node = clientIp.includes(':') ? `"[${clientIp}]"` : clientIp;
  const parts = [`for=${node}`];
  if (host !== undefined) parts.push(`host=${tokenOrQuoted(host)}`);
  parts.push('proto=https');
  return parts.join(';');
}

/**
 * The origin's response headers made fit for the client: hop-by-hop headers (and every
 * header the origin's `Connection` names) removed; for HTTP/2 also every
 * connection-specific header RFC 9113 8.2.2 forbids. Names stay lowercase (undici
 * already lowercases them). Repeated headers stay arrays. Never throws.
 */
export function cleanResponseHeaders(headers: ResponseHeaders): Record<string, string | string[]> {
  const named = new Set<string>();
  const conn = headers.connection;
  for (const v of conn === undefined ? [] : Array.isArray(conn) ? conn : [conn]) {
    for (const t of v.split(',')) named.add(t.trim().toLowerCase());
  }
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP_HEADERS.has(lower) || named.has(lower)) continue;
    out[lower] = value;
  }
  return out;
}

/**
 * The origin request target: the origin URL's base path joined with the client's
 * target. `basePath` is the URL's pathname (`/` or `/base` or `/base/`); `target` is the
 * client's request target in origin form (`/a?b`), absolute form (`https://h/a?b`, only
 * path and query are kept) or `*`. Exactly one `/` separates the two. Never throws:
 * an unparsable absolute form becomes `/`.
 */
export function joinOriginPath(basePath: string, target: string): string {
  let t = target;
  if (t === '*') return basePath === '/' || basePath === '' ? '*' : basePath;
  if (!t.startsWith('/')) {
    try {
      const u = new URL(t);
      t = `${u.pathname}${u.search}`;
    } catch {
      t = '/';
    }
  }
  const base = basePath.endsWith('/') ? basePath.slice(0, -1) : basePath;
  return `${base}${t}`;
}

/**
 * True when a request asks for a WebSocket upgrade (RFC 6455 4.1): method GET and
 * `websocket` among the `Upgrade` tokens (any case).
 */
export function isWebSocketUpgrade(method: string | undefined, upgrade: string | string[] | undefined): boolean {
  if (method !== 'GET' || upgrade === undefined) return false;
  const values = Array.isArray(upgrade) ? upgrade : [upgrade];
  return values.some((v) => v.split(',').some((t) => t.trim().toLowerCase().split('/')[0] === 'websocket'));
}

/** `[name1, value1, …]` (Node `rawHeaders`) as pairs. */
export function pairsFromRaw(raw: readonly string[]): HeaderPairs {
  const out: HeaderPairs = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}

/** Pairs as a flat `[name1, value1, …]` list (what undici accepts as `headers`). */
export function flattenPairs(pairs: HeaderPairs): string[] {
  const out: string[] = [];
  for (const [n, v] of pairs) out.push(n, v);
  return out;
}
