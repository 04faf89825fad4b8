/**
 * Limit guard for connection functions (SPEC section 4: "exceeding either [limit] denies
 * the connection with `Failed:ConnectionFunctionError`").
 *
 * QuickJS (quickjs-emscripten 0.32, engine 2025-09-13) raises "out of memory", "stack
 * overflow" and "out of memory in regexp execution" as ordinary catchable
 * `InternalError`s, so `try { new ArrayBuffer(8e6) } catch {} c.allow()` would allow.
 * The engine has no hook on error creation, so this module closes the hole from both
 * sides:
 *
 * - {@link guardSource} rewrites the function's code so that every place that can
 *   observe a thrown value (each `catch` clause, and a synthesized catch in front of
 *   each `finally`) first calls `__pcGuard(value)`;
 * - {@link LIMIT_GUARD_PRELUDE} defines `__pcGuard` in the sandbox (a global `const`:
 *   QuickJS 2025-09-13 lets `Object.defineProperty` change even a non-writable,
 *   non-configurable property of the global object, frozen or not, but not a global
 *   lexical binding): for an engine limit error it calls the host function
 *   {@link LIMIT_HIT_HOST_FUNCTION} (the host marks the invocation fatal) and rethrows;
 *   for anything else it returns. It also guards
 *   the promise paths the transform cannot see (`then`/`catch`/`finally` rejection
 *   handlers, `Promise.allSettled` records, `Promise.any`'s AggregateError).
 *
 * The rewrite keeps every line where it was (insertions are on the same line; a
 * multi-line destructuring catch parameter keeps its newlines), so compile errors and
 * stack traces keep the user's line numbers; columns after an insertion point shift.
 * It is driven by a tokenizer (strings, templates with nested `${}`, comments, regular
 * expressions vs division, brace structure). Whatever it cannot classify with certainty
 * is refused with a {@link FunctionCompileError} instead of guessed: a function that
 * does not compile is visible, a wrong guess silently reopens the hole.
 */
import { FunctionCompileError } from '../errors.js';

/** Name of the sandbox global the rewritten code calls: `__pcGuard(thrownValue)`. */
export const GUARD_FUNCTION = '__pcGuard';

/**
 * Name of the host function the runtime installs on the sandbox's global object before
 * evaluating {@link LIMIT_GUARD_PRELUDE}, which captures and deletes it. Called as
 * `__pcLimitHit(kind)` with kind `'memory'` or `'stack'`, at most a few times per
 * invocation; it must record the hit in host state (so the invocation is denied with
 * ConnectionFunctionError whatever the function does next) and return undefined.
 */
export const LIMIT_HIT_HOST_FUNCTION = '__pcLimitHit';

/**
 * Identifiers user code may not use: everything starting with `__pc` (so the code
 * cannot shadow `__pcGuard` or the temporaries the rewrite introduces).
 */
export const RESERVED_IDENTIFIER_PREFIX = '__pc';

/** Result of {@link guardSource}. */
export interface GuardedSource {
  /** The rewritten code (same number of lines as the input). */
  code: string;
  /** How many guard call sites were inserted (catch clauses plus synthesized catches before `finally`). */
  sites: number;
}

/** Options of {@link guardSource}. */
export interface GuardSourceOptions {
  /**
   * Label used in error messages, formatted like runtime.ts's compile errors
   * (`function ${label}: …`); default `code`.
   */
  label?: string;
}

type TokType = 'name' | 'num' | 'str' | 'tmpl' | 'regex' | 'punct' | 'private';

interface Tok {
  type: TokType;
  value: string;
  start: number;
  end: number;
  /** For a `name`: the keyword reading (not a property name after `.` / `?.`). */
  keyword?: boolean;
  /** For `)`: the head keyword of the parenthesis it closes (if/while/for/with/switch/catch), if any. */
  head?: string;
  /** For `++` / `--`: a postfix operator (it follows an operand on the same line). */
  postfix?: boolean;
  /** For `}`: the kind of brace it closes. */
  closes?: BraceFrame;
  /** For `catch` / `finally`: it is a clause of a try statement. */
  clause?: boolean;
}

type BraceKind = 'try' | 'catch' | 'finally' | 'block' | 'fn' | 'object' | 'class' | 'unknown';

interface BraceFrame {
  delim: '{';
  kind: BraceKind;
  /** For try/catch blocks: offset of the `try` keyword of the statement. */
  tryStart?: number;
  /** For a finally block of a rewritten statement: its closing `}` also closes the wrapper block. */
  closeWrap?: boolean;
  start: number;
}
interface TemplateFrame { delim: '${'; start: number }
interface ParenFrame { delim: '('; head: string | undefined; start: number }
interface BracketFrame { delim: '['; start: number }
type Frame = BraceFrame | TemplateFrame | ParenFrame | BracketFrame;

/** Keywords after which a `/` starts a regular expression. */
const REGEX_AFTER_KEYWORD = new Set([
  'return', 'typeof', 'instanceof', 'in', 'new', 'delete', 'void', 'throw', 'case', 'do', 'else', 'yield', 'await',
  'break', 'continue', 'default', 'extends',
]);
/** Reserved words (strict mode, module code) that cannot end an operand. */
const RESERVED = new Set([
  'await', 'break', 'case', 'catch', 'class', 'const', 'continue', 'debugger', 'default', 'delete', 'do', 'else',
  'enum', 'export', 'extends', 'finally', 'for', 'function', 'if', 'implements', 'import', 'in', 'instanceof',
  'interface', 'let', 'new', 'package', 'private', 'protected', 'public', 'return', 'static', 'switch', 'throw',
  'try', 'typeof', 'var', 'void', 'while', 'with', 'yield',
]);
const HEADS = new Set(['if', 'while', 'for', 'with', 'switch']);
const PUNCTUATORS = [
  '>>>=', '...', '===', '!==', '**=', '<<=', '>>=', '>>>', '&&=', '||=', '??=',
  '=>', '==', '!=', '<=', '>=', '&&', '||', '??', '?.', '++', '--', '+=', '-=', '*=', '/=', '%=', '&=', '|=', '^=', '**', '<<', '>>',
  '{', '}', '(', ')', '[', ']', ';', ',', '<', '>', '+', '-', '*', '/', '%', '&', '|', '^', '!', '~', '?', ':', '=', '.', '@',
];
const ID_START = /[\p{ID_Start}$_]/u;
const ID_PART = /[\p{ID_Continue}$\u200c\u200d]/u;
const WS = /[\t\v\f \u00a0\ufeff\n\r\u2028\u2029\p{Zs}]/u;
const NUMBER = /(?:0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d[\d_]*)?)n?/y;

interface Edit { at: number; end: number; text: string }

class GuardError extends Error {
  constructor(message: string, readonly offset: number) {
    super(message);
  }
}

function position(code: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < code.length; i++) {
    if (code.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

/**
 * Rewrites connection-function code so that every site that can observe a thrown value
 * calls `__pcGuard(value)` first (see the module comment):
 * - `catch (e) {` → `catch (e) { __pcGuard(e);`
 * - `catch {` → `catch (__pcE) { __pcGuard(__pcE);`
 * - `catch ({ message }) {` → `catch (__pcE) { __pcGuard(__pcE); let { message } = __pcE;`
 *   (a multi-line pattern keeps its newlines inside the parentheses)
 * - `try {A} finally {C}` →
 *   `{ let __pcX; try {A} catch (__pcE) { __pcX = __pcE; __pcGuard(__pcE); __pcX = void 0; throw __pcE; } finally { if (__pcX !== void 0) throw __pcX; C } }`
 *   — the thrown value is parked in `__pcX` before the guard is called, so when the
 *   guard finds a limit error, or cannot even be called because the stack is exhausted,
 *   the finally block rethrows instead of letting a `return`/`break`/`throw` in C
 *   swallow it;
 * - `try {A} catch (e) {B} finally {C}` → the same around `try { try {A} catch (e) { __pcGuard(e); B} }`
 *   (an error thrown by B must not be swallowed by the finally either).
 * Nothing else changes: no line moves; columns shift only after an insertion point.
 * Call it on code that already compiled (so syntax errors are reported against the
 * user's text); its output is meant to be compiled the same way (module or script).
 * @param code The function's source (a module or a script).
 * @returns The rewritten code and the number of guard sites inserted.
 * @throws FunctionCompileError (with `line`/`column`) when the code uses an identifier
 *   starting with `__pc` or an escaped identifier, or when the tokenizer meets anything
 *   it cannot classify with certainty (unterminated literal or comment, unbalanced
 *   brackets, a `/` after a `}` that is not a statement block, an HTML-like comment,
 *   a catch parameter spanning a multi-line template or comment).
 */
export function guardSource(code: string, options: GuardSourceOptions = {}): GuardedSource {
  try {
    return new Rewriter(code).run();
  } catch (err) {
    if (!(err instanceof GuardError)) throw err;
    const pos = position(code, err.offset);
    const label = options.label ?? 'code';
    throw new FunctionCompileError(
      `function ${label}: ${err.message} (line ${pos.line}, column ${pos.column})`,
      pos,
    );
  }
}

class Rewriter {
  private pos = 0;
  private readonly toks: Tok[] = [];
  private readonly stack: Frame[] = [];
  private readonly edits: Edit[] = [];
  private sites = 0;

  constructor(private readonly src: string) {}

  run(): GuardedSource {
    const s = this.src;
    if (s.startsWith('#!')) this.pos = this.lineEnd(0);
    for (;;) {
      this.skipTrivia();
      if (this.pos >= s.length) break;
      this.token();
    }
    if (this.stack.length > 0) {
      const top = this.stack[this.stack.length - 1] as Frame;
      throw new GuardError(`unclosed '${top.delim === '${' ? '${' : top.delim}'`, top.start);
    }
    this.edits.sort((a, b) => a.at - b.at);
    let out = '';
    let last = 0;
    for (const e of this.edits) {
      out += s.slice(last, e.at) + e.text;
      last = e.end;
    }
    out += s.slice(last);
    return { code: out, sites: this.sites };
  }

  private lineEnd(from: number): number {
    const s = this.src;
    let i = from;
    while (i < s.length) {
      const c = s.charCodeAt(i);
      if (c === 10 || c === 13 || c === 0x2028 || c === 0x2029) break;
      i++;
    }
    return i;
  }

  private skipTrivia(): void {
    const s = this.src;
    while (this.pos < s.length) {
      const ch = s[this.pos] as string;
      if (WS.test(ch)) {
        this.pos++;
      } else if (ch === '/' && s[this.pos + 1] === '/') {
        this.pos = this.lineEnd(this.pos);
      } else if (ch === '/' && s[this.pos + 1] === '*') {
        const end = s.indexOf('*/', this.pos + 2);
        if (end < 0) throw new GuardError('unterminated comment', this.pos);
        this.pos = end + 2;
      } else if (s.startsWith('<!--', this.pos)) {
        throw new GuardError("'<!--' is not supported", this.pos);
      } else {
        break;
      }
    }
  }

  private prev(n = 1): Tok | undefined {
    return this.toks[this.toks.length - n];
  }

  private push(tok: Tok): Tok {
    this.toks.push(tok);
    return tok;
  }

  private token(): void {
    const s = this.src;
    const start = this.pos;
    const ch = s[start] as string;
    if (ch === '"' || ch === "'") {
      this.pos = this.scanString(start);
      this.push({ type: 'str', value: s.slice(start, this.pos), start, end: this.pos });
      return;
    }
    if (ch === '`') {
      this.scanTemplate(start + 1, start);
      return;
    }
    if (ch === '#') {
      const end = this.scanIdentifier(start + 1);
      if (end === start + 1) throw new GuardError("unexpected '#'", start);
      this.pos = end;
      this.push({ type: 'private', value: s.slice(start, end), start, end });
      return;
    }
    if (ch === '\\' || ID_START.test(this.codePointAt(start))) {
      const end = this.scanIdentifier(start);
      this.pos = end;
      this.name(s.slice(start, end), start, end);
      return;
    }
    if (/[0-9]/.test(ch) || (ch === '.' && /[0-9]/.test(s[start + 1] ?? ''))) {
      NUMBER.lastIndex = start;
      const m = NUMBER.exec(s);
      if (!m) throw new GuardError('malformed number', start);
      this.pos = start + m[0].length;
      if (this.pos < s.length && ID_START.test(this.codePointAt(this.pos))) throw new GuardError('malformed number', start);
      this.push({ type: 'num', value: m[0], start, end: this.pos });
      return;
    }
    if (ch === '/' && this.regexAllowed(start)) {
      this.pos = this.scanRegex(start);
      this.push({ type: 'regex', value: s.slice(start, this.pos), start, end: this.pos });
      return;
    }
    if (ch === '}' && this.stack.length > 0 && (this.stack[this.stack.length - 1] as Frame).delim === '${') {
      this.stack.pop();
      this.scanTemplate(start + 1, start);
      return;
    }
    let p: string | undefined;
    for (const cand of PUNCTUATORS) {
      if (s.startsWith(cand, start)) {
        p = cand;
        break;
      }
    }
    if (p === undefined) throw new GuardError(`unexpected character '${ch}'`, start);
    if (p === '?.' && /[0-9]/.test(s[start + 2] ?? '')) p = '?';
    this.pos = start + p.length;
    this.punct(p, start);
  }

  private codePointAt(i: number): string {
    return String.fromCodePoint(this.src.codePointAt(i) ?? 0);
  }

  private scanIdentifier(from: number): number {
    const s = this.src;
    let i = from;
    while (i < s.length) {
      if (s[i] === '\\') throw new GuardError('escaped identifiers are not supported', i);
      const c = this.codePointAt(i);
      if (i === from ? !ID_START.test(c) : !ID_PART.test(c)) break;
      i += c.length;
    }
    return i;
  }

  private scanString(start: number): number {
    const s = this.src;
    const q = s[start];
    let i = start + 1;
    while (i < s.length) {
      const c = s[i];
      if (c === q) return i + 1;
      if (c === '\\') {
        i += s[i + 1] === '\r' && s[i + 2] === '\n' ? 3 : 2;
        continue;
      }
      if (c === '\n' || c === '\r') break;
      i++;
    }
    throw new GuardError('unterminated string literal', start);
  }

  /** Scans template characters from `from` up to the closing backtick or a `${`. */
  private scanTemplate(from: number, tokStart: number): void {
    const s = this.src;
    let i = from;
    while (i < s.length) {
      const c = s[i];
      if (c === '\\') {
        i += 2;
        continue;
      }
      if (c === '`') {
        this.pos = i + 1;
        this.push({ type: 'tmpl', value: s.slice(tokStart, this.pos), start: tokStart, end: this.pos });
        return;
      }
      if (c === '$' && s[i + 1] === '{') {
        this.pos = i + 2;
        this.stack.push({ delim: '${', start: i });
        // The substitution starts an expression: the template head counts as a punctuator.
        this.push({ type: 'punct', value: '${', start: tokStart, end: this.pos });
        return;
      }
      i++;
    }
    throw new GuardError('unterminated template literal', tokStart);
  }

  private scanRegex(start: number): number {
    const s = this.src;
    let i = start + 1;
    let inClass = false;
    while (i < s.length) {
      const c = s[i];
      if (c === '\n' || c === '\r' || c === '\u2028' || c === '\u2029') break;
      if (c === '\\') {
        i += 2;
        continue;
      }
      if (inClass) {
        if (c === ']') inClass = false;
      } else if (c === '[') {
        inClass = true;
      } else if (c === '/') {
        i++;
        while (i < s.length && ID_PART.test(this.codePointAt(i))) {
          if (s[i] === '\\') throw new GuardError('malformed regular expression flags', i);
          i++;
        }
        return i;
      }
      i++;
    }
    throw new GuardError('unterminated regular expression', start);
  }

  /** The previous-significant-token rule: does a `/` at `at` start a regular expression? */
  private regexAllowed(at: number): boolean {
    const p = this.prev();
    if (p === undefined) return true;
    switch (p.type) {
      case 'num': case 'str': case 'regex': case 'tmpl': case 'private':
        return false;
      case 'name': {
        if (!p.keyword) return false;
        if (p.value === 'of') return this.inForHead();
        if (REGEX_AFTER_KEYWORD.has(p.value)) return true;
        // `break label` / `continue label`: the statement ends there (ASI before a regex).
        const pp = this.prev(2);
        return !RESERVED.has(p.value) && pp?.type === 'name' && pp.keyword === true && (pp.value === 'break' || pp.value === 'continue');
      }
      case 'punct':
        if (p.value === ')') return p.head === 'if' || p.head === 'while' || p.head === 'for' || p.head === 'with';
        if (p.value === ']') return false;
        if (p.value === '++' || p.value === '--') return !p.postfix;
        if (p.value === '}') {
          const k = p.closes?.kind;
          if (k === 'try' || k === 'catch' || k === 'finally' || k === 'block') return true;
          throw new GuardError("cannot tell whether '/' after this '}' is a division or a regular expression", at);
        }
        return true;
    }
  }

  private endsOperand(t: Tok | undefined): boolean {
    if (t === undefined) return false;
    switch (t.type) {
      case 'num': case 'str': case 'tmpl': case 'regex': case 'private':
        return true;
      case 'name':
        return !t.keyword || !RESERVED.has(t.value);
      case 'punct':
        return t.value === ']' || (t.value === ')' && t.head === undefined);
    }
  }

  private newlineBetween(from: number, to: number): boolean {
    return /[\n\r\u2028\u2029]/.test(this.src.slice(from, to));
  }

  private inForHead(): boolean {
    const top = this.stack[this.stack.length - 1];
    return top !== undefined && top.delim === '(' && top.head === 'for';
  }

  private name(value: string, start: number, end: number): void {
    if (value.startsWith(RESERVED_IDENTIFIER_PREFIX)) {
      throw new GuardError(`identifiers starting with '${RESERVED_IDENTIFIER_PREFIX}' are reserved`, start);
    }
    const before = this.prev();
    const keyword = !(before && before.type === 'punct' && (before.value === '.' || before.value === '?.'));
    const tok: Tok = { type: 'name', value, start, end, keyword };
    if (keyword && (value === 'catch' || value === 'finally')) {
      const closed = before?.type === 'punct' && before.value === '}' ? before.closes : undefined;
      if (closed && (closed.kind === 'try' || (value === 'finally' && closed.kind === 'catch'))) {
        tok.clause = true;
        if (value === 'finally') this.guardFinally(closed, start);
      }
    }
    this.push(tok);
  }

  /**
   * Rewrites `try … finally`: a wrapper block declares `__pcX`; a synthesized catch in
   * front of `finally` stores the thrown value in `__pcX` before calling the guard (a
   * local assignment, no call, cannot fail) and clears it once the guard returned; the
   * finally block starts by rethrowing `__pcX` when it is still set — i.e. when the
   * guard found a limit error or could not even be called (stack exhausted) — so a
   * `finally { return }` cannot swallow it.
   */
  private guardFinally(closed: BraceFrame, finallyStart: number): void {
    this.sites++;
    const tryStart = closed.tryStart;
    if (tryStart === undefined) throw new GuardError('cannot find the try of this finally', finallyStart);
    const hasCatch = closed.kind === 'catch';
    this.edits.push({ at: tryStart, end: tryStart, text: hasCatch ? '{ let __pcX; try { ' : '{ let __pcX; ' });
    this.edits.push({
      at: finallyStart, end: finallyStart,
      text: `${hasCatch ? '} ' : ''}catch (__pcE) { __pcX = __pcE; __pcGuard(__pcE); __pcX = void 0; throw __pcE; } `,
    });
    this.finallyPending = true;
  }

  /** Set between a rewritten `finally` keyword and its block's `{`. */
  private finallyPending = false;

  private punct(value: string, start: number): void {
    const end = start + value.length;
    const tok: Tok = { type: 'punct', value, start, end };
    switch (value) {
      case '(': {
        const p = this.prev();
        let head: string | undefined;
        if (p?.type === 'name' && p.keyword) {
          if (HEADS.has(p.value)) head = p.value;
          else if (p.value === 'catch' && p.clause) head = 'catch';
          else if (p.value === 'await' && this.prev(2)?.type === 'name' && this.prev(2)?.value === 'for' && this.prev(2)?.keyword) head = 'for';
        }
        this.stack.push({ delim: '(', head, start });
        break;
      }
      case '[':
        this.stack.push({ delim: '[', start });
        break;
      case ')': case ']': {
        const top = this.stack.pop();
        if (!top || top.delim !== (value === ')' ? '(' : '[')) throw new GuardError(`unbalanced '${value}'`, start);
        if (top.delim === '(') tok.head = top.head;
        break;
      }
      case '{':
        this.openBrace(start);
        break;
      case '++': case '--':
        tok.postfix = this.endsOperand(this.prev()) && !this.newlineBetween((this.prev() as Tok).end, start);
        break;
      case '}': {
        const top = this.stack.pop();
        if (!top || top.delim !== '{') throw new GuardError("unbalanced '}'", start);
        tok.closes = top;
        if (top.closeWrap) this.edits.push({ at: end, end, text: ' }' });
        break;
      }
    }
    this.push(tok);
  }

  private openBrace(start: number): void {
    const p = this.prev();
    const frame: BraceFrame = { delim: '{', kind: 'unknown', start };
    if (p === undefined) {
      frame.kind = 'block';
    } else if (p.type === 'name' && p.keyword) {
      if (p.value === 'try') {
        frame.kind = 'try';
        frame.tryStart = p.start;
      } else if (p.value === 'finally' && p.clause) {
        frame.kind = 'finally';
        if (this.finallyPending) {
          this.finallyPending = false;
          frame.closeWrap = true;
          this.edits.push({ at: start + 1, end: start + 1, text: ' if (__pcX !== void 0) throw __pcX;' });
        }
      } else if (p.value === 'catch' && p.clause) {
        frame.kind = 'catch';
        frame.tryStart = this.guardCatch(this.toks.length - 1, start);
      } else if (p.value === 'else' || p.value === 'do') {
        frame.kind = 'block';
      } else if (p.value === 'return' || p.value === 'typeof' || p.value === 'in' || p.value === 'of' || p.value === 'case' || p.value === 'yield' || p.value === 'await' || p.value === 'throw') {
        frame.kind = 'object';
      }
    } else if (p.type === 'punct') {
      if (p.value === ')') {
        if (p.head === 'catch') {
          frame.kind = 'catch';
          frame.tryStart = this.guardCatch(this.findCatchToken(), start);
        } else {
          frame.kind = p.head === undefined ? 'fn' : 'block';
        }
      } else if (p.value === ';' || p.value === '{' || p.value === '}') {
        frame.kind = 'block';
      } else if (p.value === '=>') {
        frame.kind = 'fn';
      } else if (p.value === ':') {
        frame.kind = 'unknown';
      } else if (p.value !== ']' && p.value !== '++' && p.value !== '--') {
        frame.kind = 'object';
      }
    }
    this.stack.push(frame);
  }

  /** Index (in toks) of the `catch` clause token belonging to the `)` just before a catch body. */
  private findCatchToken(): number {
    let depth = 0;
    for (let i = this.toks.length - 1; i >= 0; i--) {
      const t = this.toks[i] as Tok;
      if (t.type === 'punct' && t.value === ')') depth++;
      else if (t.type === 'punct' && t.value === '(') {
        depth--;
        if (depth === 0) return i - 1;
      }
    }
    throw new GuardError('catch clause without its keyword', this.pos);
  }

  /**
   * Edits for one catch clause: `catchIdx` is the index of the `catch` token, the body's
   * `{` is at `braceStart`.
   */
  private guardCatch(catchIdx: number, braceStart: number): number | undefined {
    const catchTok = this.toks[catchIdx] as Tok;
    const tryStart = this.toks[catchIdx - 1]?.closes?.tryStart;
    const bodyAt = braceStart + 1;
    this.sites++;
    const paramToks = this.toks.slice(catchIdx + 2, this.toks.length - 1);
    if (catchIdx === this.toks.length - 1) {
      // catch { … }
      this.edits.push({ at: catchTok.end, end: catchTok.end, text: ' (__pcE)' });
      this.edits.push({ at: bodyAt, end: bodyAt, text: ' __pcGuard(__pcE);' });
      return tryStart;
    }
    const first = paramToks[0];
    if (paramToks.length === 1 && first?.type === 'name') {
      this.edits.push({ at: bodyAt, end: bodyAt, text: ` __pcGuard(${first.value});` });
      return tryStart;
    }
    if (first === undefined) throw new GuardError('empty catch parameter', braceStart);
    // A destructuring pattern: bind a temporary, destructure inside the body.
    const last = paramToks[paramToks.length - 1] as Tok;
    let pattern = '';
    for (const t of paramToks) {
      if (/[\n\r\u2028\u2029]/.test(t.value)) throw new GuardError('a catch parameter with a multi-line literal is not supported', t.start);
      pattern += (pattern === '' ? '' : ' ') + (t.type === 'punct' && t.value === '${' ? this.src.slice(t.start, t.end) : t.value);
    }
    if (this.edits.some((e) => e.at >= first.start && e.at < last.end)) {
      throw new GuardError('a try statement inside a catch parameter is not supported', first.start);
    }
    // Comments are dropped from the one-line pattern; the newlines of the region stay
    // inside the parentheses so no line moves.
    const newlines = this.src.slice(first.start, last.end).replace(/[^\n]/g, '');
    this.edits.push({ at: first.start, end: last.end, text: `__pcE${newlines}` });
    this.edits.push({ at: bodyAt, end: bodyAt, text: ` __pcGuard(__pcE); let ${pattern} = __pcE;` });
    return tryStart;
  }
}

/**
 * JavaScript source (a script, evaluated in the global scope — not as a module) to
 * evaluate in a fresh QuickJS context before the runtime's prelude (PRELUDE_SOURCE,
 * which freezes the intrinsics) and before any user code. Requires the host function
 * {@link LIMIT_HIT_HOST_FUNCTION} on the global object; captures and deletes it. It:
 * - declares the global lexical binding `const __pcGuard` (not a property of the global
 *   object, so neither assignment nor `Object.defineProperty(globalThis, …)` can replace
 *   it, and guardSource refuses code that declares a `__pc…` name to shadow it).
 *   `__pcGuard(e)`: a primitive or function → returns; `null` (what the engine throws
 *   when it cannot allocate the error object) → limit hit 'memory'; an object whose
 *   prototype chain contains the intrinsic `InternalError.prototype` (captured here) →
 *   limit hit, kind from its message: `stack overflow` → 'stack'; `out of memory`,
 *   `out of memory in regexp execution`, `string too long` or no own message (the
 *   message could not be allocated) → 'memory'; any other InternalError → 'internal'.
 *   On a hit it calls `__pcLimitHit(kind)` and rethrows `e`; otherwise it returns
 *   undefined. The non-limit path allocates nothing and runs no user code for engine
 *   objects (one `Object.getPrototypeOf` per prototype level). If the guard cannot run
 *   (its own call overflows the stack) or the host call fails, that error propagates
 *   from the catch site instead, which is still a deny.
 * - deletes the `InternalError` global (user code cannot construct one by name; a
 *   forged one only causes a deny);
 * - replaces `Promise.prototype.then` so a rejection handler first passes the reason to
 *   the guard, a call without one gets a guarding rethrower, and an exception thrown by
 *   a fulfilment handler is guarded before it rejects the derived promise (QuickJS's `catch` and `finally`, the combinators and thenable adoption go
 *   through the `then` property, so they are covered too); wraps `Promise.allSettled`
 *   (every `rejected` record's reason) and `Promise.any` (every entry of the
 *   AggregateError's `errors`). `await` needs no wrapper: it throws at the await, inside
 *   a rewritten try/catch.
 * Completion value: undefined.
 */
export const LIMIT_GUARD_PRELUDE = String.raw`
const __pcGuard = (function () {
'use strict';
const G = globalThis;
const hit = G.${LIMIT_HIT_HOST_FUNCTION};
delete G.${LIMIT_HIT_HOST_FUNCTION};
if (typeof hit !== 'function') throw new TypeError('limit guard: host function ${LIMIT_HIT_HOST_FUNCTION} is missing');
const defineProperty = Object.defineProperty, getPrototypeOf = Object.getPrototypeOf;
const apply = Reflect.apply, isArray = Array.isArray;
const IEP = InternalError.prototype;
delete G.InternalError;
const STACK = 'stack', MEMORY = 'memory', INTERNAL = 'internal';
// The engine throws null when it cannot even allocate the error object; a thrown null
// is therefore treated as an out-of-memory condition.
function __pcGuard(e) {
  if (typeof e !== 'object') return;
  if (e === null) {
    hit(MEMORY);
    throw e;
  }
  let p = getPrototypeOf(e);
  while (p !== IEP) {
    if (p === null) return;
    p = getPrototypeOf(p);
  }
  // A real engine error has an own data property message (or none at all, when even
  // the message could not be allocated: the prototype's ''), so this runs no user code.
  const m = e.message;
  hit(m === 'stack overflow' ? STACK
    : m === 'out of memory' || m === 'out of memory in regexp execution' || m === 'string too long' || m === '' ? MEMORY
      : INTERNAL);
  throw e;
}

const P = Promise, PP = Promise.prototype;
const then = PP.then, allSettled = P.allSettled, any = P.any;
function guardRejected(onRejected) {
  return function (reason) { __pcGuard(reason); return onRejected(reason); };
}
// Without a rejection handler the reason passes on to the derived promise: still seen here.
function rethrow(reason) { __pcGuard(reason); throw reason; }
// A fulfilment handler that fails with a limit error rejects the derived promise, which
// nothing may observe: seen here.
function guardFulfilled(onFulfilled) {
  return function (value) {
    try { return onFulfilled(value); } catch (e) { __pcGuard(e); throw e; }
  };
}
const wrappedThen = {
  then(onFulfilled, onRejected) {
    return apply(then, this, [
      typeof onFulfilled === 'function' ? guardFulfilled(onFulfilled) : onFulfilled,
      typeof onRejected === 'function' ? guardRejected(onRejected) : rethrow,
    ]);
  },
}.then;
function checkSettled(results) {
  if (isArray(results)) {
    for (let i = 0; i < results.length; i++) {
      const r = results[i];
      if (r !== null && typeof r === 'object' && r.status === 'rejected') __pcGuard(r.reason);
    }
  }
  return results;
}
function checkAggregate(err) {
  if (err !== null && typeof err === 'object') {
    const list = err.errors;
    if (isArray(list)) for (let i = 0; i < list.length; i++) __pcGuard(list[i]);
  }
  throw err;
}
const wrappers = {
  allSettled(iterable) { return apply(then, apply(allSettled, this, [iterable]), [checkSettled]); },
  any(iterable) { return apply(then, apply(any, this, [iterable]), [undefined, checkAggregate]); },
};
defineProperty(PP, 'then', { value: wrappedThen, writable: true, enumerable: false, configurable: true });
defineProperty(P, 'allSettled', { value: wrappers.allSettled, writable: true, enumerable: false, configurable: true });
defineProperty(P, 'any', { value: wrappers.any, writable: true, enumerable: false, configurable: true });
return __pcGuard;
})();
`;
