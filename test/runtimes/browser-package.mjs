// The browser bundle as a user's site gets it: the packed tarball installed in a new project,
// served from a subpath (/vendor/phi-wasm/), not the repository root; and the same page built
// by a bundler (esbuild), with the package's files copied beside the bundle as the README
// says. Headless Chromium (Debian's) runs both, 1 and 2 threads, against the fixture's greedy
// tokens. Prints one JSON line with ok: true when every run matches.
import { execFileSync, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from './chromium.mjs';
import { build } from 'esbuild';
import { startServer } from '../../demo/server.mjs';
import { stage } from '../../scripts/stage-package.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const fixture = path.join(ROOT, 'test', 'fixtures', 'tiny-phi-f16');
const ref = JSON.parse(readFileSync(path.join(fixture, 'reference.json'), 'utf8'));
const c = ref.cases.find((x) => x.name === 'print_prime');
const REGEX = '[A-Z]{2}-[0-9]{3}';
const work = mkdtempSync(path.join(tmpdir(), 'phi-browser-pkg-'));
const fail = (step, error) => {
  console.log(JSON.stringify({ ok: false, step, error: String(error).slice(0, 500) }));
  process.exit(1);
};

// 1. pack, install into a new project (no script runs)
const staged = stage(path.join(work, 'pkg'));
execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', work], {
  cwd: staged,
  stdio: 'pipe',
});
const tgz = readdirSync(work).find((f) => f.endsWith('.tgz'));
const app = path.join(work, 'app');
mkdirSync(app);
writeFileSync(
  path.join(app, 'package.json'),
  JSON.stringify({ name: 'site', private: true, type: 'module' }),
);
const install = spawnSync(
  'npm',
  ['install', '--prefer-offline', '--no-audit', '--no-fund', path.join(work, tgz)],
  {
    cwd: app,
    encoding: 'utf8',
  },
);
if (install.status !== 0) fail('npm install', install.stderr);
const pkg = path.join(app, 'node_modules', 'phi-wasm');

// 2. the pages: a worker that loads the model over HTTP and generates (threads need a worker)
const workerBody = (
  importFrom,
) => `import { loadPhiFrom, urlFiles } from ${JSON.stringify(importFrom)};
onmessage = async (e) => {
  const { base, threads, ids, maxNewTokens } = e.data;
  try {
    const phi = await loadPhiFrom(urlFiles(base), { threads });
    const r = await phi.complete({ ids }, { maxNewTokens, stopAtEos: false });
    // a constraint imports xgrammar.mjs from beside the bundle, wherever the bundle is served
    const regex = threads === 2 ? (await phi.complete('Code:', { regex: ${JSON.stringify(REGEX)}, maxNewTokens: 16 })).text : null;
    postMessage({ threads, backend: phi.model.kernels.name, ids: r.ids, regex });
    phi.close();
  } catch (err) {
    postMessage({ threads, error: String(err?.stack ?? err) });
  }
};
`;
const page = (workerUrl) => `<!doctype html><meta charset="utf-8"><pre id="log">running</pre>
<script type="module">
const results = [];
for (const threads of [1, 2]) {
  const w = new Worker(${JSON.stringify(workerUrl)}, { type: 'module' });
  results.push(await new Promise((resolve) => {
    w.onmessage = (e) => resolve(e.data);
    w.onerror = (e) => resolve({ threads, error: e.message || 'worker error' });
    w.postMessage({ base: new URL('/models/tiny/', location.href).href, threads, ids: ${JSON.stringify(c.input_ids)}, maxNewTokens: 12 });
  }));
  w.terminate();
}
window.__result = results;
</script>`;
const site = path.join(app, 'site');
mkdirSync(path.join(site, 'plain'), { recursive: true });
writeFileSync(path.join(site, 'plain', 'index.html'), page('./worker.js'));
writeFileSync(
  path.join(site, 'plain', 'worker.js'),
  workerBody('/vendor/phi-wasm/build/browser/index.js'),
);

// the bundled page: esbuild resolves 'phi-wasm/browser' from node_modules; esbuild does not
// copy files named by new URL(..., import.meta.url), so they are copied beside the bundle
mkdirSync(path.join(site, 'bundled'), { recursive: true });
writeFileSync(path.join(app, 'app.js'), workerBody('phi-wasm/browser'));
await build({
  entryPoints: [path.join(app, 'app.js')],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  outfile: path.join(site, 'bundled', 'app.js'),
  absWorkingDir: app,
  logLevel: 'error',
}).catch((e) => fail('esbuild', e));
const browserDir = path.join(pkg, 'build', 'browser');
for (const f of readdirSync(browserDir).filter(
  (f) => f.endsWith('.wasm') || f === 'worker.js' || f === 'xgrammar.mjs',
))
  copyFileSync(path.join(browserDir, f), path.join(site, 'bundled', f));
writeFileSync(path.join(site, 'bundled', 'index.html'), page('./app.js'));

// 3. serve: the package under a subpath, the model elsewhere; Chromium runs both pages
const server = await startServer(0, {
  mounts: { 'vendor/phi-wasm': pkg, site, 'models/tiny': fixture },
});
const origin = `http://127.0.0.1:${server.address().port}`;
const browser = await launchChromium();
const runs = {};
try {
  for (const name of ['plain', 'bundled']) {
    const p = await browser.newPage();
    const errors = [];
    p.on('pageerror', (e) => errors.push(e.message));
    await p.goto(`${origin}/site/${name}/`);
    await p.waitForFunction(() => window.__result, null, { timeout: 120_000 });
    const results = await p.evaluate(() => window.__result);
    runs[name] = results.map((r) => ({
      threads: r.threads,
      backend: r.backend,
      match:
        JSON.stringify(r.ids) === JSON.stringify(c.greedy.new_tokens.slice(0, 12)) &&
        (r.threads !== 2 || new RegExp(`^${REGEX}$`).test(r.regex)),
      regex: r.regex,
      error: r.error ?? errors[0],
    }));
  }
} finally {
  await browser.close();
  server.close();
}
const ok = Object.values(runs).every((rs) => rs.length === 2 && rs.every((r) => r.match));
console.log(JSON.stringify({ ok, tarball: tgz, runs }));
process.exit(ok ? 0 : 1);
