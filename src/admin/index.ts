/**
 * admin/: the admin listener — health, readiness and Prometheus metrics now; the REST
 * API of the control-plane issue later. Bearer-token authenticated. Entry file.
 */
export { startAdminServer, parseListenAddress } from './server.js';
export type { AdminServer, AdminServerOptions, Readiness } from './server.js';
export { resolveAdminToken, bearerMatches, ADMIN_TOKEN_FILE } from './token.js';
export type { AdminTokenSource } from './token.js';
