import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CliUsageError, checkOneStdin, parseIntegerOption, readInputFile } from './common.js';
import { OCSP_CHECK_OPTION_RANGES } from './ocsp-check.js';

function usageError(fn: () => unknown, message: string): void {
  assert.throws(fn, (err: unknown) => err instanceof CliUsageError && err.message === message);
}

test('parseIntegerOption accepts decimal integers within the range, ends included', () => {
  const range = { min: 0, max: 86_400, unit: 'seconds' };
  assert.equal(parseIntegerOption('0', '--x', range), 0);
  assert.equal(parseIntegerOption('86400', '--x', range), 86_400);
  assert.equal(parseIntegerOption('007', '--x', range), 7);
});

test('parseIntegerOption refuses out-of-range values, naming the option and the range', () => {
  const range = { min: 1, max: 60_000, unit: 'ms' };
  usageError(() => parseIntegerOption('0', '--timeout-ms', range), '--timeout-ms 0 is out of range: it must be an integer from 1 to 60000 (ms)');
  usageError(() => parseIntegerOption('60001', '--timeout-ms', range), '--timeout-ms 60001 is out of range: it must be an integer from 1 to 60000 (ms)');
  // Beyond 2^53 (not a safe integer) and far beyond: never rounded into range.
  usageError(() => parseIntegerOption('99999999999999999999', '--timeout-ms', range), '--timeout-ms 99999999999999999999 is out of range: it must be an integer from 1 to 60000 (ms)');
  usageError(() => parseIntegerOption('9'.repeat(400), '--timeout-ms', range), `--timeout-ms ${'9'.repeat(400)} is out of range: it must be an integer from 1 to 60000 (ms)`);
});

test('parseIntegerOption refuses anything but decimal digits', () => {
  const range = { min: 1, max: 10, unit: 'ms' };
  for (const v of ['', ' 5', '5 ', '-1', '+1', '1e3', '1.0', '0x5', 'abc', 'Infinity', 'NaN']) {
    usageError(() => parseIntegerOption(v, '--n', range), `--n must be an integer from 1 to 10 (ms), got "${v}"`);
  }
});

test('ocsp check option ranges (README option table)', () => {
  assert.deepEqual(OCSP_CHECK_OPTION_RANGES, {
    timeoutMs: { min: 1, max: 60_000, unit: 'ms' },
    maxResponseBytes: { min: 1, max: 16_777_216, unit: 'bytes' },
    clockSkewSeconds: { min: 0, max: 86_400, unit: 'seconds' },
  });
  // Every maximum fits a Node timer (2^31 − 1 ms), also the skew once in ms.
  assert.ok(OCSP_CHECK_OPTION_RANGES.timeoutMs.max <= 2 ** 31 - 1);
  assert.ok(OCSP_CHECK_OPTION_RANGES.clockSkewSeconds.max * 1000 <= 2 ** 31 - 1);
});

test('checkOneStdin: at most one input may be "-"', () => {
  checkOneStdin({ '--chain': '-', '--trust-store': 'ca.pem' });
  checkOneStdin({ '--chain': 'a.pem', '--trust-store': undefined });
  usageError(() => checkOneStdin({ '--chain': '-', '--trust-store': '-' }),
    '--chain and --trust-store both read standard input ("-"); only one input can be standard input');
});

test('readInputFile names the file and says "no such file"', () => {
  usageError(() => readInputFile('/nonexistent/portcullis/x.pem', 'chain'), 'cannot read chain /nonexistent/portcullis/x.pem: no such file');
  usageError(() => readInputFile('/nonexistent/portcullis/x.pem', ''), 'cannot read /nonexistent/portcullis/x.pem: no such file');
});
