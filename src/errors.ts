/**
 * The error catalogue: every error Portcullis throws is a {@link PortcullisError} with a
 * stable string `code` that callers (CLI exit codes, admin API error mapping, logs)
 * match on. The `message` is safe to show to a user; an underlying `cause` is kept
 * apart for logs. Modelled on undici's `lib/core/errors.js` (one root, stable codes).
 *
 * Note: a revoked certificate or a failed path validation is a *result*, not an
 * error — those are returned as values, never thrown.
 */

/** Root of every Portcullis error. `code` is stable; `message` is user-facing. */
export class PortcullisError extends Error {
  /** Stable machine-readable code, e.g. `InvalidArgument`. */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Bad input from a user or caller (API body, CLI argument, file content). Code `InvalidArgument`. */
export class InvalidArgumentError extends PortcullisError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('InvalidArgument', message, options);
  }
}

/**
 * A certificate or chain that cannot be decoded (bad PEM armour, bad base64, DER that
 * is not an X.509 Certificate per RFC 5280 4.1). `where` names the offending block,
 * e.g. `certificate #2 (line 14)`. Code `CertificateParseError`.
 */
export class CertificateParseError extends PortcullisError {
  readonly where: string | undefined;
  constructor(message: string, where?: string, options?: { cause?: unknown }) {
    super('CertificateParseError', where ? `${where}: ${message}` : message, options);
    this.where = where;
  }
}

/**
 * A trust-store CA bundle was rejected (SPEC section 2): no certificate, a non-CA
 * certificate, an unparsable block, an unsupported key or signature, or over a limit.
 * The message names the offending block. Code `InvalidTrustStoreBundle`.
 */
export class TrustStoreBundleError extends PortcullisError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('InvalidTrustStoreBundle', message, options);
  }
}

/**
 * An OCSP response could not be decoded or failed verification (RFC 6960 3.2). `type`
 * is the SPEC section 3 failure type (`Malformed`, `ResponderStatus:<status>`,
 * `SignatureInvalid`, `ResponderNotAuthorized`, `CertIdMismatch`, `NotYetValid`,
 * `Expired`, `NonceMismatch`). Used internally; surfaced as a certificate status of
 * `Error` with `errorType` `OCSP response verification failed: {type}`.
 */
export class OcspVerificationError extends PortcullisError {
  readonly type: string;
  constructor(type: string, message: string, options?: { cause?: unknown }) {
    super('OcspVerificationError', message, options);
    this.type = type;
  }
}

/**
 * The OCSP exchange with a responder failed at the transport level: unreachable,
 * timeout, HTTP error status, redirect, oversize body. Surfaced as status `Error`
 * with `errorType` `InternalError`.
 */
export class OcspTransportError extends PortcullisError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('OcspTransportError', message, options);
  }
}

/** A configuration file or option is invalid; the message names the key path. Code `InvalidConfig`. */
export class ConfigError extends PortcullisError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('InvalidConfig', message, options);
  }
}

/**
 * An X.509 CRL (RFC 5280 section 5) could not be decoded, or failed verification
 * against a trust store (RFC 5280 6.3 subset), or uses a feature Portcullis does not
 * support (delta CRLs, indirect CRLs, unknown critical extensions). The message names
 * the problem precisely, e.g. `CRL issuer "CN=Example CA" is not in the trust store`
 * or `CRL expired: nextUpdate 2026-01-02T00:00:00Z is before now (…)`. Code `InvalidCrl`.
 */
export class CrlError extends PortcullisError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('InvalidCrl', message, options);
  }
}
