/**
 * `validateConfig`: everything {@link loadConfig} checks, plus what start-up would find
 * out — files exist and parse (server certificate/key pairs match, CA bundles pass the
 * trust-store rules, KVS import files are valid, function code compiles) and names
 * referenced (trust stores, key value stores, connection functions, listenOverrides)
 * exist in the config or in the store. `portcullis validate` runs it.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, PortcullisError, type ConfigProblem } from '../errors.js';
import { compileFunction } from '../functions/index.js';
import { isUrlSource, parseKvsImport } from '../kvs/index.js';
import { parseTrustStoreBundle, splitCertificates, type TrustStoreLimits } from '../pki/index.js';
import { findAliasConflicts, type DistributionDocument } from '../resources/index.js';
import { SQLITE_FILE_NAME, openSqliteStore, type Store } from '../store/index.js';
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
   * config's dataDir when its database file exists (opened and closed again); none for
   * a PostgreSQL store (the cluster issue adds it). `null`: do not look at any store.
   */
  store?: Store | null;
  /** Trust-store bundle limits (default pki/ `DEFAULT_TRUST_STORE_LIMITS`). */
  trustStoreLimits?: Partial<TrustStoreLimits>;
}

async function readBytes(file: string, what: string, path: string, problems: ConfigProblem[]): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
    problems.push({ path, message: `cannot read ${what} ${file}: ${reason}` });
    return undefined;
  }
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
  if (options.store === undefined && config.store.kind === 'sqlite' && existsSync(join(config.dataDir, SQLITE_FILE_NAME))) {
    try {
      store = opened = await openSqliteStore({ dataDir: config.dataDir });
    } catch (err) {
      problems.push({ path: 'dataDir', message: `cannot open the store in ${config.dataDir}: ${message(err)}` });
    }
  }
  try {
    await checkFiles(config, store, problems, options);
    await checkReferences(config, store, problems);
  } finally {
    await opened?.close();
  }
  return { config, problems, missingFile: false };
}

async function checkFiles(config: NodeConfig, store: Store | undefined, problems: ConfigProblem[], options: ValidateConfigOptions): Promise<void> {
  const r = config.resources;
  for (const [i, t] of r.trustStores.entries()) {
    const path = `resources.trustStores[${i}].${t.caBundleFile === undefined ? 'caBundlePem' : 'caBundleFile'}`;
    const pem = t.caBundlePem ?? await readBytes(t.caBundleFile!, 'CA bundle', path, problems);
    if (pem === undefined) continue;
    try {
      parseTrustStoreBundle(pem, options.trustStoreLimits);
    } catch (err) {
      problems.push({ path, message: `CA bundle rejected: ${message(err)}` });
    }
  }
  const kvsLimits = kvsLimitsFromConfig(config);
  for (const [i, k] of r.keyValueStores.entries()) {
    if (k.importFile === undefined || isUrlSource(k.importFile)) continue;
    if (store && (await store.kvs.getStore(k.name))) continue; // importFile is only used at creation
    const path = `resources.keyValueStores[${i}].importFile`;
    const bytes = await readBytes(k.importFile, 'import file', path, problems);
    if (bytes === undefined) continue;
    const parsed = parseKvsImport(bytes, kvsLimits);
    if (!parsed.ok) problems.push({ path, message: parsed.reason });
  }
  const fnLimits = functionLimitsFromConfig(config);
  for (const [i, f] of r.connectionFunctions.entries()) {
    const path = `resources.connectionFunctions[${i}].codeFile`;
    const code = await readBytes(f.codeFile, 'code file', path, problems);
    if (code === undefined) continue;
    try {
      (await compileFunction(code.toString('utf8'), { ...fnLimits, name: f.name })).dispose();
    } catch (err) {
      problems.push({ path, message: message(err) });
    }
  }
  for (const [i, d] of r.distributions.entries()) {
    for (const [j, c] of d.certificates.entries()) {
      const path = `resources.distributions[${i}].certificates[${j}]`;
      const certPem = await readBytes(c.certFile, 'certificate file', `${path}.certFile`, problems);
      const keyPem = await readBytes(c.keyFile, 'key file', `${path}.keyFile`, problems);
      let cert: X509Certificate | undefined;
      if (certPem) {
        try {
          cert = new X509Certificate(certPem);
        } catch (err) {
          problems.push({ path: `${path}.certFile`, message: `not a PEM certificate: ${message(err)}` });
        }
      }
      if (keyPem) {
        try {
          const key = createPrivateKey(keyPem);
          if (cert && !cert.checkPrivateKey(key)) problems.push({ path: `${path}.keyFile`, message: `the private key does not match the certificate in ${c.certFile}` });
        } catch (err) {
          problems.push({ path: `${path}.keyFile`, message: `not a private key: ${message(err)}` });
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
          problems.push({ path, message: `not a PEM CA bundle: ${message(err)}` });
        }
      }
    }
  }
}

async function checkReferences(config: NodeConfig, store: Store | undefined, problems: ConfigProblem[]): Promise<void> {
  const r = config.resources;
  const declared = {
    trustStores: new Set(r.trustStores.map((t) => t.name)),
    kvs: new Set(r.keyValueStores.map((k) => k.name)),
    functions: new Set(r.connectionFunctions.map((f) => f.name)),
    distributions: new Set(r.distributions.map((d) => d.name)),
  };
  const where = store ? 'in the config or the store' : 'in the config';
  for (const [i, f] of r.connectionFunctions.entries()) {
    if (f.keyValueStore !== undefined && !declared.kvs.has(f.keyValueStore) && !(store && (await store.kvs.getStore(f.keyValueStore)))) {
      problems.push({ path: `resources.connectionFunctions[${i}].keyValueStore`, message: `key value store "${f.keyValueStore}" is not declared ${where}` });
    }
  }
  for (const [i, d] of r.distributions.entries()) {
    const ts = d.viewerMtls.trustStore;
    if (ts !== undefined && !declared.trustStores.has(ts) && !(store && (await store.trustStores.get(ts)))) {
      problems.push({ path: `resources.distributions[${i}].viewerMtls.trustStore`, message: `trust store "${ts}" is not declared ${where}` });
    }
    const fn = d.connectionFunction;
    if (fn !== undefined && !declared.functions.has(fn) && !(store && (await store.functions.get(fn, 'DEVELOPMENT')))) {
      problems.push({ path: `resources.distributions[${i}].connectionFunction`, message: `connection function "${fn}" is not declared ${where}` });
    }
  }
  if (store) {
    // Undeclared distributions in the store keep their aliases: a declared one may not take them.
    const stored = (await store.distributions.list()).filter((d) => !declared.distributions.has(d.name))
      .map((d) => ({ name: d.name, listen: (d.document as DistributionDocument).listen, aliases: (d.document as DistributionDocument).aliases }));
    for (const [i, d] of r.distributions.entries()) {
      for (const msg of findAliasConflicts([...stored, d])) problems.push({ path: `resources.distributions[${i}].aliases`, message: `${msg} (the first is in the store)` });
    }
  }
  for (const name of Object.keys(config.listenOverrides)) {
    if (!declared.distributions.has(name) && !(store && (await store.distributions.get(name)))) {
      problems.push({ path: `listenOverrides.${name}`, message: `distribution "${name}" is not declared ${where}` });
    }
  }
}
