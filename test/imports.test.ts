// The import graph of src/: no cycles, and no layer that imports one above it. A cycle or an
// upward import is how a "small" change starts to need edits all over the tree.
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(process.cwd(), 'src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** file (relative to src/) -> the src/ files it imports, type-only imports included. */
function graph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const file of sources(ROOT)) {
    const text = readFileSync(file, 'utf8');
    const deps = [...text.matchAll(/^(?:import|export)[^'"]*?from\s+'(\.[^']+)'/gms)].map((m) =>
      path.relative(ROOT, path.resolve(path.dirname(file), m[1].replace(/\.js$/, '.ts'))),
    );
    g.set(path.relative(ROOT, file), deps);
  }
  return g;
}

describe('the import graph of src/', () => {
  const g = graph();

  test('has no cycles', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (f: string, trail: string[]) => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'open') {
        cycles.push([...trail.slice(trail.indexOf(f)), f].join(' -> '));
        return;
      }
      state.set(f, 'open');
      for (const d of g.get(f) ?? []) visit(d, [...trail, f]);
      state.set(f, 'done');
    };
    for (const f of g.keys()) visit(f, []);
    expect(cycles).toEqual([]);
  });

  // a folder may import the folders after it in its row, never those before
  const LOWER: Record<string, string[]> = {
    formats: [],
    io: [],
    'kernels/wasm': ['formats', 'kernels/ref', 'kernels/types.ts'],
    'kernels/ref': ['formats', 'kernels/types.ts'],
    weights: ['formats', 'io', 'kernels/types.ts', 'model'],
    model: ['defaults.ts', 'formats', 'kernels', 'model'],
    grammar: ['tokenizer', 'grammar'],
    train: ['defaults.ts', 'prompts.ts', 'formats', 'io', 'kernels', 'model', 'weights', 'train'],
  };

  test.each(Object.keys(LOWER))('%s/ imports only what lies below it', (folder) => {
    const upward: string[] = [];
    for (const [file, deps] of g) {
      if (!file.startsWith(folder + '/')) continue;
      for (const d of deps) {
        const ok =
          d.startsWith(folder + '/') || LOWER[folder].some((l) => d === l || d.startsWith(l + '/'));
        if (!ok) upward.push(`${file} imports ${d}`);
      }
    }
    expect(upward).toEqual([]);
  });

  test('the portable core (all but node/ and cli/) never imports node/ or cli/', () => {
    const wrong = [...g]
      .filter(([file]) => !/^(node|cli)\//.test(file))
      .flatMap(([file, deps]) =>
        deps.filter((d) => /^(node|cli)\//.test(d)).map((d) => `${file} imports ${d}`),
      );
    expect(wrong).toEqual([]);
  });
});
