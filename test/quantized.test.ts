// Quantized models (--dtype q8 / q4) against the float64 reference: accuracy thresholds per
// dtype, measured over every position of every reference sequence, on both backends.
import { loadPhi } from '../src/node/index.js';
import { argmax } from '../src/sample.js';
import { CHECKPOINTS, fixture, reference } from './helpers.js';

// Thresholds, with what was measured when they were set (README, "Quantized weights"):
//   q8: top-1 agreement 96.6-97.3%, max rel. error 1.1e-2..2.1e-2, mean 1.7e-3..2.6e-3
//   q4: top-1 agreement 64-72%,     max rel. error 0.17..0.19,     mean 2.1e-2..2.8e-2
// (random-weight checkpoints have many near-ties, so top-1 agreement is a harsh measure here)
const LIMITS = {
  q8: { top1: 0.93, maxRel: 4e-2, meanRel: 5e-3 },
  q4: { top1: 0.55, maxRel: 0.3, meanRel: 4e-2 },
} as const;

describe.each(['q8', 'q4'] as const)('%s', (dtype) => {
  test.each(CHECKPOINTS.flatMap((c) => (['js', 'wasm'] as const).map((b) => [c, b] as const)))(
    '%s on the %s backend stays within the limits',
    async (name, backend) => {
      const phi = await loadPhi(fixture(name), { dtype, backend, threads: 2 });
      const V = phi.config.vocabSize;
      let agree = 0;
      let positions = 0;
      let maxRel = 0;
      let sumRel = 0;
      let n = 0;
      for (const c of reference(name).cases) {
        const all = phi.logits(c.input_ids, true);
        for (let t = 0; t < c.length; t++) {
          agree += argmax(all.subarray(t * V, (t + 1) * V)) === c.argmax[t] ? 1 : 0;
          positions++;
        }
        const rows: [number, number[]][] = [
          [0, c.logits_first],
          [c.length - 1, c.logits_last],
        ];
        for (const [t, want] of rows) {
          for (let i = 0; i < V; i++) {
            const e = Math.abs(all[t * V + i] - want[i]) / c.max_abs_logit_all_positions;
            maxRel = Math.max(maxRel, e);
            sumRel += e;
            n++;
          }
        }
      }
      phi.close();
      const got = { top1: agree / positions, maxRel, meanRel: sumRel / n };
      const lim = LIMITS[dtype];
      expect(got.top1).toBeGreaterThanOrEqual(lim.top1);
      expect(got.maxRel).toBeLessThanOrEqual(lim.maxRel);
      expect(got.meanRel).toBeLessThanOrEqual(lim.meanRel);
      // and they are quantized: far from the f32 result, i.e. the test can tell
      expect(got.meanRel).toBeGreaterThan(1e-5);
    },
  );

  test('linear weights are quantized, the embedding keeps its dtype, memory shrinks', async () => {
    const phi = await loadPhi(fixture('tiny-phi-f16'), { dtype });
    const w = phi.model.weights;
    expect(w.layers[0].fc1.weight.dtype).toBe(dtype);
    expect(w.lm_head.weight.dtype).toBe(dtype);
    expect(w.embed_tokens.dtype).toBe('f16');
    const bytes = w.layers[0].fc1.weight.data.byteLength;
    expect(bytes).toBe(256 * 64 * (dtype === 'q8' ? 1 : 0.5) + 256 * 2 * 4); // values + a scale per 32
    phi.close();
  });
});
