// Builds the web console (console/src) into dist/console, served by the admin
// listener at /console/ (src/admin/console.ts). JSX is Preact's (tsconfig
// jsxImportSource, which Vite's esbuild transform follows).
import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: '/console/',
  publicDir: false,
  build: {
    outDir: fileURLToPath(new URL('../dist/console', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    chunkSizeWarningLimit: 900,
  },
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
});
