// The model against the float64 reference: logits, per-position argmax, greedy continuations,
// and KV-cached decoding against recomputation from scratch.
import { loadPhi } from '../src/node/index.js';
import type { Phi } from '../src/engine.js';
import { argmax } from '../src/sample.js';
import { CHECKPOINTS, fixture, maxAbsDiff, reference } from './helpers.js';

const TOL = 1e-4; // relative to max |logit|, for f32 arithmetic (we land near 1e-7)

describe.each(CHECKPOINTS)('%s', (name) => {
  let phi: Phi;
  const ref = reference(name);
  beforeAll(async () => {
    phi = await loadPhi(fixture(name), { backend: 'js' });
  });

  test.each(ref.cases.map((c) => [c.name, c] as const))(
    'logits of %s match the reference',
    (_, c) => {
      const V = phi.config.vocabSize;
      const all = phi.logits(c.input_ids, true);
      expect(all.length).toBe(c.length * V);
      const scale = c.max_abs_logit_all_positions;
      const first = maxAbsDiff(all.subarray(0, V), c.logits_first) / scale;
      const last = maxAbsDiff(all.subarray((c.length - 1) * V), c.logits_last) / scale;
      expect(first).toBeLessThan(TOL);
      expect(last).toBeLessThan(TOL);
      // argmax at every position, where the reference margin is well above our error
      for (let t = 0; t < c.length; t++) {
        if (c.argmax_margin[t] > 100 * TOL * scale) {
          expect([t, argmax(all.subarray(t * V, (t + 1) * V))]).toEqual([t, c.argmax[t]]);
        }
      }
    },
  );

  test.each(ref.cases.map((c) => [c.name, c] as const))(
    'greedy continuation of %s is token for token',
    async (_, c) => {
      const r = await phi.complete(
        { ids: c.input_ids },
        { maxNewTokens: 20, stopAtEos: false, temperature: 0 },
      );
      expect(r.ids).toEqual(c.greedy.new_tokens);
    },
  );

  test('KV-cached decoding equals recomputing from scratch', () => {
    const c = ref.cases.find((x) => x.name === 'rand_len33')!;
    const ids = [...c.input_ids, ...c.greedy.new_tokens.slice(0, 6)];
    const model = phi.model;
    const [cache, fresh] = [model.newCache(), model.newCache()];
    // cached: prefill 33 tokens, then one token at a time
    const cached: Float32Array[] = [model.forward(ids.slice(0, 33), 0, cache).slice()];
    for (let p = 33; p < ids.length; p++) cached.push(model.forward([ids[p]], p, cache).slice());
    // from scratch: the whole prefix each time
    for (let k = 0; k < cached.length; k++) {
      const scratch = model.forward(ids.slice(0, 33 + k), 0, fresh);
      expect(maxAbsDiff(cached[k], scratch)).toBeLessThan(1e-5 * c.max_abs_logit_all_positions);
    }
  });

  test('prefill in chunks equals one step', async () => {
    const c = ref.cases.find((x) => x.name === 'rand_len200')!;
    const chunked = await loadPhi(fixture(name), { backend: 'js', maxBatch: 7 });
    const a = chunked.logits(c.input_ids);
    expect(maxAbsDiff(a, c.logits_last) / c.max_abs_logit_all_positions).toBeLessThan(TOL);
  });
});
