/**
 * resources/: the resources that belong to no other domain — trust stores and
 * distributions (SPEC section 1) — their stored documents, the distribution schema
 * with its defaults, and the services over the store (ETags, If-Match, in-use checks).
 * Other folders import only from this file.
 */
export type {
  TrustStoreStatus, TrustStoreDocument, ViewerMtlsMode, DistributionCertificateFiles, DistributionOrigin, DistributionViewerMtls,
  DistributionLimits, DistributionDocument,
} from './types.js';
export {
  RESOURCE_NAME_PATTERN, MAX_RESOURCE_COMMENT_LENGTH, newResourceEtag, validateResourceName, formatKeyPath, zodProblems, joinProblems,
  stableStringify,
} from './common.js';
export {
  DISTRIBUTION_DEFAULTS, distributionDefaults, VIEWER_MTLS_MODES, distributionFieldSchemas, distributionDocumentSchema, refineDistribution,
  parseDistributionDocument, listenAddressProblem, normalizeAlias, stripUndefined,
} from './distribution-schema.js';
export { TrustStoreService, trustStoreDocumentFor, distributionsUsingTrustStore } from './trust-store-service.js';
export type { TrustStoreRecord, CreateTrustStoreInput, UpdateTrustStoreInput, TrustStoreServiceOptions } from './trust-store-service.js';
export { DistributionService, findAliasConflicts, resolveListenAddress, resolveListenSocket, compareListenSockets } from './distribution-service.js';
export type { DistributionRecord, DistributionServiceOptions, DistributionListenClaim, ListenSocket } from './distribution-service.js';
