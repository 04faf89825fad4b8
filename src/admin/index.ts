/**
 * admin/: the admin listener — health, readiness, Prometheus metrics and the REST API
 * under `/v1` (trust stores, key value stores, connection functions, distributions,
 * OCSP cache; OpenAPI document at `/v1/openapi.json`). Bearer-token authenticated.
 * Entry file.
 */
export { startAdminServer, createAdminApp, parseListenAddress, DEFAULT_ADMIN_BODY_LIMIT } from './server.js';
export type { AdminServer, AdminServerOptions, Readiness } from './server.js';
export { registerApiRoutes, trustStoreView, distributionView } from './api.js';
export type { AdminApiOptions, OcspCacheControl, NodeView } from './api.js';
export { mapError, ERROR_STATUS, ApiError } from './errors.js';
export type { ApiErrorBody } from './errors.js';
export { openApiDocument } from './openapi.js';
export { resolveAdminToken, bearerMatches, ADMIN_TOKEN_FILE } from './token.js';
export type { AdminTokenSource } from './token.js';
