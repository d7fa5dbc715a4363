// ESLint (flat config): the TypeScript lint of `npm run lint:ts`, run by
// `npm test` and by CI's lint job. Covers the TypeScript API (src/), the
// suites (test/) and the Node scripts written for this repository.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

const node = { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly', setTimeout: 'readonly' }

export default tseslint.config(
  { ignores: ['dist/', 'docs/', 'node_modules/', 'target/', 'npm/', 'index.js', 'index.d.ts'] },
  {
    files: ['src/**/*.ts', 'test/**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommended],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
    },
  },
  {
    files: ['eslint.config.mjs', 'scripts/*.mjs', 'bench/compare.mjs'],
    extends: [js.configs.recommended],
    languageOptions: { globals: node },
  },
  {
    files: ['scripts/*.cjs'],
    extends: [js.configs.recommended],
    languageOptions: { sourceType: 'commonjs', globals: { ...node, require: 'readonly', module: 'writable', __dirname: 'readonly' } },
  },
)
