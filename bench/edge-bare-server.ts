/**
 * The bare contender of the edge benchmark (bench/edge.ts): `node:tls` + `node:http` in
 * one process with the gateway's TLS settings — the same server certificate and key,
 * `requestCert: true`, `rejectUnauthorized: false` (no CA: OpenSSL's verdict ignored, as
 * in the gateway), ALPN `http/1.1`, TLS ≥ 1.2, `SSL_OP_NO_TICKET`, a session id context
 * — answering every request 200 itself. Usage: `edge-bare-server.ts CERT KEY [tickets]`;
 * with `tickets`, the same server with session tickets enabled (no `SSL_OP_NO_TICKET`:
 * TLS 1.3 sends tickets after every full handshake), the reference row. Prints
 * `{"port": N}` on stdout once listening.
 */
import tls, { type TLSSocket } from 'node:tls';
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { constants } from 'node:crypto';

const [certFile, keyFile, mode] = process.argv.slice(2);
if (!certFile || !keyFile) {
  console.error('usage: edge-bare-server.ts CERT KEY [tickets]');
  process.exit(64);
}
const http = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '3' });
    res.end('ok\n');
  });
});
const server = tls.createServer({
  cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'),
  requestCert: true, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'], minVersion: 'TLSv1.2',
  secureOptions: mode === 'tickets' ? 0 : constants.SSL_OP_NO_TICKET, sessionIdContext: 'portcullis-bench-bare',
});
server.on('secureConnection', (socket: TLSSocket) => http.emit('connection', socket));
server.on('tlsClientError', (_err, socket) => socket.destroy());
server.listen(0, '127.0.0.1', () => {
  const a = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof a === 'object' && a ? a.port : 0 })}\n`);
});
