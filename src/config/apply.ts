/**
 * Applying the `resources:` section of the node config to the store at start:
 * every declared resource is created or brought up to date, idempotently — running it
 * twice changes nothing and bumps no ETag when nothing changed. Resources that are not
 * declared are left alone (never deleted). Order: trust stores, key value stores,
 * connection functions, distributions (each may refer to the ones before).
 *
 * Rules per resource:
 * - trust store: created from caBundleFile/caBundlePem; updated when the bundle, the
 *   OCSP flag or the comment differ. A bundle that fails to parse is stored `failed` at
 *   creation (reported), and refused on update (the old bundle stays; applying fails).
 * - key value store: created (with importFile, if any) when missing; otherwise left as
 *   it is — importFile is only used at creation, and a KVS comment cannot be updated.
 * - connection function: DEVELOPMENT created or updated when the code, the comment or
 *   the KVS association differ; with `publish: true`, DEVELOPMENT is published when
 *   LIVE is missing or differs from it.
 * - distribution: created, or updated when its document (defaults filled in) differs.
 */
import { readFile } from 'node:fs/promises';
import { PortcullisError, type ConfigProblem } from '../errors.js';
import { FUNCTION_RUNTIME, FunctionService, type FunctionDocument } from '../functions/index.js';
import { KeyValueStoreService } from '../kvs/index.js';
import type { TrustStoreLimits } from '../pki/index.js';
import {
  DistributionService, TrustStoreService, parseDistributionDocument, stableStringify, type DistributionDocument, type TrustStoreDocument,
} from '../resources/index.js';
import type { Store } from '../store/index.js';
import { configError } from './load.js';
import { functionLimitsFromConfig, kvsLimitsFromConfig } from './options.js';
import type { ConfigDistribution, NodeConfig } from './schema.js';

/** Kinds of declared resources, as in the report. */
export type ApplyResourceKind = 'trustStore' | 'keyValueStore' | 'connectionFunction' | 'distribution';

/** What happened to one declared resource. */
export interface ApplyReportEntry {
  kind: ApplyResourceKind;
  name: string;
  /** Key path of the declaration, e.g. `resources.trustStores[0]`. */
  path: string;
  action: 'created' | 'updated' | 'unchanged';
  /** Connection functions: DEVELOPMENT was published to LIVE. */
  published?: boolean;
  /** Something the operator should know: a trust store stored `failed`, a KVS import FAILED, a comment that cannot change. */
  warning?: string;
}

/** Result of {@link applyResources}: one entry per declared resource, in apply order. */
export interface ApplyReport {
  entries: ApplyReportEntry[];
  /** True when anything was created, updated or published. */
  changed: boolean;
}

/** Options of {@link applyResources}. */
export interface ApplyResourcesOptions {
  /** Clock, ms since the epoch (tests). */
  now?: () => number;
  /** Trust-store bundle limits (default pki/ `DEFAULT_TRUST_STORE_LIMITS`). */
  trustStoreLimits?: Partial<TrustStoreLimits>;
}

/** The stored document for a declared distribution (config spelling → DistributionDocument, defaults filled in). */
export function distributionDocumentFromConfig(d: ConfigDistribution): DistributionDocument {
  const { name: _name, connectionFunction, ...fields } = d;
  return parseDistributionDocument({ ...fields, connectionFunctionAssociation: connectionFunction === undefined ? null : { name: connectionFunction } });
}

async function readText(file: string, what: string, path: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new ApplyStepError({ path, message: `cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}` }, err);
  }
}

class ApplyStepError extends Error {
  constructor(readonly problem: ConfigProblem, cause?: unknown) {
    super(problem.message, { cause });
  }
}

/** Runs one resource's step, turning a failure into a problem at `path` naming the resource. */
async function step<T>(path: string, name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ApplyStepError) throw err;
    if (err instanceof PortcullisError) throw new ApplyStepError({ path, message: `"${name}": ${err.code}: ${err.message}` }, err);
    throw err;
  }
}

/**
 * Creates or updates every resource declared in `config.resources` on `store` (see
 * the file comment for the rules), stopping at the first one that cannot be applied.
 * @returns what happened to each declared resource (for the start-up log).
 * @throws ConfigError naming the resource's key path and the reason (an unreadable
 *   file, a refused bundle update, code that does not compile, a missing reference,
 *   a stale ETag from a concurrent writer); resources before it stay applied.
 */
export async function applyResources(store: Store, config: NodeConfig, options: ApplyResourcesOptions = {}): Promise<ApplyReport> {
  const now = options.now ?? Date.now;
  const trustStores = new TrustStoreService(store, { now, ...(options.trustStoreLimits ? { limits: options.trustStoreLimits } : {}) });
  const kvs = new KeyValueStoreService(store, { now, limits: kvsLimitsFromConfig(config) });
  const functions = new FunctionService(store, { now, limits: functionLimitsFromConfig(config) });
  const distributions = new DistributionService(store, { now });
  const entries: ApplyReportEntry[] = [];
  const r = config.resources;
  try {
    for (const [i, t] of r.trustStores.entries()) {
      const path = `resources.trustStores[${i}]`;
      const pem = t.caBundlePem ?? await readText(t.caBundleFile!, 'CA bundle', `${path}.caBundleFile`);
      entries.push(await step(path, t.name, async () => {
        const existing = await store.trustStores.get(t.name);
        const want = { caBundlePem: pem, useClientCertificateOcspEndpoint: t.useClientCertificateOcspEndpoint, comment: t.comment };
        if (!existing) {
          const created = await trustStores.create({ name: t.name, ...want });
          return { kind: 'trustStore', name: t.name, path, action: 'created', ...failedWarning(created.document) };
        }
        const doc = existing.document as TrustStoreDocument;
        if (doc.caBundlePem === pem && doc.useClientCertificateOcspEndpoint === want.useClientCertificateOcspEndpoint && (doc.comment ?? '') === (t.comment ?? '')) {
          return { kind: 'trustStore', name: t.name, path, action: 'unchanged', ...failedWarning(doc) };
        }
        const updated = await trustStores.update(t.name, existing.etag, {
          ...(doc.caBundlePem === pem ? {} : { caBundlePem: pem }),
          useClientCertificateOcspEndpoint: want.useClientCertificateOcspEndpoint, comment: t.comment ?? '',
        });
        return { kind: 'trustStore', name: t.name, path, action: 'updated', ...failedWarning(updated.document) };
      }));
    }
    for (const [i, k] of r.keyValueStores.entries()) {
      const path = `resources.keyValueStores[${i}]`;
      entries.push(await step(path, k.name, async () => {
        const existing = await store.kvs.getStore(k.name);
        if (existing) {
          const differs = existing.comment !== (k.comment ?? '');
          return {
            kind: 'keyValueStore', name: k.name, path, action: 'unchanged',
            ...(differs ? { warning: 'the comment differs from the config; a key value store comment cannot be changed (delete and re-create to change it)' } : {}),
          };
        }
        const d = await kvs.create({ name: k.name, ...(k.comment === undefined ? {} : { comment: k.comment }), ...(k.importFile === undefined ? {} : { importSource: k.importFile }) });
        return {
          kind: 'keyValueStore', name: k.name, path, action: 'created',
          ...(d.Status === 'FAILED' ? { warning: `the import failed, the store is FAILED: ${d.FailureReason ?? ''}` } : {}),
        };
      }));
    }
    for (const [i, f] of r.connectionFunctions.entries()) {
      const path = `resources.connectionFunctions[${i}]`;
      const code = await readText(f.codeFile, 'code file', `${path}.codeFile`);
      entries.push(await step(path, f.name, async () => {
        let dev = await store.functions.get(f.name, 'DEVELOPMENT');
        let action: ApplyReportEntry['action'] = 'unchanged';
        const kvsRecord = f.keyValueStore === undefined ? undefined : await store.kvs.getStore(f.keyValueStore);
        if (!dev) {
          await functions.create(f.name, { code, runtime: FUNCTION_RUNTIME, ...(f.comment === undefined ? {} : { comment: f.comment }), keyValueStore: f.keyValueStore ?? null });
          action = 'created';
        } else {
          const d = dev.document as FunctionDocument;
          const kvsSame = f.keyValueStore === undefined ? d.keyValueStore === null
            : d.keyValueStore?.name === f.keyValueStore && (!kvsRecord || d.keyValueStore.id === kvsRecord.id);
          if (d.code !== code || d.comment !== (f.comment ?? '') || !kvsSame) {
            await functions.update(f.name, dev.etag, { code, comment: f.comment ?? '', keyValueStore: f.keyValueStore ?? null });
            action = 'updated';
          }
        }
        let published = false;
        if (f.publish) {
          dev = await store.functions.get(f.name, 'DEVELOPMENT');
          const live = await store.functions.get(f.name, 'LIVE');
          if (dev && (!live || stableStringify(live.document) !== stableStringify(dev.document))) {
            await functions.publish(f.name, dev.etag);
            published = true;
          }
        }
        return { kind: 'connectionFunction', name: f.name, path, action, ...(published ? { published } : {}) };
      }));
    }
    for (const [i, d] of r.distributions.entries()) {
      const path = `resources.distributions[${i}]`;
      entries.push(await step(path, d.name, async () => {
        const doc = distributionDocumentFromConfig(d);
        const existing = await store.distributions.get(d.name);
        if (!existing) {
          await distributions.create(d.name, doc);
          return { kind: 'distribution', name: d.name, path, action: 'created' };
        }
        if (stableStringify(existing.document) === stableStringify(doc)) return { kind: 'distribution', name: d.name, path, action: 'unchanged' };
        await distributions.update(d.name, existing.etag, doc);
        return { kind: 'distribution', name: d.name, path, action: 'updated' };
      }));
    }
  } catch (err) {
    if (err instanceof ApplyStepError) throw configError(config.file, [err.problem], err.cause);
    throw err;
  }
  return { entries, changed: entries.some((e) => e.action !== 'unchanged' || e.published === true) };
}

function failedWarning(doc: TrustStoreDocument): { warning?: string } {
  return doc.status === 'failed' ? { warning: `the CA bundle was rejected, the trust store is failed: ${doc.statusReason ?? ''}` } : {};
}
