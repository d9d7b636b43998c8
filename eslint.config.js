// Lint: typescript-eslint (recommended + stylistic, type-aware on engine code) with hot-path bans.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const HOT_PATH_BANS = [
  { selector: 'BigIntLiteral', message: 'No BigInt on the hot path (allocates per value).' },
  { selector: 'CallExpression[callee.property.name="forEach"]', message: 'No forEach on the hot path: use a plain loop.' },
  { selector: 'CallExpression > SpreadElement', message: 'No spread in calls on the hot path.' },
];

export default tseslint.config(
  { ignores: ['node_modules/**', 'data/**', 'dist/**', 'schemas/generated/**', 'test-artifacts/**', 'web/vendor/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        console: 'readonly', process: 'readonly', performance: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly',
        setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', URL: 'readonly', TextEncoder: 'readonly',
        TextDecoder: 'readonly', Buffer: 'readonly', SharedArrayBuffer: 'readonly', Atomics: 'readonly', queueMicrotask: 'readonly',
        structuredClone: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', fetch: 'readonly', document: 'readonly',
        window: 'readonly', localStorage: 'readonly', WebSocket: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-constant-condition': ['error', { checkLoops: false }],
      'prefer-const': 'error',
      eqeqeq: ['error', 'always'],
    },
  },
  {
    files: ['engine/ring/**/*.ts', 'workers/**/*decoder*.ts', 'schemas/records.ts'],
    ignores: ['**/*.test.ts', '**/fixtures/**'],
    rules: { 'no-restricted-syntax': ['error', ...HOT_PATH_BANS] },
  },
);
