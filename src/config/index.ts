/**
 * config/: the node config file (YAML or JSON) — schema with every default in one
 * place, loading with `${VAR}` substitution and relative paths, the start-up checks of
 * `portcullis validate`, the mapping to module options, and applying the declared
 * `resources:` to the store at start. Other folders import only from this file.
 */
export { CONFIG_DEFAULTS, LOG_LEVELS, nodeConfigSchema } from './schema.js';
export type {
  NodeConfig, LogLevel, ConfigStore, ConfigTrustStore, ConfigKeyValueStore, ConfigConnectionFunction, ConfigDistribution,
} from './schema.js';
export { loadConfig, configFromTree, configError, substituteEnv, resolveResourcePaths } from './load.js';
export type { ConfigEnv } from './load.js';
export { revocationOptionsFromConfig, ocspCacheOptionsFromConfig, functionLimitsFromConfig, kvsLimitsFromConfig, storeSpecFromConfig, nodeStoreSpecFromConfig } from './options.js';
export { validateConfig, checkResources, existingInStore, snapshotFileProblem } from './validate.js';
export type { ConfigValidation, ValidateConfigOptions, CheckResourcesOptions, ExistingResources, ResourceProblem } from './validate.js';
export { applyResources, distributionDocumentFromConfig } from './apply.js';
export type { ApplyReport, ApplyReportEntry, ApplyResourceKind, ApplyResourcesOptions } from './apply.js';
export type { ConfigProblem } from '../errors.js';
