/**
 * `portcullis apply -f FILE [--json]`: creates or updates every resource of a resources
 * file through the admin API. FILE (YAML, or JSON by extension) has the schema of the
 * node config's `resources:` section — `trustStores`, `keyValueStores`,
 * `connectionFunctions`, `distributions` — and is validated by the config loader
 * (src/config: same defaults, same messages, `${VAR}` substitution, relative paths
 * resolved against FILE's directory). Files the entries name (CA bundles, code, KVS
 * import files) are read by the CLI and sent in the request; distribution certificate
 * and origin CA files are sent as absolute paths, which the server reads.
 *
 * Rules per resource (as at `serve` start, src/config/apply.ts, except that a key value
 * store's comment is updated, the API allows it): read it first (GET), create it when
 * missing, update it with `If-Match` of that read when it differs, else leave it —
 * running the same file twice changes nothing and moves no ETag. Resources not in the
 * file are left alone. One line per resource: created / updated / unchanged (and
 * `published` for a function published to LIVE).
 *
 * Nothing is written before a preflight has passed ({@link preflightApply}: the config
 * validator's resource checks, src/config/validate.ts `checkResources`, against what the
 * server has): every local file readable, CA bundles accepted, KVS import files valid,
 * function code compiles, referenced trust stores / key value stores / functions in the
 * file or on the server, no alias claimed by a distribution on the server the file does
 * not declare. A failed preflight lists every problem, writes nothing, and exits with
 * the code of the first problem in the shared table (e.g. 3 for CNAMEAlreadyExists, 64
 * for InvalidFunctionCode, 2 for a missing reference). A write that still fails (a
 * concurrent change) stops the run: what was applied before it and what was not are
 * printed on stderr, and the exit code is the error's.
 */
import { readFileSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import type { Command } from 'commander';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import {
  checkResources, configError, configFromTree, distributionDocumentFromConfig, type ExistingResources, type NodeConfig, type ResourceProblem,
} from '../config/index.js';
import { ConfigError } from '../errors.js';
import { isUrlSource } from '../kvs/index.js';
import { stableStringify } from '../resources/index.js';
import { CliUsageError, readInputFile, resourceExitCode } from './common.js';
import {
  ApiRequestError, adminOptions, apiExitCode, apiIo, normalizeEtag, out, printJson, seg, withApi, type AdminOptions, type ApiClient,
} from './api-client.js';

/** Parses a YAML or JSON (by extension) document file. @throws CliUsageError naming the file (and line). */
export function readDocumentFile(file: string, what: string): unknown {
  const text = readInputFile(file, what).toString('utf8').replace(/^\uFEFF/, '');
  if (extname(file).toLowerCase() === '.json') {
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new CliUsageError(`${what} ${file}: not valid JSON: ${(err as Error).message}`);
    }
  }
  try {
    return parseYaml(text, { uniqueKeys: true });
  } catch (err) {
    if (err instanceof YAMLParseError) {
      const pos = err.linePos?.[0];
      throw new CliUsageError(`${what} ${file}: not valid YAML${pos ? ` (line ${pos.line}, column ${pos.col})` : ''}: ${err.message.split('\n')[0]}`);
    }
    throw err;
  }
}

/**
 * Validates `resources` (the content of a `resources:` section) with the config loader,
 * paths relative to `file`'s directory. Problem paths are shown relative to the file
 * (`trustStores[0].name`), with `stripPrefix` removed as well when given.
 * @throws CliUsageError listing every problem.
 */
export function resourcesFromTree(file: string, resources: unknown, stripPrefix = ''): NodeConfig['resources'] {
  const abs = resolve(file);
  try {
    return configFromTree(abs, { resources: resources ?? {} }).resources;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const strip = (p: string): string => {
      let s = p.startsWith('resources.') ? p.slice('resources.'.length) : p === 'resources' ? '' : p;
      if (stripPrefix && s.startsWith(stripPrefix)) s = s.slice(stripPrefix.length).replace(/^\./, '');
      return s;
    };
    throw new CliUsageError(configError(abs, err.problems.map((p) => ({ ...p, path: strip(p.path) }))).message);
  }
}

/** Reads and validates a resources file. @throws CliUsageError naming the file and every problem. */
export function loadResourcesFile(file: string): NodeConfig['resources'] {
  const tree = readDocumentFile(file, 'resources file');
  if (tree !== null && tree !== undefined && (typeof tree !== 'object' || Array.isArray(tree))) {
    throw new CliUsageError(`resources file ${file}: expected a map with trustStores, keyValueStores, connectionFunctions, distributions`);
  }
  return resourcesFromTree(file, tree);
}

/** What happened to one resource. */
export interface ApplyEntry {
  kind: 'trustStore' | 'keyValueStore' | 'connectionFunction' | 'distribution';
  name: string;
  /** Key path in the file, e.g. `trustStores[0]`. */
  path: string;
  action: 'created' | 'updated' | 'unchanged';
  published?: boolean;
  warning?: string;
  /** The resource's ETag afterwards. */
  etag?: string;
}

const KIND_TEXT: Record<ApplyEntry['kind'], string> = {
  trustStore: 'trust store', keyValueStore: 'key value store', connectionFunction: 'connection function', distribution: 'distribution',
};

function readLocal(file: string, what: string, path: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliUsageError(`${path}: cannot read ${what} ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message}`);
  }
}

interface TrustStoreApi { ETag: string; Status: string; StatusReason?: string; CaBundlePem: string; UseClientCertificateOcspEndpoint: boolean; Comment: string }
interface KvsApi { ETag: string; Status: string; FailureReason?: string; Comment: string }
interface FunctionApi { ETag: string; FunctionConfig: { Comment: string; KeyValueStoreAssociations: { Items: { KeyValueStoreName: string }[] } } }
interface DistributionApi { ETag: string; DistributionConfig: Record<string, unknown> }

/** The preflight found problems: nothing was written. */
export class ApplyPreflightError extends Error {
  constructor(readonly problems: ResourceProblem[]) {
    super(`${problems.length} problem${problems.length === 1 ? '' : 's'} found before writing anything`);
  }

  /** The exit code: that of the first problem's code in the shared table. */
  get exitCode(): number {
    return resourceExitCode(this.problems[0]?.code ?? 'InvalidArgument');
  }
}

/** A write failed after the preflight passed: what was applied and what was not. */
export class ApplyFailedError extends Error {
  constructor(
    override readonly cause: ApiRequestError,
    /** Resources fully handled before the failure. */
    readonly applied: ApplyEntry[],
    /** The resource whose step failed, and what of it was already written (`updated in DEVELOPMENT, not published`). */
    readonly failed: { kind: ApplyEntry['kind']; name: string; path: string; partial?: string },
    /** Resources after it, not attempted. */
    readonly notApplied: { kind: ApplyEntry['kind']; name: string; path: string }[],
  ) {
    super(cause.message);
  }
}

/** True for a loopback admin URL (the server then reads the same files as the CLI). */
function isLoopbackUrl(url: string): boolean {
  const host = new URL(url).hostname.toLowerCase();
  return host === 'localhost' || /^127\./.test(host) || host === '[::1]';
}

/** {@link ExistingResources} on the admin API's server (GETs; a 404 is "absent"). */
export function existingOnServer(api: ApiClient): ExistingResources {
  const exists = async (path: string, query?: Record<string, string>): Promise<boolean> => (await api.find(path, query)) !== undefined;
  return {
    where: 'the server',
    trustStoreExists: (name) => exists(`/v1/trust-stores/${seg(name)}`),
    keyValueStoreExists: (name) => exists(`/v1/key-value-stores/${seg(name)}`),
    functionExists: (name) => exists(`/v1/connection-functions/${seg(name)}`, { stage: 'DEVELOPMENT' }),
    distributionExists: (name) => exists(`/v1/distributions/${seg(name)}`),
    distributions: async () => {
      const r = await api.call<{ Items: { Name: string; DistributionConfig: { listen: string; aliases?: string[] } }[] }>('GET', '/v1/distributions');
      return r.body.Items.map((d) => ({ name: d.Name, listen: d.DistributionConfig.listen, aliases: d.DistributionConfig.aliases ?? [] }));
    },
  };
}

/**
 * Everything that can be checked before writing (see the file comment), against the
 * server of `api`; problem paths are relative to the file (`distributions[1].aliases`).
 * Distribution certificate / key / origin CA files are checked only when the API is on
 * loopback: the server reads them, from its own file system. Writes nothing.
 */
export async function preflightApply(api: ApiClient, resources: NodeConfig['resources']): Promise<ResourceProblem[]> {
  const config: NodeConfig = { ...configFromTree(resolve('portcullis-apply.yaml'), {}), resources };
  const problems = await checkResources(config, existingOnServer(api), {
    declaredIn: 'in the file', distributionFiles: isLoopbackUrl(api.target.url),
  });
  return problems.map((p) => ({ ...p, path: p.path.replace(/^resources\./, '') }));
}

/** Runs one entry's step; an API error gets the entry's path and name in front of its message. */
async function step(path: string, name: string, fn: () => Promise<ApplyEntry>): Promise<ApplyEntry> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ApiRequestError && err.code !== 'Unreachable' && err.code !== 'AccessDenied') {
      throw new ApiRequestError(err.code, `${path} "${name}": ${err.message}`, err.status);
    }
    throw err;
  }
}

/**
 * Applies `resources` through `api` (see the file comment), calling `report` after
 * each resource. The preflight runs first; local files are read before anything is sent.
 * @throws ApplyPreflightError listing the problems (nothing written); CliUsageError for
 *   an unreadable local file; ApiRequestError for a refused preflight GET (nothing
 *   written); ApplyFailedError for a write refused after the preflight passed.
 */
export async function applyThroughApi(
  api: ApiClient, resources: NodeConfig['resources'], report: (e: ApplyEntry) => void = () => {},
): Promise<ApplyEntry[]> {
  const problems = await preflightApply(api, resources);
  if (problems.length > 0) throw new ApplyPreflightError(problems);
  // Read every local file first: a missing file stops the run before anything changes.
  const bundles = resources.trustStores.map((t, i) => t.caBundlePem ?? readLocal(t.caBundleFile!, 'CA bundle', `trustStores[${i}].caBundleFile`));
  const imports = resources.keyValueStores.map((k, i) => (k.importFile === undefined || isUrlSource(k.importFile) ? undefined : readLocal(k.importFile, 'import file', `keyValueStores[${i}].importFile`)));
  const codes = resources.connectionFunctions.map((f, i) => readLocal(f.codeFile, 'code file', `connectionFunctions[${i}].codeFile`));
  interface Task { kind: ApplyEntry['kind']; name: string; path: string; run: () => Promise<ApplyEntry> }
  const tasks: Task[] = [];
  /** What the running step has already written (set before a later request of the same step). */
  let partial: string | undefined;

  for (const [i, t] of resources.trustStores.entries()) {
    const path = `trustStores[${i}]`;
    const pem = bundles[i]!;
    tasks.push({ kind: 'trustStore', name: t.name, path, run: () => step(path, t.name, async () => {
      const base = { kind: 'trustStore' as const, name: t.name, path };
      const failed = (v: TrustStoreApi): { warning?: string } => (v.Status === 'failed' ? { warning: `the CA bundle was rejected, the trust store is failed: ${v.StatusReason ?? ''}` } : {});
      const cur = await api.find<TrustStoreApi>(`/v1/trust-stores/${seg(t.name)}`);
      if (!cur) {
        const r = await api.call<TrustStoreApi>('POST', '/v1/trust-stores', {
          body: { name: t.name, caBundlePem: pem, useClientCertificateOcspEndpoint: t.useClientCertificateOcspEndpoint, ...(t.comment !== undefined ? { comment: t.comment } : {}) },
        });
        return { ...base, action: 'created', etag: normalizeEtag(r.body.ETag), ...failed(r.body) };
      }
      const v = cur.body;
      if (v.CaBundlePem === pem && v.UseClientCertificateOcspEndpoint === t.useClientCertificateOcspEndpoint && v.Comment === (t.comment ?? '')) {
        return { ...base, action: 'unchanged', etag: normalizeEtag(v.ETag), ...failed(v) };
      }
      const r = await api.call<TrustStoreApi>('PUT', `/v1/trust-stores/${seg(t.name)}`, {
        ifMatch: v.ETag,
        body: { ...(v.CaBundlePem === pem ? {} : { caBundlePem: pem }), useClientCertificateOcspEndpoint: t.useClientCertificateOcspEndpoint, comment: t.comment ?? '' },
      });
      return { ...base, action: 'updated', etag: normalizeEtag(r.body.ETag), ...failed(r.body) };
    }) });
  }

  for (const [i, k] of resources.keyValueStores.entries()) {
    const path = `keyValueStores[${i}]`;
    tasks.push({ kind: 'keyValueStore', name: k.name, path, run: () => step(path, k.name, async () => {
      const base = { kind: 'keyValueStore' as const, name: k.name, path };
      const cur = await api.find<KvsApi>(`/v1/key-value-stores/${seg(k.name)}`);
      if (!cur) {
        const data = imports[i];
        const r = await api.call<KvsApi>('POST', '/v1/key-value-stores', {
          body: {
            name: k.name, ...(k.comment !== undefined ? { comment: k.comment } : {}),
            ...(data !== undefined ? { importData: data } : k.importFile !== undefined ? { importUrl: k.importFile } : {}),
          },
        });
        return {
          ...base, action: 'created', etag: normalizeEtag(r.body.ETag),
          ...(r.body.Status === 'FAILED' ? { warning: `the import failed, the store is FAILED: ${r.body.FailureReason ?? ''}` } : {}),
        };
      }
      if (cur.body.Comment === (k.comment ?? '')) return { ...base, action: 'unchanged', etag: normalizeEtag(cur.body.ETag) };
      const r = await api.call<KvsApi>('PUT', `/v1/key-value-stores/${seg(k.name)}`, { ifMatch: cur.body.ETag, body: { comment: k.comment ?? '' } });
      return { ...base, action: 'updated', etag: normalizeEtag(r.body.ETag) };
    }) });
  }

  for (const [i, f] of resources.connectionFunctions.entries()) {
    const path = `connectionFunctions[${i}]`;
    const code = codes[i]!;
    tasks.push({ kind: 'connectionFunction', name: f.name, path, run: () => step(path, f.name, async () => {
      const base = { kind: 'connectionFunction' as const, name: f.name, path };
      const fnPath = `/v1/connection-functions/${seg(f.name)}`;
      const same = async (s: FunctionApi, stage: 'DEVELOPMENT' | 'LIVE'): Promise<boolean> => {
        const kvs = s.FunctionConfig.KeyValueStoreAssociations.Items[0]?.KeyValueStoreName;
        if (s.FunctionConfig.Comment !== (f.comment ?? '') || kvs !== f.keyValueStore) return false;
        const c = await api.call<{ Code: string }>('GET', `${fnPath}/code`, { query: { stage } });
        return c.body.Code === code;
      };
      const dev = await api.find<FunctionApi>(fnPath, { stage: 'DEVELOPMENT' });
      let action: ApplyEntry['action'] = 'unchanged';
      let etag: string;
      if (!dev) {
        const r = await api.call<FunctionApi>('POST', '/v1/connection-functions', {
          body: { name: f.name, code, ...(f.comment !== undefined ? { comment: f.comment } : {}), ...(f.keyValueStore !== undefined ? { keyValueStore: f.keyValueStore } : {}) },
        });
        action = 'created';
        etag = normalizeEtag(r.body.ETag);
      } else if (await same(dev.body, 'DEVELOPMENT')) {
        etag = normalizeEtag(dev.body.ETag);
      } else {
        const r = await api.call<FunctionApi>('PUT', fnPath, {
          ifMatch: dev.body.ETag, body: { code, comment: f.comment ?? '', keyValueStore: f.keyValueStore ?? null },
        });
        action = 'updated';
        etag = normalizeEtag(r.body.ETag);
      }
      let published = false;
      if (action !== 'unchanged') partial = `${action} (DEVELOPMENT), not published`;
      if (f.publish) {
        const live = await api.find<FunctionApi>(fnPath, { stage: 'LIVE' });
        if (!live || !(await same(live.body, 'LIVE'))) {
          await api.call('POST', `${fnPath}/publish`, { ifMatch: etag });
          published = true;
          etag = normalizeEtag((await api.call<FunctionApi>('GET', fnPath, { query: { stage: 'DEVELOPMENT' } })).body.ETag);
        }
      }
      return { ...base, action, etag, ...(published ? { published } : {}) };
    }) });
  }

  for (const [i, d] of resources.distributions.entries()) {
    const path = `distributions[${i}]`;
    tasks.push({ kind: 'distribution', name: d.name, path, run: () => step(path, d.name, async () => {
      const base = { kind: 'distribution' as const, name: d.name, path };
      const doc = distributionDocumentFromConfig(d) as unknown as Record<string, unknown>;
      const cur = await api.find<DistributionApi>(`/v1/distributions/${seg(d.name)}`);
      if (!cur) {
        const r = await api.call<DistributionApi>('POST', '/v1/distributions', { body: { name: d.name, ...doc } });
        return { ...base, action: 'created', etag: normalizeEtag(r.body.ETag) };
      }
      if (sameDistribution(cur.body.DistributionConfig, doc)) return { ...base, action: 'unchanged', etag: normalizeEtag(cur.body.ETag) };
      const r = await api.call<DistributionApi>('PUT', `/v1/distributions/${seg(d.name)}`, { ifMatch: cur.body.ETag, body: { name: d.name, ...doc } });
      return { ...base, action: 'updated', etag: normalizeEtag(r.body.ETag) };
    }) });
  }
  const entries: ApplyEntry[] = [];
  for (const [i, task] of tasks.entries()) {
    partial = undefined;
    let e: ApplyEntry;
    try {
      e = await task.run();
    } catch (err) {
      if (!(err instanceof ApiRequestError)) throw err;
      const { kind, name, path } = task;
      throw new ApplyFailedError(err, entries, { kind, name, path, ...(partial !== undefined ? { partial } : {}) },
        tasks.slice(i + 1).map((t) => ({ kind: t.kind, name: t.name, path: t.path })));
    }
    entries.push(e);
    report(e);
  }
  return entries;
}

/** Stored vs wanted distribution document (a stored association id the file does not give is ignored). */
function sameDistribution(stored: Record<string, unknown>, wanted: Record<string, unknown>): boolean {
  const a = stored.connectionFunctionAssociation as { name: string; id?: string } | null | undefined;
  const w = wanted.connectionFunctionAssociation as { name: string; id?: string } | null | undefined;
  const s = a && w && w.id === undefined ? { ...stored, connectionFunctionAssociation: { name: a.name } } : stored;
  return stableStringify(s) === stableStringify(wanted);
}

/** One report line: `trust store devices: created`. */
export function applyEntryText(e: ApplyEntry): string {
  return `${KIND_TEXT[e.kind]} ${e.name}: ${e.action}${e.published ? ', published' : ''}${e.warning ? ` (warning: ${e.warning})` : ''}`;
}

/** The stderr text of a write that failed mid-way: the error, what was applied, what was not. */
export function applyFailureText(err: ApplyFailedError): string {
  const name = (e: { kind: ApplyEntry['kind']; name: string }): string => `${KIND_TEXT[e.kind]} ${e.name}`;
  const lines = [`portcullis: ${err.cause.code}: ${err.cause.message}`, 'apply stopped; resources are partly applied:'];
  lines.push(`  applied before the failure: ${err.applied.length === 0 ? 'none' : err.applied.map((e) => `${name(e)} (${e.action}${e.published ? ', published' : ''})`).join(', ')}`);
  lines.push(`  failed: ${name(err.failed)}${err.failed.partial !== undefined ? ` (partly written: ${err.failed.partial})` : ' (not written)'}`);
  lines.push(`  not applied: ${err.notApplied.length === 0 ? 'none' : err.notApplied.map(name).join(', ')}`);
  return `${lines.join('\n')}\n`;
}

/** Registers `portcullis apply`. */
export function registerApplyCommand(program: Command): void {
  adminOptions(program.command('apply'))
    .description('create or update every resource of a resources file (the config\'s resources: schema) through the admin API')
    .requiredOption('-f, --file <file>', 'resources file: YAML, or JSON by extension (trustStores, keyValueStores, connectionFunctions, distributions)')
    .option('--json', 'print {"Items":[…],"Changed":bool} instead of one line per resource')
    .action(async (opts: AdminOptions & { file: string; json?: boolean }) => {
      const resources = loadResourcesFile(opts.file);
      await withApi(opts, async (api) => {
        let entries: ApplyEntry[];
        try {
          entries = await applyThroughApi(api, resources, (e) => { if (!opts.json) out(applyEntryText(e)); });
        } catch (err) {
          if (err instanceof ApplyPreflightError) {
            apiIo.stderr(`portcullis: ${err.problems[0]!.code}: ${opts.file}: nothing was written, ${err.problems.length} problem${err.problems.length === 1 ? '' : 's'}:\n`
              + err.problems.map((p) => `  ${p.path ? `${p.path}: ` : ''}${p.message}\n`).join(''));
            return err.exitCode;
          }
          if (err instanceof ApplyFailedError) {
            apiIo.stderr(applyFailureText(err));
            if (opts.json) {
              printJson({
                Items: err.applied, Quantity: err.applied.length, Changed: err.applied.some((e) => e.action !== 'unchanged' || e.published === true) || err.failed.partial !== undefined,
                Failed: { ...err.failed, code: err.cause.code, message: err.cause.message }, NotApplied: err.notApplied,
              });
            }
            return apiExitCode(err.cause.code);
          }
          throw err;
        }
        if (opts.json) printJson({ Items: entries, Quantity: entries.length, Changed: entries.some((e) => e.action !== 'unchanged' || e.published === true) });
        else if (entries.length === 0) out(`nothing declared in ${opts.file}`);
      });
    });
}

