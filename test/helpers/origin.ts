/**
 * A test origin for the edge proxy (SPEC section 6): a plain HTTP/1.1 server on
 * 127.0.0.1, port 0, that tells the test exactly what it received.
 *
 * ```ts
 * const origin = await startEchoOrigin();
 * // point a distribution's origin.url at origin.url ('http://127.0.0.1:PORT')
 * // ... drive the gateway ...
 * origin.requests[0]   // { method, url, headers, rawHeaders, body, bodyBytes }
 * await origin.close();
 * ```
 *
 * Routes (anything not listed below is echoed):
 * - any path: `200` with JSON `{ method, url, headers, body }` — `headers` as Node
 *   parses them (lowercase names; repeated headers joined), `body` the request body
 *   as UTF-8 when shorter than 64 KB, else `null`; `bodyBytes` and `bodySha256` always.
 *   The body is read to the end before the answer, so a test can check streaming by
 *   sending a large chunked body and comparing `bodySha256`.
 * - `/slow?chunks=N&delayMs=D&size=S`: `200`, `text/plain`, streams N chunks of S bytes
 *   (`x` repeated), D ms apart (defaults 5, 50, 10). With `&dieAfter=K` the origin
 *   destroys the socket after K chunks (a failure in the middle of the body).
 * - `/hang`: never answers (the request is recorded; the socket stays open until close()).
 * - `/status/NNN`: answers with status NNN and a short text body.
 * - `/big?bytes=N`: `200`, N bytes of `y` (content-length set).
 * - WebSocket: a GET with `Upgrade: websocket` on any path gets `101 Switching Protocols`
 *   (with `Sec-WebSocket-Accept` computed per RFC 6455 4.2.2) and then the connection
 *   echoes every byte it receives, raw (no frame parsing — tests send any bytes). The
 *   upgrade request is recorded in `requests` with `upgrade: true`. Path `/ws-deny`
 *   answers the upgrade with `403` instead.
 *
 * Every request is recorded in `requests` when its body has been read (for `/hang`,
 * `/slow` and upgrades: when the head arrives).
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** One request as the echo origin saw it. */
export interface EchoRequest {
  method: string;
  /** The request target as sent on the request line (path and query). */
  url: string;
  /** Lowercase header names; repeated headers joined with `, ` (Node's `IncomingMessage.headers`). */
  headers: Record<string, string | string[] | undefined>;
  /** Names and values exactly as received, in order: `[name1, value1, name2, value2, …]`. */
  rawHeaders: string[];
  /** Body as UTF-8 when under 64 KB, else null. */
  body: string | null;
  /** Body length in bytes. */
  bodyBytes: number;
  /** SHA-256 of the body, lowercase hex. */
  bodySha256: string;
  /** True for a WebSocket upgrade request. */
  upgrade: boolean;
}

/** A running echo origin. */
export interface EchoOrigin {
  /** `http://127.0.0.1:PORT` */
  url: string;
  port: number;
  /** Requests received so far, in arrival order. */
  requests: EchoRequest[];
  /** Stops listening and destroys every open connection (including `/hang` ones). */
  close(): Promise<void>;
}

const BODY_TEXT_LIMIT = 64 * 1024;

function record(req: IncomingMessage, body: Buffer, upgrade: boolean): EchoRequest {
  return {
    method: req.method ?? '',
    url: req.url ?? '',
    headers: { ...req.headers },
    rawHeaders: [...req.rawHeaders],
    body: body.length < BODY_TEXT_LIMIT ? body.toString('utf8') : null,
    bodyBytes: body.length,
    bodySha256: createHash('sha256').update(body).digest('hex'),
    upgrade,
  };
}

function intParam(url: URL, name: string, dflt: number): number {
  const v = url.searchParams.get(name);
  return v === null ? dflt : Number.parseInt(v, 10);
}

/** Starts an echo origin on 127.0.0.1, port 0 (see the module comment for the routes). */
export async function startEchoOrigin(): Promise<EchoOrigin> {
  const requests: EchoRequest[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://origin.invalid');
    if (url.pathname === '/hang') {
      requests.push(record(req, Buffer.alloc(0), false));
      req.resume();
      return;
    }
    if (url.pathname === '/slow') {
      requests.push(record(req, Buffer.alloc(0), false));
      req.resume();
      const chunks = intParam(url, 'chunks', 5);
      const delayMs = intParam(url, 'delayMs', 50);
      const size = intParam(url, 'size', 10);
      const dieAfter = intParam(url, 'dieAfter', -1);
      res.writeHead(200, { 'content-type': 'text/plain' });
      let sent = 0;
      const tick = (): void => {
        if (res.destroyed) return;
        if (sent === dieAfter) {
          req.socket.destroy();
          return;
        }
        if (sent === chunks) {
          res.end();
          return;
        }
        res.write('x'.repeat(size));
        sent++;
        setTimeout(tick, delayMs);
      };
      tick();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const rec = record(req, body, false);
      requests.push(rec);
      const status = /^\/status\/(\d{3})$/.exec(url.pathname);
      if (status) {
        res.writeHead(Number(status[1]), { 'content-type': 'text/plain' });
        res.end(`status ${status[1]}\n`);
        return;
      }
      if (url.pathname === '/big') {
        const n = intParam(url, 'bytes', 1024);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(n) });
        res.end(Buffer.alloc(n, 'y'));
        return;
      }
      const json = JSON.stringify({ method: rec.method, url: rec.url, headers: rec.headers, body: rec.body, bodyBytes: rec.bodyBytes, bodySha256: rec.bodySha256 });
      res.writeHead(200, {
        'content-type': 'application/json',
        'x-origin': 'echo',
        // Hop-by-hop headers the proxy must not pass back to the client as they are.
        'keep-alive': 'timeout=5',
      });
      res.end(json);
    });
  });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    requests.push(record(req, Buffer.alloc(0), true));
    const url = new URL(req.url ?? '/', 'http://origin.invalid');
    if (url.pathname === '/ws-deny' || String(req.headers.upgrade).toLowerCase() !== 'websocket') {
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 7\r\nConnection: close\r\n\r\ndenied\n');
      return;
    }
    const key = String(req.headers['sec-websocket-key'] ?? '');
    const accept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    if (head.length) socket.write(head);
    socket.on('data', (d: Buffer) => socket.write(d));
    socket.on('end', () => socket.end());
    socket.on('error', () => socket.destroy());
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}
