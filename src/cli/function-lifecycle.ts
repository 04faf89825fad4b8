/**
 * `portcullis function create|update|publish|describe|get-code|list|delete`: the
 * connection-function lifecycle on the local store (`--data-dir`, like `kvs`), or
 * through the admin API when one is configured and `--data-dir` is not given
 * (`--admin-url`/`--token`, `--config`, or `$PORTCULLIS_ADMIN_URL`/`$PORTCULLIS_ADMIN_TOKEN`;
 * api-backends.ts). Same output either way.
 *
 * Exit codes ({@link FUNCTION_LIFECYCLE_EXIT}): 0 done; 2 not found (function, LIVE
 * stage before the first publish, associated KVS); 3 conflict (stale ETag, name taken,
 * function in use by a distribution); 4 code over the size limit; 64 usage (bad
 * arguments, invalid name, missing If-Match, code that does not compile — the message
 * gives line and column); 69 store unavailable; 1 anything else.
 */
import type { Command } from 'commander';
import { FunctionService, FUNCTION_RUNTIME, type FunctionSummary } from '../functions/index.js';
import type { FunctionStage } from '../store/index.js';
import { CliUsageError, RESOURCE_EXIT, readInputFile, resourceExitCode, withLocalStore } from './common.js';
import { localOrApiCommandOptions, withApi, type AdminOptions } from './api-client.js';
import { backendOf, functionsOverApi, type FunctionBackend } from './api-backends.js';

/** Exit codes of the lifecycle commands (the shared resource table; `tooLarge` = `limit`). */
export const FUNCTION_LIFECYCLE_EXIT = { ...RESOURCE_EXIT, tooLarge: RESOURCE_EXIT.limit } as const;

/** Output sinks of the lifecycle commands (tests replace them). */
export const functionLifecycleIo = {
  stdout: (text: string): void => { process.stdout.write(text); },
  stderr: (text: string): void => { process.stderr.write(text); },
};

/** Maps an error code of the catalogue to an exit code of {@link FUNCTION_LIFECYCLE_EXIT}. */
export const functionLifecycleExitCode = resourceExitCode;

interface CommonOptions extends AdminOptions {
  /** Undefined when not given: then the admin API if configured, else $PORTCULLIS_DATA_DIR or ./data. */
  dataDir?: string;
  json?: boolean;
}

function out(text: string): void {
  functionLifecycleIo.stdout(text.endsWith('\n') ? text : `${text}\n`);
}

function summaryText(s: FunctionSummary): string {
  const kvs = s.FunctionConfig.KeyValueStoreAssociations.Items[0];
  const rows: [string, string][] = [
    ['Name', s.Name], ['Id', s.Id], ['Stage', s.Stage], ['Status', s.Status], ['ETag', s.ETag],
    ['Runtime', s.FunctionConfig.Runtime], ['Comment', s.FunctionConfig.Comment],
    ['KeyValueStore', kvs ? kvs.KeyValueStoreName : '-'],
    ['Created', s.CreatedTime], ['LastModified', s.LastModifiedTime],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}

function print(s: FunctionSummary, json: boolean | undefined): void {
  out(json ? JSON.stringify({ FunctionSummary: s }, null, 2) : summaryText(s));
}

function stageOption(value: string | undefined): FunctionStage {
  const v = (value ?? 'DEVELOPMENT').toUpperCase();
  if (v !== 'DEVELOPMENT' && v !== 'LIVE') throw new CliUsageError(`--stage must be DEVELOPMENT or LIVE, got "${value ?? ''}"`);
  return v;
}

async function withFunctions(opts: CommonOptions, fn: (svc: FunctionBackend) => Promise<void>): Promise<void> {
  if (backendOf(opts) === 'api') {
    await withApi(opts, (api) => fn(functionsOverApi(api)), undefined, (t) => functionLifecycleIo.stderr(t));
    return;
  }
  await withLocalStore(opts.dataDir ?? (process.env.PORTCULLIS_DATA_DIR || './data'), (t) => functionLifecycleIo.stderr(t), (store) => fn(new FunctionService(store)));
}

async function ifMatchOrCurrent(svc: FunctionBackend, name: string, ifMatch: string | undefined): Promise<string> {
  return ifMatch ?? (await svc.describe(name, 'DEVELOPMENT')).ETag;
}

const common = localOrApiCommandOptions;

function withIfMatch(cmd: Command): Command {
  return cmd.option('--if-match <etag>', 'the DEVELOPMENT ETag this write is based on (default: read the current one first)');
}

function readCode(file: string): string {
  return readInputFile(file, 'function').toString('utf8');
}

/** Registers the lifecycle subcommands on the `function` command. */
export function registerFunctionLifecycleCommands(fn: Command): void {
  common(fn.command('create'))
    .description('create a connection function (DEVELOPMENT stage, status UNPUBLISHED)')
    .argument('<name>')
    .requiredOption('--code <file>', 'the function code (.js), or - for standard input')
    .option('--comment <text>', 'comment (at most 128 characters)')
    .option('--kvs <name>', 'associate this key value store (must exist)')
    .option('--runtime <runtime>', 'runtime', FUNCTION_RUNTIME)
    .action(async (name: string, opts: CommonOptions & { code: string; comment?: string; kvs?: string; runtime: string }) => {
      const code = readCode(opts.code);
      await withFunctions(opts, async (svc) => {
        print(await svc.create(name, {
          code, runtime: opts.runtime as typeof FUNCTION_RUNTIME,
          ...(opts.comment === undefined ? {} : { comment: opts.comment }), ...(opts.kvs === undefined ? {} : { keyValueStore: opts.kvs }),
        }), opts.json);
      });
    });

  withIfMatch(common(fn.command('update')))
    .description('update the DEVELOPMENT stage (LIVE is unchanged until publish)')
    .argument('<name>')
    .option('--code <file>', 'new code (.js), or - for standard input')
    .option('--comment <text>', 'new comment')
    .option('--kvs <name>', 'associate this key value store instead')
    .option('--remove-kvs', 'remove the key value store association')
    .action(async (name: string, opts: CommonOptions & { ifMatch?: string; code?: string; comment?: string; kvs?: string; removeKvs?: boolean }) => {
      if (opts.kvs !== undefined && opts.removeKvs) throw new CliUsageError('--kvs and --remove-kvs exclude each other');
      const code = opts.code === undefined ? undefined : readCode(opts.code);
      await withFunctions(opts, async (svc) => {
        const ifMatch = await ifMatchOrCurrent(svc, name, opts.ifMatch);
        print(await svc.update(name, ifMatch, {
          ...(code === undefined ? {} : { code }), ...(opts.comment === undefined ? {} : { comment: opts.comment }),
          ...(opts.kvs !== undefined ? { keyValueStore: opts.kvs } : opts.removeKvs ? { keyValueStore: null } : {}),
        }), opts.json);
      });
    });

  withIfMatch(common(fn.command('publish')))
    .description('copy DEVELOPMENT to LIVE (running registries pick it up without a restart)')
    .argument('<name>')
    .action(async (name: string, opts: CommonOptions & { ifMatch?: string }) => {
      await withFunctions(opts, async (svc) => {
        print(await svc.publish(name, await ifMatchOrCurrent(svc, name, opts.ifMatch)), opts.json);
      });
    });

  common(fn.command('describe'))
    .description('describe one stage of a function')
    .argument('<name>')
    .option('--stage <stage>', 'DEVELOPMENT or LIVE', 'DEVELOPMENT')
    .action(async (name: string, opts: CommonOptions & { stage?: string }) => {
      const stage = stageOption(opts.stage);
      await withFunctions(opts, async (svc) => { print(await svc.describe(name, stage), opts.json); });
    });

  common(fn.command('get-code'))
    .description('print the code of one stage')
    .argument('<name>')
    .option('--stage <stage>', 'DEVELOPMENT or LIVE', 'DEVELOPMENT')
    .action(async (name: string, opts: CommonOptions & { stage?: string }) => {
      const stage = stageOption(opts.stage);
      await withFunctions(opts, async (svc) => {
        const c = await svc.getCode(name, stage);
        out(opts.json ? JSON.stringify(c, null, 2) : c.code);
      });
    });

  common(fn.command('list'))
    .description('every function (one line per function for the stage)')
    .option('--stage <stage>', 'DEVELOPMENT or LIVE', 'DEVELOPMENT')
    .action(async (opts: CommonOptions & { stage?: string }) => {
      const stage = stageOption(opts.stage);
      await withFunctions(opts, async (svc) => {
        const items = await svc.list(stage);
        if (opts.json) out(JSON.stringify({ FunctionList: { Quantity: items.length, Items: items } }, null, 2));
        else for (const s of items) out(`${s.Name}\t${s.Status}\t${s.ETag}\t${s.LastModifiedTime}`);
      });
    });

  withIfMatch(common(fn.command('delete')))
    .description('delete a function (both stages); refused while a distribution uses it')
    .argument('<name>')
    .action(async (name: string, opts: CommonOptions & { ifMatch?: string }) => {
      await withFunctions(opts, async (svc) => {
        await svc.delete(name, await ifMatchOrCurrent(svc, name, opts.ifMatch));
        if (opts.json) out('{}');
        else out(`deleted ${name}`);
      });
    });
}
