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
  // Too many concurrent requests of a kind (e.g. connection-log streams): retry later.
  TooManyRequests: 429,
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

/** Fastify's own client errors (router, body parsing) and what the API answers for them. */
const FASTIFY_ERRORS: Readonly<Record<string, { status: number; code: string; message?: (err: Error) => string }>> = Object.freeze({
  FST_ERR_BAD_URL: { status: 400, code: 'InvalidArgument', message: () => 'the request path is not a valid URL (malformed percent-encoding)' },
  FST_ERR_MAX_PARAM_LENGTH: { status: 414, code: 'InvalidArgument', message: () => 'a path segment of the request is too long' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: 'InvalidArgument', message: () => 'unsupported Content-Type: request bodies must be application/json' },
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'EntitySizeLimitExceeded', message: () => 'the request body is over the size limit of this server' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'InvalidArgument', message: () => 'the Content-Length header does not match the body' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'InvalidArgument', message: () => 'body: a JSON object is required' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'InvalidArgument' },
});

/**
 * Maps any thrown value to the response. Catalogue errors with a known code keep it;
 * fastify's own client errors (see FASTIFY_ERRORS: a bad URL, a too long path segment,
 * an unsupported content type 415, unparsable JSON, a body over the limit 413) get an
 * API code; other fastify 4xx are `InvalidArgument` with their status; everything else
 * is `Internal` 500 with no detail.
 */
export function mapError(err: unknown): MappedError {
  if (err instanceof PortcullisError) {
    const status = ERROR_STATUS[err.code];
    if (status !== undefined && err.code !== 'Internal') {
      return { status, body: { error: { code: err.code, message: err.message } }, internal: false };
    }
  } else if (err instanceof Error && String((err as { code?: unknown }).code).startsWith('FST_')) {
    const known = FASTIFY_ERRORS[String((err as { code?: unknown }).code)];
    if (known) return { status: known.status, body: { error: { code: known.code, message: known.message ? known.message(err) : err.message } }, internal: false };
    const statusCode = (err as { statusCode?: number }).statusCode ?? 500;
    if (statusCode === 413) return { status: 413, body: { error: { code: 'EntitySizeLimitExceeded', message: err.message } }, internal: false };
    if (statusCode >= 400 && statusCode < 500) return { status: statusCode, body: { error: { code: 'InvalidArgument', message: err.message } }, internal: false };
  }
  return { status: 500, body: { error: { code: 'Internal', message: 'internal error; the cause is in the server log' } }, internal: true };
}
