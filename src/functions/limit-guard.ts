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
 *   each `finally`) first calls `__pcGuard(value)`, and so that every function body
 *   (declarations, expressions, methods, accessors, constructors, arrows — block or
 *   expression bodied) runs inside `try { … } catch (__pcE) { __pcGuard(__pcE); throw
 *   __pcE; }`: an exception leaving any function is seen even when the engine turns it
 *   into the rejection of a promise nobody observes (async functions, async
 *   generators, promise executors, thenables' `then`) or drops it (an iterator's
 *   `return()` called while another exception propagates);
 * - {@link LIMIT_GUARD_PRELUDE} defines `__pcGuard` in the sandbox (a global `const`:
 *   QuickJS 2025-09-13 lets `Object.defineProperty` change even a non-writable,
 *   non-configurable property of the global object, frozen or not, but not a global
 *   lexical binding): for an engine limit error it calls the host function
 *   {@link LIMIT_HIT_HOST_FUNCTION} (the host marks the invocation fatal) and rethrows;
 *   for anything else it returns. It also guards
 *   the promise paths the transform cannot see (`then`/`catch`/`finally` rejection
 *   handlers, `Promise.allSettled` records, `Promise.any`'s AggregateError, executors
 *   and `Promise.try` callbacks that are built-in or bound functions).
 *
 * Still unguarded (the error is lost only if nothing observes it): an exception thrown
 * while an async function's parameters are initialised (`async function f(a =
 * new ArrayBuffer(8e6)) {}` called and dropped: it rejects before the body's try runs),
 * and one thrown by a built-in or bound built-in function the engine calls where it
 * turns exceptions into dropped rejections or ignores them (a thenable's `then`, an
 * iterator's `return`, a proxy trap reached from promise resolution).
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
  /** How many function bodies and expression-bodied arrows were wrapped in a guarding try/catch. */
  bodies: number;
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

/** Rewrite state of a function body (a `fn` brace): `try {` goes after its directive prologue. */
interface BodyWrap {
  /** Where `try {` goes: after the `{`, or after the last directive of the prologue. */
  insertAt: number;
  /** `try {` has been inserted (the body has a statement after its prologue). */
  opened: boolean;
  /** The previous token is a string that may be a directive (`'use strict'`). */
  directive: boolean;
  /** The last directive ended at a newline (ASI): `try {` needs a `;` before it. */
  semicolon?: boolean;
}

/** An expression-bodied arrow whose body is being read (`x => BODY`). */
interface ArrowBody {
  /** Stack depth of the body's tokens. */
  depth: number;
  /** Conditional `?` seen in the body at its depth and not yet matched by a `:`. */
  questions: number;
}

interface BraceFrame {
  delim: '{';
  kind: BraceKind;
  /** For try/catch blocks: offset of the `try` keyword of the statement. */
  tryStart?: number;
  /** For a finally block of a rewritten statement: its closing `}` also closes the wrapper block. */
  closeWrap?: boolean;
  /** For a function body: its rewrite state. */
  wrap?: BodyWrap;
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

/** The handler every function body and expression-bodied arrow gets. */
const RETHROW_CATCH = 'catch (__pcE) { __pcGuard(__pcE); throw __pcE; }';
const BODY_OPEN = ' try {';
const BODY_CLOSE = ` } ${RETHROW_CATCH} `;
const ARROW_OPEN = '{ try { return ';
const ARROW_CLOSE = `; } ${RETHROW_CATCH} }`;
/** Punctuators that cannot continue an expression after an operand (a newline before them ends it: ASI). */
const NO_CONTINUE_PUNCT = new Set(['{', '++', '--', '!', '~', '...', '@']);
/** Tokens that may precede a class member's name (a `class` there is the member's name, not a class). */
const MEMBER_PREFIX = new Set(['{', ',', ';', '}', '*', 'get', 'set', 'static', 'async', 'accessor']);

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
 * - a function body `{ B }` → `{ try { B } catch (__pcE) { __pcGuard(__pcE); throw __pcE; } }`
 *   (after its directive prologue; empty bodies are left alone); an expression-bodied
 *   arrow `=> E` → `=> { try { return E; } catch (__pcE) { … } }`, where E ends at a
 *   `,` `;` `)` `]` `}` or unmatched `:` of its own depth, at a newline where ASI
 *   applies (the previous token ends an operand and the next cannot continue it), or at
 *   the end of the input. `Function.prototype.toString` shows the wrappers.
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
  private bodies = 0;
  /** `class` keywords whose body `{` has not been seen yet: the stack depth it will open at. */
  private readonly classes: Array<{ depth: number; tok: number }> = [];
  /** Expression-bodied arrows being read, innermost last. */
  private readonly arrows: ArrowBody[] = [];
  /** The previous token is `=>`: the next one starts the arrow's body. */
  private arrowPending = false;

  constructor(private readonly src: string) {}

  run(): GuardedSource {
    const s = this.src;
    if (s.startsWith('#!')) this.pos = this.lineEnd(0);
    for (;;) {
      this.skipTrivia();
      if (this.pos >= s.length) break;
      this.token();
    }
    while (this.arrows.length > 0) this.closeArrow();
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
    return { code: out, sites: this.sites, bodies: this.bodies };
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

  /**
   * Called with each token before it changes the bracket stack: ends the
   * expression-bodied arrows it ends, starts one after `=>`, places `try {` after a
   * function body's directive prologue, and drops a `class` that turned out to be a
   * property name.
   */
  private before(type: TokType, value: string, start: number): void {
    const depth = this.stack.length;
    const closer = type === 'punct' && (value === ')' || value === ']' || value === '}');
    const last = this.classes[this.classes.length - 1];
    if (last !== undefined && last.tok === this.toks.length - 1 && type === 'punct' && ['(', ':', '=', ',', ';', '}', '?.', '.'].includes(value)) {
      this.classes.pop();
    }
    for (let a = this.arrows[this.arrows.length - 1]; a !== undefined && a.depth === depth; a = this.arrows[this.arrows.length - 1]) {
      let ends = closer || (type === 'punct' && (value === ',' || value === ';'));
      if (!ends && type === 'punct' && value === ':') {
        if (a.questions === 0) ends = true; else a.questions--;
      } else if (!ends && type === 'punct' && value === '?') {
        a.questions++;
      } else if (!ends) {
        ends = this.asiBefore(type, value, start);
      }
      if (!ends) break;
      this.closeArrow();
    }
    if (this.arrowPending) {
      this.arrowPending = false;
      if (!(type === 'punct' && value === '{')) {
        this.bodies++;
        this.edits.push({ at: start, end: start, text: ARROW_OPEN });
        this.arrows.push({ depth, questions: 0 });
      }
    }
    const top = this.stack[depth - 1];
    const w = top?.delim === '{' ? top.wrap : undefined;
    if (w !== undefined && !w.opened) {
      if (closer) return; // only directives (or nothing): left as it is
      if (w.directive) {
        w.directive = false;
        const p = this.prev() as Tok;
        if (type === 'punct' && value === ';') {
          w.insertAt = start + 1;
          w.semicolon = false;
          return;
        }
        if (this.asiBefore(type, value, start)) {
          w.insertAt = p.end;
          w.semicolon = true;
        } else {
          return this.openBody(w);
        }
      }
      if (type === 'str') w.directive = true;
      else this.openBody(w);
    }
  }

  /** A newline before this token ends the expression that the previous token ends (ASI). */
  private asiBefore(type: TokType, value: string, start: number): boolean {
    const p = this.prev();
    if (p === undefined || !this.newlineBetween(p.end, start)) return false;
    const operandEnd = this.endsOperand(p) || (p.type === 'punct' && (p.value === '}' || p.postfix === true));
    if (!operandEnd) return false;
    switch (type) {
      case 'punct': return NO_CONTINUE_PUNCT.has(value);
      case 'tmpl': return false;
      case 'name': return value !== 'in' && value !== 'instanceof';
      default: return true;
    }
  }

  private openBody(w: BodyWrap): void {
    w.opened = true;
    this.bodies++;
    this.edits.push({ at: w.insertAt, end: w.insertAt, text: w.semicolon === true ? `;${BODY_OPEN}` : BODY_OPEN });
  }

  /** Ends the innermost expression-bodied arrow after the previous token. */
  private closeArrow(): void {
    this.arrows.pop();
    const at = (this.prev() as Tok).end;
    this.edits.push({ at, end: at, text: ARROW_CLOSE });
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
      this.before('str', '', start);
      this.push({ type: 'str', value: s.slice(start, this.pos), start, end: this.pos });
      return;
    }
    if (ch === '`') {
      this.before('tmpl', '', start);
      this.scanTemplate(start + 1, start);
      return;
    }
    if (ch === '#') {
      const end = this.scanIdentifier(start + 1);
      if (end === start + 1) throw new GuardError("unexpected '#'", start);
      this.pos = end;
      this.before('private', '', start);
      this.push({ type: 'private', value: s.slice(start, end), start, end });
      return;
    }
    if (ch === '\\' || ID_START.test(this.codePointAt(start))) {
      const end = this.scanIdentifier(start);
      this.pos = end;
      this.before('name', s.slice(start, end), start);
      this.name(s.slice(start, end), start, end);
      return;
    }
    if (/[0-9]/.test(ch) || (ch === '.' && /[0-9]/.test(s[start + 1] ?? ''))) {
      NUMBER.lastIndex = start;
      const m = NUMBER.exec(s);
      if (!m) throw new GuardError('malformed number', start);
      this.pos = start + m[0].length;
      if (this.pos < s.length && ID_START.test(this.codePointAt(this.pos))) throw new GuardError('malformed number', start);
      this.before('num', '', start);
      this.push({ type: 'num', value: m[0], start, end: this.pos });
      return;
    }
    if (ch === '/' && this.regexAllowed(start)) {
      this.pos = this.scanRegex(start);
      this.before('regex', '', start);
      this.push({ type: 'regex', value: s.slice(start, this.pos), start, end: this.pos });
      return;
    }
    if (ch === '}' && this.stack.length > 0 && (this.stack[this.stack.length - 1] as Frame).delim === '${') {
      this.before('punct', '}', start);
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
    this.before('punct', p, start);
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
    if (keyword && value === 'class') {
      const top = this.stack[this.stack.length - 1];
      const p = before?.type === 'punct' || before?.type === 'name' ? before.value : '';
      const member = top?.delim === '{' && (top.kind === 'class' || top.kind === 'object') && MEMBER_PREFIX.has(p);
      if (!member) this.classes.push({ depth: this.stack.length, tok: this.toks.length });
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
        const top = this.stack[this.stack.length - 1];
        // Directly in a class body or object literal, `if(…) {…}` is a method named if.
        const members = top?.delim === '{' && (top.kind === 'class' || top.kind === 'object');
        if (p?.type === 'name' && p.keyword && !members) {
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
      case '=>':
        this.arrowPending = true;
        break;
      case '}': {
        const top = this.stack.pop();
        if (!top || top.delim !== '{') throw new GuardError("unbalanced '}'", start);
        tok.closes = top;
        if (top.wrap?.opened === true) this.edits.push({ at: start, end: start, text: BODY_CLOSE });
        if (top.closeWrap) this.edits.push({ at: end, end, text: ' }' });
        break;
      }
    }
    this.push(tok);
  }

  private openBrace(start: number): void {
    const p = this.prev();
    const frame: BraceFrame = { delim: '{', kind: 'unknown', start };
    while (this.classes.length > 0 && (this.classes[this.classes.length - 1] as { depth: number }).depth > this.stack.length) this.classes.pop();
    const cls = this.classes[this.classes.length - 1];
    if (cls !== undefined && cls.depth === this.stack.length) {
      this.classes.pop();
      frame.kind = 'class';
    } else if (p === undefined) {
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
        const top = this.stack[this.stack.length - 1];
        frame.kind = top?.delim === '{' && top.kind === 'object' ? 'object' : 'unknown';
      } else if (p.value !== ']' && p.value !== '++' && p.value !== '--') {
        frame.kind = 'object';
      }
    }
    // A function body (or, after `(a)` + newline, a block: wrapping one changes nothing).
    if (frame.kind === 'fn') frame.wrap = { insertAt: start + 1, opened: false, directive: false };
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
    // Insertions inside the pattern (functions and arrows in default values) are carried
    // over into the one-line copy; a replacement (a nested catch parameter) is refused.
    const inside = this.edits.filter((e) => e.at > first.start && e.at < last.end);
    if (inside.some((e) => e.end !== e.at || e.text.includes('__pcX'))) {
      throw new GuardError('a try statement inside a catch parameter is not supported', first.start);
    }
    const moved = new Set<Edit>();
    const take = (at: number): string => {
      let text = '';
      for (const e of inside) {
        if (e.at === at && !moved.has(e)) {
          moved.add(e);
          text += e.text;
        }
      }
      return text;
    };
    let pattern = '';
    for (const t of paramToks) {
      if (/[\n\r\u2028\u2029]/.test(t.value)) throw new GuardError('a catch parameter with a multi-line literal is not supported', t.start);
      pattern += (pattern === '' ? '' : ' ') + take(t.start) + (t.type === 'punct' && t.value === '${' ? this.src.slice(t.start, t.end) : t.value) + take(t.end);
    }
    if (moved.size !== inside.length) throw new GuardError('cannot rewrite this catch parameter', first.start);
    for (let i = this.edits.length - 1; i >= 0; i--) if (moved.has(this.edits[i] as Edit)) this.edits.splice(i, 1);
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
 * - replaces the global `Promise` by a constructor that calls the executor through a
 *   guarding wrapper (same prototype object, statics and species getter; the
 *   prototype's `constructor` points to it, so `p.constructor === Promise`); `Promise.try`
 *   guards its callback the same way. Costs one extra JS call per promise constructed
 *   through it (including the derived promise of every `then`).
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

// A Promise executor (or Promise.try callback) that throws rejects a promise nobody may
// observe: its exception is seen here. Function code is guarded by the source rewrite;
// this covers built-in and bound functions used as executors. The replacement
// constructor has the intrinsic's prototype, statics and species getter, so promises
// stay intrinsic promises and p.constructor === Promise.
const construct = Reflect.construct, ownKeys = Reflect.ownKeys, getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
const promiseTry = P.try;
function guardExecutor(executor) {
  return function (resolve, reject) {
    try { return executor(resolve, reject); } catch (e) { __pcGuard(e); throw e; }
  };
}
const GuardedPromise = function Promise(executor) {
  if (new.target === undefined) throw new TypeError('must be called with new');
  return construct(P, [typeof executor === 'function' ? guardExecutor(executor) : executor], new.target);
};
const statics = {
  try(f, ...args) {
    const g = typeof f === 'function' ? function () {
      try { return apply(f, undefined, args); } catch (e) { __pcGuard(e); throw e; }
    } : f;
    return apply(promiseTry, this, [g]);
  },
};
const keys = ownKeys(P);
for (let i = 0; i < keys.length; i++) {
  const k = keys[i];
  if (k !== 'length' && k !== 'name' && k !== 'prototype') defineProperty(GuardedPromise, k, getOwnPropertyDescriptor(P, k));
}
if (typeof promiseTry === 'function') defineProperty(GuardedPromise, 'try', { value: statics.try, writable: true, enumerable: false, configurable: true });
defineProperty(GuardedPromise, 'prototype', { value: PP, writable: false, enumerable: false, configurable: false });
defineProperty(PP, 'constructor', { value: GuardedPromise, writable: true, enumerable: false, configurable: true });
defineProperty(G, 'Promise', { value: GuardedPromise, writable: true, enumerable: false, configurable: true });
return __pcGuard;
})();
`;
