/**
 * Helpers shared by the trust-store and distribution services and by config/: names,
 * ETags, If-Match, zod issue formatting (`field.path: problem`) and a key-order
 * independent comparison of documents.
 */
import type { z } from 'zod';
import { InvalidArgumentError } from '../errors.js';
import { newEtag } from '../store/index.js';

/** Trust-store and distribution names: 1–64 characters from `A-Z a-z 0-9 - _` (as functions and KVS). */
export const RESOURCE_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** Longest comment of a trust store or distribution, characters (CloudFront's 128). */
export const MAX_RESOURCE_COMMENT_LENGTH = 128;

/** A new random ETag: `E` + 13 characters from 0-9A-Z (the functions' style). Opaque: compare for equality only. */
export function newResourceEtag(): string {
  return newEtag('E');
}

/**
 * @param kind shown in the message (`trust store`, `distribution`).
 * @throws InvalidArgumentError when `name` does not match {@link RESOURCE_NAME_PATTERN}.
 */
export function validateResourceName(name: unknown, kind: string): asserts name is string {
  if (typeof name !== 'string' || !RESOURCE_NAME_PATTERN.test(name)) {
    throw new InvalidArgumentError(`invalid ${kind} name ${JSON.stringify(name)}: 1-64 characters from A-Z a-z 0-9 - _`);
  }
}

/** store/ `requireIfMatch`: the trimmed If-Match ETag. @throws InvalidIfMatchVersionError when missing or empty. */
export { requireIfMatch } from '../store/index.js';

/** Formats a key path: `['a', 0, 'b']` → `a[0].b`, prefixed by `base` (`base.a[0].b`). */
export function formatKeyPath(path: readonly PropertyKey[], base = ''): string {
  let out = base;
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out;
}

function describeReceived(input: unknown): string {
  if (input === undefined) return 'nothing';
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'a list';
  if (typeof input === 'object') return 'a map';
  if (typeof input === 'string') return `the string ${JSON.stringify(input.length > 60 ? `${input.slice(0, 57)}...` : input)}`;
  return `${typeof input} ${String(input)}`;
}

/**
 * Turns zod issues into `{ path, message }` problems, one per problem: an unknown key
 * becomes `<path>.<key>: unknown key`, a missing required key `<path>: required`, a
 * type error `expected a string, got number 3`. `base` prefixes every path
 * (e.g. `resources.distributions[0]`). Parse with `{ reportInput: true }` so that a
 * missing key can be told from a wrong value (without it every type error reads
 * `required`).
 */
export function zodProblems(error: z.ZodError, base = ''): { path: string; message: string }[] {
  const out: { path: string; message: string }[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const k of issue.keys) out.push({ path: formatKeyPath([...issue.path, k], base), message: 'unknown key' });
      continue;
    }
    const path = formatKeyPath(issue.path, base);
    if (issue.code === 'invalid_type') {
      const input = (issue as { input?: unknown }).input;
      if (input === undefined) {
        out.push({ path, message: 'required' });
      } else if (!issue.message.startsWith('Invalid input')) {
        out.push({ path, message: issue.message }); // a schema's own message
      } else {
        const e = issue.expected as string;
        const expected = e === 'object' ? 'a map' : e === 'array' ? 'a list' : e === 'int' ? 'an integer' : e === 'boolean' ? 'true or false' : `a ${e}`;
        out.push({ path, message: `expected ${expected}, got ${describeReceived(input)}` });
      }
      continue;
    }
    if (issue.code === 'invalid_key') {
      out.push({ path, message: `invalid key: ${issue.issues.map((i) => i.message).join('; ')}` });
      continue;
    }
    if (issue.code === 'invalid_value') {
      out.push({ path, message: `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}` });
      continue;
    }
    out.push({ path, message: issue.message });
  }
  return out;
}

/** `path: message` lines joined with `; ` (for single-line error messages). */
export function joinProblems(problems: readonly { path: string; message: string }[]): string {
  return problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; ');
}

/** JSON with object keys sorted at every level: equal for documents that differ only in key order. */
export function stableStringify(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return v;
  });
}
