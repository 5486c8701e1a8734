import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['dist/', 'build/', 'node_modules/', 'weights/', 'bench/results/', 'assembly/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node, ...globals.browser } },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // AssemblyScript (linted by scripts/assembly-style.mjs): `// @ts-ignore: decorator` marks
    // each @inline for editors that read it as TypeScript
    files: ['assembly/**'],
    rules: {
      '@typescript-eslint/ban-ts-comment': ['error', { 'ts-ignore': 'allow-with-description' }],
    },
  },
  {
    files: ['test/runtimes/**', 'demo/**', 'docs/**', 'scripts/**', 'test/package/**'],
    languageOptions: { globals: { Deno: 'readonly', Bun: 'readonly' } },
  },
);
