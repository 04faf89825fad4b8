/**
 * `portcullis demo [--dir DIR] [--port 8443] [--admin-port 9901]` (also `npm run demo`,
 * `npm start` and `portcullis serve --demo`): makes the demo directory (gateway/
 * `prepareDemo`: PKI, `openssl ocsp` responders, echo origin, config), serves it, and
 * prints per client the curl command and the outcome to expect, and the command that
 * revokes a certificate live. Runs until SIGINT/SIGTERM, then stops the gateway, the
 * responders and the origin (and removes the directory unless `--dir` was given).
 */
import cluster from 'node:cluster';
import { existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { demoInstructions, prepareDemo, serve, type DemoEnvironment, type RunningServe } from '../gateway/index.js';
import { parseIntegerOption } from './common.js';

/** Options of {@link runDemo}. */
export interface RunDemoOptions {
  dir?: string;
  port: number;
  adminPort: number;
}

/**
 * The shell prefix that runs this CLI again, for the printed commands: `npx tsx
 * src/cli/bin.ts` from the checkout's root, the checkout's tsx with absolute paths from
 * elsewhere, `node <script>` for the built CLI.
 */
export function selfCommand(script = process.argv[1] ?? 'portcullis', cwd = process.cwd()): string {
  const q = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`);
  if (!script.endsWith('.ts')) return `node ${q(script)}`;
  const repo = resolve(dirname(script), '..', '..');
  if (resolve(cwd) === repo) return `npx tsx ${q(relative(repo, script))}`;
  const tsx = join(repo, 'node_modules', '.bin', 'tsx');
  return existsSync(tsx) ? `${q(tsx)} ${q(script)}` : `npx tsx ${q(script)}`;
}

/** Runs the demo until SIGINT/SIGTERM. */
export async function runDemo(opts: RunDemoOptions): Promise<void> {
  if (cluster.isWorker) {
    // The demo runs one process (workers: 1); should a worker ever start, it serves the
    // config the primary handed it and never makes a PKI of its own.
    await serve({});
    return new Promise<never>(() => {});
  }
  // Signals that arrive while the demo starts are honoured once it is up (or failed).
  let signalled: string | undefined;
  let onSignal: ((signal: string) => void) | undefined;
  const handler = (signal: string): void => {
    if (signalled) {
      // A second Ctrl-C: stop now (the exit handler kills the responders).
      process.stderr.write(`demo: ${signal} again: exiting without waiting\n`);
      process.exit(130);
    }
    signalled = signal;
    onSignal?.(signal);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  let demo: DemoEnvironment | undefined;
  const killNow = (): void => demo?.killNow();
  process.on('exit', killNow);
  try {
    process.stderr.write('demo: creating a throwaway PKI, starting two `openssl ocsp` responders and an echo origin…\n');
    demo = await prepareDemo({ port: opts.port, adminPort: opts.adminPort, ...(opts.dir ? { dir: opts.dir } : {}) });
    let running: RunningServe | undefined;
    if (!signalled) {
      try {
        running = await serve({ configFile: demo.configFile });
      } catch (err) {
        await demo.close();
        throw err;
      }
    }
    if (running && !signalled) process.stdout.write(demoInstructions(demo, selfCommand()));
    const r = running;
    const d = demo;
    await new Promise<void>((done) => {
      const stop = (signal: string): void => {
        if (r) r.logger.info(`${signal}: stopping the demo`);
        else process.stderr.write(`demo: ${signal}: stopping\n`);
        (r ? r.close() : Promise.resolve())
          .then(() => d.close())
          .catch((err: unknown) => process.stderr.write(`demo: error while stopping: ${(err as Error).message}\n`))
          .finally(done);
      };
      if (signalled) stop(signalled);
      else onSignal = stop;
    });
  } finally {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  }
}

/** Registers `demo` on the program. */
export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('run a throwaway demo: PKI, openssl ocsp responders, echo origin and the gateway; prints a curl command per client (needs openssl)')
    .option('--dir <dir>', 'keep the demo files in this directory (new, empty, or an earlier demo\'s) instead of a temporary one')
    .option('--port <port>', 'gateway port on 127.0.0.1', '8443')
    .option('--admin-port <port>', 'admin port on 127.0.0.1', '9901')
    .action(async (opts: { dir?: string; port: string; adminPort: string }) => {
      const port = parseIntegerOption(opts.port, '--port', { min: 1, max: 65535, unit: 'TCP port' });
      const adminPort = parseIntegerOption(opts.adminPort, '--admin-port', { min: 1, max: 65535, unit: 'TCP port' });
      await runDemo({ port, adminPort, ...(opts.dir ? { dir: opts.dir } : {}) });
    });
}
