/**
 * Shared OCSP types (RFC 6960). Internal to revocation/; re-exported by its entry files.
 */

/**
 * CertID (RFC 6960 4.1.1): identifies one certificate to a responder. Portcullis
 * always builds it with SHA-1 (RFC 5019 2.1.1), but parses any hash a responder uses.
 */
export interface CertId {
  /** Hash algorithm OID of the issuerNameHash/issuerKeyHash (SHA-1: 1.3.14.3.2.26). */
  hashAlgorithm: string;
  /** Hash of the issuer's subject Name DER. */
  issuerNameHash: Buffer;
  /** Hash of the issuer's subjectPublicKey BIT STRING value (without the unused-bits octet). */
  issuerKeyHash: Buffer;
  /** Content octets of the certificate's serialNumber INTEGER as encoded in the certificate. */
  serialNumber: Buffer;
}

/** A built OCSP request (RFC 6960 4.1.1). */
export interface OcspRequest {
  /** DER of the OCSPRequest. */
  der: Buffer;
  certId: CertId;
  /** Nonce sent in the id-pkix-ocsp-nonce extension (RFC 8954), or undefined. */
  nonce: Buffer | undefined;
}

/** The certStatus of a SingleResponse (RFC 6960 4.2.1). */
export type OcspCertStatus = 'good' | 'revoked' | 'unknown';

/** CRLReason names (RFC 5280 5.3.1), as CloudFront and OpenSSL spell them. */
export const CRL_REASONS: Record<number, string> = {
  0: 'unspecified', 1: 'keyCompromise', 2: 'cACompromise', 3: 'affiliationChanged',
  4: 'superseded', 5: 'cessationOfOperation', 6: 'certificateHold', 8: 'removeFromCRL',
  9: 'privilegeWithdrawn', 10: 'aACompromise',
};

/**
 * A fully verified OCSP answer for one certificate: the response status was
 * successful, the signature and signer authorization verified, the CertID matched the
 * request and the SingleResponse was fresh (RFC 6960 3.2).
 */
export interface VerifiedOcspResponse {
  certStatus: OcspCertStatus;
  /** For `revoked`: revocationTime. */
  revocationTime: Date | undefined;
  /** For `revoked`: CRLReason name when the responder gave one. */
  revocationReason: string | undefined;
  thisUpdate: Date;
  /** Absent when the responder gives none (RFC 6960 4.2.2.1: newer information is always available). */
  nextUpdate: Date | undefined;
  producedAt: Date;
  /** `issuer` when the issuing CA signed the response, `delegated` for a delegated responder certificate. */
  signer: 'issuer' | 'delegated';
  /** Subject DN of the signing certificate (for logs). */
  signerSubject: string;
  /** DER of the whole OCSPResponse (kept for the cache listing). */
  der: Buffer;
}

/**
 * The SPEC section 3 verification failure types; each becomes the `errorType`
 * `OCSP response verification failed: {Type}`.
 */
export type OcspVerificationFailure =
  | 'Malformed'
  | `ResponderStatus:${string}`
  | 'SignatureInvalid'
  | 'ResponderNotAuthorized'
  | 'CertIdMismatch'
  | 'NotYetValid'
  | 'Expired'
  | 'NonceMismatch';
