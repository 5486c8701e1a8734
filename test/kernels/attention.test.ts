// attention against its twin: awkward head sizes and positions, huge scores.

import * as ref from '../../src/kernels/ref/index.js';

import { expectClose, maxAbsDiff, xorshift } from '../helpers.js';
import { fill, one, SEED, useBackends } from './wasm-setup.js';

useBackends();

describe(`wasm attention (seed ${SEED})`, () => {
  test('attention over awkward head sizes and positions; each query as it is alone', () => {
    const rand = xorshift(SEED + 1);
    for (const [H, Dh] of [
      [1, 1],
      [3, 5],
      [4, 16],
      [2, 33],
      [2, 63],
      [3, 64],
    ]) {
      for (const [T, pos0] of [
        [1, 0],
        [1, 40],
        [7, 0],
        [3, 17],
        [5, 6],
        [2, 97], // past 4 quarters of 8 keys, with 2 and 3 keys left over
      ]) {
        const S = H * Dh;
        const maxPos = pos0 + T + 2;
        const q = fill(one.allocF32(T * S), rand);
        const k = fill(one.allocF32(maxPos * S), rand); // (H, maxPos, Dh)
        const v = fill(one.allocF32(maxPos * S), rand);
        const want = new Float32Array(T * S);
        const P = pos0 + T;
        const wantProbs = new Float32Array(H * T * P);
        const scale = 1 / Math.sqrt(Dh);
        ref.attention(want, q, k, v, T, pos0, H, Dh, maxPos, scale, wantProbs);
        const got = one.allocF32(T * S);
        const probs = one.allocF32(H * T * P).fill(NaN);
        one.attention(got, q, k, v, T, pos0, H, Dh, maxPos, scale, probs);
        const label = `attention H=${H} Dh=${Dh} T=${T} pos0=${pos0}`;
        expectClose(got, want, 1e-5, 1e-5, label);
        expectClose(probs, wantProbs, 1e-6, 1e-5, `${label} probabilities`);
        const alone = one.allocF32(T * S);
        one.attention(alone, q, k, v, T, pos0, H, Dh, maxPos, scale, null);
        expect(maxAbsDiff(alone, got)).toBe(0);
        // query t alone, at position pos0 + t, gives its row bit for bit
        for (let t = 0; t < T; t++) {
          const row = one.allocF32(S);
          one.attention(
            row,
            q.subarray(t * S, (t + 1) * S),
            k,
            v,
            1,
            pos0 + t,
            H,
            Dh,
            maxPos,
            scale,
            null,
          );
          expect([label, t, Array.from(row)]).toEqual([
            label,
            t,
            Array.from(got.subarray(t * S, (t + 1) * S)),
          ]);
        }
      }
    }
  });

  test('attention over huge scores stays finite (the softmax subtracts the max)', () => {
    const [H, Dh, T] = [1, 2, 3];
    const q = one.allocF32(T * Dh).fill(30);
    const k = one.allocF32(T * Dh);
    k.set([30, 30, 31, 31, -30, -30]);
    const v = one.allocF32(T * Dh);
    v.set([1, 2, 3, 4, 5, 6]);
    const got = one.allocF32(T * Dh);
    const probs = one.allocF32(H * T * T);
    one.attention(got, q, k, v, T, 0, H, Dh, T, 1, probs);
    const want = new Float32Array(T * Dh);
    const wantProbs = new Float32Array(H * T * T);
    ref.attention(want, q, k, v, T, 0, H, Dh, T, 1, wantProbs);
    expect(got.every(Number.isFinite)).toBe(true);
    expectClose(got, want, 1e-5, 1e-5, 'attention');
    expectClose(probs, wantProbs, 1e-6, 0, 'probabilities');
  });
});
