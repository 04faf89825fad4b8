/**
 * ETags of stored resources (SPEC section 1: every mutation of an existing resource
 * takes an If-Match ETag). One generator and one If-Match rule for every service that
 * writes through the store (KVS, functions, trust stores, distributions).
 */
import { randomBytes } from 'node:crypto';
import { InvalidIfMatchVersionError } from '../errors.js';

const ETAG_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';

/**
 * A new random ETag in CloudFront's style: `prefix` + 13 characters from 0-9A-Z (≈67
 * bits of randomness), e.g. `KV1F83G8C2ARO7P` (KVS) or `E2QWRUHEXAMPLE` (functions).
 * Opaque: compare for equality only.
 */
export function newEtag(prefix: string): string {
  let out = prefix;
  for (const b of randomBytes(13)) out += ETAG_ALPHABET[b % 36];
  return out;
}

/** The trimmed If-Match ETag of a write. @throws InvalidIfMatchVersionError when missing or empty. */
export function requireIfMatch(ifMatch: string | undefined | null): string {
  if (typeof ifMatch !== 'string' || ifMatch.trim() === '') throw new InvalidIfMatchVersionError();
  return ifMatch.trim();
}
