// Runs test/runtimes/e2e.mjs under every runtime: this Node, Node 24 (relaxed SIMD), Deno and
// Bun, each installed from npm into test/runtimes/node_modules, and browser.html in headless
// Chromium (Debian's chromium package) through playwright-core (npm run test:runtimes).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const bin = (name) => path.join(here, 'node_modules', '.bin', name);
const e2e = path.join(here, 'e2e.mjs');
const runs = [
  ['node (this)', process.execPath, [e2e]],
  ['node 24', bin('node'), [e2e]],
  ['deno', bin('deno'), ['run', '--allow-read', e2e]],
  ['bun', bin('bun'), [e2e]],
  ['chromium', process.execPath, [path.join(here, 'browser.mjs')]],
  ['chromium demo page', process.execPath, [path.join(here, 'demo.mjs')]],
];
let failed = 0;
for (const [label, cmd, args] of runs) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 300_000 });
  const line = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  let ok = r.status === 0;
  try {
    ok &&= JSON.parse(line).ok === true;
  } catch {
    ok = false;
  }
  console.log(
    `${ok ? 'PASS' : 'FAIL'} ${label}: ${line || (r.stderr ?? '').trim().split('\n').slice(-3).join(' | ') || r.error}`,
  );
  if (!ok) failed++;
}
console.log(`${runs.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
