import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_KVS_LIMITS, resolveKvsLimits } from './limits.js';
import { decodeNextToken, encodeNextToken, parseKvsImport, validateKey, validateKvsName, validateValue } from './validation.js';

const limits = DEFAULT_KVS_LIMITS;
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

function reason(bytes: Uint8Array, l = limits): string {
  const r = parseKvsImport(bytes, l);
  assert.equal(r.ok, false, 'expected the import to be refused');
  return (r as { reason: string }).reason;
}

test('import: a valid file parses, BOM tolerated, empty data allowed, total = UTF-8 bytes of keys and values', () => {
  const r = parseKvsImport(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), json({ data: [{ key: 'a', value: 'é' }, { key: 'bb', value: '' }] })]), limits);
  assert.ok(r.ok);
  assert.deepEqual(r.items, [{ key: 'a', value: 'é' }, { key: 'bb', value: '' }]);
  assert.equal(r.totalBytes, 1 + 2 + 2 + 0);
  assert.ok(parseKvsImport(json({ data: [] }), limits).ok);
});

test('import: each bad kind is refused with a reason naming the first bad entry', () => {
  assert.match(reason(Buffer.from('{"data":[{"key":"a","value":"b"},]}')), /not valid JSON/);
  assert.match(reason(Buffer.from([0x7b, 0x22, 0xff, 0x22])), /not valid UTF-8 \(first invalid byte at offset 2\)/);
  assert.match(reason(Buffer.from('{"data":[{"key":"\xc3\x28"}]}', 'latin1')), /not valid UTF-8 \(first invalid byte at offset 17\)/);
  assert.match(reason(json([])), /wrong shape: the top level is not an object/);
  assert.match(reason(json({ items: [] })), /unexpected top-level member "items"/);
  assert.match(reason(json({})), /"data" is missing/);
  assert.match(reason(json({ data: {} })), /"data" is not an array/);
  assert.match(reason(json({ data: [{ key: 'a', value: 'b' }, 'x'] })), /^data\[1\]: entry is not an object/);
  assert.match(reason(json({ data: [{ key: 'a' }] })), /^data\[0\] \(key "a"\): "value" is missing/);
  assert.match(reason(json({ data: [{ value: 'a' }] })), /^data\[0\]: "key" is missing/);
  assert.match(reason(json({ data: [{ key: 1, value: 'a' }] })), /^data\[0\]: key must be a string/);
  assert.match(reason(json({ data: [{ key: 'k', value: 2 }] })), /^data\[0\] \(key "k"\): value must be a string/);
  assert.match(reason(json({ data: [{ key: 'k', value: 'v', ttl: 3 }] })), /unexpected member "ttl"/);
  assert.match(reason(json({ data: [{ key: '', value: 'v' }] })), /^data\[0\] \(key ""\): key must not be empty/);
  assert.match(
    reason(json({ data: [{ key: 'a', value: '1' }, { key: 'b', value: '2' }, { key: 'a', value: '3' }] })),
    /^data\[2\] \(key "a"\): duplicate key \(first at data\[0\]\)/,
  );
  assert.match(reason(json({ data: [{ key: 'k'.repeat(513), value: 'v' }] })), /^data\[0\] \(key "k{60}…"\): key is 513 bytes, over the limit of 512 bytes/);
  // 512 bytes counted in UTF-8: 256 two-byte characters pass, 257 do not.
  assert.ok(parseKvsImport(json({ data: [{ key: 'é'.repeat(256), value: 'v' }] }), limits).ok);
  assert.match(reason(json({ data: [{ key: 'é'.repeat(257), value: 'v' }] })), /key is 514 bytes/);
  assert.match(reason(json({ data: [{ key: 'ok', value: 'x' }, { key: 'big', value: 'v'.repeat(1025) }] })), /^data\[1\] \(key "big"\): value is 1025 bytes, over the limit of 1024 bytes/);
  assert.match(reason(Buffer.from('{"data":[{"key":"\\ud800","value":"v"}]}')), /lone surrogate/);
  const small = resolveKvsLimits({ maxImportBytes: 10 });
  assert.match(reason(json({ data: [] }), small), /import file is 11 bytes, over the limit of 10 bytes/);
  const tinyStore = resolveKvsLimits({ maxStoreBytes: 3 });
  assert.match(reason(json({ data: [{ key: 'ab', value: 'cd' }] }), tinyStore), /total 4 bytes, over the store limit of 3 bytes/);
});

test('names, keys, values: CloudFront rules and the error codes they map to', () => {
  validateKvsName('Revoked_serials-2');
  validateKvsName('a'.repeat(64));
  for (const bad of ['', 'a'.repeat(65), 'has space', 'dot.name', 'ünï']) {
    assert.throws(() => validateKvsName(bad), { code: 'InvalidArgument' }, bad);
  }
  assert.throws(() => validateKey('', limits), { code: 'InvalidArgument' });
  assert.throws(() => validateKey('x'.repeat(513), limits), { code: 'EntitySizeLimitExceeded' });
  assert.throws(() => validateValue('k', 'x'.repeat(1025), limits), { code: 'EntitySizeLimitExceeded' });
  validateValue('k', '', limits);
  assert.throws(() => resolveKvsLimits({ maxKeyBytes: 0 }), RangeError);
  assert.throws(() => resolveKvsLimits({ defaultListKeys: 60 }), RangeError);
});

test('NextToken: round trip, bound to its store, tampering refused', () => {
  const t = encodeNextToken('store-1', 'key/ü');
  assert.equal(decodeNextToken(t, 'store-1'), 'key/ü');
  assert.throws(() => decodeNextToken(t, 'store-2'), { code: 'InvalidArgument' });
  assert.throws(() => decodeNextToken('not-a-token', 'store-1'), { code: 'InvalidArgument' });
});

test('duplicate member names are refused (JSON.parse would keep only the last), naming path and member', async () => {
  const { findDuplicateMember } = await import('./validation.js');
  const b = (s: string) => Buffer.from(s);
  assert.match(reason(b('{"data":[{"key":"a","value":"v"}],"data":[]}')), /duplicate member "data" in the top-level object/);
  assert.match(reason(b('{"data":[{"key":"a","value":"v"},{"key":"a2","value":"v","key":"b"}]}')), /duplicate member "key" in data\[1\]/);
  assert.match(reason(b('{"data":[{"k\\u0065y":"a","value":"v","key":"b"}]}')), /duplicate member "key" in data\[0\]/, 'compared after unescaping');
  assert.deepEqual(findDuplicateMember('[{"a":1},{"a":1,"b":{"c":[1,{"d":1,"d":2}]}}]'), { path: '[1].b.c[1]', member: 'd' });
  assert.deepEqual(findDuplicateMember('{"x y":{"q":1,"q":2}}'), { path: '["x y"]', member: 'q' });
  assert.deepEqual(findDuplicateMember('{"a\\"":1,"a\\"":2}'), { path: '', member: 'a"' });
  assert.deepEqual(findDuplicateMember(`{${Array.from({ length: 20 }, (_, i) => `"m${i}":1`).join(',')},"m3":2}`), { path: '', member: 'm3' }, 'past the small-object path');
  assert.equal(findDuplicateMember('{"a":{"x":1},"b":{"x":2},"s":"{\\"a\\":1,\\"a\\":2}"}'), undefined, 'same names in different objects, and inside strings, are fine');
  const ok = parseKvsImport(json({ data: [{ key: 'a', value: 'x' }, { key: 'b', value: 'y' }] }), limits);
  assert.equal(ok.ok, true);
});

test('import: a non-JSON file is refused with the position of the first error, quoting none of its content', () => {
  const cases: [string, RegExp][] = [
    ['cp2cHHiHL3secret-token\n', /not valid JSON: unexpected character where a value was expected at line 1, column 1 \(byte offset 0\)$/],
    ['root:x:0:0:root:/root:/bin/bash\n', /unexpected character where a value was expected at line 1, column 1 \(byte offset 0\)/],
    ['{"data":[{"key":"a","value":"b"},]}', /unexpected character where a value was expected at line 1, column 34 \(byte offset 33\)/],
    ['{"data": [', /unexpected end of input at line 1, column 11 \(byte offset 10\)/],
    ['{"data": []}\nsecretsecret', /unexpected character after the end of the JSON value at line 2, column 1 \(byte offset 13\)/],
    ['{"data": [{"key": "é\tx"}]}', /control character in a string \(escape it\) at line 1, column 21 \(byte offset 21\)/],
    ['{"data" [] }', /expected ":" after a member name at line 1, column 9/],
    ['{\n  "data": [1 2]\n}', /expected "," or "\]" in an array at line 2, column 14/],
    ['{"a": "\\q"}', /invalid escape sequence in a string at line 1, column 8/],
    ['{"a": -}', /invalid number at line 1, column 7/],
    ['{"a": 1,}', /expected a member name in double quotes at line 1, column 9/],
    ['{\'data\': []}', /expected a member name in double quotes at line 1, column 2/],
  ];
  for (const [text, re] of cases) {
    const r = reason(Buffer.from(text));
    assert.match(r, re, text);
    for (const secret of ['cp2c', 'root', 'secret', 'bash']) assert.ok(!r.includes(secret), r);
  }
  // A BOM counts in the byte offset.
  assert.match(reason(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('nope')])), /line 1, column 1 \(byte offset 3\)/);
});
