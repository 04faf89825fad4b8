/**
 * From config units to module options: the serve command (and anything else that builds
 * a checker, cache, function or KVS service from a {@link NodeConfig}) calls these
 * instead of re-deriving units (`…Seconds` → ms).
 */
import type { FunctionLimits } from '../functions/index.js';
import { resolveFunctionLimits } from '../functions/index.js';
import type { KvsLimits } from '../kvs/index.js';
import { resolveKvsLimits } from '../kvs/index.js';
import type { OcspCacheOptions, RevocationCheckerOptions } from '../revocation/index.js';
import type { NodeStoreSpec, StoreSpec } from '../store/index.js';
import type { NodeConfig } from './schema.js';

/**
 * Options of revocation/ `RevocationChecker` from `ocsp:` (SPEC 3): timeoutMs,
 * fetchTimeoutMs, clockSkewSeconds → clockSkewMs, maxAgeWithoutNextUpdateSeconds →
 * maxAgeWithoutNextUpdateMs, maxResponseBytes, nonce. The caller adds `cache` (one
 * shared {@link ocspCacheOptionsFromConfig} cache per process), `fetch`, `now`.
 */
export function revocationOptionsFromConfig(cfg: Pick<NodeConfig, 'ocsp'>): Omit<RevocationCheckerOptions, 'cache' | 'fetch' | 'now'> {
  const o = cfg.ocsp;
  return {
    timeoutMs: o.timeoutMs,
    fetchTimeoutMs: o.fetchTimeoutMs,
    clockSkewMs: o.clockSkewSeconds * 1000,
    maxAgeWithoutNextUpdateMs: o.maxAgeWithoutNextUpdateSeconds * 1000,
    maxResponseBytes: o.maxResponseBytes,
    nonce: o.nonce,
  };
}

/**
 * Options of revocation/ `OcspCache` from `ocsp:` (SPEC 3): maxCacheTtlSeconds →
 * maxTtlMs, defaultTtlSeconds → defaultTtlMs, failureCacheSeconds → failureTtlMs. The
 * cache's own defaults apply to `refreshAfterFraction`, `maxEntries` and `now`.
 */
export function ocspCacheOptionsFromConfig(cfg: Pick<NodeConfig, 'ocsp'>): Pick<OcspCacheOptions, 'maxTtlMs' | 'defaultTtlMs' | 'failureTtlMs'> {
  const o = cfg.ocsp;
  return { maxTtlMs: o.maxCacheTtlSeconds * 1000, defaultTtlMs: o.defaultTtlSeconds * 1000, failureTtlMs: o.failureCacheSeconds * 1000 };
}

/**
 * functions/ `FunctionLimits` from `functions:` (same units), checked by
 * `resolveFunctionLimits`. @throws InvalidArgumentError when out of range (the schema
 * already enforces the same ranges).
 */
export function functionLimitsFromConfig(cfg: Pick<NodeConfig, 'functions'>): FunctionLimits {
  return resolveFunctionLimits({ ...cfg.functions });
}

/**
 * kvs/ `KvsLimits` from `kvs:` (same units), checked by `resolveKvsLimits`.
 * @throws RangeError when a value is not a positive integer (the schema already checks).
 */
export function kvsLimitsFromConfig(cfg: Pick<NodeConfig, 'kvs'>): KvsLimits {
  return resolveKvsLimits({ ...cfg.kvs });
}

/**
 * The {@link StoreSpec} of the node's `store` (with `postgres.poolSize`): what every
 * process of the node passes to store/ `openStore`.
 */
export function storeSpecFromConfig(cfg: Pick<NodeConfig, 'store' | 'dataDir' | 'postgres'>): StoreSpec {
  return cfg.store.kind === 'sqlite'
    ? { kind: 'sqlite', dataDir: cfg.dataDir }
    : { kind: 'postgres', url: cfg.store.url, poolSize: cfg.postgres.poolSize };
}

/**
 * The {@link NodeStoreSpec} of a serving node: its store plus the local snapshot
 * (`cluster.snapshotFile`) and the retry interval while serving it (`cluster.storeRetryMs`).
 */
export function nodeStoreSpecFromConfig(cfg: Pick<NodeConfig, 'store' | 'dataDir' | 'postgres' | 'cluster'>): NodeStoreSpec {
  return {
    store: storeSpecFromConfig(cfg),
    ...(cfg.cluster.snapshotFile !== undefined ? { snapshotFile: cfg.cluster.snapshotFile } : {}),
    retryMs: cfg.cluster.storeRetryMs,
  };
}
