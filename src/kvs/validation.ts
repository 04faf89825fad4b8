/**
 * Validation of KVS names, keys, values and import files (SPEC section 5, CloudFront
 * KeyValueStore rules), and the NextToken codec of ListKeys.
 */
import { isUtf8 } from 'node:buffer';
import { EntitySizeLimitExceededError, InvalidArgumentError } from '../errors.js';
import type { KvsLimits } from './limits.js';

/**
 * Allowed store names: CloudFront's pattern `^[a-zA-Z0-9-_]{1,64}$` — 1 to 64 ASCII
 * letters, digits, `-` and `_`.
 */
export const KVS_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** @throws InvalidArgumentError naming the rule when `name` does not match {@link KVS_NAME_PATTERN}. */
export function validateKvsName(name: string): void {
  if (!KVS_NAME_PATTERN.test(name)) {
    throw new InvalidArgumentError(`invalid key value store name "${shorten(name)}": use 1 to 64 characters from A-Z, a-z, 0-9, "-" and "_"`);
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Shortens a string for an error message (keys may be 512 bytes). */
export function shorten(s: string, max = 60): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/**
 * Why a key is invalid, or undefined when it is valid: non-empty, well-formed Unicode
 * (no lone surrogates, so it round-trips through UTF-8), at most `maxKeyBytes` UTF-8 bytes.
 */
export function keyProblem(key: unknown, limits: Pick<KvsLimits, 'maxKeyBytes'>): { kind: 'invalid' | 'size'; message: string } | undefined {
  if (typeof key !== 'string') return { kind: 'invalid', message: 'key must be a string' };
  if (key.length === 0) return { kind: 'invalid', message: 'key must not be empty' };
  if (LONE_SURROGATE.test(key)) return { kind: 'invalid', message: 'key is not well-formed Unicode (lone surrogate)' };
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > limits.maxKeyBytes) return { kind: 'size', message: `key is ${bytes} bytes, over the limit of ${limits.maxKeyBytes} bytes` };
  return undefined;
}

/** Why a value is invalid, or undefined: a well-formed string of at most `maxValueBytes` UTF-8 bytes (empty allowed). */
export function valueProblem(value: unknown, limits: Pick<KvsLimits, 'maxValueBytes'>): { kind: 'invalid' | 'size'; message: string } | undefined {
  if (typeof value !== 'string') return { kind: 'invalid', message: 'value must be a string' };
  if (LONE_SURROGATE.test(value)) return { kind: 'invalid', message: 'value is not well-formed Unicode (lone surrogate)' };
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > limits.maxValueBytes) return { kind: 'size', message: `value is ${bytes} bytes, over the limit of ${limits.maxValueBytes} bytes` };
  return undefined;
}

/**
 * @throws InvalidArgumentError (empty, not well-formed) or EntitySizeLimitExceededError
 *   (over `maxKeyBytes`).
 */
export function validateKey(key: string, limits: Pick<KvsLimits, 'maxKeyBytes'>): void {
  const p = keyProblem(key, limits);
  if (!p) return;
  const msg = `key "${shorten(String(key))}": ${p.message}`;
  throw p.kind === 'size' ? new EntitySizeLimitExceededError(msg) : new InvalidArgumentError(msg);
}

/** @throws InvalidArgumentError or EntitySizeLimitExceededError (over `maxValueBytes`). */
export function validateValue(key: string, value: string, limits: Pick<KvsLimits, 'maxValueBytes'>): void {
  const p = valueProblem(value, limits);
  if (!p) return;
  const msg = `value of key "${shorten(key)}": ${p.message}`;
  throw p.kind === 'size' ? new EntitySizeLimitExceededError(msg) : new InvalidArgumentError(msg);
}

/** A member name that appears twice in one JSON object: where (a path such as `data[3]`, `''` for the top level) and which. */
export interface DuplicateMember {
  path: string;
  member: string;
}

type ScanFrame = { obj: true; names: string[] | Set<string>; key: string } | { obj: false; index: number };

function framePath(stack: readonly ScanFrame[]): string {
  let p = '';
  for (let k = 0; k < stack.length - 1; k++) {
    const f = stack[k]!;
    if (!f.obj) p += `[${f.index}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(f.key)) p += `${p ? '.' : ''}${f.key}`;
    else p += `[${JSON.stringify(f.key)}]`;
  }
  return p;
}

/**
 * The first member name that appears twice in one object of a JSON text, or undefined.
 * `JSON.parse` keeps the last of duplicate members silently (and a reviver sees only
 * the survivor), so documents are scanned once more with this small tokenizer: it
 * tracks objects and arrays, compares member names after unescaping, and needs no
 * allocation per value. `text` must be valid JSON (parse it first).
 */
export function findDuplicateMember(text: string): DuplicateMember | undefined {
  const stack: ScanFrame[] = [];
  let expectKey = false;
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      let escaped = false;
      for (;;) {
        const d = text.charCodeAt(j);
        if (d === 0x5c /* \ */) {
          escaped = true;
          j += 2;
        } else if (d === 0x22 || j >= n) {
          break;
        } else {
          j++;
        }
      }
      const top = stack[stack.length - 1];
      if (expectKey && top?.obj) {
        const name = escaped ? (JSON.parse(text.slice(i, j + 1)) as string) : text.slice(i + 1, j);
        if (Array.isArray(top.names)) {
          if (top.names.includes(name)) return { path: framePath(stack), member: name };
          top.names.push(name);
          if (top.names.length > 8) top.names = new Set(top.names);
        } else {
          if (top.names.has(name)) return { path: framePath(stack), member: name };
          top.names.add(name);
        }
        top.key = name;
        expectKey = false;
      }
      i = j + 1;
      continue;
    }
    if (c === 0x7b /* { */) {
      stack.push({ obj: true, names: [], key: '' });
      expectKey = true;
    } else if (c === 0x5b /* [ */) {
      stack.push({ obj: false, index: 0 });
      expectKey = false;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top?.obj) expectKey = true;
      else if (top) top.index++;
    }
    i++;
  }
  return undefined;
}

/** `duplicate member "key" in data[3]` / `… in the top-level object`: the message part for {@link DuplicateMember}. */
export function describeDuplicateMember(d: DuplicateMember): string {
  return `duplicate member "${shorten(d.member)}" in ${d.path ? d.path : 'the top-level object'} (JSON would silently keep only the last one)`;
}

/** Where and why a text is not JSON: the offset (UTF-16 index into the text) and a description that quotes none of it. */
export interface JsonSyntaxProblem {
  index: number;
  problem: string;
}

/**
 * The first syntax error of a text that `JSON.parse` refused, located without quoting
 * the text (V8's messages echo the first characters of the input, and an import
 * source may be any file the server can read). Iterative, so deep nesting is fine.
 */
export function locateJsonSyntaxError(text: string): JsonSyntaxProblem {
  const n = text.length;
  let i = 0;
  const ws = (): void => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
      else break;
    }
  };
  const fail = (problem: string): JsonSyntaxProblem => (i >= n ? { index: n, problem: 'unexpected end of input' } : { index: i, problem });
  // Scans one string starting at text[i] === '"'; returns a problem or undefined (i after the closing quote).
  const str = (): JsonSyntaxProblem | undefined => {
    i++;
    for (;;) {
      if (i >= n) return fail('');
      const c = text.charCodeAt(i);
      if (c === 0x22) { i++; return undefined; }
      if (c < 0x20) return { index: i, problem: 'control character in a string (escape it)' };
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e === undefined) { i = n; return fail(''); }
        if ('"\\/bfnrt'.includes(e)) { i += 2; continue; }
        if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) { i += 6; continue; }
        return { index: i, problem: 'invalid escape sequence in a string' };
      }
      i++;
    }
  };
  const num = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  // Stack of containers: true = object, false = array.
  const stack: boolean[] = [];
  let p: JsonSyntaxProblem | undefined;
  for (;;) {
    // Expect a value.
    ws();
    if (i >= n) return fail('');
    const c = text[i]!;
    if (c === '{') {
      i++; ws();
      if (text[i] === '}') { i++; } else {
        stack.push(true);
        if (text[i] !== '"') return fail('expected a member name in double quotes');
        if ((p = str())) return p;
        ws();
        if (text[i] !== ':') return fail('expected ":" after a member name');
        i++;
        continue;
      }
    } else if (c === '[') {
      i++; ws();
      if (text[i] === ']') { i++; } else { stack.push(false); continue; }
    } else if (c === '"') {
      if ((p = str())) return p;
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      num.lastIndex = i;
      const m = num.exec(text);
      if (!m) return fail('invalid number');
      i += m[0].length;
    } else if (text.startsWith('true', i)) i += 4;
    else if (text.startsWith('false', i)) i += 5;
    else if (text.startsWith('null', i)) i += 4;
    else return fail('unexpected character where a value was expected');
    // After a value: close containers or continue with the next element/member.
    for (;;) {
      ws();
      if (stack.length === 0) {
        if (i < n) return { index: i, problem: 'unexpected character after the end of the JSON value' };
        // JSON.parse refused it but no error was found here (should not happen).
        return { index: n, problem: 'not valid JSON' };
      }
      const obj = stack[stack.length - 1]!;
      if (text[i] === ',') {
        i++;
        if (obj) {
          ws();
          if (text[i] !== '"') return fail('expected a member name in double quotes');
          if ((p = str())) return p;
          ws();
          if (text[i] !== ':') return fail('expected ":" after a member name');
          i++;
        }
        break;
      }
      if (text[i] === (obj ? '}' : ']')) { i++; stack.pop(); continue; }
      return fail(obj ? 'expected "," or "}" in an object' : 'expected "," or "]" in an array');
    }
  }
}

/** `line L, column C (byte offset B)` of a UTF-16 index into `text`; `byteBase` counts bytes before `text` (e.g. a BOM). */
export function describeTextPosition(text: string, index: number, byteBase = 0): string {
  let line = 1;
  let lineStart = 0;
  for (let k = text.indexOf('\n'); k !== -1 && k < index; k = text.indexOf('\n', k + 1)) {
    line++;
    lineStart = k + 1;
  }
  const column = [...text.slice(lineStart, index)].length + 1;
  return `line ${line}, column ${column} (byte offset ${byteBase + Buffer.byteLength(text.slice(0, index), 'utf8')})`;
}

/** Result of {@link parseKvsImport}. */
export type KvsImportParseResult =
  | { ok: true; items: { key: string; value: string }[]; totalBytes: number }
  | { ok: false; reason: string };

/** Offset of the first byte that is not part of well-formed UTF-8, or -1 when all are. */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    let n: number;
    let min: number;
    if (c < 0x80) { i++; continue; }
    if (c >= 0xc2 && c <= 0xdf) { n = 1; min = 0x80; }
    else if (c >= 0xe0 && c <= 0xef) { n = 2; min = 0x800; }
    else if (c >= 0xf0 && c <= 0xf4) { n = 3; min = 0x10000; }
    else return i;
    let cp = c & (0x3f >> n);
    for (let j = 1; j <= n; j++) {
      const cc = b[i + j];
      if (cc === undefined || (cc & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += n + 1;
  }
  return -1;
}

/**
 * Validates and parses an import file (SPEC section 5): UTF-8 (a leading BOM is
 * ignored), at most `maxImportBytes` bytes, JSON of exactly the shape
 * `{"data":[{"key":"…","value":"…"}, …]}` (no other members, no member twice in an
 * object — see {@link findDuplicateMember}), every key and value
 * within the limits, no duplicate keys, and the total (UTF-8 bytes of every key and
 * value) within `maxStoreBytes`. All-or-nothing: the first problem found is the
 * reason, naming the entry by index and key, e.g.
 * `data[17] (key "abc"): value is 1500 bytes, over the limit of 1024 bytes`.
 * Never throws for bad content.
 */
export function parseKvsImport(bytes: Uint8Array, limits: KvsLimits): KvsImportParseResult {
  if (bytes.length > limits.maxImportBytes) {
    return { ok: false, reason: `import file is ${bytes.length} bytes, over the limit of ${limits.maxImportBytes} bytes` };
  }
  if (!isUtf8(bytes)) {
    return { ok: false, reason: `import file is not valid UTF-8 (first invalid byte at offset ${firstInvalidUtf8(bytes)})` };
  }
  let text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  const bom = text.charCodeAt(0) === 0xfeff;
  if (bom) text = text.slice(1);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    // Never JSON.parse's message: it quotes the input's first characters, and the
    // source may be any file the server can read (a token file, /etc/passwd).
    const at = locateJsonSyntaxError(text);
    return { ok: false, reason: `import file is not valid JSON: ${at.problem} at ${describeTextPosition(text, at.index, bom ? 3 : 0)}` };
  }
  const dup = findDuplicateMember(text);
  if (dup) return { ok: false, reason: `import file has a ${describeDuplicateMember(dup)}` };
  const shape = 'expected {"data":[{"key":"…","value":"…"}, …]}';
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return { ok: false, reason: `import file has the wrong shape: the top level is not an object; ${shape}` };
  const extra = Object.keys(doc).filter((k) => k !== 'data');
  if (extra.length) return { ok: false, reason: `import file has the wrong shape: unexpected top-level member "${shorten(extra[0]!)}"; ${shape}` };
  const data = (doc as { data?: unknown }).data;
  if (!Array.isArray(data)) return { ok: false, reason: `import file has the wrong shape: "data" is ${data === undefined ? 'missing' : 'not an array'}; ${shape}` };
  const seen = new Map<string, number>();
  const items: { key: string; value: string }[] = new Array(data.length);
  let total = 0;
  for (let i = 0; i < data.length; i++) {
    const e = data[i] as unknown;
    if (typeof e !== 'object' || e === null || Array.isArray(e)) return { ok: false, reason: `data[${i}]: entry is not an object {"key":"…","value":"…"}` };
    const { key, value } = e as { key?: unknown; value?: unknown };
    const label = typeof key === 'string' ? `data[${i}] (key "${shorten(key)}")` : `data[${i}]`;
    const other = Object.keys(e).filter((k) => k !== 'key' && k !== 'value');
    if (other.length) return { ok: false, reason: `${label}: unexpected member "${shorten(other[0]!)}"; an entry has exactly "key" and "value"` };
    if (key === undefined) return { ok: false, reason: `${label}: "key" is missing` };
    if (value === undefined) return { ok: false, reason: `${label}: "value" is missing` };
    const kp = keyProblem(key, limits);
    if (kp) return { ok: false, reason: `${label}: ${kp.message}` };
    const vp = valueProblem(value, limits);
    if (vp) return { ok: false, reason: `${label}: ${vp.message}` };
    const k = key as string;
    const v = value as string;
    const first = seen.get(k);
    if (first !== undefined) return { ok: false, reason: `${label}: duplicate key (first at data[${first}])` };
    seen.set(k, i);
    total += Buffer.byteLength(k, 'utf8') + Buffer.byteLength(v, 'utf8');
    items[i] = { key: k, value: v };
  }
  if (total > limits.maxStoreBytes) {
    return { ok: false, reason: `the imported items total ${total} bytes, over the store limit of ${limits.maxStoreBytes} bytes` };
  }
  return { ok: true, items, totalBytes: total };
}

/**
 * NextToken of ListKeys: opaque to callers; base64url of `{"v":1,"s":storeId,"k":lastKey}`.
 * Keyset pagination (key > last key, byte order) keeps pages stable while the store
 * changes: no key is returned twice, and keys that exist throughout are never skipped.
 */
export function encodeNextToken(storeId: string, lastKey: string): string {
  return Buffer.from(JSON.stringify({ v: 1, s: storeId, k: lastKey }), 'utf8').toString('base64url');
}

/**
 * Decodes a NextToken for `storeId`.
 * @throws InvalidArgumentError when it is malformed or belongs to another store.
 */
export function decodeNextToken(token: string, storeId: string): string {
  try {
    const t = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { v?: unknown; s?: unknown; k?: unknown };
    if (t.v === 1 && t.s === storeId && typeof t.k === 'string') return t.k;
  } catch { /* fall through */ }
  throw new InvalidArgumentError('invalid NextToken: pass the NextToken of the previous ListKeys response of this store unchanged');
}
