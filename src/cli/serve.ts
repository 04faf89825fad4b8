/**
 * `portcullis serve [--config FILE] [--demo]`: runs the gateway (gateway/ `serve`).
 * Without `--config` it runs on the embedded defaults (no distributions; admin on
 * 127.0.0.1:9901; data in ./data). `--demo` makes a throwaway PKI with real
 * `openssl ocsp` responders, an echo origin and a config, then serves that and prints a
 * curl command per demo client. Runs until SIGINT/SIGTERM, then stops gracefully.
 */
import cluster from 'node:cluster';
import type { Command } from 'commander';
import { demoInstructions, prepareDemo, serve, type DemoEnvironment, type RunningServe } from '../gateway/index.js';
import { CliUsageError, parseIntegerOption } from './common.js';

/** Registers `serve` on the program. */
export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run the gateway: listeners, gate, proxy, admin listener (health, readiness, metrics)')
    .option('--config <file>', 'node config file (YAML, or JSON by extension); default: the embedded defaults')
    .option('--demo', 'serve a throwaway demo: PKI + openssl ocsp responders + echo origin + config (needs openssl)')
    .option('--demo-dir <dir>', 'with --demo: keep the demo files in this directory instead of a temporary one')
    .option('--port <port>', 'with --demo: gateway port on 127.0.0.1', '8443')
    .option('--admin-port <port>', 'with --demo: admin port on 127.0.0.1', '9901')
    .action(async (opts: { config?: string; demo?: boolean; demoDir?: string; port: string; adminPort: string }) => {
      let demo: DemoEnvironment | undefined;
      let configFile = opts.config;
      if (opts.demo && !cluster.isWorker) {
        if (opts.config) throw new CliUsageError('--demo writes its own config; do not combine it with --config');
        const port = parseIntegerOption(opts.port, '--port', { min: 1, max: 65535, unit: 'TCP port' });
        const adminPort = parseIntegerOption(opts.adminPort, '--admin-port', { min: 1, max: 65535, unit: 'TCP port' });
        process.stderr.write('demo: creating a throwaway PKI, starting two `openssl ocsp` responders and an echo origin…\n');
        demo = await prepareDemo({ port, adminPort, ...(opts.demoDir ? { dir: opts.demoDir } : {}) });
        configFile = demo.configFile;
      } else if (opts.demoDir || opts.demo) {
        if (!cluster.isWorker) throw new CliUsageError('--demo-dir needs --demo');
      }
      let running: RunningServe | undefined;
      try {
        running = await serve({ ...(configFile ? { configFile } : {}) });
      } catch (err) {
        await demo?.close();
        throw err;
      }
      // A cluster worker runs until the primary stops it (it exits itself then): never
      // return to the CLI entry, which would exit the process.
      if (!running) return new Promise<never>(() => {});
      if (demo) process.stderr.write(demoInstructions(demo));
      const r = running;
      await new Promise<void>((resolve) => {
        const stop = (signal: string): void => {
          r.logger.info(`${signal}: stopping`);
          r.close().then(() => demo?.close()).catch((err: unknown) => r.logger.error({ err }, 'error while stopping')).finally(resolve);
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
    });
}
