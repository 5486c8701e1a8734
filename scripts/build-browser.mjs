// The browser bundle (phi-wasm/browser): dist/src/index.js and the Web Worker bundled by
// esbuild into build/browser/, with the .wasm files and XGrammar (xgrammar.mjs) copied beside them. assets.js is swapped
// for assets.browser.js, which finds those files relative to the bundle, so the package works
// from any subpath or a CDN, and bundlers that follow `new URL('...', import.meta.url)` copy them.
import { build } from 'esbuild';
import { copyFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'build', 'browser');
const browserAssets = {
  name: 'browser-assets',
  setup(b) {
    b.onResolve({ filter: /^\.\/assets\.js$/ }, (args) => ({
      path: path.join(args.resolveDir, 'assets.browser.js'),
    }));
    // XGrammar's module is imported from beside the bundle when a grammar is first needed
    b.onResolve({ filter: /^\.\/source\.js$/ }, (args) =>
      args.resolveDir.endsWith(`${path.sep}grammar`)
        ? { path: path.join(args.resolveDir, 'source.browser.js') }
        : undefined,
    );
  },
};
await build({
  entryPoints: ['dist/src/index.js', 'dist/src/kernels/wasm/worker.js'].map((f) =>
    path.join(root, f),
  ),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  outdir: out,
  entryNames: '[name]',
  logLevel: 'warning',
  plugins: [browserAssets],
});
for (const f of readdirSync(path.join(root, 'build')).filter((f) => f.endsWith('.wasm')))
  copyFileSync(path.join(root, 'build', f), path.join(out, f));
copyFileSync(path.join(root, 'build', 'xgrammar.mjs'), path.join(out, 'xgrammar.mjs'));
