/**
 * The node configuration file: its defaults (one place: {@link CONFIG_DEFAULTS}), its
 * zod schema (strict objects everywhere: an unknown key is an error naming its path)
 * and the resulting {@link NodeConfig}. Key names are the contract of
 * `examples/portcullis.yaml`; see the README's "Configuration reference".
 */
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { DEFAULT_FUNCTION_LIMITS, FUNCTION_NAME_PATTERN } from '../functions/index.js';
import { DEFAULT_KVS_LIMITS, KVS_NAME_PATTERN } from '../kvs/index.js';
import { DEFAULT_OCSP_CACHE_OPTIONS, DEFAULT_REVOCATION_OPTIONS } from '../revocation/index.js';
import {
  MAX_RESOURCE_COMMENT_LENGTH, RESOURCE_NAME_PATTERN, distributionFieldSchemas, listenAddressProblem, refineDistribution,
  type DistributionCertificateFiles, type DistributionLimits, type DistributionOrigin, type DistributionViewerMtls,
} from '../resources/index.js';

/** Application log levels (pino's). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Every default of the node config, in one place. Units are in the key names (`Ms`,
 * `Seconds`, `Bytes`). The OCSP, function and KVS values are the defaults of the
 * modules that use them (revocation/, functions/, kvs/), so the two cannot drift.
 * `workers` is computed when read: `os.availableParallelism()`.
 */
export const CONFIG_DEFAULTS = Object.freeze({
  dataDir: './data',
  store: 'sqlite',
  get workers(): number {
    return availableParallelism();
  },
  admin: Object.freeze({ listen: '127.0.0.1:9901' }),
  logging: Object.freeze({ level: 'info' as LogLevel, connectionLog: 'stdout' }),
  ocsp: Object.freeze({
    timeoutMs: DEFAULT_REVOCATION_OPTIONS.timeoutMs,
    fetchTimeoutMs: DEFAULT_REVOCATION_OPTIONS.fetchTimeoutMs,
    maxCacheTtlSeconds: DEFAULT_OCSP_CACHE_OPTIONS.maxTtlMs / 1000,
    defaultTtlSeconds: DEFAULT_OCSP_CACHE_OPTIONS.defaultTtlMs / 1000,
    failureCacheSeconds: DEFAULT_OCSP_CACHE_OPTIONS.failureTtlMs / 1000,
    clockSkewSeconds: DEFAULT_REVOCATION_OPTIONS.clockSkewMs / 1000,
    maxAgeWithoutNextUpdateSeconds: DEFAULT_REVOCATION_OPTIONS.maxAgeWithoutNextUpdateMs / 1000,
    maxResponseBytes: DEFAULT_REVOCATION_OPTIONS.maxResponseBytes,
    nonce: DEFAULT_REVOCATION_OPTIONS.nonce,
  }),
  functions: Object.freeze({ ...DEFAULT_FUNCTION_LIMITS }),
  kvs: Object.freeze({ ...DEFAULT_KVS_LIMITS }),
  /** PostgreSQL store options (used when `store` is a postgres:// URL). */
  postgres: Object.freeze({ poolSize: 10 }),
  /** Cluster-mode timings (issue 8): heartbeats, stale nodes, change-log retention, local snapshot. */
  cluster: Object.freeze({
    heartbeatIntervalMs: 1000,
    staleAfterMs: 5000,
    changeRetentionSeconds: 86_400,
    // 1 s: the snapshot is what a node restarted during a database outage serves; it
    // should trail the applied state by little (a write reads the whole state, so not
    // continuously either). 5 s used to be the default.
    snapshotIntervalMs: 1000,
    storeRetryMs: 1000,
  }),
  /** `useClientCertificateOcspEndpoint` of a declared trust store (CloudFront's default). */
  trustStoreOcsp: false,
  /** `publish` of a declared connection function: DEVELOPMENT only unless asked. */
  functionPublish: false,
});

/** Largest timer value Node accepts, ms. */
const MAX_TIMER_MS = 2_147_483_647;

const int = (min: number, max: number, unit: string) =>
  z.number().int({ error: `must be an integer (${unit})` })
    .min(min, { error: `must be at least ${min} (${unit})` })
    .max(max, { error: `must be at most ${max} (${unit})` });

const listen = z.string().superRefine((v, ctx) => {
  const problem = listenAddressProblem(v);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

const namePattern = (pattern: RegExp, what: string) =>
  z.string().regex(pattern, { error: (i) => `${JSON.stringify(i.input)} is not a valid ${what} name (1-64 characters from A-Z a-z 0-9 - _)` });

const comment = z.string().max(MAX_RESOURCE_COMMENT_LENGTH, { error: `must be at most ${MAX_RESOURCE_COMMENT_LENGTH} characters` }).optional();
const path = z.string().min(1, { error: 'must not be empty' });

const trustStore = z.strictObject({
  name: namePattern(RESOURCE_NAME_PATTERN, 'trust store'),
  caBundleFile: path.optional(),
  caBundlePem: z.string().optional(),
  useClientCertificateOcspEndpoint: z.boolean().default(CONFIG_DEFAULTS.trustStoreOcsp),
  comment,
}).superRefine((t, ctx) => {
  if ((t.caBundleFile === undefined) === (t.caBundlePem === undefined)) {
    ctx.addIssue({ code: 'custom', message: 'give exactly one of caBundleFile and caBundlePem' });
  }
});

const keyValueStore = z.strictObject({
  name: namePattern(KVS_NAME_PATTERN, 'key value store'),
  comment,
  importFile: path.optional(),
});

const connectionFunction = z.strictObject({
  name: namePattern(FUNCTION_NAME_PATTERN, 'connection function'),
  codeFile: path,
  comment,
  keyValueStore: z.string().min(1, { error: 'must not be empty' }).optional(),
  publish: z.boolean().default(CONFIG_DEFAULTS.functionPublish),
});

const distribution = z.strictObject({
  name: namePattern(RESOURCE_NAME_PATTERN, 'distribution'),
  ...distributionFieldSchemas,
  connectionFunction: z.string().min(1, { error: 'must not be empty' }).optional(),
}).superRefine(refineDistribution);

/** Entries must have distinct names within their list (reported at the later entry). */
function uniqueNames<T extends { name: string }>(schema: z.ZodType<T>) {
  return z.array(schema).default([]).superRefine((list, ctx) => {
    const seen = new Map<string, number>();
    list.forEach((e, i) => {
      const first = seen.get(e.name);
      if (first !== undefined) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `"${e.name}" is already declared at index ${first}` });
      else seen.set(e.name, i);
    });
  });
}

const storeValue = z.string().superRefine((v, ctx) => {
  if (v !== 'sqlite' && !/^postgres(?:ql)?:\/\/./.test(v)) {
    ctx.addIssue({ code: 'custom', message: `must be "sqlite" or a postgres:// URL, got ${JSON.stringify(v.replace(/\/\/[^@/]*@/, '//…@'))}` });
  }
});

/** The zod schema of the whole file (after `${VAR}` substitution and path resolution). */
export const nodeConfigSchema = z.strictObject({
  nodeName: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, { error: 'must be 1-64 characters from A-Z a-z 0-9 . _ -' }).optional(),
  dataDir: path.default(CONFIG_DEFAULTS.dataDir),
  store: storeValue.default(CONFIG_DEFAULTS.store),
  workers: int(1, 1024, 'processes').optional(),
  admin: z.strictObject({
    listen: listen.default(CONFIG_DEFAULTS.admin.listen),
    token: z.string().min(16, { error: 'must be at least 16 characters (or leave it unset to have one generated)' })
      .regex(/^[\x21-\x7e]+$/, { error: 'must be printable ASCII without spaces (it is sent as "Authorization: Bearer <token>")' }).optional(),
  }).prefault({}),
  logging: z.strictObject({
    level: z.enum(LOG_LEVELS).default(CONFIG_DEFAULTS.logging.level),
    connectionLog: path.default(CONFIG_DEFAULTS.logging.connectionLog),
  }).prefault({}),
  ocsp: z.strictObject({
    timeoutMs: int(1, MAX_TIMER_MS, 'ms').default(CONFIG_DEFAULTS.ocsp.timeoutMs),
    fetchTimeoutMs: int(1, MAX_TIMER_MS, 'ms').default(CONFIG_DEFAULTS.ocsp.fetchTimeoutMs),
    maxCacheTtlSeconds: int(1, 7 * 86_400, 'seconds').default(CONFIG_DEFAULTS.ocsp.maxCacheTtlSeconds),
    defaultTtlSeconds: int(1, 7 * 86_400, 'seconds').default(CONFIG_DEFAULTS.ocsp.defaultTtlSeconds),
    failureCacheSeconds: int(1, 86_400, 'seconds').default(CONFIG_DEFAULTS.ocsp.failureCacheSeconds),
    clockSkewSeconds: int(0, 86_400, 'seconds').default(CONFIG_DEFAULTS.ocsp.clockSkewSeconds),
    maxAgeWithoutNextUpdateSeconds: int(1, 365 * 86_400, 'seconds').default(CONFIG_DEFAULTS.ocsp.maxAgeWithoutNextUpdateSeconds),
    maxResponseBytes: int(1024, 16 * 1024 * 1024, 'bytes').default(CONFIG_DEFAULTS.ocsp.maxResponseBytes),
    nonce: z.boolean().default(CONFIG_DEFAULTS.ocsp.nonce),
  }).prefault({}),
  functions: z.strictObject({
    cpuLimitMs: int(1, 1000, 'ms').default(CONFIG_DEFAULTS.functions.cpuLimitMs),
    memoryLimitBytes: int(64 * 1024, 256 * 1024 * 1024, 'bytes').default(CONFIG_DEFAULTS.functions.memoryLimitBytes),
    maxCodeBytes: int(1, 1024 * 1024, 'bytes').default(CONFIG_DEFAULTS.functions.maxCodeBytes),
  }).prefault({}),
  kvs: z.strictObject({
    maxKeyBytes: int(1, MAX_TIMER_MS, 'bytes').default(CONFIG_DEFAULTS.kvs.maxKeyBytes),
    maxValueBytes: int(1, MAX_TIMER_MS, 'bytes').default(CONFIG_DEFAULTS.kvs.maxValueBytes),
    maxImportBytes: int(1, MAX_TIMER_MS, 'bytes').default(CONFIG_DEFAULTS.kvs.maxImportBytes),
    maxStoreBytes: int(1, MAX_TIMER_MS, 'bytes').default(CONFIG_DEFAULTS.kvs.maxStoreBytes),
    maxBatchKeys: int(1, 100_000, 'keys').default(CONFIG_DEFAULTS.kvs.maxBatchKeys),
    defaultListKeys: int(1, 100_000, 'keys').default(CONFIG_DEFAULTS.kvs.defaultListKeys),
    maxListKeys: int(1, 100_000, 'keys').default(CONFIG_DEFAULTS.kvs.maxListKeys),
    maxCommentLength: int(1, 100_000, 'characters').default(CONFIG_DEFAULTS.kvs.maxCommentLength),
    importFetchTimeoutMs: int(1, MAX_TIMER_MS, 'ms').default(CONFIG_DEFAULTS.kvs.importFetchTimeoutMs),
    staleProvisioningMs: int(1, MAX_TIMER_MS, 'ms').default(CONFIG_DEFAULTS.kvs.staleProvisioningMs),
  }).prefault({}).superRefine((k, ctx) => {
    if (k.defaultListKeys > k.maxListKeys) ctx.addIssue({ code: 'custom', path: ['defaultListKeys'], message: `must not exceed kvs.maxListKeys (${k.maxListKeys})` });
  }),
  postgres: z.strictObject({
    poolSize: int(1, 1000, 'connections').default(CONFIG_DEFAULTS.postgres.poolSize),
  }).prefault({}),
  cluster: z.strictObject({
    heartbeatIntervalMs: int(100, 3_600_000, 'ms').default(CONFIG_DEFAULTS.cluster.heartbeatIntervalMs),
    staleAfterMs: int(200, MAX_TIMER_MS, 'ms').default(CONFIG_DEFAULTS.cluster.staleAfterMs),
    changeRetentionSeconds: int(60, 365 * 86_400, 'seconds').default(CONFIG_DEFAULTS.cluster.changeRetentionSeconds),
    snapshotFile: path.optional(),
    snapshotIntervalMs: int(100, MAX_TIMER_MS, 'ms').default(CONFIG_DEFAULTS.cluster.snapshotIntervalMs),
    storeRetryMs: int(50, 3_600_000, 'ms').default(CONFIG_DEFAULTS.cluster.storeRetryMs),
  }).prefault({}).superRefine((c, ctx) => {
    if (c.staleAfterMs <= c.heartbeatIntervalMs) ctx.addIssue({ code: 'custom', path: ['staleAfterMs'], message: `must exceed cluster.heartbeatIntervalMs (${c.heartbeatIntervalMs})` });
  }),
  listenOverrides: z.record(namePattern(RESOURCE_NAME_PATTERN, 'distribution'), listen).default({}),
  resources: z.strictObject({
    trustStores: uniqueNames(trustStore),
    keyValueStores: uniqueNames(keyValueStore),
    connectionFunctions: uniqueNames(connectionFunction),
    distributions: uniqueNames(distribution),
  }).prefault({}),
});

/** A trust store declared under `resources.trustStores` (paths absolute). */
export interface ConfigTrustStore {
  name: string;
  /** Absolute path of the PEM bundle; exactly one of caBundleFile and caBundlePem. */
  caBundleFile?: string;
  caBundlePem?: string;
  useClientCertificateOcspEndpoint: boolean;
  comment?: string;
}

/** A key value store declared under `resources.keyValueStores`. */
export interface ConfigKeyValueStore {
  name: string;
  comment?: string;
  /** Absolute path (or an http(s) URL) of a `{"data":[…]}` file, imported only when the store is created. */
  importFile?: string;
}

/** A connection function declared under `resources.connectionFunctions`. */
export interface ConfigConnectionFunction {
  name: string;
  /** Absolute path of the JavaScript code. */
  codeFile: string;
  comment?: string;
  /** Name of the associated key value store. */
  keyValueStore?: string;
  /** Publish DEVELOPMENT to LIVE at start when they differ (default false). */
  publish: boolean;
}

/** A distribution declared under `resources.distributions`: DistributionDocument fields in config spelling. */
export interface ConfigDistribution {
  name: string;
  listen: string;
  aliases: string[];
  certificates: DistributionCertificateFiles[];
  origin: DistributionOrigin;
  viewerMtls: DistributionViewerMtls;
  /** Name of the associated connection function (stored as `connectionFunctionAssociation: { name }`). */
  connectionFunction?: string;
  forwardCertificateHeaders: string[];
  limits: DistributionLimits;
  comment?: string;
}

/** Where the state lives: the embedded SQLite store in `dataDir`, or a PostgreSQL database shared by the nodes of a cluster. */
export type ConfigStore = { kind: 'sqlite' } | { kind: 'postgres'; url: string };

/**
 * A loaded, validated node configuration with every default filled in and every path
 * absolute. Durations keep the file's units (see the key names); use the mapping
 * helpers (`revocationOptionsFromConfig`, …) to get module options.
 */
export interface NodeConfig {
  /** Absolute path of the file it was loaded from. */
  file: string;
  /** This node's name in the cluster (its row in the node table, `GET /v1/nodes`); absent when not set: the host name is used. */
  nodeName?: string;
  /** Absolute. */
  dataDir: string;
  store: ConfigStore;
  /** Worker processes sharing the listeners (default `os.availableParallelism()`). */
  workers: number;
  admin: {
    listen: string;
    /** The bearer token; undefined when not set (or `${VAR}` with VAR unset): generated into dataDir. */
    token?: string;
  };
  logging: {
    level: LogLevel;
    /** `stdout`, or the absolute path of a JSON-lines file. */
    connectionLog: string;
  };
  ocsp: {
    timeoutMs: number;
    fetchTimeoutMs: number;
    maxCacheTtlSeconds: number;
    defaultTtlSeconds: number;
    failureCacheSeconds: number;
    clockSkewSeconds: number;
    maxAgeWithoutNextUpdateSeconds: number;
    maxResponseBytes: number;
    nonce: boolean;
  };
  functions: { cpuLimitMs: number; memoryLimitBytes: number; maxCodeBytes: number };
  kvs: {
    maxKeyBytes: number; maxValueBytes: number; maxImportBytes: number; maxStoreBytes: number; maxBatchKeys: number;
    defaultListKeys: number; maxListKeys: number; maxCommentLength: number; importFetchTimeoutMs: number; staleProvisioningMs: number;
  };
  /** PostgreSQL store options (used when {@link store} is `postgres`). */
  postgres: {
    /** Connections per process (the serving process, each cluster worker and each function worker thread open their own pool). */
    poolSize: number;
  };
  /** Cluster mode (issue 8). */
  cluster: {
    /** How often the node upserts its row in the node table (`GET /v1/nodes`), ms. */
    heartbeatIntervalMs: number;
    /** A node whose last heartbeat is older than this is listed as `stale`, ms. */
    staleAfterMs: number;
    /** Change records older than this are pruned (a replica further behind reloads everything), seconds. */
    changeRetentionSeconds: number;
    /**
     * Absolute path of the local snapshot of the last applied state: written soon after
     * changes (at most every snapshotIntervalMs) while the database is reachable, and
     * served from when the node starts while the database is down. Unset: no snapshot;
     * a node that cannot reach its database at start refuses to start.
     */
    snapshotFile?: string;
    /**
     * How often the node checks for changes newer than its snapshot and writes it (at
     * most one write per interval), ms. Default 1000: a whole-node restart during a
     * database outage then loses at most about a second of changes.
     */
    snapshotIntervalMs: number;
    /** How often a node that started from its snapshot retries the database, ms. */
    storeRetryMs: number;
  };
  /** Distribution name → `host:port` this node listens on instead of the distribution's `listen`. */
  listenOverrides: Record<string, string>;
  resources: {
    trustStores: ConfigTrustStore[];
    keyValueStores: ConfigKeyValueStore[];
    connectionFunctions: ConfigConnectionFunction[];
    distributions: ConfigDistribution[];
  };
}
