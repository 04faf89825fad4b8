#!/usr/bin/env node
// postbuild: makes every `bin` entry of package.json executable (adds the x bits wherever
// an r bit is set, like `chmod +x` under a 022 umask), so `./dist/cli/bin.js` runs
// straight after `npm run build`. tsc keeps the `#!/usr/bin/env node` line but writes
// files with mode 0644. Portable: plain node, no shell; on Windows, where fs.chmod only
// toggles the read-only flag, it changes nothing (npm makes .cmd shims there instead).
// Usage: node scripts/chmod-bin.mjs [FILE…]   (default: the bin entries of package.json)
import { chmodSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

let files = process.argv.slice(2);
if (files.length === 0) {
  const { bin } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  files = typeof bin === 'string' ? [bin] : Object.values(bin ?? {});
  files = files.map((f) => fileURLToPath(new URL(`../${f}`, import.meta.url)));
}
let failed = false;
for (const file of files) {
  try {
    const mode = statSync(file).mode & 0o7777;
    chmodSync(file, mode | ((mode & 0o444) >> 2));
  } catch (err) {
    console.error(`chmod-bin: ${file}: ${err.message}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
