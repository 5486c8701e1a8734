// The package as it is published, staged in a folder: the files package.json lists, and a
// package.json without what only the repository needs (the `prepare` build, devDependencies,
// allowScripts), so that installing it runs no script at all.
//   npm run build && node scripts/stage-package.mjs /tmp/phi-wasm && npm publish /tmp/phi-wasm
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export function stage(out) {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  for (const entry of pkg.files) {
    const base = entry.replace(/\/\*.*$/, ''); // build/*.wasm -> build
    const src = path.join(root, base);
    if (entry.includes('*')) {
      const re = new RegExp(
        `^${entry
          .slice(base.length + 1)
          .replace(/\./g, '\\.')
          .replace(/\*/g, '.*')}$`,
      );
      mkdirSync(path.join(out, base), { recursive: true });
      cpSync(src, path.join(out, base), {
        recursive: true,
        filter: (f) => f === src || re.test(path.basename(f)),
      });
    } else cpSync(src, path.join(out, entry), { recursive: true });
  }
  const { prepare: _prepare, ...scripts } = pkg.scripts;
  delete pkg.devDependencies;
  delete pkg.allowScripts;
  pkg.scripts = Object.fromEntries(
    Object.entries(scripts).filter(
      ([k]) => !/^(build|test|lint|format|bench|demo|fuzz|diagrams|jest|typecheck)/.test(k),
    ),
  );
  writeFileSync(path.join(out, 'package.json'), JSON.stringify(pkg, null, 2) + '\n');
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = process.argv[2];
  if (!out) throw new Error('usage: node scripts/stage-package.mjs OUT_DIR');
  console.log(`staged the package in ${stage(out)}`);
}
