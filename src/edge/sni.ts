/**
 * SNI → distribution choice for a listen address shared by several distributions
 * (SPEC section 1: "several distributions may share one; SNI chooses").
 */

/** What the choice looks at: a distribution's name and its SNI aliases. */
export interface SniCandidate {
  readonly name: string;
  /** Lowercase host names; `*.example.com` matches exactly one more label (`a.example.com`, not `a.b.example.com` nor `example.com`). */
  readonly aliases: readonly string[];
}

/**
 * Normalises an SNI host name for matching: lowercase, one trailing dot removed.
 * Returns undefined for no SNI (`undefined`, `false`, `''`).
 */
export function normalizeServername(servername: string | false | null | undefined): string | undefined {
  if (!servername) return undefined;
  const s = servername.toLowerCase();
  return s.endsWith('.') ? s.slice(0, -1) : s;
}

/**
 * Picks the distribution for a TLS ClientHello's SNI among the distributions of one
 * listen address (given in listener order, see `Listener`):
 * 1. the first candidate with an exact alias match (case-insensitive, trailing dot ignored);
 * 2. else the first with a `*.` wildcard alias matching the name minus its first label;
 * 3. else — no SNI, an IP literal, or a name no alias matches — the first candidate
 *    (the "default distribution" of the address; CloudFront has one distribution per
 *    endpoint, so this is Portcullis's rule, documented in the README).
 * Returns undefined only when `candidates` is empty.
 */
export function selectBySni<T extends SniCandidate>(candidates: readonly T[], servername: string | false | null | undefined): T | undefined {
  const name = normalizeServername(servername);
  if (name !== undefined) {
    for (const c of candidates) if (c.aliases.some((a) => a.toLowerCase() === name)) return c;
    const dot = name.indexOf('.');
    if (dot > 0) {
      const wildcard = `*${name.slice(dot)}`;
      for (const c of candidates) if (c.aliases.some((a) => a.toLowerCase() === wildcard)) return c;
    }
  }
  return candidates[0];
}
