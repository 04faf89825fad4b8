import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasOpenssl, issueCertificate } from '../../test/helpers/pki.js';
import { InvalidArgumentError } from '../errors.js';
import { formatSerialNumber, normalizeSerialForKvs } from './serial.js';


const TWENTY = '7f0102030405060708090a0b0c0d0e0f10111213';

test('formatSerialNumber: lowercase colon hex of the content bytes exactly as encoded', () => {
  assert.equal(formatSerialNumber(Buffer.from('00a7309e', 'hex')), '00:a7:30:9e');
  assert.equal(formatSerialNumber(Buffer.from('05', 'hex')), '05');
  assert.equal(formatSerialNumber(Buffer.from('0000ff', 'hex')), '00:00:ff');
  assert.equal(formatSerialNumber(Buffer.from(TWENTY, 'hex')), TWENTY.match(/../g)!.join(':'));
  assert.equal(formatSerialNumber(new Uint8Array([0xAB, 0xCD])), 'ab:cd');
  assert.equal(formatSerialNumber(new Uint8Array([])), '');
  // A view into a larger buffer formats only its own bytes.
  assert.equal(formatSerialNumber(Buffer.from('ff0102ff', 'hex').subarray(1, 3)), '01:02');
});

test('serials of real certificates: high bit (00 prefix), 1 byte, 20 bytes, non-minimal leading zeros', async () => {
  const cases: [string, string][] = [
    ['00a7309e', '00:a7:30:9e'],
    ['05', '05'],
    ['00', '00'],
    [TWENTY, TWENTY.match(/../g)!.join(':')],
    ['00ff' + '11'.repeat(18), '00:ff:' + Array(18).fill('11').join(':')],
    ['0000ff', '00:00:ff'], // non-minimal: kept as encoded
    ['00007f', '00:00:7f'],
  ];
  for (const [serial, expected] of cases) {
    const c = await issueCertificate({ subject: 'CN=serial test', serial });
    assert.equal(c.cert.serialNumberBytes.toString('hex'), serial);
    assert.equal(formatSerialNumber(c.cert.serialNumberBytes), expected, serial);
    assert.equal(normalizeSerialForKvs(expected), serial);
  }
});

test('serial agrees with `openssl x509 -serial` (which drops the 00 sign octet)', { skip: !hasOpenssl && 'openssl not installed' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-serial-'));
  try {
    for (const serial of ['00a7309e', '05', TWENTY, '4a3f5c92d1e87b6c', undefined]) {
      const c = await issueCertificate({ subject: 'CN=serial test', ...(serial ? { serial } : {}) });
      const file = join(dir, 'c.pem');
      writeFileSync(file, c.pem);
      const out = execFileSync('openssl', ['x509', '-in', file, '-noout', '-serial'], { encoding: 'utf8' }).trim();
      const ours = formatSerialNumber(c.cert.serialNumberBytes);
      // OpenSSL prints the INTEGER value: uppercase, no colons, no 00 sign octet.
      assert.equal(`serial=${ours.replaceAll(':', '').replace(/^00(?=[89a-f])/, '').toUpperCase()}`, out);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('normalizeSerialForKvs: colon or plain hex, any case → lowercase plain hex, leading 00 kept', () => {
  assert.equal(normalizeSerialForKvs('00:A7:30:9e'), '00a7309e');
  assert.equal(normalizeSerialForKvs('00a7309e'), '00a7309e');
  assert.equal(normalizeSerialForKvs('00A7309E'), '00a7309e');
  assert.equal(normalizeSerialForKvs('05'), '05');
  assert.equal(normalizeSerialForKvs('4a:3f:5c:92:d1:e8:7b:6c'), '4a3f5c92d1e87b6c');
  // The SPEC's rule, applied to what a connection function sees.
  const fromView = '00:a7:30:9e';
  assert.equal(normalizeSerialForKvs(fromView), fromView.replaceAll(':', ''));
});

test('normalizeSerialForKvs rejects non-hex, malformed groups and odd lengths with InvalidArgumentError', () => {
  for (const bad of ['', ':', 'xyz', '0g', 'a:b', '00:a', '0a7', '123', ' 00', '00 ', '00::a7', '00:a7:', ':00', '00-a7', '0x05', 'é1']) {
    assert.throws(() => normalizeSerialForKvs(bad), (err: unknown) => {
      assert.ok(err instanceof InvalidArgumentError, `${JSON.stringify(bad)} → ${String(err)}`);
      assert.equal(err.code, 'InvalidArgument');
      assert.match(err.message, /invalid serial number/);
      return true;
    });
  }
  // Very long input is truncated in the message.
  assert.throws(() => normalizeSerialForKvs('z'.repeat(500)), (err: Error) => err.message.length < 300);
});
