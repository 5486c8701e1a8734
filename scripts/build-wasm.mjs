// The four kernel builds of asconfig.json (simd, relaxed, each with and without threads), two
// at a time, each skipped when its .wasm is newer than every input (the assembly sources,
// asconfig.json and the compiler's version): `npm test` after `npm ci` does not build them twice.
//   node scripts/build-wasm.mjs [--force]
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const config = JSON.parse(readFileSync(path.join(root, 'asconfig.json'), 'utf8'));
const asc = path.join(root, 'node_modules', 'assemblyscript', 'bin', 'asc.js');
const inputs = [
  ...readdirSync(path.join(root, 'assembly')).map((f) => path.join(root, 'assembly', f)),
  path.join(root, 'asconfig.json'),
  path.join(root, 'node_modules', 'assemblyscript', 'package.json'),
];
const newest = Math.max(...inputs.map((f) => statSync(f).mtimeMs));
const force = process.argv.includes('--force');
const todo = Object.entries(config.targets).filter(([, t]) => {
  const out = path.join(root, t.outFile);
  return force || !existsSync(out) || statSync(out).mtimeMs < newest;
});

const run = ([name]) =>
  new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [asc, '--config', 'asconfig.json', '--target', name], {
      cwd: root,
      stdio: 'inherit',
    });
    p.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`asc --target ${name}: exit ${code}`)),
    );
  });
// two at a time: asc is single-threaded, and this machine class has 2 cores
const queue = [...todo];
await Promise.all(
  [0, 1].map(async () => {
    while (queue.length) await run(queue.shift());
  }),
);
