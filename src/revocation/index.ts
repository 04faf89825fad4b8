/**
 * revocation/: chain-level revocation checking (SPEC section 3): per-certificate OCSP
 * status through the shared cache, `revocationStatus` and `chainValidity`.
 * Other folders import only from this file.
 */
export {
  RevocationChecker, chainValidity, revocationDecision, DEFAULT_REVOCATION_OPTIONS,
} from './chain-status.js';
export type {
  CertificateRevocationStatus, ChainValidity, RevocationStatus, RevocationStatusValue,
  RevocationCheckResult, RevocationCheckerOptions,
} from './chain-status.js';
export * from './ocsp/index.js';
export * from './crl/index.js';
