import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import type { RevocationStatus } from '../revocation/index.js';
import {
  CONNECTION_LOG_SPEC_FIELDS, ConnectionLogWriter, connectionStatus, emptyLogLine, revocationLogEntries,
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
