/**
 * functions/: CloudFront-compatible connection functions (SPEC section 4) — the QuickJS
 * sandbox runtime, the `connection` object, offline test and decision matrix, and the
 * lifecycle over the store with a registry of warm LIVE instances, and the worker-thread
 * host with a watchdog (FunctionHost, SandboxWorker) that the data path and the offline
 * tools run sandboxes in.
 * Other folders import only from this file.
 */
export {
  compileFunction, loadQuickJs, FunctionInstance, DEFAULT_FUNCTION_LIMITS, resolveFunctionLimits, kvsSnapshotFromMap, truncateUtf8,
} from './runtime.js';
export type {
  FunctionLimits, FunctionResult, FunctionFailureCode, InvokeOptions, CompileOptions, KvsSnapshotLike, FunctionKvsMeta,
} from './runtime.js';
export { buildConnection, connectionJson, newConnectionId } from './connection.js';
export type { ConnectionObject, ConnectionInput, ConnectionClientCertificate } from './connection.js';
export {
  syntheticRevocationStatus, runDecisionMatrix, runDecisionMatrixWith, matrixKvsData, MATRIX_STATUSES, MATRIX_CLIENT_IPS,
} from './harness.js';
export type { MatrixRow, DecisionMatrixOptions } from './harness.js';
export { SAMPLE_CHAIN_PEM } from './sample-chain.js';
export {
  FunctionService, newFunctionEtag, validateFunctionName, describeFunctionStage, distributionReferencesFunction, distributionsUsingFunction,
  FUNCTION_RUNTIME, FUNCTION_NAME_PATTERN, MAX_FUNCTION_COMMENT_LENGTH, DISTRIBUTION_FUNCTION_FIELD,
} from './lifecycle.js';
export type {
  FunctionRuntime, FunctionStatus, FunctionKvsAssociation, FunctionDocument, FunctionStageRecord, CreateFunctionInput,
  UpdateFunctionInput, FunctionSummary, FunctionCode, FunctionServiceOptions,
} from './lifecycle.js';
export { FunctionRegistry, LiveFunction } from './registry.js';
export type { FunctionRegistryOptions, KvsSnapshotSource, FunctionLoadFailure, FunctionLease } from './registry.js';
export {
  FunctionHost, SandboxWorker, IsolatedFunction, defaultWatchdogMs, DEFAULT_COMPILE_WATCHDOG_MS,
} from './host.js';
export type {
  FunctionHostOptions, HostedInvocation, FunctionHostStatus, FunctionHostEvent, SandboxWorkerOptions,
} from './host.js';
