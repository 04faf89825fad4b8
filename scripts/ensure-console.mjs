// Builds the web console (console/ → dist/console/) when it is missing or older than
// its sources, so `npm start` / `npm run demo` from a fresh checkout serve /console/
// with no extra step. `npm run build` always builds it.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = join(root, 'dist', 'console', 'index.html');

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

const sources = join(root, 'console');
if (!existsSync(sources)) process.exit(0);
if (existsSync(built) && statSync(built).mtimeMs >= newest(sources)) process.exit(0);
process.stderr.write('building the web console (dist/console)…\n');
const r = spawnSync(process.execPath, [join(root, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--config', join(sources, 'vite.config.ts'), '--logLevel', 'warn'], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  process.stderr.write('the web console could not be built; the gateway still runs and /console/ says how to build it\n');
}
process.exit(0);
