// The package as a user gets it: pack it, install the tarball into a new project (no build
// script may run there), type-check a file that imports every entry under the node16,
// bundler and node (node10) resolutions, and run a small script. Prints one JSON line with
// ok: true when all of that holds (test/runtimes/run-all.mjs runs it in CI).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stage } from '../../scripts/stage-package.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const work = mkdtempSync(path.join(tmpdir(), 'phi-pkg-'));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const step = (what, f) => {
  try {
    return f();
  } catch (e) {
    const out = `${e.stdout ?? ''}${e.stderr ?? ''}`.trim().split('\n').slice(-8).join(' | ');
    console.log(JSON.stringify({ ok: false, step: what, error: out || e.message }));
    process.exit(1);
  }
};

// 1. stage and pack what `npm publish` would send (already built by npm test)
const staged = stage(path.join(work, 'pkg'));
step('npm pack', () =>
  execFileSync(npm, ['pack', '--ignore-scripts', '--pack-destination', work], {
    cwd: staged,
    stdio: 'pipe',
  }),
);
const tgz = readdirSync(work).find((f) => f.endsWith('.tgz'));
if (!tgz) throw new Error('npm pack made no tarball');

// 2. install it in a new project, from the npm cache where it can
const app = path.join(work, 'app');
step('project', () => {
  execFileSync('mkdir', ['-p', app]);
  writeFileSync(
    path.join(app, 'package.json'),
    JSON.stringify({ name: 'app', private: true, type: 'module' }),
  );
});
const install = spawnSync(
  npm,
  ['install', '--prefer-offline', '--no-audit', '--no-fund', path.join(work, tgz)],
  {
    cwd: app,
    encoding: 'utf8',
  },
);
if (install.status !== 0) {
  console.log(
    JSON.stringify({
      ok: false,
      step: 'npm install',
      error: install.stderr.trim().split('\n').slice(-5).join(' | '),
    }),
  );
  process.exit(1);
}
if (
  /install-scripts|prepare|allowScripts/i.test(install.stderr) &&
  /phi-wasm/.test(install.stderr)
) {
  console.log(
    JSON.stringify({
      ok: false,
      step: 'npm install',
      error: `a script would run: ${install.stderr.trim()}`,
    }),
  );
  process.exit(1);
}

// 3. types for every entry, under each module resolution
writeFileSync(
  path.join(app, 'check.ts'),
  `import { loadPhiFrom, memoryFiles, type GenerateOptions } from 'phi-wasm';
import { loadPhi, serve } from 'phi-wasm/node';
import { urlFiles } from 'phi-wasm/browser';
import { createServer } from 'phi-wasm/server';
const o: GenerateOptions = { maxNewTokens: 3 };
export const used = [loadPhiFrom, memoryFiles, loadPhi, serve, urlFiles, createServer, o];
`,
);
const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
for (const [module, resolution] of [
  ['node16', 'node16'],
  ['nodenext', 'nodenext'],
  ['esnext', 'bundler'],
  ['commonjs', 'node'],
]) {
  step(`types (${resolution})`, () =>
    execFileSync(
      process.execPath,
      [
        tsc,
        '--noEmit',
        '--strict',
        '--skipLibCheck',
        '--target',
        'es2022',
        '--module',
        module,
        '--moduleResolution',
        resolution,
        '--types',
        'node',
        '--typeRoots',
        path.join(ROOT, 'node_modules', '@types'),
        'check.ts',
      ],
      { cwd: app, stdio: 'pipe' },
    ),
  );
}

// 4. run: load the tiny reference checkpoint and generate
writeFileSync(
  path.join(app, 'run.mjs'),
  `import { loadPhi } from 'phi-wasm/node';
const phi = await loadPhi(${JSON.stringify(path.join(ROOT, 'test', 'fixtures', 'tiny-phi-f16'))}, { threads: 2 });
const r = await phi.complete({ ids: [1, 2, 3] }, { maxNewTokens: 4, stopAtEos: false });
// a constraint: XGrammar resolved from the installed package's own dependencies
const c = await phi.complete('Code:', { regex: '[A-Z]{2}-[0-9]{3}' });
phi.close();
console.log(JSON.stringify({ ids: r.ids, constrained: c.text, backend: phi.model.kernels.name }));
`,
);
const run = step('run', () =>
  execFileSync(process.execPath, ['run.mjs'], { cwd: app, encoding: 'utf8' }),
);
const { ids, constrained, backend } = JSON.parse(run.trim().split('\n').pop());
const ok = ids.length === 4 && /^[A-Z]{2}-[0-9]{3}$/.test(constrained);
console.log(JSON.stringify({ ok, tarball: tgz, constrained, backend }));
