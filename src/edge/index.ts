/**
 * edge/: the data plane — listeners (one tls.Server per listen address, SNI → distribution),
 * the gate (certificate, path validation, OCSP, connection function, decision), the
 * connection log and metrics, and the contract with the HTTP proxy.
 * Other folders import only from this file.
 */
export { Gateway, parseListenAddress } from './gateway.js';
export type { GatewayOptions, ListenerInfo } from './gateway.js';
export type { AdmittedConnection, ConnectionHandler, FunctionInvoker, FunctionInvocation, DistributionLimits, DistributionOrigin } from './types.js';
export { EdgeState, SESSION_ID_CONTEXT, secureOptionsFor } from './state.js';
export type { EdgeStateOptions, DistributionEntry, TrustStoreEntry } from './state.js';
export { Gate, peerChainDer, certificateHeaders, ResumedChainCache, MAX_PRESENTED_CERTIFICATES } from './gate.js';
export type { GateOptions, GateListener } from './gate.js';
export { nextGateStep, CONNECTION_FAILURE_CODES } from './decision.js';
export type { GateFacts, GateStep, ConnectionFailureCode } from './decision.js';
export { selectBySni, normalizeServername } from './sni.js';
export type { SniCandidate } from './sni.js';
export {
  ConnectionLogWriter, ConnectionLogTap, emptyLogLine, connectionStatus, revocationLogEntries, CONNECTION_LOG_SPEC_FIELDS,
} from './connection-log.js';
export type { ConnectionLogLine, ConnectionLogRevocationEntry, ConnectionLogListener } from './connection-log.js';
export { createEdgeMetrics } from './metrics.js';
export type { EdgeMetrics } from './metrics.js';
export { OriginProxy, registerOriginMetrics } from './proxy.js';
export type { OriginProxyOptions, OriginMetrics, OriginErrorKind } from './proxy.js';
