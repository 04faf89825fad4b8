/**
 * revocation/ocsp/: the OCSP protocol (RFC 6960, RFC 5019 profile, RFC 8954 nonce) —
 * request encoding, response decoding and verification, the HTTP transport and the
 * process-wide response cache. Re-exported by `revocation/index.ts`; other folders
 * import from there.
 */

// Shared types (types.ts)
export { CRL_REASONS } from './types.js';
export type { CertId, OcspRequest, OcspCertStatus, VerifiedOcspResponse, OcspVerificationFailure } from './types.js';

// Request: CertID, OCSPRequest DER, RFC 5019 GET URL (request.ts)
export { buildCertId, buildOcspRequest, ocspGetUrl, OCSP_GET_MAX_URL_BYTES } from './request.js';
export type { BuildOcspRequestOptions } from './request.js';

// Response: decode + verify (response.ts)
export { parseAndVerifyOcspResponse, OCSP_RESPONSE_STATUS, DEFAULT_MAX_AGE_WITHOUT_NEXT_UPDATE_MS } from './response.js';
export type { OcspVerifyContext } from './response.js';

// HTTP transport (client.ts)
export { OcspHttpClient } from './client.js';
export type { OcspHttpMethod, OcspFetchInput, OcspFetchOutput, OcspFetcher, OcspHttpClientOptions } from './client.js';

// Response cache (cache.ts)
export { OcspCache, DEFAULT_OCSP_CACHE_OPTIONS } from './cache.js';
export type {
  OcspOutcome, OcspCacheResult, OcspCacheOptions, OcspCacheEntryInfo, OcspCachePurgeFilter, OcspCacheStats, OcspLoader,
} from './cache.js';
