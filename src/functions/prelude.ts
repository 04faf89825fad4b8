/**
 * The sandbox prelude: JavaScript evaluated once in every fresh QuickJS context, before
 * the function's own code. It builds the CloudFront `cloudfront-js-2.0` globals a
 * connection function may use (SPEC section 4) — `console`, `Buffer`, `TextEncoder`,
 * `TextDecoder`, `atob`, `btoa`, `require('crypto' | 'querystring' | 'buffer')`, the
 * `cloudfront` module object — removes `eval` and every route to the `Function`
 * constructor, replaces `Date` with one frozen per invocation, and deep-freezes every
 * intrinsic reachable from the global object so one invocation cannot change what the
 * next one sees.
 *
 * Host functions (installed on the global object by runtime.ts, captured and deleted
 * here before any user code runs):
 * - `__ph_kvs(op, key)`: op 0 → value string or undefined; 1 → boolean; 2 → meta JSON.
 *   Throws when no KeyValueStore is associated.
 * - `__ph_hash(alg, keyHexOrUndefined, dataHex)` → digest as lowercase hex.
 *
 * The completion value of the prelude is the internal driver object
 * `{ invoke, invokeConn, define, collect, noop, setNow }`, held only by the host (never reachable from user code).
 */
export const PRELUDE_SOURCE = String.raw`
(function () {
'use strict';
const G = globalThis;
const hostKvs = G.__ph_kvs, hostHash = G.__ph_hash;
delete G.__ph_kvs; delete G.__ph_hash;
const RealDate = Date;
const fromCharCode = String.fromCharCode;
const JSONparse = JSON.parse, JSONstringify = JSON.stringify;
const PromiseResolve = Promise.resolve.bind(Promise), PromiseReject = Promise.reject.bind(Promise);
const promiseThen = Promise.prototype.then;
const defineProperty = Object.defineProperty, getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
const getPrototypeOf = Object.getPrototypeOf, ownKeys = Reflect.ownKeys, freeze = Object.freeze;
const apply = Reflect.apply, isArray = Array.isArray, stringSplit = String.prototype.split;

// ---- byte helpers ---------------------------------------------------------
function utf8Encode(str) {
  const out = new Uint8Array(str.length * 3);
  let j = 0;
  for (let i = 0; i < str.length; i++) {
    let c = str.charCodeAt(i);
    if (c < 0x80) { out[j++] = c; continue; }
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < str.length) {
      const d = str.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00); i++;
        out[j++] = 0xf0 | (c >> 18); out[j++] = 0x80 | ((c >> 12) & 63); out[j++] = 0x80 | ((c >> 6) & 63); out[j++] = 0x80 | (c & 63);
        continue;
      }
    }
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
    if (c < 0x800) { out[j++] = 0xc0 | (c >> 6); out[j++] = 0x80 | (c & 63); }
    else { out[j++] = 0xe0 | (c >> 12); out[j++] = 0x80 | ((c >> 6) & 63); out[j++] = 0x80 | (c & 63); }
  }
  return out.slice(0, j);
}
function codesToString(codes, n) {
  let s = '';
  for (let i = 0; i < n; i += 4096) s += apply(fromCharCode, null, codes.slice(i, Math.min(n, i + 4096)));
  return s;
}
function utf8Decode(b) {
  const codes = [];
  let i = 0;
  const n = b.length;
  while (i < n) {
    const c = b[i];
    if (c < 0x80) { codes.push(c); i++; continue; }
    let need = 0, cp = 0, min = 0;
    if (c >= 0xc2 && c <= 0xdf) { need = 1; cp = c & 0x1f; min = 0x80; }
    else if (c >= 0xe0 && c <= 0xef) { need = 2; cp = c & 0x0f; min = 0x800; }
    else if (c >= 0xf0 && c <= 0xf4) { need = 3; cp = c & 0x07; min = 0x10000; }
    else { codes.push(0xfffd); i++; continue; }
    let k = 1;
    for (; k <= need; k++) {
      const d = b[i + k];
      if (d === undefined || (d & 0xc0) !== 0x80) break;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (k <= need) { codes.push(0xfffd); i += k; continue; }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) { codes.push(0xfffd); i += 1; continue; }
    i += need + 1;
    if (cp >= 0x10000) { cp -= 0x10000; codes.push(0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff)); } else codes.push(cp);
  }
  return codesToString(codes, codes.length);
}
const HEX = '0123456789abcdef';
function toHex(b) {
  let s = '';
  for (let i = 0; i < b.length; i++) s += HEX[b[i] >> 4] + HEX[b[i] & 15];
  return s;
}
function hexVal(c) {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}
function fromHex(s) {
  const n = s.length >> 1;
  const out = new Uint8Array(n);
  let i = 0;
  for (; i < n; i++) {
    const h = hexVal(s.charCodeAt(2 * i)), l = hexVal(s.charCodeAt(2 * i + 1));
    if (h < 0 || l < 0) break;
    out[i] = (h << 4) | l;
  }
  return i === n ? out : out.slice(0, i);
}
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const B64REV = new Int16Array(128).fill(-1);
for (let i = 0; i < 64; i++) { B64REV[B64.charCodeAt(i)] = i; B64REV[B64URL.charCodeAt(i)] = i; }
function toBase64(b, url) {
  const t = url ? B64URL : B64;
  let s = '';
  let i = 0;
  for (; i + 2 < b.length; i += 3) {
    const v = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2];
    s += t[v >> 18] + t[(v >> 12) & 63] + t[(v >> 6) & 63] + t[v & 63];
  }
  if (i < b.length) {
    const v = (b[i] << 16) | ((i + 1 < b.length ? b[i + 1] : 0) << 8);
    s += t[v >> 18] + t[(v >> 12) & 63];
    if (i + 1 < b.length) s += t[(v >> 6) & 63]; else if (!url) s += '=';
    if (!url) s += '=';
  }
  return s;
}
// Lenient like Node's Buffer.from(s, 'base64'): both alphabets, stops at '=', skips other characters.
function fromBase64(s) {
  const out = new Uint8Array(((s.length * 3) >> 2) + 3);
  let acc = 0, bits = 0, j = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 61) break;
    const v = c < 128 ? B64REV[c] : -1;
    if (v < 0) continue;
    acc = ((acc << 6) | v) & 0xffffff; bits += 6;
    if (bits >= 8) { bits -= 8; out[j++] = (acc >> bits) & 255; }
  }
  return out.slice(0, j);
}
function latin1Encode(s) {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 255;
  return out;
}
function latin1Decode(b, mask) {
  const codes = new Array(b.length);
  for (let i = 0; i < b.length; i++) codes[i] = b[i] & mask;
  return codesToString(codes, codes.length);
}
function normEnc(enc) {
  const e = enc === undefined || enc === null ? 'utf8' : String(enc).toLowerCase();
  switch (e) {
    case 'utf8': case 'utf-8': return 'utf8';
    case 'hex': return 'hex';
    case 'base64': return 'base64';
    case 'base64url': return 'base64url';
    case 'latin1': case 'binary': return 'latin1';
    case 'ascii': return 'ascii';
    default: throw new TypeError('Unknown encoding: ' + e);
  }
}
function encodeString(s, enc) {
  switch (normEnc(enc)) {
    case 'utf8': return utf8Encode(s);
    case 'hex': return fromHex(s);
    case 'base64': case 'base64url': return fromBase64(s);
    default: return latin1Encode(s);
  }
}
function decodeBytes(b, enc) {
  switch (normEnc(enc)) {
    case 'utf8': return utf8Decode(b);
    case 'hex': return toHex(b);
    case 'base64': return toBase64(b, false);
    case 'base64url': return toBase64(b, true);
    case 'latin1': return latin1Decode(b, 255);
    default: return latin1Decode(b, 127);
  }
}
function asBytes(data, enc) {
  if (typeof data === 'string') return encodeString(data, enc);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError('The data argument must be a string, Buffer, TypedArray or DataView');
}

// ---- Buffer (a Uint8Array subclass, Node's API subset) --------------------
class Buffer extends Uint8Array {
  static from(value, encodingOrOffset, length) {
    if (typeof value === 'string') { const b = encodeString(value, encodingOrOffset); return new Buffer(b.buffer, b.byteOffset, b.length); }
    if (value instanceof ArrayBuffer) {
      const off = encodingOrOffset === undefined ? 0 : encodingOrOffset >>> 0;
      return new Buffer(value, off, length === undefined ? value.byteLength - off : length >>> 0);
    }
    if (ArrayBuffer.isView(value) || Array.isArray(value)) {
      const b = new Buffer(value.length);
      for (let i = 0; i < value.length; i++) b[i] = value[i] & 255;
      return b;
    }
    if (value && value.type === 'Buffer' && Array.isArray(value.data)) return Buffer.from(value.data);
    throw new TypeError('The first argument must be of type string, Buffer, ArrayBuffer, Array, or Array-like Object');
  }
  static alloc(size, fill, encoding) {
    const b = new Buffer(size >>> 0);
    if (fill !== undefined && fill !== 0) {
      if (typeof fill === 'number') b.fill(fill & 255);
      else { const f = asBytes(fill, encoding); if (f.length) for (let i = 0; i < b.length; i++) b[i] = f[i % f.length]; }
    }
    return b;
  }
  static allocUnsafe(size) { return new Buffer(size >>> 0); }
  static isBuffer(b) { return b instanceof Buffer; }
  static isEncoding(e) { try { normEnc(e); return typeof e === 'string'; } catch (_) { return false; } }
  static byteLength(s, enc) { return typeof s === 'string' ? encodeString(s, enc).length : asBytes(s).length; }
  static concat(list, totalLength) {
    let total = 0;
    for (const b of list) total += b.length;
    if (totalLength !== undefined) total = totalLength >>> 0;
    const out = new Buffer(total);
    let off = 0;
    for (const b of list) {
      if (off >= total) break;
      const part = b.length > total - off ? b.subarray(0, total - off) : b;
      out.set(part, off); off += part.length;
    }
    return out;
  }
  static compare(a, b) { return a.compare(b); }
  toString(encoding, start, end) {
    const s = start === undefined ? 0 : Math.max(0, start | 0);
    const e = end === undefined ? this.length : Math.min(this.length, end | 0);
    return decodeBytes(e <= s ? new Uint8Array(0) : this.subarray(s, e), encoding);
  }
  toJSON() { return { type: 'Buffer', data: Array.from(this) }; }
  equals(other) { return this.compare(other) === 0; }
  compare(other) {
    const n = Math.min(this.length, other.length);
    for (let i = 0; i < n; i++) if (this[i] !== other[i]) return this[i] < other[i] ? -1 : 1;
    return this.length === other.length ? 0 : this.length < other.length ? -1 : 1;
  }
  slice(start, end) { return this.subarray(start, end); }
  write() { throw new Error('Buffer.prototype.write is not supported in connection functions'); }
  readUInt8(o) { return this[o >>> 0]; }
  readUInt16BE(o) { o >>>= 0; return (this[o] << 8) | this[o + 1]; }
  readUInt32BE(o) { o >>>= 0; return ((this[o] << 24) >>> 0) + ((this[o + 1] << 16) | (this[o + 2] << 8) | this[o + 3]); }
}

class TextEncoder {
  get encoding() { return 'utf-8'; }
  encode(s) { return utf8Encode(s === undefined ? '' : String(s)); }
}
class TextDecoder {
  constructor(label, options) {
    const l = label === undefined ? 'utf-8' : String(label).toLowerCase();
    if (l !== 'utf-8' && l !== 'utf8') throw new RangeError('The "' + l + '" encoding is not supported');
    this._fatal = !!(options && options.fatal);
  }
  get encoding() { return 'utf-8'; }
  get fatal() { return this._fatal; }
  decode(input) {
    if (input === undefined) return '';
    const s = utf8Decode(asBytes(input));
    if (this._fatal && s.indexOf('\ufffd') >= 0) throw new TypeError('The encoded data was not valid for encoding utf-8');
    return s;
  }
}
function btoa(s) {
  s = String(s);
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 255) throw new Error('InvalidCharacterError: btoa: character outside of the Latin1 range');
  return toBase64(latin1Encode(s), false);
}
function atob(s) {
  s = String(s).replace(/[\t\n\f\r ]/g, '');
  if (s.length % 4 === 0) s = s.replace(/==?$/, '');
  if (s.length % 4 === 1 || /[^A-Za-z0-9+/]/.test(s)) throw new Error('InvalidCharacterError: atob: the string is not correctly encoded');
  return latin1Decode(fromBase64(s), 255);
}

// ---- crypto: createHash / createHmac (md5, sha1, sha256), hashing on the host ----
const ALGS = ['md5', 'sha1', 'sha256'];
function checkAlg(alg) {
  const a = String(alg).toLowerCase().replace('-', '');
  if (ALGS.indexOf(a) < 0) throw new Error('Digest method not supported: ' + alg);
  return a;
}
function concatBytes(chunks) {
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) { out.set(c, o); o += c.length; }
  return out;
}
function makeHasher(alg, key) {
  const chunks = [];
  let done = false;
  const h = {
    update(data, enc) {
      if (done) throw new Error('Digest already called');
      chunks.push(asBytes(data, enc));
      return h;
    },
    digest(enc) {
      if (done) throw new Error('Digest already called');
      done = true;
      const hex = hostHash(alg, key === undefined ? undefined : toHex(key), toHex(concatBytes(chunks)));
      if (enc === undefined || enc === 'buffer') return Buffer.from(hex, 'hex');
      return enc === 'hex' ? hex : decodeBytes(fromHex(hex), enc);
    },
  };
  return h;
}
const cryptoModule = freeze({
  createHash(alg) { return makeHasher(checkAlg(alg), undefined); },
  createHmac(alg, key) {
    if (key === undefined || key === null) throw new TypeError('The "key" argument must be a string or a Buffer');
    return makeHasher(checkAlg(alg), asBytes(key));
  },
});

// ---- querystring (Node's API subset) --------------------------------------
function qsUnescape(s) {
  try { return decodeURIComponent(s); } catch (_) {
    return s.replace(/%([0-9a-fA-F]{2})/g, (m, h) => fromCharCode(parseInt(h, 16)));
  }
}
function qsEscape(s) { return encodeURIComponent(s); }
function qsValue(v) {
  if (typeof v === 'string') return v;
  if ((typeof v === 'number' && isFinite(v)) || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  return '';
}
const querystringModule = freeze({
  escape: qsEscape,
  unescape: qsUnescape,
  parse(str, sep, eq, options) {
    const out = Object.create(null);
    if (typeof str !== 'string' || str.length === 0) return out;
    sep = sep || '&'; eq = eq || '=';
    const max = options && typeof options.maxKeys === 'number' ? options.maxKeys : 1000;
    let parts = str.split(sep);
    if (max > 0 && parts.length > max) parts = parts.slice(0, max);
    for (const p of parts) {
      if (p.length === 0) continue;
      const idx = p.indexOf(eq);
      const k = qsUnescape((idx >= 0 ? p.slice(0, idx) : p).replace(/\+/g, ' '));
      const v = idx >= 0 ? qsUnescape(p.slice(idx + eq.length).replace(/\+/g, ' ')) : '';
      if (!(k in out)) out[k] = v;
      else if (Array.isArray(out[k])) out[k].push(v);
      else out[k] = [out[k], v];
    }
    return out;
  },
  stringify(obj, sep, eq) {
    sep = sep || '&'; eq = eq || '=';
    if (obj === null || typeof obj !== 'object') return '';
    const parts = [];
    for (const k of Object.keys(obj)) {
      const v = obj[k];
      const ks = qsEscape(qsValue(k)) + eq;
      if (Array.isArray(v)) { for (const x of v) parts.push(ks + qsEscape(qsValue(x))); }
      else parts.push(ks + qsEscape(qsValue(v)));
    }
    return parts.join(sep);
  },
});
const qsWithAliases = freeze(Object.assign({}, querystringModule, { decode: querystringModule.parse, encode: querystringModule.stringify }));
const bufferModule = freeze({ Buffer });

function require(name) {
  switch (name) {
    case 'crypto': return cryptoModule;
    case 'querystring': return qsWithAliases;
    case 'buffer': return bufferModule;
    default: throw new Error("Cannot find module '" + name + "' (connection functions may require only 'crypto', 'querystring' and 'buffer')");
  }
}

// ---- cloudfront module -----------------------------------------------------
function kvsError(e) { return e instanceof Error ? e : new Error(String(e)); }
const kvsHandle = freeze({
  get(key, options) {
    try {
      const k = String(key);
      const format = options && options.format !== undefined ? options.format : 'string';
      if (format !== 'string' && format !== 'json' && format !== 'bytes') return PromiseReject(new TypeError('Unknown format: ' + format + " (use 'string', 'json' or 'bytes')"));
      const v = hostKvs(0, k);
      if (v === undefined) return PromiseReject(new Error('Key not found: ' + k));
      if (format === 'json') return PromiseResolve(JSONparse(v));
      if (format === 'bytes') return PromiseResolve(Buffer.from(v, 'utf8'));
      return PromiseResolve(v);
    } catch (e) { return PromiseReject(kvsError(e)); }
  },
  exists(key) {
    try { return PromiseResolve(hostKvs(1, String(key))); } catch (e) { return PromiseReject(kvsError(e)); }
  },
  meta() {
    try { return PromiseResolve(JSONparse(hostKvs(2, ''))); } catch (e) { return PromiseReject(kvsError(e)); }
  },
});
const cloudfront = freeze({ kvs() { return kvsHandle; } });

// ---- console, Date -----------------------------------------------------------
const MAX_LOG_LINES = 100, MAX_LOG_LINE = 2048;
let logs = [];
function fmt(v) {
  if (typeof v === 'string') return v;
  if (v instanceof Error) return String(v.name) + ': ' + String(v.message);
  if (typeof v === 'function') return '[Function' + (v.name ? ': ' + v.name : '') + ']';
  if (v === undefined || typeof v === 'symbol' || typeof v === 'bigint' || typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  try { const s = JSONstringify(v); return s === undefined ? String(v) : s; } catch (_) { return String(v); }
}
function log() {
  if (logs.length >= MAX_LOG_LINES) { if (logs.length === MAX_LOG_LINES) logs.push('[further console output dropped]'); return; }
  let line = '';
  for (let i = 0; i < arguments.length; i++) line += (i ? ' ' : '') + fmt(arguments[i]);
  if (line.length > MAX_LOG_LINE) line = line.slice(0, MAX_LOG_LINE) + '…[truncated]';
  logs.push(line);
}
const consoleObject = freeze({ log, info: log, warn: log, error: log, debug: log });

let nowMs = 0;
function FrozenDate(a, b, c, d, e, f, g) {
  const n = arguments.length;
  if (!new.target) return new RealDate(nowMs).toString();
  switch (n) {
    case 0: return new RealDate(nowMs);
    case 1: return new RealDate(a);
    default: return new RealDate(a, b, n > 2 ? c : 1, n > 3 ? d : 0, n > 4 ? e : 0, n > 5 ? f : 0, n > 6 ? g : 0);
  }
}
FrozenDate.prototype = RealDate.prototype;
FrozenDate.now = function now() { return nowMs; };
FrozenDate.parse = RealDate.parse;
FrozenDate.UTC = RealDate.UTC;
defineProperty(RealDate.prototype, 'constructor', { value: FrozenDate, writable: false, enumerable: false, configurable: false });

// ---- no eval, no Function constructor -----------------------------------------
function noCodeGeneration() { throw new EvalError('Code generation from strings is disabled in connection functions'); }
const FunctionProto = getPrototypeOf(function () {});
defineProperty(noCodeGeneration, 'prototype', { value: FunctionProto, writable: false });
const hiddenFunctionProtos = [
  FunctionProto,
  getPrototypeOf(async function () {}),
  getPrototypeOf(function* () {}),
  getPrototypeOf(async function* () {}),
];
for (const p of hiddenFunctionProtos) defineProperty(p, 'constructor', { value: noCodeGeneration, writable: false, enumerable: false, configurable: false });

function setGlobal(name, value) { defineProperty(G, name, { value, writable: true, enumerable: false, configurable: true }); }
delete G.eval;
// Not in SPEC section 4's list, and shared memory has no use in a single-threaded sandbox.
delete G.SharedArrayBuffer;
delete G.Atomics;
setGlobal('Function', noCodeGeneration);
setGlobal('Date', FrozenDate);
setGlobal('console', consoleObject);
setGlobal('Buffer', Buffer);
setGlobal('TextEncoder', TextEncoder);
setGlobal('TextDecoder', TextDecoder);
setGlobal('atob', atob);
setGlobal('btoa', btoa);
setGlobal('require', require);
setGlobal('__portcullis_cloudfront__', cloudfront);

// ---- freeze every intrinsic --------------------------------------------------
// Data properties that ordinary code assigns on its own objects (this.name = … in an
// Error subclass, obj.toString = …) become accessors whose setter defines an own
// property on the receiver, so freezing the prototype does not break that code.
function tame(obj, key) {
  const d = getOwnPropertyDescriptor(obj, key);
  if (!d || !('value' in d) || !d.configurable) return;
  const value = d.value;
  defineProperty(obj, key, {
    get() { return value; },
    set(v) {
      if (this === obj) throw new TypeError('Cannot assign to read only property ' + String(key) + ' of a built-in');
      defineProperty(this, key, { value: v, writable: true, enumerable: true, configurable: true });
    },
    enumerable: d.enumerable, configurable: false,
  });
}
for (const k of ['toString', 'valueOf', 'constructor', 'hasOwnProperty', 'toLocaleString']) tame(Object.prototype, k);
for (const E of [Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError]) {
  for (const k of ['name', 'message', 'constructor', 'toString']) tame(E.prototype, k);
}
const seen = new WeakSet();
function deepFreeze(o) {
  if ((typeof o !== 'object' && typeof o !== 'function') || o === null || seen.has(o)) return;
  seen.add(o);
  freeze(o);
  for (const k of ownKeys(o)) {
    const d = getOwnPropertyDescriptor(o, k);
    if (!d) continue;
    if ('value' in d) deepFreeze(d.value); else { deepFreeze(d.get); deepFreeze(d.set); }
  }
  deepFreeze(getPrototypeOf(o));
}
function* gen() {}
async function* agen() {}
const roots = [
  G, ...hiddenFunctionProtos, gen(), agen(),
  [][Symbol.iterator](), new Map()[Symbol.iterator](), new Set()[Symbol.iterator](), ''[Symbol.iterator](),
  /a/[Symbol.matchAll](''), new Map().entries(), new Set().entries(),
];
for (const r of roots) deepFreeze(r);

// ---- the driver (reachable only from the host) ---------------------------------
let current = null;
function describe(e) {
  try {
    if (e instanceof Error || (e && typeof e === 'object' && 'message' in e)) {
      const name = typeof e.name === 'string' ? e.name : 'Error';
      const stack = typeof e.stack === 'string' ? e.stack.slice(0, 400) : '';
      const m = /\(?function\.js:(\d+):(\d+)\)?/.exec(stack);
      return name + ': ' + String(e.message).slice(0, 1000) + (m ? ' (line ' + m[1] + ', column ' + m[2] + ')' : '');
    }
    return 'Uncaught ' + fmt(e).slice(0, 1000);
  } catch (_) { return 'Uncaught exception'; }
}
function begin(now) {
  nowMs = now;
  const st = { d: 0, cd: undefined, err: undefined, settled: false, logs: [] };
  current = st;
  logs = st.logs;
  return st;
}
// Decisions count while the invocation is current: in the handler, in its promise
// chain and in any job it left behind, since the host drains the jobs of every
// invocation (sync handlers included) before it collects the result.
function run(st, handler, conn) {
  conn.allow = function allow() { if (current === st && st.d === 0) st.d = 1; };
  conn.deny = function deny() { if (current === st) st.d = 2; };
  conn.logCustomData = function logCustomData(s) { if (current === st) st.cd = String(s).slice(0, 800); };
  let r;
  try {
    r = handler(conn);
    // A user-defined then getter or promise subclass can throw here: the function's error, not the driver's.
    if (r !== null && (typeof r === 'object' || typeof r === 'function') && typeof r.then === 'function') {
      apply(promiseThen, PromiseResolve(r), [() => { st.settled = true; }, (e) => { st.err = describe(e); st.settled = true; }]);
      return undefined;
    }
  } catch (e) { st.err = describe(e); }
  st.settled = true;
  // The result so far; the host calls collect() instead when jobs are pending.
  return encode(st);
}
// JSON values only (no accessors, no cycles): freezes o and everything under it.
function freezeJson(o) {
  if (typeof o !== 'object' || o === null) return o;
  freeze(o);
  const keys = ownKeys(o);
  for (let i = 0; i < keys.length; i++) freezeJson(o[keys[i]]);
  return o;
}
// Certificate views are immutable data (frozen on the host too): frozen in both paths,
// so a function cannot tell which path built its connection object.
function freezeViews(conn) {
  const cc = conn !== null && typeof conn === 'object' ? conn.clientCertificate : undefined;
  const certs = cc !== null && typeof cc === 'object' ? cc.certificates : undefined;
  if (certs === null || typeof certs !== 'object') return;
  freezeJson(certs.leaf);
  const im = certs.intermediates;
  if (isArray(im)) for (let i = 0; i < im.length; i++) freezeJson(im[i]);
}
// The connection object as JSON text (any shape; the host's fallback path).
function invoke(handler, json, now) {
  const st = begin(now);
  let conn;
  try { conn = JSONparse(json); freezeViews(conn); } catch (e) { st.err = 'cannot read the connection object: ' + describe(e); st.settled = true; return collect(); }
  return run(st, handler, conn);
}
// Deep-frozen certificate views by id, shared by every invocation that presents that
// certificate. Filled by the host (define) before the first invocation that needs an
// entry; the host bounds its size and tells it when to start over.
const certCache = new Map();
function define(reset, defs) {
  if (reset) certCache.clear();
  const list = JSONparse(defs);
  for (let i = 0; i < list.length; i += 2) certCache.set(list[i], freezeJson(list[i + 1]));
}
function cachedCert(id) {
  if (!certCache.has(id)) throw new Error('certificate ' + id + ' is not in the sandbox cache');
  return certCache.get(id);
}
// The connection object of the usual shape from its parts: scalars, the certificate ids
// ("leaf,intermediate,…", undefined without a client certificate) and the
// revocationStatus JSON (undefined when absent). Builds the same object, key order
// included, as JSON.parse of the host's JSON text would.
function invokeConn(handler, now, connectionId, clientIp, clientPort, endpoint, distributionId, certIds, rsJson) {
  const st = begin(now);
  const conn = { connectionId, clientIp, clientPort, endpoint, distributionId };
  if (certIds !== undefined) {
    let certificates, revocationStatus;
    try {
      const ids = apply(stringSplit, certIds, [',']);
      const intermediates = [];
      for (let i = 1; i < ids.length; i++) intermediates[i - 1] = cachedCert(+ids[i]);
      certificates = { leaf: cachedCert(+ids[0]), intermediates };
      if (rsJson !== undefined) revocationStatus = JSONparse(rsJson);
    } catch (e) { st.err = 'cannot read the connection object: ' + describe(e); st.settled = true; return collect(); }
    conn.clientCertificate = rsJson === undefined ? { certificates } : { certificates, revocationStatus };
  }
  return run(st, handler, conn);
}
// One string back to the host: decision digit, then JSON of [customData, error, logs] when needed.
function encode(st) {
  const head = st.settled ? String(st.d) : '3';
  if (st.cd === undefined && st.err === undefined && st.logs.length === 0) return head;
  return head + JSONstringify([st.cd === undefined ? null : st.cd, st.err === undefined ? null : st.err, st.logs]);
}
// Ends the current invocation (later allow/deny/logCustomData calls are ignored).
function collect() {
  const st = current;
  if (st === null) return '3';
  current = null;
  logs = [];
  return encode(st);
}
// What Date.now() returns outside invocations (top-level code: the time it runs).
function setNow(now) { nowMs = now; }
function noop() {}
return freeze({ invoke, invokeConn, define, collect, noop, setNow });
})()
`;
