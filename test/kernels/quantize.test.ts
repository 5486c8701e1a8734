// The quantized format: activation quantization against its twin, the record interleaving,
// and the round trip of weights.

import * as ref from '../../src/kernels/ref/index.js';
import {
  activationBlocks,
  allocQuantized,
  blockScale,
  blocksOf,
  interleaved,
  quantizeRows,
  weightQ,
} from '../../src/formats/quant.js';

import { xorshift } from '../helpers.js';
import { fill, one, SEED, SIZES, three, useBackends } from './wasm-setup.js';

useBackends();

describe(`wasm quantize (seed ${SEED})`, () => {
  test('quantize_act: the same integers, order, scales and sums as the twin; padding zero', () => {
    const rand = xorshift(SEED + 8);
    for (const T of [1, 2, 5]) {
      for (const n of [...SIZES, 64, 129, 160]) {
        const x = fill(three.allocF32(T * n), rand, 3);
        if (n > 3) {
          // ties: with max |x| = 127 the scale is 1, and Math.round(2.5) = 3, Math.round(-2.5) = -2
          x[0] = 127;
          x[1] = 2.5;
          x[2] = -2.5;
        }
        const nbp = activationBlocks(n);
        const want = {
          q: new Int8Array(T * nbp * 32),
          scale: new Float32Array(T * nbp),
          sum: new Int32Array(T * nbp),
        };
        ref.quantize_act(x, T, n, want);
        const q = three.allocU8(T * nbp * 32).fill(0xaa); // garbage: padding must be written
        const scale = three.allocF32(T * nbp);
        const sum = three.allocF32(T * nbp);
        three.run('quantize_act', {
          x: x.byteOffset,
          n,
          nbp,
          xq: q.byteOffset,
          xs: scale.byteOffset,
          xsum: sum.byteOffset,
          T,
        });
        const where = `T=${T} n=${n}`;
        expect([where, Array.from(new Int8Array(q.buffer, q.byteOffset, q.length))]).toEqual([
          where,
          Array.from(want.q),
        ]);
        expect(Array.from(scale)).toEqual(Array.from(want.scale));
        expect(Array.from(new Int32Array(sum.buffer, sum.byteOffset, T * nbp))).toEqual(
          Array.from(want.sum),
        );
      }
    }
  });

  test('the record interleaving puts weight 4k+m of block b at byte 16k + 4b + m', () => {
    const seen = new Set<number>();
    for (let k = 0; k < 128; k++) {
      const [b, j] = [k >> 5, k & 31];
      expect(interleaved(k)).toBe(16 * (j >> 2) + 4 * b + (j & 3));
      seen.add(interleaved(k));
    }
    expect(seen.size).toBe(128); // a permutation
  });

  test('quantization round trip: within half a step (q4: a step at the clamped +7 end), extremes exact', () => {
    const rand = xorshift(SEED + 7);
    const [d, n] = [5, 70];
    const src = fill(new Float32Array(d * n), rand);
    for (const dtype of ['q8', 'q4'] as const) {
      const w = allocQuantized(one, dtype, d, n);
      quantizeRows(src, d, n, w, 0);
      const nb = blocksOf(n);
      for (let i = 0; i < d; i++) {
        for (let b = 0; b < nb; b++) {
          const s = blockScale(w, n, i, b);
          let extreme = 0;
          for (let k = b * 32; k < Math.min(n, b * 32 + 32); k++) {
            const v = src[i * n + k];
            if (Math.abs(v) > Math.abs(src[i * n + extreme] ?? 0) || k === b * 32) extreme = k;
            const err = Math.abs(weightQ(w, n, i, k) * s - v);
            // q4_0 puts the extreme on -8, so the other end can be clamped at +7: one step
            expect(err).toBeLessThanOrEqual(Math.abs(s) * (dtype === 'q8' ? 0.5 : 1) + 1e-6);
          }
          const v = src[i * n + extreme];
          expect(Math.abs(weightQ(w, n, i, extreme) * s - v)).toBeLessThanOrEqual(
            1e-6 * Math.abs(v),
          );
        }
      }
    }
  });
});
