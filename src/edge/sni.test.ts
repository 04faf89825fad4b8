import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeServername, selectBySni } from './sni.js';

const a = { name: 'a', aliases: ['api.example.com', '*.dev.example.com'] };
const b = { name: 'b', aliases: ['*.example.com', 'b.example.org'] };
const c = { name: 'c', aliases: ['x.dev.example.com'] };
const all = [a, b, c];

test('exact alias wins over an earlier wildcard and over list order', () => {
  assert.equal(selectBySni(all, 'x.dev.example.com'), c);
  assert.equal(selectBySni(all, 'api.example.com'), a);
  assert.equal(selectBySni(all, 'b.example.org'), b);
});

test('wildcard matches exactly one extra label', () => {
  assert.equal(selectBySni(all, 'www.example.com'), b);
  assert.equal(selectBySni(all, 'y.dev.example.com'), a);
  // two labels below *.example.com: no wildcard match → default (first)
  assert.equal(selectBySni([b, c], 'a.b.example.com'), b);
  assert.equal(selectBySni([c, b], 'a.b.example.com'), c);
  // the wildcard does not match the bare domain
  assert.equal(selectBySni([c, b], 'example.com'), c);
});

test('case and a trailing dot are ignored', () => {
  assert.equal(selectBySni(all, 'API.Example.COM.'), a);
  assert.equal(normalizeServername('A.B.'), 'a.b');
});

test('no SNI or an unknown name → the first distribution; none → undefined', () => {
  assert.equal(selectBySni(all, undefined), a);
  assert.equal(selectBySni(all, false), a);
  assert.equal(selectBySni(all, ''), a);
  assert.equal(selectBySni([c, a], 'unknown.test'), c);
  assert.equal(selectBySni([], 'api.example.com'), undefined);
});
