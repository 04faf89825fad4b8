/**
 * The `kvs` and `function` lifecycle commands through the admin API: adapters with the
 * method shapes of KeyValueStoreService and FunctionService (the ones the commands
 * call), so each command runs the same code on the local store or on the API.
 *
 * Which one a command uses: `--data-dir DIR` → the local store; else `--admin-url` or
 * `--config` or `$PORTCULLIS_ADMIN_URL` → the API; else the local store in
 * `$PORTCULLIS_DATA_DIR` or `./data`. `--data-dir` together with `--admin-url`/`--config`
 * is a usage error.
 */
import { readFileSync } from 'node:fs';
import type { FunctionStage } from '../store/index.js';
import type { FunctionCode, FunctionService, FunctionSummary } from '../functions/index.js';
import {
  firstInvalidUtf8, isUrlSource, type KeyValueStoreService, type ImportCrlResult, type KvsDescription, type KvsGetKeyResult, type KvsListKeysResult, type KvsWriteResult,
} from '../kvs/index.js';
import { CliUsageError } from './common.js';
import { adminConfigured, seg, type AdminOptions, type ApiClient } from './api-client.js';

/** Options of a command that works on the local store or the API. */
export interface BackendOptions extends AdminOptions {
  /** Undefined when not given (the default applies only to the local store). */
  dataDir?: string;
}

/**
 * `api` or `local` for the options (see the file comment).
 * @throws CliUsageError for `--data-dir` with `--admin-url`/`--config`.
 */
export function backendOf(opts: BackendOptions, env: NodeJS.ProcessEnv = process.env): 'api' | 'local' {
  if (opts.dataDir !== undefined) {
    if (opts.adminUrl !== undefined || opts.config !== undefined) {
      throw new CliUsageError('--data-dir (the local store) and --admin-url/--config (the admin API) exclude each other');
    }
    return 'local';
  }
  return adminConfigured(opts, env) ? 'api' : 'local';
}

/** The KeyValueStoreService methods the kvs commands call (import-crl names a stored trust store over the API). */
export type KvsBackend = Pick<KeyValueStoreService, 'describe' | 'list' | 'getKey' | 'listKeys' | 'putKey' | 'deleteKey' | 'updateKeys' | 'deleteStore'> & {
  create(options: { name: string; comment?: string; importSource?: string }): Promise<KvsDescription>;
  /** Local store only: size limits for the import pre-check. */
  limits?: KeyValueStoreService['limits'];
  /** Local store: the CRL verified against a PEM bundle the CLI parsed. */
  importCrl?: KeyValueStoreService['importCrl'];
  /** Admin API: the CRL verified by the server against a stored trust store (name or id). */
  importCrlByName?(name: string, opts: { crl: Uint8Array; trustStore: string; ifMatch: string; issuerChainPem?: string }): Promise<ImportCrlResult>;
};

/** Key value stores over the admin API. */
export function kvsOverApi(api: ApiClient): KvsBackend {
  const p = (name: string): string => `/v1/key-value-stores/${seg(name)}`;
  return {
    async create(o) {
      let importBody: Record<string, unknown> = {};
      if (o.importSource !== undefined) {
        if (isUrlSource(o.importSource)) {
          importBody = { importUrl: o.importSource };
        } else {
          // The file is on this machine, the server may not be: send its content.
          let bytes: Buffer;
          try {
            bytes = readFileSync(o.importSource);
          } catch (err) {
            const code = (err as NodeJS.ErrnoException).code;
            throw new CliUsageError(`cannot read import file ${o.importSource}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
          }
          const bad = firstInvalidUtf8(bytes);
          if (bad >= 0) throw new CliUsageError(`import file ${o.importSource} is not valid UTF-8 (first invalid byte at offset ${bad})`);
          importBody = { importData: bytes.toString('utf8') };
        }
      }
      const body = { name: o.name, ...(o.comment !== undefined ? { comment: o.comment } : {}), ...importBody };
      return (await api.call<KvsDescription>('POST', '/v1/key-value-stores', { body })).body;
    },
    async describe(name) {
      return (await api.call<KvsDescription>('GET', p(name))).body;
    },
    async list() {
      return (await api.call<{ Items: KvsDescription[] }>('GET', '/v1/key-value-stores')).body.Items;
    },
    async getKey(name, key) {
      return (await api.call<KvsGetKeyResult>('GET', `${p(name)}/keys/${seg(key)}`)).body;
    },
    async listKeys(name, o = {}) {
      const query = {
        ...(o.maxResults !== undefined ? { maxResults: String(o.maxResults) } : {}), ...(o.nextToken !== undefined ? { nextToken: o.nextToken } : {}),
        ...(o.prefix !== undefined ? { prefix: o.prefix } : {}),
      };
      return (await api.call<KvsListKeysResult>('GET', `${p(name)}/keys`, { query })).body;
    },
    async putKey(name, o) {
      return (await api.call<KvsWriteResult>('PUT', `${p(name)}/keys/${seg(o.key)}`, { body: { value: o.value }, ...(o.ifMatch !== undefined ? { ifMatch: o.ifMatch } : {}) })).body;
    },
    async deleteKey(name, o) {
      return (await api.call<KvsWriteResult>('DELETE', `${p(name)}/keys/${seg(o.key)}`, o.ifMatch !== undefined ? { ifMatch: o.ifMatch } : {})).body;
    },
    async updateKeys(name, o) {
      const body = { puts: o.puts ?? [], deletes: (o.deletes ?? []).map((key) => ({ key })) };
      return (await api.call<KvsWriteResult>('POST', `${p(name)}/keys`, { body, ...(o.ifMatch !== undefined ? { ifMatch: o.ifMatch } : {}) })).body;
    },
    async deleteStore(name, o) {
      await api.call('DELETE', p(name), o.ifMatch !== undefined ? { ifMatch: o.ifMatch } : {});
    },
    async importCrlByName(name, o) {
      const text = Buffer.from(o.crl).toString('latin1');
      const body = {
        ...(text.includes('-----BEGIN') ? { crlPem: Buffer.from(o.crl).toString('utf8') } : { crlDerBase64: Buffer.from(o.crl).toString('base64') }),
        trustStore: o.trustStore,
        ...(o.issuerChainPem !== undefined ? { issuerChainPem: o.issuerChainPem } : {}),
      };
      return (await api.call<ImportCrlResult>('POST', `${p(name)}/import-crl`, { body, ifMatch: o.ifMatch })).body;
    },
  };
}

/** The FunctionService methods the lifecycle commands call. */
export type FunctionBackend = Pick<FunctionService, 'create' | 'update' | 'publish' | 'describe' | 'getCode' | 'list' | 'delete'>;

/** Connection functions over the admin API. */
export function functionsOverApi(api: ApiClient): FunctionBackend {
  const p = (name: string): string => `/v1/connection-functions/${seg(name)}`;
  return {
    async create(name, o) {
      const body = {
        name, code: o.code, runtime: o.runtime, ...(o.comment !== undefined ? { comment: o.comment } : {}),
        ...(o.keyValueStore !== undefined ? { keyValueStore: o.keyValueStore } : {}),
      };
      return (await api.call<FunctionSummary>('POST', '/v1/connection-functions', { body })).body;
    },
    async update(name, ifMatch, o) {
      const body = {
        ...(o.code !== undefined ? { code: o.code } : {}), ...(o.comment !== undefined ? { comment: o.comment } : {}),
        ...(o.keyValueStore !== undefined ? { keyValueStore: o.keyValueStore } : {}),
      };
      return (await api.call<FunctionSummary>('PUT', p(name), { body, ifMatch })).body;
    },
    async publish(name, ifMatch) {
      return (await api.call<FunctionSummary>('POST', `${p(name)}/publish`, { ifMatch })).body;
    },
    async describe(name, stage: FunctionStage = 'DEVELOPMENT') {
      return (await api.call<FunctionSummary>('GET', p(name), { query: { stage } })).body;
    },
    async getCode(name, stage: FunctionStage = 'DEVELOPMENT'): Promise<FunctionCode> {
      const r = (await api.call<{ Code: string; ETag: string; Stage: FunctionStage }>('GET', `${p(name)}/code`, { query: { stage } })).body;
      return { code: r.Code, ETag: r.ETag, Stage: r.Stage };
    },
    async list(stage: FunctionStage = 'DEVELOPMENT') {
      return (await api.call<{ Items: FunctionSummary[] }>('GET', '/v1/connection-functions', { query: { stage } })).body.Items;
    },
    async delete(name, ifMatch) {
      await api.call('DELETE', p(name), { ifMatch });
    },
  };
}
