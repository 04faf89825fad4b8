/**
 * `portcullis distribution create|get|list|update|delete`: distributions through the
 * admin API (api-client.ts for where the API is). `create` and `update` take `--file
 * FILE` (YAML, or JSON by extension): one distribution as written under the config's
 * `resources.distributions[]` (`listen`, `aliases`, `certificates`, `origin`,
 * `viewerMtls`, `connectionFunction`, `forwardCertificateHeaders`, `limits`,
 * `comment`; `name` optional — it must match NAME when given), validated by the config
 * loader with relative paths resolved against FILE's directory. `update` replaces the
 * whole document and needs `--if-match ETAG` (from `distribution get`), as does
 * `delete`. `--json` prints the API's JSON. Exit codes: the shared resource table.
 */
import type { Command } from 'commander';
import { distributionDocumentFromConfig } from '../config/index.js';
import { CliUsageError } from './common.js';
import { apiCommandOptions, requireIfMatchOption, out, printJson, rowsText, seg, tableText, withApi, type AdminOptions } from './api-client.js';
import { readDocumentFile, resourcesFromTree } from './apply.js';

/** The API's distribution. */
export interface DistributionView {
  Id: string;
  Name: string;
  ETag: string;
  CreatedTime: string;
  LastModifiedTime: string;
  DistributionConfig: {
    listen: string;
    aliases: string[];
    origin: { url: string };
    viewerMtls: { mode: string; trustStore?: string | null };
    connectionFunctionAssociation: { name: string } | null;
    comment?: string;
  } & Record<string, unknown>;
}

interface Opts extends AdminOptions {
  json?: boolean;
}

/**
 * Reads a distribution file for `name` and returns the API body (`name` and the
 * document, defaults filled in). @throws CliUsageError naming the file and every problem.
 */
export function distributionBodyFromFile(file: string, name: string): Record<string, unknown> {
  const tree = readDocumentFile(file, 'distribution file');
  if (tree === null || typeof tree !== 'object' || Array.isArray(tree)) {
    throw new CliUsageError(`distribution file ${file}: expected a map of distribution fields (listen, aliases, certificates, origin, viewerMtls, …)`);
  }
  const given = (tree as Record<string, unknown>).name;
  if (given !== undefined && given !== name) {
    throw new CliUsageError(`distribution file ${file}: name ${JSON.stringify(given)} differs from the NAME argument "${name}"`);
  }
  const resources = resourcesFromTree(file, { distributions: [{ ...(tree as Record<string, unknown>), name }] }, 'distributions[0]');
  return { name, ...distributionDocumentFromConfig(resources.distributions[0]!) };
}

function summary(d: DistributionView): string {
  const c = d.DistributionConfig;
  return rowsText([
    ['Name', d.Name], ['Id', d.Id], ['ETag', d.ETag], ['Listen', c.listen], ['Aliases', c.aliases.join(', ') || '-'],
    ['Origin', c.origin.url], ['ViewerMtls', `${c.viewerMtls.mode}${c.viewerMtls.trustStore ? ` (trust store ${c.viewerMtls.trustStore})` : ''}`],
    ['ConnectionFunction', c.connectionFunctionAssociation?.name ?? '-'], ['Comment', c.comment ?? ''],
    ['Created', d.CreatedTime], ['LastModified', d.LastModifiedTime],
  ]);
}

function show(d: DistributionView, json: boolean | undefined): void {
  if (json) printJson(d);
  else out(summary(d));
}

const hint = (name: string): string => `portcullis distribution get ${name}`;

function requireIfMatch(ifMatch: string | undefined, name: string, verb: string): string {
  return requireIfMatchOption(ifMatch, 'distribution', name, verb);
}

const common = apiCommandOptions;

/** Registers `portcullis distribution …`. */
export function registerDistributionCommands(program: Command): void {
  const dist = program.command('distribution').description('distributions (listeners, aliases, origin, viewer mTLS) through the admin API');

  common(dist.command('create'))
    .description('create a distribution from a YAML/JSON file of distribution fields')
    .argument('<name>')
    .requiredOption('--file <file>', 'the distribution fields, as under resources.distributions[] in the config (YAML, or JSON by extension)')
    .action(async (name: string, opts: Opts & { file: string }) => {
      const body = distributionBodyFromFile(opts.file, name);
      await withApi(opts, async (api) => {
        show((await api.call<DistributionView>('POST', '/v1/distributions', { body })).body, opts.json);
      });
    });

  common(dist.command('get'))
    .description('show a distribution (by name or id), including its ETag')
    .argument('<name-or-id>')
    .action(async (name: string, opts: Opts) => {
      await withApi(opts, async (api) => {
        show((await api.call<DistributionView>('GET', `/v1/distributions/${seg(name)}`)).body, opts.json);
      });
    });

  common(dist.command('list'))
    .description('list distributions')
    .action(async (opts: Opts) => {
      await withApi(opts, async (api) => {
        const r = await api.call<{ Items: DistributionView[]; Quantity: number }>('GET', '/v1/distributions');
        if (opts.json) return printJson(r.body);
        if (r.body.Quantity === 0) return out('no distributions');
        out(tableText(['NAME', 'ID', 'LISTEN', 'ALIASES', 'MTLS', 'FUNCTION', 'ETAG'], r.body.Items.map((d) => {
          const c = d.DistributionConfig;
          return [d.Name, d.Id, c.listen, c.aliases.join(',') || '-', c.viewerMtls.mode, c.connectionFunctionAssociation?.name ?? '-', d.ETag];
        })));
      });
    });

  common(dist.command('update'))
    .description('replace a distribution\'s document with the file\'s (needs --if-match)')
    .argument('<name-or-id>')
    .requiredOption('--file <file>', 'the distribution fields (YAML, or JSON by extension)')
    .option('--if-match <etag>', 'the current ETag (from `portcullis distribution get`)')
    .action(async (name: string, opts: Opts & { file: string; ifMatch?: string }) => {
      const ifMatch = requireIfMatch(opts.ifMatch, name, 'update');
      await withApi(opts, async (api) => {
        // The file is validated under the distribution's name (NAME may be an id).
        const current = await api.call<DistributionView>('GET', `/v1/distributions/${seg(name)}`);
        const body = distributionBodyFromFile(opts.file, current.body.Name);
        show((await api.call<DistributionView>('PUT', `/v1/distributions/${seg(current.body.Id)}`, { ifMatch, body })).body, opts.json);
      }, hint(name));
    });

  common(dist.command('delete'))
    .description('delete a distribution (needs --if-match)')
    .argument('<name-or-id>')
    .option('--if-match <etag>', 'the current ETag (from `portcullis distribution get`)')
    .action(async (name: string, opts: Opts & { ifMatch?: string }) => {
      const ifMatch = requireIfMatch(opts.ifMatch, name, 'delete');
      await withApi(opts, async (api) => {
        await api.call('DELETE', `/v1/distributions/${seg(name)}`, { ifMatch });
        if (opts.json) printJson({ Deleted: name });
        else out(`deleted distribution ${name}`);
      }, hint(name));
    });
}
