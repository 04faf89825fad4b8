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

/** One problem found in a configuration file: the key path (`resources.distributions[0].listen`) and what is wrong. */
export interface ConfigProblem {
  /** Key path in the file, dots and `[index]`; empty for the file as a whole. */
  path: string;
  message: string;
}

/**
 * A configuration file or option is invalid; the message names the file and the key
 * path of every problem (one per line). `problems` lists them one by one (empty when
 * the error is about the file as a whole and was built from a message alone). Code
 * `InvalidConfig`.
 */
export class ConfigError extends PortcullisError {
  readonly problems: readonly ConfigProblem[];
  constructor(message: string, options?: { cause?: unknown; problems?: readonly ConfigProblem[] }) {
    super('InvalidConfig', message, options);
    this.problems = options?.problems ?? [];
  }
}

/**
 * A write carried an `If-Match` ETag that is no longer the resource's current one
 * (another writer got there first). Nothing was changed. CloudFront's
 * `PreconditionFailed`; the admin API maps it to HTTP 412.
 */
export class PreconditionFailedError extends PortcullisError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PreconditionFailed', message, options);
  }
}

/**
 * A write that needs an `If-Match` ETag came without one (or with an empty one).
 * Nothing was changed. CloudFront's `InvalidIfMatchVersion`; HTTP 400.
 */
export class InvalidIfMatchVersionError extends PortcullisError {
  constructor(message = 'the If-Match ETag is required for this operation', options?: { cause?: unknown }) {
    super('InvalidIfMatchVersion', message, options);
  }
}

/**
 * The named resource (key value store, key, trust store, function, distribution) does
 * not exist. CloudFront's `EntityNotFound` (the KVS data plane calls it
 * ResourceNotFound); HTTP 404.
 */
export class EntityNotFoundError extends PortcullisError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('EntityNotFound', message, options);
  }
}

/** A resource with that name already exists. CloudFront's `EntityAlreadyExists`; HTTP 409. */
export class EntityAlreadyExistsError extends PortcullisError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('EntityAlreadyExists', message, options);
  }
}

/**
 * One entity is over its size limit: a key over 512 bytes, a value over 1 KB, an
 * import file over 5 MB (SPEC section 5, configurable). CloudFront's
 * `EntitySizeLimitExceeded`; HTTP 413.
 */
export class EntitySizeLimitExceededError extends PortcullisError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('EntitySizeLimitExceeded', message, options);
  }
}

/**
 * A write would take a resource over a service quota (a key value store over its
 * 5 MB total size, SPEC section 5). Nothing was changed. CloudFront's
 * `ServiceQuotaExceeded`; HTTP 402 (the status CloudFront's KVS data plane uses).
 */
export class ServiceQuotaExceededError extends PortcullisError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ServiceQuotaExceeded', message, options);
  }
}

/**
 * The resource exists but is not in a state that allows the operation, e.g. a data
 * write to a key value store whose status is `PROVISIONING` or `FAILED`. Code
 * `EntityNotReady`; HTTP 409.
 */
export class EntityNotReadyError extends PortcullisError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('EntityNotReady', message, options);
  }
}

/**
 * A resource that another one refers to cannot be deleted (SPEC section 1), e.g. a key
 * value store associated with a connection function. CloudFront's
 * `CannotDeleteEntityWhileInUse`; HTTP 409.
 */
export class CannotDeleteEntityWhileInUseError extends PortcullisError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CannotDeleteEntityWhileInUse', message, options);
  }
}

/**
 * The persistent store failed (cannot open the database file, a newer schema than this
 * build knows, the database stayed locked past the busy timeout, I/O error). The
 * message says which; the driver error is the `cause`. Code `StoreUnavailable`; HTTP 503.
 *
 * `transient` tells unavailability that may pass by itself (the server cannot be
 * reached, refuses connections, is starting or shutting down, has too many
 * connections, a timeout, a lock held too long, a failover) from errors that retrying
 * cannot fix (a refused login, a database that does not exist, missing privileges, an
 * invalid URL or option, a failed migration): only a transient error lets a node
 * start from its local snapshot, and a node serving its snapshot stops retrying the
 * database on a non-transient one. Default true.
 */
export class StoreUnavailableError extends PortcullisError {
  /** True when retrying later may succeed without changing the configuration. */
  readonly transient: boolean;
  constructor(message: string, options?: { cause?: unknown; transient?: boolean }) {
    super('StoreUnavailable', message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.transient = options?.transient ?? true;
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

/**
 * Connection-function code was rejected at create/update/test (SPEC section 4): it does
 * not compile (a SyntaxError, an import of a module other than `cloudfront`), it has no
 * top-level `connectionHandler`, or its top-level code threw. `line` and `column`
 * (1-based) locate the problem in the submitted code when QuickJS reports a position;
 * the message repeats them, e.g. `SyntaxError: unexpected token in expression: ';'
 * (line 2, column 11)`. Code `InvalidFunctionCode`; HTTP 400.
 */
export class FunctionCompileError extends PortcullisError {
  readonly line: number | undefined;
  readonly column: number | undefined;
  constructor(message: string, position?: { line?: number; column?: number }, options?: { cause?: unknown }) {
    super('InvalidFunctionCode', message, options);
    this.line = position?.line;
    this.column = position?.column;
  }
}

/**
 * Connection-function code is larger than `functions.maxCodeBytes` (default 10240 bytes
 * of UTF-8, SPEC section 4). CloudFront's `FunctionSizeLimitExceeded`; HTTP 413.
 */
export class FunctionSizeLimitExceededError extends PortcullisError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FunctionSizeLimitExceeded', message, options);
  }
}

/**
 * A distribution claims an SNI alias that another distribution on the same listen
 * address already claims (SNI could not choose between them). The message names both
 * distributions and the alias. CloudFront's `CNAMEAlreadyExists`; HTTP 409.
 */
export class CnameAlreadyExistsError extends PortcullisError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CNAMEAlreadyExists', message, options);
  }
}

/**
 * A local snapshot of the store (the state a cluster node serves when PostgreSQL is
 * unreachable at start) was refused on load: missing, truncated, corrupted (SHA-256
 * mismatch), of an unknown format or format version, or internally inconsistent.
 * Nothing of it was loaded. `file` is the snapshot's path, `problem` what is wrong;
 * the message names both. Code `SnapshotInvalid`.
 */
export class SnapshotInvalidError extends PortcullisError {
  readonly file: string;
  readonly problem: string;
  constructor(file: string, problem: string, options?: { cause?: unknown }) {
    super('SnapshotInvalid', `the store snapshot ${file} cannot be used: ${problem}`, options);
    this.file = file;
    this.problem = problem;
  }
}

/**
 * Writing a local snapshot of the store failed (directory not writable, disk full, the
 * store could not be read). The previous snapshot at that path, if any, is untouched
 * and no temporary file is left behind. Code `SnapshotWriteFailed`.
 */
export class SnapshotWriteError extends PortcullisError {
  readonly file: string;
  constructor(file: string, message: string, options?: { cause?: unknown }) {
    super('SnapshotWriteFailed', `cannot write the store snapshot ${file}: ${message}`, options);
    this.file = file;
  }
}

/**
 * A node's heartbeat found the node table's row of its `nodeName` written recently by
 * another process (another instance id, a heartbeat younger than `cluster.staleAfterMs`):
 * two nodes are configured with the same name and would silently share one row of
 * `GET /v1/nodes`. The row is left as the other process wrote it. `existing` describes
 * that process. Code `NodeNameConflict`.
 */
export class NodeNameConflictError extends PortcullisError {
  readonly nodeName: string;
  readonly existing: { instanceId: string; host: string; pid: number; startedAt: number; heartbeatAt: number };
  constructor(nodeName: string, existing: NodeNameConflictError['existing'], options?: { cause?: unknown }) {
    super(
      'NodeNameConflict',
      `node name "${nodeName}" is in use by another running process (host ${existing.host}, pid ${existing.pid}, instance ${existing.instanceId}, `
      + `started ${new Date(existing.startedAt).toISOString()}, last heartbeat ${new Date(existing.heartbeatAt).toISOString()}): `
      + 'give every node its own cluster.nodeName; this node\'s heartbeat was not recorded',
      options,
    );
    this.nodeName = nodeName;
    this.existing = existing;
  }
}
