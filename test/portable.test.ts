// The core runs in any runtime: nothing outside src/node and src/cli imports a Node module,
// and without the Node adapters the core says what to do instead of failing obscurely.
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { loadPhiFrom } from '../src/load.js';
import { memoryFiles } from '../src/io/source.js';
import { ROOT, fixture } from './helpers.js';

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? files(path.join(dir, e.name))
      : e.name.endsWith('.ts')
        ? [path.join(dir, e.name)]
        : [],
  );
}

test('no file of the core imports a node: module or a Node-only package', () => {
  const core = files(path.join(ROOT, 'src')).filter((f) => !/[\\/]src[\\/](node|cli)[\\/]/.test(f));
  expect(core.length).toBeGreaterThan(20);
  const offenders = core.filter((f) =>
    /from\s+['"]node:|import\(['"]node:|require\(/.test(readFileSync(f, 'utf8')),
  );
  expect(offenders).toEqual([]);
});

test('the core without adapters in Node explains how to load', async () => {
  const names = ['config.json', 'model.safetensors'];
  const m = memoryFiles(
    'm',
    Object.fromEntries(
      names.map((n) => [n, new Uint8Array(readFileSync(fixture('tiny-phi-f16', n)))]),
    ),
  );
  await expect(loadPhiFrom(m)).rejects.toThrow(
    /in Node use loadPhi from 'phi-wasm\/node', or pass wasm\.readWasm/,
  );
});
