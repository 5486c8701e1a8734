// The browser bundle (phi-wasm/browser): dist/src/index.js and the Web Worker bundled by
// esbuild into build/browser/, with the .wasm files and XGrammar (xgrammar.mjs) copied beside
// them. A module with a browser twin beside it (assets.js and assets.browser.js, source.js and
// source.browser.js) is swapped for the twin, which finds those files relative to the bundle,
// so the package works from any subpath or a CDN, and bundlers that follow
// `new URL('...', import.meta.url)` copy them.
import { build } from 'esbuild';
import { copyFileSync, existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'build', 'browser');
const browserTwins = {
  name: 'browser-twins',
  setup(b) {
    b.onResolve({ filter: /^\.\.?\/.*\.js$/ }, (args) => {
      const twin = path.resolve(args.resolveDir, args.path).replace(/\.js$/, '.browser.js');
      return existsSync(twin) ? { path: twin } : undefined;
    });
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
  plugins: [browserTwins],
});
for (const f of readdirSync(path.join(root, 'build')).filter((f) => f.endsWith('.wasm')))
  copyFileSync(path.join(root, 'build', f), path.join(out, f));
copyFileSync(path.join(root, 'build', 'xgrammar.mjs'), path.join(out, 'xgrammar.mjs'));
