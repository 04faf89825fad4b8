// Lint configuration: typescript-eslint recommended rules plus the project's
// architecture rule (no imports into another domain folder's internals).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // examples/functions/ holds connection functions for the QuickJS sandbox (CloudFront
  // cloudfront-js-2.0 globals, top-level connectionHandler): not Node code, kept verbatim.
  { ignores: ['dist/', 'node_modules/', 'bench/results/', 'test-results/', 'scratch/', 'examples/functions/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    // One entry file per domain folder: other folders import `../pki/index.js`, never
    // `../pki/dn.js`. Tests and the folder itself may reach inside.
    files: ['src/**/*.ts'],
    ignores: ['src/**/*.test.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{
          regex: '^\\.\\./(?:\\.\\./)*(pki|revocation|kvs|functions|edge|store|admin|cli|config)/(?!index\\.js$).+',
          message: 'Import another domain only through its entry file (index.js).',
        }],
      }],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
  },
);
