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
