/**
 * The `portcullis` command line. Each command lives in its own file and registers
 * itself on the program; this file wires them and maps failures to exit codes
 * (64 = usage error, sysexits EX_USAGE, including a command group without its
 * subcommand: `portcullis`, `portcullis ocsp`, … print their help to stderr).
 */
import { Command, CommanderError } from 'commander';
import { registerCertCommands } from './cert-inspect.js';
import { registerOcspCommands } from './ocsp-check.js';
import { registerKvsCommands } from './kvs.js';
import { registerFunctionCommands } from './function.js';
import { registerValidateCommand } from './validate.js';
import { registerServeCommand } from './serve.js';
import { registerDemoCommand } from './demo.js';
import { registerTrustStoreCommands } from './trust-store.js';
import { registerNodesCommands } from './nodes.js';
import { registerDistributionCommands } from './distribution.js';
import { registerApplyCommand } from './apply.js';
import { EXIT_USAGE, CliUsageError } from './common.js';

/** Builds the commander program with every command registered. */
export function buildProgram(): Command {
  const program = new Command();
  program
    .name('portcullis')
    .description('Portcullis: a self-hosted mTLS edge gateway with OCSP revocation checking')
    .version('0.1.0')
    .exitOverride()
    .showHelpAfterError()
    .configureOutput({ outputError: (str, write) => write(str) });
  registerCertCommands(program);
  registerOcspCommands(program);
  registerKvsCommands(program);
  registerFunctionCommands(program);
  registerTrustStoreCommands(program);
  registerDistributionCommands(program);
  registerNodesCommands(program);
  registerApplyCommand(program);
  registerValidateCommand(program);
  registerServeCommand(program);
  registerDemoCommand(program);
  return program;
}

/** Runs the CLI with `argv` (node-style, including the node binary and script). Returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help / `help` / --version exit 0. A command group run without a subcommand
      // (`portcullis`, `portcullis ocsp`) has already printed its help to stderr and
      // reports 'commander.help' with a non-zero exit code: a usage error.
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
      if (err.code === 'commander.help') return err.exitCode === 0 ? 0 : EXIT_USAGE;
      return EXIT_USAGE;
    }
    if (err instanceof CliUsageError) {
      process.stderr.write(`portcullis: ${err.message}\n`);
      return EXIT_USAGE;
    }
    process.stderr.write(`portcullis: ${(err as Error).message}\n`);
    return 1;
  }
}
