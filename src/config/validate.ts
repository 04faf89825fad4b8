/**
 * `validateConfig`: everything {@link loadConfig} checks, plus what start-up would find
 * out — files exist and parse (server certificate/key pairs match, CA bundles pass the
 * trust-store rules, KVS import files are valid, function code compiles) and names
 * referenced (trust stores, key value stores, connection functions, listenOverrides)
 * exist in the config or in the store. `portcullis validate` runs it.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { accessSync, constants as fsConstants, existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ConfigError, PortcullisError, type ConfigProblem } from '../errors.js';
import { compileFunction } from '../functions/index.js';
import { isUrlSource, parseKvsImport } from '../kvs/index.js';
import { parseTrustStoreBundle, splitCertificates, type TrustStoreLimits } from '../pki/index.js';
import { findAliasConflicts, type DistributionDocument, type DistributionListenClaim } from '../resources/index.js';
import { SQLITE_FILE_NAME, describeStoreSpec, openStore, type Store } from '../store/index.js';
import { storeSpecFromConfig } from './options.js';
import { loadConfig, type ConfigEnv } from './load.js';
import { functionLimitsFromConfig, kvsLimitsFromConfig } from './options.js';
import type { NodeConfig } from './schema.js';

/** Result of {@link validateConfig}. Valid when `problems` is empty. */
export interface ConfigValidation {
  /** The loaded config, when the file loaded (problems may still be found in what it refers to). */
  config?: NodeConfig;
  /** Every problem, with its key path. */
  problems: ConfigProblem[];
  /** True when the config file itself does not exist or cannot be read. */
  missingFile: boolean;
}

/** Options of {@link validateConfig}. */
export interface ValidateConfigOptions {
  /**
   * The store whose resources count as existing. Default: the embedded store of the
   * config's dataDir when its database file exists (opened and closed again), or the
   * PostgreSQL database when reachable. `null`: do not look at any store.
   */
  store?: Store | null;
  /** Told when the PostgreSQL database could not be opened (names are then checked against the config only). */
  onStoreUnavailable?: (message: string) => void;
  /** Trust-store bundle limits (default pki/ `DEFAULT_TRUST_STORE_LIMITS`). */
  trustStoreLimits?: Partial<TrustStoreLimits>;
}

/**
 * The resources that already exist where a config's resources will be applied (a
 * store, or an admin API's server): what {@link checkResources} looks names up in.
 */
export interface ExistingResources {
  /** How messages name it: `the store`, `the server`. */
  where: string;
  trustStoreExists(name: string): Promise<boolean>;
  keyValueStoreExists(name: string): Promise<boolean>;
  /** The function's DEVELOPMENT stage exists. */
  functionExists(name: string): Promise<boolean>;
  distributionExists(name: string): Promise<boolean>;
  /** Every existing distribution's name, listen address and aliases. */
  distributions(): Promise<DistributionListenClaim[]>;
}

/**
 * A problem found by {@link checkResources}, with the error catalogue code the write
 * would have failed with (`InvalidFunctionCode`, `EntityNotFound`, `CNAMEAlreadyExists`,
 * `ImportFailed`, `InvalidArgument` for a file that cannot be read or parsed, …).
 */
export interface ResourceProblem extends ConfigProblem {
  code: string;
}

/** Options of {@link checkResources}. */
export interface CheckResourcesOptions {
  trustStoreLimits?: Partial<TrustStoreLimits>;
  /** How references are said to be missing: `in the config` (default), `in the file`. */
  declaredIn?: string;
  /** Check distribution certificate, key and origin CA files (default true; they are read where the resources are applied). */
  distributionFiles?: boolean;
}

/** {@link ExistingResources} of a store. */
export function existingInStore(store: Store): ExistingResources {
  return {
    where: 'the store',
    trustStoreExists: async (name) => (await store.trustStores.get(name)) !== undefined,
    keyValueStoreExists: async (name) => (await store.kvs.getStore(name)) !== undefined,
    functionExists: async (name) => (await store.functions.get(name, 'DEVELOPMENT')) !== undefined,
    distributionExists: async (name) => (await store.distributions.get(name)) !== undefined,
    distributions: async () => (await store.distributions.list())
      .map((d) => ({ name: d.name, listen: (d.document as DistributionDocument).listen, aliases: (d.document as DistributionDocument).aliases })),
  };
}

/**
 * The checks of {@link validateConfig} after loading, for `config.resources` (and its
 * listenOverrides): files read and parsed (CA bundles, KVS import files, function code
 * compiled, distribution files), references declared in the config or `existing`, and
 * aliases not already claimed by an existing distribution the config does not declare.
 * Problem paths start with `resources.`. Changes nothing.
 */
export async function checkResources(
  config: NodeConfig, existing: ExistingResources | undefined, options: CheckResourcesOptions = {},
): Promise<ResourceProblem[]> {
  const problems: ResourceProblem[] = [];
  await checkFiles(config, existing, problems, options);
  await checkReferences(config, existing, problems, options.declaredIn ?? 'in the config');
  return problems;
}

async function readBytes(file: string, what: string, path: string, problems: ResourceProblem[]): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
    problems.push({ path, message: `cannot read ${what} ${file}: ${reason}`, code: 'InvalidArgument' });
    return undefined;
  }
}

function codeOf(err: unknown, fallback: string): string {
  return err instanceof PortcullisError ? err.code : fallback;
}

function message(err: unknown): string {
  return err instanceof PortcullisError ? err.message : err instanceof Error ? err.message : String(err);
}

/**
 * Validates the config file `file` as start-up would, without changing anything.
 * @param env the environment for `${VAR}` (default `process.env`).
 * @returns the problems found (empty: valid) and the config when it loaded. Never
 *   throws for a problem in the file or what it refers to.
 */
export async function validateConfig(file: string, env: ConfigEnv = process.env, options: ValidateConfigOptions = {}): Promise<ConfigValidation> {
  let config: NodeConfig;
  try {
    config = await loadConfig(file, env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const errno = (err.cause as NodeJS.ErrnoException | undefined)?.code;
    const problems = err.problems.length > 0 ? [...err.problems] : [{ path: '', message: err.message }];
    return { problems, missingFile: errno === 'ENOENT' || errno === 'EACCES' || errno === 'EISDIR' };
  }
  const problems: ConfigProblem[] = [];
  let store = options.store ?? undefined;
  let opened: Store | undefined;
  // The embedded store only when it exists (validate never creates one); a PostgreSQL
  // store is opened when reachable — unreachable is no config problem (serve says so).
  if (options.store === undefined && (config.store.kind === 'postgres' || existsSync(join(config.dataDir, SQLITE_FILE_NAME)))) {
    const spec = storeSpecFromConfig(config);
    try {
      store = opened = await openStore(spec);
    } catch (err) {
      if (config.store.kind === 'sqlite') problems.push({ path: 'dataDir', message: `cannot open the store in ${config.dataDir}: ${message(err)}` });
      else options.onStoreUnavailable?.(`${describeStoreSpec(spec)} could not be opened (${message(err)}); names were checked against the config only`);
    }
  }
  if (config.cluster.snapshotFile !== undefined) {
    const why = snapshotFileProblem(config.cluster.snapshotFile);
    if (why) problems.push({ path: 'cluster.snapshotFile', message: why });
  }
  try {
    for (const p of await checkResources(config, store ? existingInStore(store) : undefined, options)) problems.push({ path: p.path, message: p.message });
  } finally {
    await opened?.close();
  }
  return { config, problems, missingFile: false };
}

async function checkFiles(config: NodeConfig, existing: ExistingResources | undefined, problems: ResourceProblem[], options: CheckResourcesOptions): Promise<void> {
  const r = config.resources;
  for (const [i, t] of r.trustStores.entries()) {
    const path = `resources.trustStores[${i}].${t.caBundleFile === undefined ? 'caBundlePem' : 'caBundleFile'}`;
    const pem = t.caBundlePem ?? await readBytes(t.caBundleFile!, 'CA bundle', path, problems);
    if (pem === undefined) continue;
    try {
      parseTrustStoreBundle(pem, options.trustStoreLimits);
    } catch (err) {
      problems.push({ path, message: `CA bundle rejected: ${message(err)}`, code: codeOf(err, 'InvalidArgument') });
    }
  }
  const kvsLimits = kvsLimitsFromConfig(config);
  for (const [i, k] of r.keyValueStores.entries()) {
    if (k.importFile === undefined || isUrlSource(k.importFile)) continue;
    if (existing && (await existing.keyValueStoreExists(k.name))) continue; // importFile is only used at creation
    const path = `resources.keyValueStores[${i}].importFile`;
    const bytes = await readBytes(k.importFile, 'import file', path, problems);
    if (bytes === undefined) continue;
    const parsed = parseKvsImport(bytes, kvsLimits);
    if (!parsed.ok) problems.push({ path, message: parsed.reason, code: 'ImportFailed' });
  }
  const fnLimits = functionLimitsFromConfig(config);
  for (const [i, f] of r.connectionFunctions.entries()) {
    const path = `resources.connectionFunctions[${i}].codeFile`;
    const code = await readBytes(f.codeFile, 'code file', path, problems);
    if (code === undefined) continue;
    try {
      (await compileFunction(code.toString('utf8'), { ...fnLimits, name: f.name })).dispose();
    } catch (err) {
      problems.push({ path, message: message(err), code: codeOf(err, 'InvalidFunctionCode') });
    }
  }
  for (const [i, d] of options.distributionFiles === false ? [] : r.distributions.entries()) {
    for (const [j, c] of d.certificates.entries()) {
      const path = `resources.distributions[${i}].certificates[${j}]`;
      const certPem = await readBytes(c.certFile, 'certificate file', `${path}.certFile`, problems);
      const keyPem = await readBytes(c.keyFile, 'key file', `${path}.keyFile`, problems);
      let cert: X509Certificate | undefined;
      if (certPem) {
        try {
          cert = new X509Certificate(certPem);
        } catch (err) {
          problems.push({ path: `${path}.certFile`, message: `not a PEM certificate: ${message(err)}`, code: 'InvalidArgument' });
        }
      }
      if (keyPem) {
        try {
          const key = createPrivateKey(keyPem);
          if (cert && !cert.checkPrivateKey(key)) problems.push({ path: `${path}.keyFile`, message: `the private key does not match the certificate in ${c.certFile}`, code: 'InvalidArgument' });
        } catch (err) {
          problems.push({ path: `${path}.keyFile`, message: `not a private key: ${message(err)}`, code: 'InvalidArgument' });
        }
      }
    }
    if (d.origin.caFile !== undefined) {
      const path = `resources.distributions[${i}].origin.caFile`;
      const pem = await readBytes(d.origin.caFile, 'CA file', path, problems);
      if (pem) {
        try {
          const blocks = splitCertificates(pem);
          if (blocks.length === 0) throw new Error('no certificate in the file');
          for (const b of blocks) new X509Certificate(b.der);
        } catch (err) {
          problems.push({ path, message: `not a PEM CA bundle: ${message(err)}`, code: 'InvalidArgument' });
        }
      }
    }
  }
}

async function checkReferences(config: NodeConfig, existing: ExistingResources | undefined, problems: ResourceProblem[], declaredIn: string): Promise<void> {
  const r = config.resources;
  const declared = {
    trustStores: new Set(r.trustStores.map((t) => t.name)),
    kvs: new Set(r.keyValueStores.map((k) => k.name)),
    functions: new Set(r.connectionFunctions.map((f) => f.name)),
    distributions: new Set(r.distributions.map((d) => d.name)),
  };
  const where = existing ? `${declaredIn} or ${existing.where}` : declaredIn;
  for (const [i, f] of r.connectionFunctions.entries()) {
    if (f.keyValueStore !== undefined && !declared.kvs.has(f.keyValueStore) && !(existing && (await existing.keyValueStoreExists(f.keyValueStore)))) {
      problems.push({ path: `resources.connectionFunctions[${i}].keyValueStore`, message: `key value store "${f.keyValueStore}" is not declared ${where}`, code: 'EntityNotFound' });
    }
  }
  for (const [i, d] of r.distributions.entries()) {
    const ts = d.viewerMtls.trustStore;
    if (ts !== undefined && !declared.trustStores.has(ts) && !(existing && (await existing.trustStoreExists(ts)))) {
      problems.push({ path: `resources.distributions[${i}].viewerMtls.trustStore`, message: `trust store "${ts}" is not declared ${where}`, code: 'EntityNotFound' });
    }
    const fn = d.connectionFunction;
    if (fn !== undefined && !declared.functions.has(fn) && !(existing && (await existing.functionExists(fn)))) {
      problems.push({ path: `resources.distributions[${i}].connectionFunction`, message: `connection function "${fn}" is not declared ${where}`, code: 'EntityNotFound' });
    }
  }
  if (existing && r.distributions.length > 0) {
    // Undeclared existing distributions keep their aliases: a declared one may not take them.
    const stored = (await existing.distributions()).filter((d) => !declared.distributions.has(d.name));
    for (const [i, d] of r.distributions.entries()) {
      for (const msg of findAliasConflicts([...stored, d])) problems.push({ path: `resources.distributions[${i}].aliases`, message: `${msg} (the first is in ${existing.where})`, code: 'CNAMEAlreadyExists' });
    }
  }
  for (const name of Object.keys(config.listenOverrides)) {
    if (!declared.distributions.has(name) && !(existing && (await existing.distributionExists(name)))) {
      problems.push({ path: `listenOverrides.${name}`, message: `distribution "${name}" is not declared ${where}`, code: 'EntityNotFound' });
    }
  }
}

/**
 * Why the local snapshot cannot be written at `path` (config `cluster.snapshotFile`),
 * or undefined when it can: the snapshot is written to a temporary file in its
 * directory and renamed over `path`, so the directory must exist (or be creatable:
 * its nearest existing ancestor is a writable directory) and be writable, and `path`
 * must not be a directory. Checked by `portcullis validate` and at `serve` start-up,
 * so that a node never runs believing it has a fallback it cannot write.
 */
export function snapshotFileProblem(path: string): string | undefined {
  const st = statOf(path);
  if (st?.isDirectory()) return `${path} is a directory; the snapshot is a file`;
  let dir = dirname(path);
  let missing = false;
  for (;;) {
    const d = statOf(dir);
    if (d) {
      if (!d.isDirectory()) return `cannot write the snapshot ${path}: ${dir} is not a directory`;
      try {
        accessSync(dir, fsConstants.W_OK | fsConstants.X_OK);
      } catch {
        return missing
          ? `cannot write the snapshot ${path}: its directory does not exist and cannot be created (${dir} is not writable)`
          : `cannot write the snapshot ${path}: the directory ${dir} is not writable`;
      }
      return undefined;
    }
    missing = true;
    const up = dirname(dir);
    if (up === dir) return `cannot write the snapshot ${path}: no existing directory above it`;
    dir = up;
  }
}

function statOf(path: string): ReturnType<typeof statSync> | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}
