/**
 * pki/: certificate parsing, the CloudFront-shaped certificate view, header forms,
 * trust-store bundles and path validation (RFC 5280, SPEC sections 2, 4 and 6).
 * Other folders import only from this file.
 */
export { ParsedCertificate, SUPPORTED_SIGNATURE_ALGORITHMS, signatureAlgorithmName } from './certificate.js';
export type { PublicKeyDescription, KeyUsageName } from './certificate.js';
export { splitCertificates, looksLikePem, toPem } from './pem.js';
export type { CertificateBlock } from './pem.js';
export { OID } from './oids.js';
export { formatDn, formatDnRfc4514, formatDnRfc2253, parseDn, escapeDnValue, DN_ATTRIBUTE_NAMES } from './dn.js';
export type { DnAttribute, ParsedDn, DnFormatOptions } from './dn.js';
export { formatSerialNumber, normalizeSerialForKvs } from './serial.js';
export {
  certificateView, chainView, viewerCertHeaders, viewerCertAbsentHeaders, formatSubjectAltName,
  formatIsoSeconds, formatFingerprint, VIEWER_CERT_HEADER_NAMES,
} from './view.js';
export type { CertificateView, CertificateValidity, ChainView, ViewerCertHeaders } from './view.js';
export { parseTrustStoreBundle, TrustAnchorSet, DEFAULT_TRUST_STORE_LIMITS } from './trust-store.js';
export type { TrustStoreLimits, DuplicateTrustAnchor } from './trust-store.js';
export { validateClientChain, DEFAULT_PATH_VALIDATION_LIMITS, MAX_ISSUER_CANDIDATES_EXAMINED } from './path-validation.js';
export type {
  PathValidationOptions, PathValidationResult, PathValidationSuccess, PathValidationFailure, PathValidationFailureCode,
} from './path-validation.js';
export { signatureScheme, verifySignature } from './signature.js';
export type { SignatureScheme } from './signature.js';
