/**
 * Mapping of origin-side failures (undici and node:net/tls errors) to the status the
 * client gets and the metrics `kind` (SPEC section 6: origin down → 502, origin timeout
 * → 504).
 */
import type { OriginErrorKind } from './proxy-metrics.js';

/** How a failure before the response headers is answered. */
export interface OriginFailure {
  kind: OriginErrorKind;
  /** 502 or 504. */
  status: 502 | 504;
  /** The error code found (`ECONNREFUSED`, `UND_ERR_HEADERS_TIMEOUT`, …), for the log. */
  code: string | undefined;
}

/** Error codes of a failed certificate check on an https origin (node:tls / OpenSSL). */
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_MISMATCH|ERR_OSSL_)/;

/** The first `code` on the error, its `cause` chain, or an AggregateError's members. */
export function errorCode(err: unknown, depth = 0): string | undefined {
  if (depth > 4 || typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; cause?: unknown; errors?: unknown };
  if (typeof e.code === 'string') return e.code;
  if (Array.isArray(e.errors)) {
    for (const inner of e.errors) {
      const c = errorCode(inner, depth + 1);
      if (c) return c;
    }
  }
  return errorCode(e.cause, depth + 1);
}

/**
 * Classifies a failure that happened before the origin's response headers arrived.
 * Timeouts (connect, headers) → 504; everything else (refused, unreachable, DNS, TLS,
 * reset, unknown) → 502. Never throws.
 */
export function classifyOriginFailure(err: unknown): OriginFailure {
  const code = errorCode(err);
  const f = (kind: OriginErrorKind, status: 502 | 504): OriginFailure => ({ kind, status, code });
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return f('connect_timeout', 504);
    case 'UND_ERR_HEADERS_TIMEOUT':
      return f('response_timeout', 504);
    case 'ECONNREFUSED':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return f('connect', 502);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
    case 'EAI_NONAME':
      return f('dns', 502);
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
      return f('reset', 502);
    default:
      if (code !== undefined && TLS_CODE.test(code)) return f('tls', 502);
      return f('other', 502);
  }
}
