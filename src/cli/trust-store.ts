/**
 * `portcullis trust-store create|get|list|update|delete`: trust stores through the
 * admin API (api-client.ts: `--admin-url`/`--token`, `--config`, or
 * `PORTCULLIS_ADMIN_URL`/`PORTCULLIS_ADMIN_TOKEN`). `--json` prints the API's JSON;
 * the default is a readable summary or table. `update` and `delete` need `--if-match
 * ETAG` (from `trust-store get`). Exit codes: the shared resource table (common.ts).
 */
import type { Command } from 'commander';
import { CliUsageError, readInputFile } from './common.js';
import { apiCommandOptions, requireIfMatchOption, apiIo, out, printJson, rowsText, seg, tableText, withApi, type AdminOptions } from './api-client.js';

/** The API's trust store (fields the CLI shows). */
export interface TrustStoreView {
  Id: string;
  Name: string;
  ETag: string;
  Status: string;
  StatusReason?: string;
  CertificateCount: number;
  UseClientCertificateOcspEndpoint: boolean;
  Comment: string;
  CaBundlePem: string;
  CreatedTime: string;
  LastModifiedTime: string;
}

interface Opts extends AdminOptions {
  json?: boolean;
}

function summary(t: TrustStoreView): string {
  return rowsText([
    ['Name', t.Name], ['Id', t.Id], ['Status', t.Status], ...(t.StatusReason ? [['StatusReason', t.StatusReason] as [string, string]] : []),
    ['Certificates', t.CertificateCount], ['ClientCertificateOcsp', t.UseClientCertificateOcspEndpoint], ['Comment', t.Comment],
    ['ETag', t.ETag], ['Created', t.CreatedTime], ['LastModified', t.LastModifiedTime],
  ]);
}

function show(t: TrustStoreView, json: boolean | undefined): void {
  if (json) printJson(t);
  else out(summary(t));
}

const hint = (name: string): string => `portcullis trust-store get ${name}`;

function requireIfMatch(ifMatch: string | undefined, name: string, verb: string): string {
  return requireIfMatchOption(ifMatch, 'trust-store', name, verb);
}

const common = apiCommandOptions;

/** Registers `portcullis trust-store …`. */
export function registerTrustStoreCommands(program: Command): void {
  const ts = program.command('trust-store').description('trust stores (CA bundles for viewer mTLS) through the admin API');

  common(ts.command('create'))
    .description('create a trust store from a PEM CA bundle')
    .argument('<name>')
    .requiredOption('--ca-bundle <file>', 'PEM bundle of the trusted CA certificates (- for standard input)')
    .option('--ocsp', 'useClientCertificateOcspEndpoint: check revocation with the OCSP responder of each client certificate')
    .option('--comment <text>', 'comment')
    .action(async (name: string, opts: Opts & { caBundle: string; ocsp?: boolean; comment?: string }) => {
      const pem = readInputFile(opts.caBundle, 'CA bundle').toString('utf8');
      await withApi(opts, async (api) => {
        const r = await api.call<TrustStoreView>('POST', '/v1/trust-stores', {
          body: {
            name, caBundlePem: pem, ...(opts.ocsp ? { useClientCertificateOcspEndpoint: true } : {}),
            ...(opts.comment !== undefined ? { comment: opts.comment } : {}),
          },
        });
        show(r.body, opts.json);
        if (r.body.Status === 'failed') apiWarn(`the CA bundle was rejected; the trust store "${name}" exists with status failed: ${r.body.StatusReason ?? ''}`);
      });
    });

  common(ts.command('get'))
    .description('show a trust store (by name or id), including its ETag')
    .argument('<name-or-id>')
    .option('--pem', 'print the CA bundle PEM instead of the summary')
    .action(async (name: string, opts: Opts & { pem?: boolean }) => {
      await withApi(opts, async (api) => {
        const r = await api.call<TrustStoreView>('GET', `/v1/trust-stores/${seg(name)}`);
        if (opts.pem && !opts.json) out(r.body.CaBundlePem);
        else show(r.body, opts.json);
      });
    });

  common(ts.command('list'))
    .description('list trust stores')
    .action(async (opts: Opts) => {
      await withApi(opts, async (api) => {
        const r = await api.call<{ Items: TrustStoreView[]; Quantity: number }>('GET', '/v1/trust-stores');
        if (opts.json) return printJson(r.body);
        if (r.body.Quantity === 0) return out('no trust stores');
        out(tableText(['NAME', 'ID', 'STATUS', 'CERTS', 'OCSP', 'ETAG', 'LAST-MODIFIED'],
          r.body.Items.map((t) => [t.Name, t.Id, t.Status, String(t.CertificateCount), String(t.UseClientCertificateOcspEndpoint), t.ETag, t.LastModifiedTime])));
      });
    });

  common(ts.command('update'))
    .description('replace the CA bundle, the OCSP flag or the comment (needs --if-match)')
    .argument('<name-or-id>')
    .option('--if-match <etag>', 'the current ETag (from `portcullis trust-store get`)')
    .option('--ca-bundle <file>', 'new PEM bundle (- for standard input)')
    .option('--ocsp', 'turn useClientCertificateOcspEndpoint on')
    .option('--no-ocsp', 'turn useClientCertificateOcspEndpoint off')
    .option('--comment <text>', 'new comment')
    .action(async (name: string, opts: Opts & { ifMatch?: string; caBundle?: string; ocsp?: boolean; comment?: string }) => {
      const ifMatch = requireIfMatch(opts.ifMatch, name, 'update');
      if (opts.caBundle === undefined && opts.ocsp === undefined && opts.comment === undefined) {
        throw new CliUsageError('trust-store update needs at least one of --ca-bundle, --ocsp/--no-ocsp, --comment');
      }
      const pem = opts.caBundle === undefined ? undefined : readInputFile(opts.caBundle, 'CA bundle').toString('utf8');
      await withApi(opts, async (api) => {
        const r = await api.call<TrustStoreView>('PUT', `/v1/trust-stores/${seg(name)}`, {
          ifMatch,
          body: {
            ...(pem !== undefined ? { caBundlePem: pem } : {}), ...(opts.ocsp !== undefined ? { useClientCertificateOcspEndpoint: opts.ocsp } : {}),
            ...(opts.comment !== undefined ? { comment: opts.comment } : {}),
          },
        });
        show(r.body, opts.json);
      }, hint(name));
    });

  common(ts.command('delete'))
    .description('delete a trust store (refused while a distribution uses it; needs --if-match)')
    .argument('<name-or-id>')
    .option('--if-match <etag>', 'the current ETag (from `portcullis trust-store get`)')
    .action(async (name: string, opts: Opts & { ifMatch?: string }) => {
      const ifMatch = requireIfMatch(opts.ifMatch, name, 'delete');
      await withApi(opts, async (api) => {
        await api.call('DELETE', `/v1/trust-stores/${seg(name)}`, { ifMatch });
        if (opts.json) printJson({ Deleted: name });
        else out(`deleted trust store ${name}`);
      }, hint(name));
    });
}

function apiWarn(text: string): void {
  apiIo.stderr(`portcullis: warning: ${text}\n`);
}
