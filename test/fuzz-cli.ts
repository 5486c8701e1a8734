// `npm run fuzz -- --cases N --seed S`: the mutation fuzzer with a larger budget. Prints each
// failing case (its seed replays it: add it to test/fixtures/fuzz-corpus.json) and a summary.
import { parseArgs } from 'node:util';
import { makeCase, runCase } from './fuzz.js';

const { values } = parseArgs({
  options: {
    cases: { type: 'string', default: '20000' },
    seed: { type: 'string', default: String(Date.now() % 1e9) },
  },
});
const [cases, seed] = [Number(values.cases), Number(values.seed)];
const counts = new Map<string, number>();
let bad = 0;
const t0 = Date.now();
for (let i = 0; i < cases; i++) {
  const c = makeCase(seed + i);
  const why = await runCase(c);
  const kind = c.what.split(' ')[0];
  counts.set(kind, (counts.get(kind) ?? 0) + 1);
  if (why) {
    bad++;
    console.log(`FAIL seed ${seed + i} (${c.what}): ${why}`);
  }
  if ((i + 1) % 1000 === 0)
    console.error(`${i + 1} cases, ${bad} failed, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}
console.log(
  `${cases - bad} passed, ${bad} failed (seeds ${seed}..${seed + cases - 1}; ${[...counts].map(([k, n]) => `${k} ${n}`).join(', ')})`,
);
process.exit(bad ? 1 : 0);
