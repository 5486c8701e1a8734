// The mutation fuzzer (test/fuzz.ts) on a fixed budget, and the cases that once found bugs.
import { readFileSync } from 'node:fs';
import { makeCase, runCase } from './fuzz.js';
import { fixture } from './helpers.js';

// 500 cases cover each of the 9 mutation targets about 55 times; npm run fuzz runs 20000
const CASES = Number(process.env.PHI_FUZZ_CASES ?? 500);
const SEED = Number(process.env.PHI_FUZZ_SEED ?? 20261202);

test(`${CASES} mutated model folders: each loads correctly or fails with one clean line (seed ${SEED})`, async () => {
  const failures: string[] = [];
  for (let i = 0; i < CASES && failures.length < 10; i++) {
    const c = makeCase(SEED + i);
    const why = await runCase(c);
    if (why) failures.push(`case ${SEED + i} (${c.what}): ${why}`);
  }
  expect(failures).toEqual([]);
}, 180_000);

test('the regression corpus: every case that once found a bug', async () => {
  const corpus = JSON.parse(readFileSync(fixture('fuzz-corpus.json'), 'utf8')) as {
    seed: number;
    what: string;
    found: string;
  }[];
  expect(corpus.length).toBeGreaterThan(0);
  for (const { seed, what, found } of corpus) {
    const c = makeCase(seed);
    expect(c.what).toBe(what); // the generator still makes the same case from the seed
    expect([seed, found, await runCase(c)]).toEqual([seed, found, null]);
    // and it is refused, not loaded: each of these is input a checkpoint must not have
    const loaded = await runCase(c, 10_000, true);
    expect([seed, loaded]).toEqual([seed, 'refused']);
  }
});
