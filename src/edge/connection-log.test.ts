import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import type { RevocationStatus } from '../revocation/index.js';
import {
  CONNECTION_LOG_FLUSH_BYTES, CONNECTION_LOG_SPEC_FIELDS, ConnectionLogTap, ConnectionLogWriter, connectionStatus, emptyLogLine, revocationLogEntries,
} from './connection-log.js';

test('a line has every SPEC 7 field and the extensions, null when not applicable', () => {
  const line = emptyLogLine('abc');
  for (const f of CONNECTION_LOG_SPEC_FIELDS) assert.ok(f in line, f);
  for (const f of ['revocation', 'chainValidity', 'functionComputeUtilization', 'decisionTimeUs', 'reason', 'tlsSessionReused']) assert.ok(f in line, f);
  assert.equal(line.connectionId, 'abc');
  assert.equal(line.clientLeafCertSerialNumber, null);
});

test('connectionStatus: Success or Failed:<Code>', () => {
  assert.equal(connectionStatus(undefined), 'Success');
  assert.equal(connectionStatus('ClientCertRevoked'), 'Failed:ClientCertRevoked');
});

test('revocation entries: leaf first, source and responder kept', () => {
  const status: RevocationStatus = {
    chainValidity: 'Invalid',
    certificates: {
      leaf: { status: 'Revoked', revocationTime: '2025-01-01T00:00:00Z', revocationReason: 'keyCompromise', serialNumber: '01', responder: 'http://a', source: 'network', durationMs: 2 },
      intermediates: [{ status: 'Error', errorType: 'InternalError', errorDetail: 'timeout', serialNumber: '02', responder: 'http://b', source: 'cache', durationMs: 0 }],
    },
  };
  const e = revocationLogEntries(status);
  assert.deepEqual(e.map((x) => [x.certificate, x.status, x.source, x.responder]), [['leaf', 'Revoked', 'network', 'http://a'], ['intermediate#1', 'Error', 'cache', 'http://b']]);
  assert.equal(e[0]!.revocationReason, 'keyCompromise');
  assert.equal(e[1]!.errorType, 'InternalError');
  assert.equal(e[0]!.errorType, null);
});

test('the writer emits one JSON object per line with a timestamp', () => {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => { text += d.toString(); });
  const w = new ConnectionLogWriter(out);
  const a = emptyLogLine('a');
  a.connectionStatus = 'Success';
  w.write(a);
  w.write(emptyLogLine('b'));
  assert.equal(text, '', 'queued lines go to the stream together, within flushMs');
  w.flush();
  const lines = text.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.length, 2);
  assert.equal(lines[0]!.connectionId, 'a');
  assert.match(String(lines[0]!.eventTimestamp), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
});

test('a failing stream is reported once and later lines are dropped', () => {
  const out = new PassThrough();
  const errors: unknown[] = [];
  const w = new ConnectionLogWriter(out, (e) => errors.push(e));
  out.destroy(new Error('disk full'));
  out.emit('error', new Error('disk full'));
  w.write(emptyLogLine('x'));
  assert.equal(errors.length, 1);
});

test('the lines queued within flushMs reach the stream in one write, in order; the tap sees each line at once', async () => {
  const writes: string[] = [];
  const out = new PassThrough();
  const origWrite = out.write.bind(out);
  out.write = ((chunk: string, ...rest: never[]) => { writes.push(String(chunk)); return origWrite(chunk, ...rest); }) as typeof out.write;
  const tap = new ConnectionLogTap();
  const tapped: string[] = [];
  tap.subscribe((l) => tapped.push(l.connectionId));
  const w = new ConnectionLogWriter(out, () => {}, tap, 30);
  w.write(emptyLogLine('a'));
  await new Promise((r) => setTimeout(r, 5));
  for (const id of ['b', 'c']) w.write(emptyLogLine(id));
  assert.deepEqual(tapped, ['a', 'b', 'c'], 'the tap is called synchronously per line');
  assert.equal(writes.length, 0);
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(writes.length, 1);
  assert.deepEqual(writes[0]!.trimEnd().split('\n').map((l) => (JSON.parse(l) as { connectionId: string }).connectionId), ['a', 'b', 'c']);
  assert.ok(writes[0]!.endsWith('\n'));
  w.write(emptyLogLine('d'));
  w.flush();
  assert.equal(writes.length, 2, 'flush() writes at once');
  assert.equal((JSON.parse(writes[1]!) as { connectionId: string }).connectionId, 'd');
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(writes.length, 2, 'nothing left for the timer');
  // A queue of CONNECTION_LOG_FLUSH_BYTES goes at once.
  const big = emptyLogLine('big');
  big.reason = 'x'.repeat(CONNECTION_LOG_FLUSH_BYTES);
  w.write(big);
  assert.equal(writes.length, 3);
});

test('lines queued when the stream fails are dropped, the error reported once; the tap still gets later lines', async () => {
  const out = new PassThrough();
  const errors: unknown[] = [];
  const tap = new ConnectionLogTap();
  const tapped: string[] = [];
  tap.subscribe((l) => tapped.push(l.connectionId));
  const w = new ConnectionLogWriter(out, (e) => errors.push(e), tap);
  let text = '';
  out.on('data', (d: Buffer) => { text += d.toString(); });
  w.write(emptyLogLine('queued'));
  out.emit('error', new Error('disk full'));
  w.write(emptyLogLine('after'));
  w.flush();
  await new Promise((r) => setImmediate(r));
  assert.equal(text, '');
  assert.equal(errors.length, 1);
  assert.deepEqual(tapped, ['queued', 'after']);
});
