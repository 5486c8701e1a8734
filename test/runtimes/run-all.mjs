// Runs test/runtimes/e2e.mjs under every runtime: this Node, Node 24 (relaxed SIMD), Deno and
// Bun, each installed from npm into test/runtimes/node_modules, and browser.html in headless
// Chromium (Debian's chromium package) through playwright-core (npm run test:runtimes); then
// the kernel twin tests under Node 24, where the relaxed int8 dot product is the path taken,
// the server's handler under Deno and Bun, and the published package in a fresh project.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const bin = (name) => path.join(here, 'node_modules', '.bin', name);
const e2e = path.join(here, 'e2e.mjs');
const chromium = process.env.CHROMIUM ?? '/usr/bin/chromium';
const jest = path.join(root, 'node_modules', 'jest', 'bin', 'jest.js');
const runs = [
  ['node (this)', process.execPath, [e2e]],
  ['node 24', bin('node'), [e2e]],
  ['deno', bin('deno'), ['run', '--allow-read', e2e]],
  ['bun', bin('bun'), [e2e]],
  ['chromium', process.execPath, [path.join(here, 'browser.mjs')], chromium],
  ['chromium demo page', process.execPath, [path.join(here, 'demo.mjs')], chromium],
  [
    'chromium: the packed package from a subpath, and bundled by esbuild',
    process.execPath,
    [path.join(here, 'browser-package.mjs')],
    chromium,
  ],
  [
    'chromium: the openai SDK against phi serve --cors',
    process.execPath,
    [path.join(here, 'browser-cors.mjs')],
    chromium,
  ],
  ['deno serve', bin('deno'), ['run', '--allow-read', '--allow-net', path.join(here, 'serve.mjs')]],
  ['bun serve', bin('bun'), [path.join(here, 'serve.mjs')]],
  [
    'kernel twins on node 24',
    bin('node'),
    ['--experimental-vm-modules', jest, '--rootDir', root, 'dist/test/kernels'],
  ],
  ['package', process.execPath, [path.join(root, 'test', 'package', 'run.mjs')]],
];
const needs = (label, file) => {
  if (existsSync(file)) return null;
  return label.startsWith('chromium')
    ? `${file} not found: install Debian's chromium (apt-get install chromium) or set CHROMIUM=/path/to/chrome`
    : `${file} not found: run npm ci --prefix test/runtimes (npm run test:runtimes does)`;
};
let failed = 0;
// every runtime's fine-tune losses (e2e.mjs): the same computation, so the same values; not the
// same bits: relaxed SIMD's results are the engine's choice (V8's relaxed runs differ from Node
// 20's plain SIMD and from Bun's in the ninth digit). Within one runtime, 1 and 2 threads must
// agree bit for bit: e2e.mjs checks that.
let firstLosses = null;
let firstTexts = null; // [label, [json, regex]]: the first runtime's greedy constrained texts
const close = (a, b) =>
  a.length === b.length && a.every((x, i) => Math.abs(x - b[i]) <= 1e-6 * Math.abs(b[i]));
for (const [label, cmd, args, extra] of runs) {
  const missing = needs(label, cmd) ?? (extra ? needs(label, extra) : null);
  let ok = false;
  let line;
  if (missing) line = missing;
  else {
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 300_000, cwd: root });
    const out = (r.stdout ?? '').trim().split('\n');
    line = out.pop() ?? '';
    if (label.startsWith('kernel twins')) {
      // jest: its summary goes to stderr
      const summary = (r.stderr ?? '').split('\n').find((l) => /^Tests:/.test(l)) ?? '';
      ok = r.status === 0;
      line = summary.trim() || (r.stderr ?? '').trim().split('\n').slice(-3).join(' | ');
    } else {
      ok = r.status === 0;
      try {
        const result = JSON.parse(line);
        ok &&= result.ok === true;
        // greedy under a constraint: the same texts in every runtime
        const c = result.constrained;
        const texts = typeof c?.json === 'string' && [c.json, c.regex];
        if (ok && texts) {
          firstTexts ??= [label, texts];
          if (JSON.stringify(texts) !== JSON.stringify(firstTexts[1])) {
            ok = false;
            line = `constrained texts ${JSON.stringify(texts)} differ from ${firstTexts[0]}'s ${JSON.stringify(firstTexts[1])}`;
          }
        }
        const losses = result.training?.losses;
        if (ok && losses) {
          firstLosses ??= [label, losses];
          if (!close(losses, firstLosses[1])) {
            ok = false;
            line = `fine-tune losses ${losses} differ from ${firstLosses[0]}'s ${firstLosses[1]} by more than 1e-6`;
          }
        }
      } catch {
        ok = false;
      }
      if (!ok && !line)
        line = (r.stderr ?? '').trim().split('\n').slice(-3).join(' | ') || String(r.error);
    }
  }
  console.log(`${ok ? 'PASS' : 'FAIL'} ${label}: ${line}`);
  if (!ok) failed++;
}
console.log(`${runs.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
