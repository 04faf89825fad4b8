/**
 * `portcullis serve [--config FILE]`: runs the gateway (gateway/ `serve`). Without
 * `--config` it runs on the embedded defaults (no distributions; admin on
 * 127.0.0.1:9901; data in ./data). `serve --demo [--demo-dir DIR] [--port] [--admin-port]`
 * is an alias of `portcullis demo` (cli/demo.ts). Runs until SIGINT/SIGTERM, then stops
 * gracefully.
 */
import cluster from 'node:cluster';
import type { Command } from 'commander';
import { serve, type RunningServe } from '../gateway/index.js';
import { CliUsageError, parseIntegerOption } from './common.js';
import { runDemo } from './demo.js';

/** Registers `serve` on the program. */
export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run the gateway: listeners, gate, proxy, admin listener (health, readiness, metrics)')
    .option('--config <file>', 'node config file (YAML, or JSON by extension); default: the embedded defaults')
    .option('--demo', 'the same as `portcullis demo`: PKI + openssl ocsp responders + echo origin + gateway (needs openssl)')
    .option('--demo-dir <dir>', 'with --demo: keep the demo files in this directory (`demo --dir`)')
    .option('--port <port>', 'with --demo: gateway port on 127.0.0.1', '8443')
    .option('--admin-port <port>', 'with --demo: admin port on 127.0.0.1', '9901')
    .action(async (opts: { config?: string; demo?: boolean; demoDir?: string; port: string; adminPort: string }) => {
      if (opts.demo && !cluster.isWorker) {
        if (opts.config) throw new CliUsageError('--demo writes its own config; do not combine it with --config');
        const port = parseIntegerOption(opts.port, '--port', { min: 1, max: 65535, unit: 'TCP port' });
        const adminPort = parseIntegerOption(opts.adminPort, '--admin-port', { min: 1, max: 65535, unit: 'TCP port' });
        await runDemo({ port, adminPort, ...(opts.demoDir ? { dir: opts.demoDir } : {}) });
        return;
      }
      if (opts.demoDir && !cluster.isWorker) throw new CliUsageError('--demo-dir needs --demo');
      const running: RunningServe | undefined = await serve({ ...(opts.config ? { configFile: opts.config } : {}) });
      // A cluster worker runs until the primary stops it (it exits itself then): never
      // return to the CLI entry, which would exit the process.
      if (!running) return new Promise<never>(() => {});
      const r = running;
      await new Promise<void>((resolve) => {
        const stop = (signal: string): void => {
          r.logger.info(`${signal}: stopping`);
          r.close().catch((err: unknown) => r.logger.error({ err }, 'error while stopping')).finally(resolve);
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
    });
}
