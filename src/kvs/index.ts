/**
 * kvs/: KeyValueStore semantics (SPEC section 5, CloudFront KeyValueStore): limits,
 * validation, ETags, import from a file or URL, the data-plane operations over the
 * {@link Store}, and the in-memory replica with per-invocation snapshots that the data
 * path reads. Other folders import only from this file.
 *
 * Revoked-serial keys: a KVS used as a revocation list holds keys in the form
 * `serialNumber.replaceAll(':', '')` — lowercase hex of the serial's DER INTEGER
 * content octets, leading `00` kept (`00a7309e`). {@link normalizeSerialForKvs}
 * (re-exported from pki/) turns any colon or plain hex serial into that form.
 */
export { normalizeSerialForKvs } from '../pki/index.js';
export { DEFAULT_KVS_LIMITS, resolveKvsLimits } from './limits.js';
export type { KvsLimits } from './limits.js';
export {
  KVS_NAME_PATTERN, validateKvsName, validateKey, validateValue, parseKvsImport, encodeNextToken, decodeNextToken,
  findDuplicateMember, describeDuplicateMember, firstInvalidUtf8,
} from './validation.js';
export type { KvsImportParseResult, DuplicateMember } from './validation.js';
export { readImportSource, undiciImportFetcher, isUrlSource } from './import-source.js';
export type { ImportFetcher, ImportSourceResult } from './import-source.js';
export { KeyValueStoreService, newKvsEtag, describeRecord, requireIfMatch, sweepInterruptedImports, INTERRUPTED_IMPORT_REASON } from './service.js';
export type {
  KvsDescription, KvsWriteResult, KvsGetKeyResult, KvsListKeysResult, CreateKvsOptions, KeyValueStoreServiceOptions,
} from './service.js';
export { importCrlIntoStore, verifyIssuerChain } from './crl-import.js';
export type { ImportCrlOptions, ImportCrlResult } from './crl-import.js';
export { KvsReplica } from './replica.js';
export type { KvsSnapshot, KvsMeta, KvsReplicaOptions } from './replica.js';
