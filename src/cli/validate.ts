/**
 * `portcullis validate --config FILE [--json]`: runs the checks start-up runs on a node
 * config file (config/ `validateConfig`) and reports every problem with its key path.
 * Changes nothing (the local store, when it exists, is only read).
 *
 * Exit codes (sysexits): 0 valid; 65 (EX_DATAERR) invalid; 66 (EX_NOINPUT) the config
 * file does not exist or cannot be read; 64 (EX_USAGE) bad arguments.
 */
import type { Command } from 'commander';
import { validateConfig } from '../config/index.js';
import { CliUsageError } from './common.js';

/** Exit codes of `portcullis validate`. */
export const VALIDATE_EXIT = { valid: 0, invalid: 65, missingFile: 66, usage: 64 } as const;

/** Where `validate` writes; tests replace these to capture output in-process. */
export const validateIo = {
  stdout(text: string): void {
    process.stdout.write(text);
  },
  stderr(text: string): void {
    process.stderr.write(text);
  },
};

/** Registers `validate` on the program. */
export function registerValidateCommand(program: Command): void {
  program
    .command('validate')
    .description('check a node config file as start-up would (files, certificates, bundles, code, references)')
    .requiredOption('--config <file>', 'the node config file (YAML, or JSON by extension)')
    .option('--json', 'print {"valid", "file", "problems":[{"path","message"}]} as JSON')
    .action(async (opts: { config: string; json?: boolean }) => {
      if (opts.config.trim() === '') throw new CliUsageError('--config must not be empty');
      const result = await validateConfig(opts.config, process.env, {
        // Not a config problem: the names were checked against the config alone.
        onStoreUnavailable: (message) => validateIo.stderr(`portcullis: warning: ${message}\n`),
      });
      const code = result.missingFile ? VALIDATE_EXIT.missingFile : result.problems.length > 0 ? VALIDATE_EXIT.invalid : VALIDATE_EXIT.valid;
      if (opts.json) {
        validateIo.stdout(`${JSON.stringify({ valid: code === 0, file: result.config?.file ?? opts.config, problems: result.problems }, null, 2)}\n`);
      } else if (code === 0) {
        const r = result.config!.resources;
        validateIo.stdout(`${result.config!.file}: valid (${r.trustStores.length} trust stores, ${r.keyValueStores.length} key value stores, `
          + `${r.connectionFunctions.length} connection functions, ${r.distributions.length} distributions)\n`);
      } else {
        const n = result.problems.length;
        validateIo.stderr(`portcullis: ${result.config?.file ?? opts.config}: ${n} problem${n === 1 ? '' : 's'}\n`
          + result.problems.map((p) => `  ${p.path ? `${p.path}: ` : ''}${p.message}\n`).join(''));
      }
      if (code !== 0) process.exitCode = code;
    });
}
