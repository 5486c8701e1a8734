// layernorm and gelu_new against their twins over awkward widths and lengths.

import * as ref from '../../src/kernels/ref/index.js';

import { expectClose, xorshift } from '../helpers.js';
import { copyTo, fill, one, SEED, three, useBackends } from './wasm-setup.js';

useBackends();

describe(`wasm elementwise (seed ${SEED})`, () => {
  test('layernorm over awkward widths; rows as they are alone', () => {
    const rand = xorshift(SEED + 10);
    for (const T of [1, 3, 5]) {
      for (const n of [1, 3, 17, 64, 2049]) {
        const x = fill(one.allocF32(T * n), rand, 3);
        for (let i = 0; i < x.length; i++) x[i] += 5; // a mean far from 0
        const w = fill(one.allocF32(n), rand);
        const b = fill(one.allocF32(n), rand);
        const want = new Float32Array(T * n);
        ref.layernorm(want, x, w, b, T, n, 1e-5);
        const got = three.allocF32(T * n);
        three.layernorm(got, copyTo(three, x), copyTo(three, w), copyTo(three, b), T, n, 1e-5);
        expectClose(got, want, 2e-5, 1e-5, `layernorm T=${T} n=${n}`);
        for (let t = 0; t < T; t++) {
          const row = one.allocF32(n);
          one.layernorm(row, x.subarray(t * n, (t + 1) * n), w, b, 1, n, 1e-5);
          expect(Array.from(row)).toEqual(Array.from(got.subarray(t * n, (t + 1) * n)));
        }
      }
    }
  });

  test('gelu_new over awkward lengths', () => {
    const rand = xorshift(SEED + 2);
    for (const len of [1, 3, 17, 63, 2049]) {
      const g = fill(one.allocF32(len), rand, 6);
      if (len > 3) g.set([-40, 40, -9.5, 0]); // the tails: -0 and x
      const gw = Float32Array.from(g);
      ref.gelu_new(gw, len);
      one.gelu_new(g, len);
      expectClose(g, gw, 1e-6, 1e-5, `gelu_new ${len}`);
    }
  });
});

describe(`wasm lora_add (seed ${SEED})`, () => {
  test('out += s·u·v over awkward sizes, the same on 1 and 3 threads', () => {
    const rand = xorshift(SEED + 30);
    for (const T of [1, 2, 5])
      for (const r of [1, 3, 4, 16])
        for (const d of [1, 3, 17, 130, 2051]) {
          const u = fill(one.allocF32(T * r), rand);
          const v = fill(one.allocF32(r * d), rand);
          const base = fill(one.allocF32(T * d), rand);
          const want = Float32Array.from(base);
          ref.lora_add(want, u, v, 0.75, T, r, d);
          const got1 = Float32Array.from(base);
          const o1 = copyTo(one, got1);
          one.lora_add(o1, u, v, 0.75, T, r, d);
          expectClose(o1, want, 1e-5, 1e-5, `lora_add T=${T} r=${r} d=${d}`);
          const o3 = copyTo(three, base);
          three.lora_add(o3, copyTo(three, u), copyTo(three, v), 0.75, T, r, d);
          expect(Array.from(o3)).toEqual(Array.from(o1));
        }
  });

  test('r = 0 and d = 0 change nothing', () => {
    const out = one.allocF32(3).fill(2);
    one.lora_add(out, one.allocF32(1), one.allocF32(1), 1, 1, 0, 3);
    expect(Array.from(out)).toEqual([2, 2, 2]);
    one.lora_add(out, one.allocF32(1), one.allocF32(1), 1, 1, 1, 0);
    expect(Array.from(out)).toEqual([2, 2, 2]);
  });
});
