/**
 * Error mapping of the admin API: every error becomes `{"error":{"code","message"}}`
 * with a CloudFront-style code and HTTP status (control-plane issue). Catalogue errors
 * (src/errors.ts) keep their code and user-facing message; anything else is
 * `Internal` 500 with a fixed message (the cause goes to the log only).
 */
import { PortcullisError } from '../errors.js';

/** HTTP status of each error code the API returns. Codes not listed are `Internal` 500. */
export const ERROR_STATUS: Readonly<Record<string, number>> = Object.freeze({
  InvalidArgument: 400,
  InvalidIfMatchVersion: 400,
  // Catalogue codes that are bad input by nature.
  InvalidTrustStoreBundle: 400,
  InvalidCrl: 400,
  InvalidFunctionCode: 400,
  CertificateParseError: 400,
  InvalidConfig: 400,
  AccessDenied: 401,
  ServiceQuotaExceeded: 402,
  EntityNotFound: 404,
  EntityAlreadyExists: 409,
  CannotDeleteEntityWhileInUse: 409,
  CNAMEAlreadyExists: 409,
  EntityNotReady: 409,
  PreconditionFailed: 412,
  EntitySizeLimitExceeded: 413,
  FunctionSizeLimitExceeded: 413,
  Internal: 500,
  NotImplemented: 501,
  StoreUnavailable: 503,
});

/** The JSON error body of every failed request. */
export interface ApiErrorBody {
  error: { code: string; message: string };
}

/** An API-level error with an explicit code (e.g. `NotImplemented`); mapped like catalogue errors. */
export class ApiError extends PortcullisError {}

/** What a failed request answers: status and body, and whether the cause must be logged. */
export interface MappedError {
  status: number;
  body: ApiErrorBody;
  /** True for `Internal` (an unexpected error: log it, never show it). */
  internal: boolean;
}

/**
 * Maps any thrown value to the response. Catalogue errors with a known code keep it;
 * fastify's own client errors (unparsable JSON, wrong content type, body over the
 * limit) become `InvalidArgument` 400 / `EntitySizeLimitExceeded` 413 with fastify's
 * message; everything else is `Internal` 500 with no detail.
 */
export function mapError(err: unknown): MappedError {
  if (err instanceof PortcullisError) {
    const status = ERROR_STATUS[err.code];
    if (status !== undefined && err.code !== 'Internal') {
      return { status, body: { error: { code: err.code, message: err.message } }, internal: false };
    }
  } else if (err instanceof Error && String((err as { code?: unknown }).code).startsWith('FST_')) {
    const statusCode = (err as { statusCode?: number }).statusCode ?? 500;
    if (statusCode === 413) return { status: 413, body: { error: { code: 'EntitySizeLimitExceeded', message: err.message } }, internal: false };
    if (statusCode >= 400 && statusCode < 500) return { status: 400, body: { error: { code: 'InvalidArgument', message: err.message } }, internal: false };
  }
  return { status: 500, body: { error: { code: 'Internal', message: 'internal error; the cause is in the server log' } }, internal: true };
}
