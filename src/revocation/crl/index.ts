/**
 * revocation/crl/: X.509 CRLs (RFC 5280 section 5) for the KeyValueStore import of
 * revoked serials (SPEC section 5): decode ({@link parseCrl}), verify against a trust
 * store ({@link verifyCrl}, RFC 5280 6.3 subset: complete direct CRLs only), and turn
 * the revoked entries into KVS items ({@link crlToKvsEntries}).
 *
 * KVS key format: lowercase hex of the serialNumber INTEGER content octets as encoded,
 * no separators, leading `00` kept — what a connection function gets from
 * `connection.clientCertificate.certificates.leaf.serialNumber.replaceAll(':', '')`.
 * See kvs-entries.ts for the value format.
 *
 * Typical use:
 * ```ts
 * const crl = parseCrl(fileBytes);
 * verifyCrl(crl, trustStore, { now: new Date() });
 * const items = crlToKvsEntries(crl);
 * ```
 * Re-exported by `revocation/index.ts`; other folders import from there.
 */
export { parseCrl, CRL_OID, DEFAULT_CRL_MAX_BYTES } from './parse.js';
export type { ParsedCrl, ParseCrlOptions, RevokedCertificateEntry, IssuingDistributionPointInfo } from './parse.js';
export { verifyCrl, DEFAULT_CRL_CLOCK_SKEW_MS } from './verify.js';
export type { VerifyCrlOptions, VerifiedCrl } from './verify.js';
export { crlToKvsEntries, minimalIntegerContent, CRL_KVS_MAX_VALUE_BYTES } from './kvs-entries.js';
export type { CrlKvsEntry } from './kvs-entries.js';
