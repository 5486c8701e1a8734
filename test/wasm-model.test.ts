// The wasm backend runs the whole model: every reference logit set and greedy continuation,
// with 1 and 2 threads, and threaded logits are bit-identical to single-threaded ones.
import { loadPhi } from '../src/node/index.js';
import type { Phi } from '../src/engine.js';
import { CHECKPOINTS, fixture, maxAbsDiff, reference } from './helpers.js';

describe.each(CHECKPOINTS)('%s on the wasm backend', (name) => {
  const ref = reference(name);
  let one: Phi, two: Phi;
  beforeAll(async () => {
    one = await loadPhi(fixture(name), { backend: 'wasm', threads: 1 });
    two = await loadPhi(fixture(name), { backend: 'wasm', threads: 2 });
  });
  afterAll(() => {
    one.close();
    two.close();
  });

  test.each(ref.cases.map((c) => [c.name, c] as const))(
    '%s: logits, greedy, threads',
    async (_, c) => {
      const V = one.config.vocabSize;
      const a = one.logits(c.input_ids, true);
      const b = two.logits(c.input_ids, true);
      expect(maxAbsDiff(a, b)).toBe(0);
      const scale = c.max_abs_logit_all_positions;
      expect(maxAbsDiff(a.subarray(0, V), c.logits_first) / scale).toBeLessThan(1e-4);
      expect(maxAbsDiff(a.subarray((c.length - 1) * V), c.logits_last) / scale).toBeLessThan(1e-4);
      for (const phi of [one, two]) {
        const r = await phi.complete({ ids: c.input_ids }, { maxNewTokens: 20, stopAtEos: false });
        expect(r.ids).toEqual(c.greedy.new_tokens);
      }
    },
  );

  test('KV-cached decoding equals recomputation', () => {
    const c = ref.cases.find((x) => x.name === 'rand_len33')!;
    const ids = [...c.input_ids, ...c.greedy.new_tokens.slice(0, 4)];
    const m = two.model;
    const [cache, fresh] = [m.newCache(), m.newCache()];
    const cached = [m.forward(ids.slice(0, 33), 0, cache).slice()];
    for (let p = 33; p < ids.length; p++) cached.push(m.forward([ids[p]], p, cache).slice());
    cached.forEach((l, k) => {
      expect(
        maxAbsDiff(l, m.forward(ids.slice(0, 33 + k), 0, fresh)) / c.max_abs_logit_all_positions,
      ).toBeLessThan(1e-5);
    });
  });
});

test('the default backend is wasm with one thread per core', async () => {
  const phi = await loadPhi(fixture('tiny-phi-f16'));
  expect(phi.model.kernels.name).toMatch(/^wasm-/);
  phi.close();
});
