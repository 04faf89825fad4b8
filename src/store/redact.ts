/**
 * Redaction of database connection URLs for messages and logs: a store URL may carry
 * a password (in the authority or as a `password` query parameter) that must never
 * be printed.
 */

/**
 * `postgres://user:secret@host/db` → `postgres://user:…@host/db`; a `password=` query
 * parameter is redacted the same way. Anything else is returned unchanged.
 */
export function redactStoreUrl(url: string): string {
  return url
    // Up to the last "@": a password with an unencoded "/", "#", "?" or "@" (an invalid
    // URL, refused with a message that prints this) must not leak either.
    .replace(/^(postgres(?:ql)?:\/\/[^:@/]*):.*@/, '$1:…@')
    .replace(/([?&]password=)[^&#]*/gi, '$1…');
}
