// Which kernel build a load picks (and so the exact numbers) must not depend on what the
// process did before: both entry points, in both orders, in fresh processes.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { ROOT } from './helpers.js';

function run(order: 'core-first' | 'node-first'): { backend: string; logits: number[] }[] {
  const script = path.join(ROOT, 'dist', 'test', 'child', 'build-choice.js');
  const r = spawnSync(process.execPath, [script, order], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${order}: exit ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

test('loadPhiFrom and loadPhi pick the same build and give identical logits, in either order', () => {
  const [a, b] = [run('core-first'), run('node-first')];
  const all = [...a, ...b];
  for (const r of all) {
    expect(r.backend).toBe(all[0].backend);
    expect(r.logits).toEqual(all[0].logits);
  }
  expect(all[0].logits.length).toBe(51200);
});
