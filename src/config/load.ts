/**
 * Loading the node config file: YAML (`.yaml`/`.yml`, and any other extension) or JSON
 * (`.json`), `${VAR}` substitution from the environment in string values, relative
 * paths resolved against the file's directory, then the strict schema. Every problem
 * is collected and reported at once, each naming the file and the key path.
 */
import { readFile } from 'node:fs/promises';
import { dirname, extname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { ConfigError, type ConfigProblem } from '../errors.js';
import { isUrlSource } from '../kvs/index.js';
import { findAliasConflicts, formatKeyPath, stripUndefined, zodProblems } from '../resources/index.js';
import { CONFIG_DEFAULTS, nodeConfigSchema, type NodeConfig } from './schema.js';

/** The environment: variable name → value (`process.env`). */
export type ConfigEnv = Readonly<Record<string, string | undefined>>;

/**
 * Builds the ConfigError for `problems` of `file`: the message is `<file>: <n>
 * problem(s)` followed by one `  <path>: <problem>` line each.
 */
export function configError(file: string, problems: readonly ConfigProblem[], cause?: unknown): ConfigError {
  const lines = problems.map((p) => `  ${p.path ? `${p.path}: ` : ''}${p.message}`);
  const head = problems.length === 1 ? `${file}: 1 problem` : `${file}: ${problems.length} problems`;
  return new ConfigError(`${head}\n${lines.join('\n')}`, { problems, ...(cause === undefined ? {} : { cause }) });
}

/** Key paths whose `${VAR}` may be unset: the value is then left out (admin.token: generated). */
const OPTIONAL_WHEN_UNSET = new Set(['admin.token']);

/**
 * Replaces `${VAR}` in every string value of `tree` (keys are left alone) with the
 * variable's value; `$${` stands for a literal `${`. A variable that is not set is a
 * problem naming the key path and the variable, except at `admin.token`, whose key is
 * then removed (empty counts as unset there).
 * @returns the new tree (the input is not modified).
 */
export function substituteEnv(tree: unknown, env: ConfigEnv, problems: ConfigProblem[], path: (string | number)[] = []): unknown {
  if (typeof tree === 'string') {
    const keyPath = formatKeyPath(path);
    let unsetOptional = false;
    const out = tree.replace(/\$\$\{|\$\{([^}]*)\}?/g, (m, name: string | undefined) => {
      if (m === '$${') return '${';
      if (name === undefined || !m.endsWith('}') || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
        problems.push({ path: keyPath, message: `malformed variable reference ${JSON.stringify(m)}: use \${NAME} (letters, digits, _), or $\${ for a literal \${` });
        return m;
      }
      const value = env[name];
      if (value === undefined || (value === '' && OPTIONAL_WHEN_UNSET.has(keyPath))) {
        if (OPTIONAL_WHEN_UNSET.has(keyPath)) unsetOptional = true;
        else problems.push({ path: keyPath, message: `environment variable ${name} is not set` });
        return '';
      }
      return value;
    });
    return unsetOptional ? undefined : out;
  }
  if (Array.isArray(tree)) return tree.map((v, i) => substituteEnv(v, env, problems, [...path, i]));
  if (tree && typeof tree === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(tree)) {
      const nv = substituteEnv(v, env, problems, [...path, k]);
      if (nv !== undefined) out[k] = nv;
    }
    return out;
  }
  return tree;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function resolveIn(obj: unknown, key: string, baseDir: string, skip?: (v: string) => boolean): void {
  if (!isMap(obj)) return;
  const v = obj[key];
  if (typeof v === 'string' && v !== '' && !isAbsolute(v) && !(skip?.(v))) obj[key] = resolve(baseDir, v);
}

function eachEntry(tree: Record<string, unknown>, list: string): Record<string, unknown>[] {
  const res = tree.resources;
  if (!isMap(res)) return [];
  const l = res[list];
  return Array.isArray(l) ? l.filter(isMap) : [];
}

/**
 * Resolves relative file paths of the resources section against `baseDir`, in place:
 * trust-store caBundleFile, KVS importFile (not URLs), function codeFile, distribution
 * certFile/keyFile and origin caFile. (dataDir and logging.connectionLog are resolved
 * after defaults are applied.) Values of the wrong type are left for the schema to report.
 */
export function resolveResourcePaths(tree: Record<string, unknown>, baseDir: string): void {
  for (const t of eachEntry(tree, 'trustStores')) resolveIn(t, 'caBundleFile', baseDir);
  for (const k of eachEntry(tree, 'keyValueStores')) resolveIn(k, 'importFile', baseDir, isUrlSource);
  for (const f of eachEntry(tree, 'connectionFunctions')) resolveIn(f, 'codeFile', baseDir);
  for (const d of eachEntry(tree, 'distributions')) {
    if (Array.isArray(d.certificates)) for (const c of d.certificates) { resolveIn(c, 'certFile', baseDir); resolveIn(c, 'keyFile', baseDir); }
    resolveIn(d.origin, 'caFile', baseDir);
  }
}

/** Parses the file text by extension. @throws ConfigError naming the file, line and column. */
function parseText(file: string, text: string): unknown {
  const ext = extname(file).toLowerCase();
  if (ext === '.json') {
    try {
      return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
    } catch (err) {
      throw configError(file, [{ path: '', message: `not valid JSON: ${(err as Error).message}` }], err);
    }
  }
  try {
    return parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (err) {
    if (err instanceof YAMLParseError) {
      const pos = err.linePos?.[0];
      const where = pos ? ` (line ${pos.line}, column ${pos.col})` : '';
      throw configError(file, [{ path: '', message: `not valid YAML${where}: ${err.message.split('\n')[0]}` }], err);
    }
    throw err;
  }
}

/**
 * Builds the {@link NodeConfig} from an already-parsed tree (a YAML/JSON document).
 * @param file the file it came from (made absolute; relative paths resolve against its directory).
 * @throws ConfigError listing every problem (`path: problem`), the message naming the file.
 */
export function configFromTree(file: string, tree: unknown, env: ConfigEnv = process.env): NodeConfig {
  const abs = resolve(file);
  const baseDir = dirname(abs);
  const problems: ConfigProblem[] = [];
  if (tree === null || tree === undefined) tree = {};
  if (!isMap(tree)) throw configError(abs, [{ path: '', message: 'the file must hold a map of settings at the top level' }]);
  const substituted = substituteEnv(tree, env, problems) as Record<string, unknown>;
  resolveResourcePaths(substituted, baseDir);
  const r = nodeConfigSchema.safeParse(substituted, { reportInput: true });
  if (!r.success) problems.push(...zodProblems(r.error));
  if (problems.length > 0 || !r.success) throw configError(abs, problems);
  const c = r.data;
  const dists = c.resources.distributions;
  for (const msg of findAliasConflicts(dists)) {
    const i = dists.findIndex((d) => msg.includes(`and "${d.name}"`));
    problems.push({ path: `resources.distributions[${i}].aliases`, message: msg });
  }
  if (problems.length > 0) throw configError(abs, problems);
  const config: NodeConfig = {
    file: abs,
    ...(c.nodeName === undefined ? {} : { nodeName: c.nodeName }),
    dataDir: resolve(baseDir, c.dataDir),
    store: c.store === 'sqlite' ? { kind: 'sqlite' } : { kind: 'postgres', url: c.store },
    workers: c.workers ?? CONFIG_DEFAULTS.workers,
    admin: { listen: c.admin.listen, ...(c.admin.token === undefined ? {} : { token: c.admin.token }) },
    logging: { level: c.logging.level, connectionLog: c.logging.connectionLog === 'stdout' ? 'stdout' : resolve(baseDir, c.logging.connectionLog) },
    ocsp: c.ocsp,
    functions: c.functions,
    kvs: c.kvs,
    postgres: c.postgres,
    cluster: {
      heartbeatIntervalMs: c.cluster.heartbeatIntervalMs,
      staleAfterMs: c.cluster.staleAfterMs,
      changeRetentionSeconds: c.cluster.changeRetentionSeconds,
      ...(c.cluster.snapshotFile === undefined ? {} : { snapshotFile: resolve(baseDir, c.cluster.snapshotFile) }),
      snapshotIntervalMs: c.cluster.snapshotIntervalMs,
      storeRetryMs: c.cluster.storeRetryMs,
    },
    listenOverrides: c.listenOverrides,
    resources: stripUndefined(c.resources),
  };
  return config;
}

/**
 * Reads, substitutes, resolves and validates the node config file `file`.
 * @param env the environment for `${VAR}` (default `process.env`).
 * @returns the config with defaults filled in and absolute paths.
 * @throws ConfigError listing every problem found, each with its key path; the message
 *   names the file. When the file cannot be read the `cause` is the fs error (its
 *   `code`, e.g. `ENOENT`, tells a missing file).
 */
export async function loadConfig(file: string, env: ConfigEnv = process.env): Promise<NodeConfig> {
  const abs = resolve(file);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const reason = e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'is a directory' : e.code === 'EACCES' ? 'permission denied' : e.message;
    throw configError(abs, [{ path: '', message: `cannot read the config file: ${reason}` }], err);
  }
  return configFromTree(abs, parseText(abs, text), env);
}
