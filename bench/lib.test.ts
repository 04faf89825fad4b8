// Run with: node --import tsx --test bench/lib.test.ts (bench/ is outside `npm test`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { percentile, renderTable, summary, textRow } from './lib.js';

test('a text-only row prints its text instead of numbers (no NaN)', () => {
  const t = renderTable([
    { benchmark: 'edge', metric: 'cpu', unit: 'µs', rounds: [3, 1, 2] },
    textRow('edge', '(d) nginx', 'not available — apt-get install nginx-light failed | exit 100'),
  ], 'footer');
  const lines = t.split('\n');
  assert.equal(lines[2], '| edge | cpu | 2.00 | 1.00 | 3.00 | µs | 3 |  |');
  assert.equal(lines[3], '| edge | (d) nginx | not available — apt-get install nginx-light failed \\| exit 100 | | | — | 0 |  |');
  assert.ok(!t.includes('NaN'));
  assert.ok(t.endsWith('\n\nfooter'));
});

test('summary and percentile', () => {
  assert.deepEqual(summary([5, 1, 3, 2]), { min: 1, median: 2, max: 5 });
  assert.ok(Number.isNaN(summary([]).median));
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50), 5);
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99), 10);
});
