/**
 * Origin of the edge benchmark (bench/edge.ts): its own process, answers every request
 * with 200 and a two-byte body. Prints `{"port": N}` on stdout once listening. Its CPU
 * is not counted (the bare contender has no origin).
 */
import { createServer } from 'node:http';

const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '3' });
    res.end('ok\n');
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const a = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof a === 'object' && a ? a.port : 0 })}\n`);
});
