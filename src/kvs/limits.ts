/**
 * KeyValueStore limits (SPEC section 5, CloudFront's KVS quotas), all in one place and
 * all configurable per deployment (config keys `kvs.<field>`).
 *
 * Units: bytes are bytes of UTF-8; "KB"/"MB" are 1024 / 1024² bytes.
 */

/** Every KVS limit. */
export interface KvsLimits {
  /** Longest key, UTF-8 bytes (CloudFront: 512). */
  maxKeyBytes: number;
  /** Longest value, UTF-8 bytes (CloudFront: 1 KB). */
  maxValueBytes: number;
  /** Largest import file, bytes as read (CloudFront: 5 MB). */
  maxImportBytes: number;
  /** Largest store: TotalSizeInBytes, the sum of UTF-8 bytes of every key and value (CloudFront: 5 MB). */
  maxStoreBytes: number;
  /** Most keys in one batch update, puts + deletes (CloudFront: 50). A CRL import is exempt. */
  maxBatchKeys: number;
  /** Items per ListKeys page when MaxResults is not given (CloudFront: 10). */
  defaultListKeys: number;
  /** Largest MaxResults of ListKeys (CloudFront: 50). */
  maxListKeys: number;
  /** Longest store comment, characters (CloudFront: 128). */
  maxCommentLength: number;
  /** Time limit for fetching an import URL, ms. */
  importFetchTimeoutMs: number;
  /**
   * A store still `PROVISIONING` this long after its last change is taken to belong to
   * an import whose process died, and is marked `FAILED` (ms).
   */
  staleProvisioningMs: number;
}

/** The defaults: CloudFront's values. */
export const DEFAULT_KVS_LIMITS: Readonly<KvsLimits> = Object.freeze({
  maxKeyBytes: 512,
  maxValueBytes: 1024,
  maxImportBytes: 5 * 1024 * 1024,
  maxStoreBytes: 5 * 1024 * 1024,
  maxBatchKeys: 50,
  defaultListKeys: 10,
  maxListKeys: 50,
  maxCommentLength: 128,
  importFetchTimeoutMs: 30_000,
  staleProvisioningMs: 10 * 60_000,
});

/**
 * Merges overrides into the defaults.
 * @throws RangeError when a value is not a positive integer (every limit counts bytes,
 *   keys, characters or milliseconds; limits are
 *   configuration: a wrong one is a start-up error, not a runtime surprise).
 */
export function resolveKvsLimits(overrides: Partial<KvsLimits> = {}): KvsLimits {
  const out = { ...DEFAULT_KVS_LIMITS, ...overrides };
  for (const [k, v] of Object.entries(out)) {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw new RangeError(`kvs.${k} must be a positive integer, got ${String(v)}`);
  }
  if (out.defaultListKeys > out.maxListKeys) throw new RangeError(`kvs.defaultListKeys (${out.defaultListKeys}) exceeds kvs.maxListKeys (${out.maxListKeys})`);
  return out;
}
