// matmul (f32, f16, q8, q4) against its TypeScript twins over awkward sizes, every path.
import { expectClose, xorshift } from '../helpers.js';
import { f32ToF16 } from '../../src/formats/f16.js';
import * as ref from '../../src/kernels/ref/index.js';
import { allocQuantized, quantizeRows } from '../../src/formats/quant.js';
import type { Weight } from '../../src/kernels/types.js';

import { createWasmKernels } from '../../src/kernels/wasm/index.js';

import { readWasm } from '../../src/node/wasm.js';
import {
  exactProducts,
  expectRowsAsAlone,
  ext,
  fill,
  matmulOn,
  one,
  SEED,
  SIZES,
  sums16,
  sums32,
  three,
  useBackends,
  weights,
} from './wasm-setup.js';

useBackends();

describe(`wasm matmul (seed ${SEED})`, () => {
  for (const dtype of ['f32', 'f16'] as const) {
    test(`matmul ${dtype}: T x n x d over awkward sizes, with and without bias`, () => {
      const rand = xorshift(SEED);
      for (const T of [1, 2, 3, 4, 5, 9]) {
        for (const n of SIZES) {
          for (const d of [1, 3, 17, 63]) {
            const w = weights(one, dtype, d, n, rand);
            const x = fill(one.allocF32(T * n), rand);
            const bias = rand() < 0.5 ? fill(one.allocF32(d), rand) : null;
            const want = new Float32Array(T * d);
            ref.matmul(want, x, w, bias, T, n, d);
            const got = one.allocF32(T * d);
            one.matmul(got, x, w, bias, T, n, d);
            expectClose(
              got,
              want,
              1e-5 * Math.sqrt(n),
              1e-5,
              `matmul ${dtype} T=${T} n=${n} d=${d}`,
            );
            if (T > 1) expectRowsAsAlone(one, x, w, bias, T, n, d, `${dtype} T=${T} n=${n} d=${d}`);
          }
        }
      }
    });
  }

  for (const dtype of ['q8', 'q4'] as const) {
    test(`matmul ${dtype}: quantized twin over awkward sizes (padded blocks and records, short tiles)`, () => {
      const rand = xorshift(SEED + (dtype === 'q8' ? 5 : 6));
      // T = 3, 4: the few-token path while T·n fits its scratch (n = 2048 just does), 4
      // streams past it (n = 2049, T = 4)
      for (const T of [1, 2, 3, 4, 5]) {
        for (const n of [1, 3, 17, 63, 64, 129, 2048, 2049]) {
          for (const d of n > 100 ? [1, 3, 5, 17, 63] : [1, 3, 5, 17, 63, 64, 70, 131, 195]) {
            const src = fill(new Float32Array(d * n), rand, 0.5);
            const w = allocQuantized(one, dtype, d, n);
            quantizeRows(src, d, n, w, 0);
            const x = fill(new Float32Array(T * n), rand);
            const bias = rand() < 0.5 ? fill(new Float32Array(d), rand) : null;
            const want = new Float32Array(T * d);
            ref.matmul(want, x, w, bias, T, n, d);
            const got = matmulOn(one, x, w, bias, T, n, d);
            const label = `matmul ${dtype} T=${T} n=${n} d=${d}`;
            expectClose(got, want, 1e-5 * Math.sqrt(n), 1e-5, label);
            // the SIMD128 integer path gives the same integer sums, so the same floats
            expect([label, Array.from(matmulOn(ext, x, w, bias, T, n, d))]).toEqual([
              label,
              Array.from(got),
            ]);
            // threads split whole tiles of 64 rows: bit-identical; and q4's int16 sums are the
            // same integers (one, on 'auto', also runs both forms while it times them)
            for (const k of [three, sums32, sums16]) {
              expect([label, k.name, Array.from(matmulOn(k, x, w, bias, T, n, d))]).toEqual([
                label,
                k.name,
                Array.from(got),
              ]);
            }
            if (T > 1) expectRowsAsAlone(one, x, w, bias, T, n, d, label);
          }
        }
      }
    });

    test(`matmul ${dtype}: exact integer sums, every path (scales of 1, so the floats are exact)`, () => {
      // weights and activations are integers whose blocks reach the top of their range: every
      // scale is 1 (q4: the extreme on -8), every product and sum an exact float
      const rand = xorshift(SEED + 9);
      const top = dtype === 'q8' ? 127 : 8;
      for (const [T, n, d] of [
        [1, 128, 64],
        [3, 200, 70],
        [2, 33, 5],
        [4, 2048, 7], // the few-token path at its limit
        [3, 131, 65],
        [4, 2200, 9], // past it: 4 streams sharing the activations
        [3, 2900, 6],
      ]) {
        const src = new Float32Array(d * n).map(() => Math.round((rand() * 2 - 1) * (top - 1)));
        const x = new Float32Array(T * n).map(() => Math.round((rand() * 2 - 1) * 126));
        for (let i = 0; i < d; i++)
          for (let b = 0; b * 32 < n; b++) src[i * n + b * 32] = dtype === 'q8' ? top : -top;
        for (let t = 0; t < T; t++) for (let b = 0; b * 32 < n; b++) x[t * n + b * 32] = 127;
        const w = allocQuantized(one, dtype, d, n);
        quantizeRows(src, d, n, w, 0);
        const exact = exactProducts(src, x, T, n, d);
        for (const k of [one, ext, three, sums32, sums16]) {
          expect([k.name, Array.from(matmulOn(k, x, w, null, T, n, d))]).toEqual([
            k.name,
            Array.from(exact),
          ]);
        }
      }
    });
  }

  test('q4 with int16 sums: exact at the ends of their range (every weight and activation extreme)', () => {
    // the int16 lanes start from -8·Σx and take each product in turn; with every |x| = 127 and
    // every weight -8 or +7 they reach ±16256, the most the proof in assembly/dot.ts (nib2) allows
    const rand = xorshift(SEED + 10);
    for (const [T, n] of [
      [3, 2048],
      [4, 2048], // the few-token path
      [4, 2200], // 4 streams
      [2, 300], // q4's 2 tokens go through the streams too
    ]) {
      const d = 4;
      const weight = (i: number, j: number) =>
        i === 0 ? -8 : i === 1 ? 7 : i === 2 ? ((j >> 4) & 1 ? 7 : -8) : rand() < 0.5 ? -8 : 7;
      const value = (t: number, j: number) =>
        t === 0
          ? 127
          : t === 1
            ? -127
            : t === 2
              ? (j >> 3) & 1
                ? 127
                : -127
              : rand() < 0.5
                ? -127
                : 127;
      const src = new Float32Array(d * n).map((_, k) => weight(Math.floor(k / n), k % n));
      const x = new Float32Array(T * n).map((_, k) => value(Math.floor(k / n), k % n));
      const w = allocQuantized(one, 'q4', d, n);
      quantizeRows(src, d, n, w, 0);
      const exact = exactProducts(src, x, T, n, d);
      for (const k of [sums16, sums32, ext]) {
        expect([k.name, T, n, Array.from(matmulOn(k, x, w, null, T, n, d))]).toEqual([
          k.name,
          T,
          n,
          Array.from(exact),
        ]);
      }
    }
  });

  test('matmul with d = 0 or T = 0 writes nothing', () => {
    const out = one.allocF32(4).fill(7);
    one.matmul(out, one.allocF32(4), { dtype: 'f32', data: one.allocF32(0) }, null, 1, 4, 0);
    one.matmul(out, one.allocF32(4), { dtype: 'f16', data: one.allocU16(4) }, null, 0, 4, 1);
    expect(Array.from(out)).toEqual([7, 7, 7, 7]);
  });
});

describe('f16 weights re-encoded without subnormals (WasmKernels.prepare)', () => {
  test('exact: same products as the original weights, and no subnormal left', async () => {
    const k = await createWasmKernels({ readWasm, reserveBytes: 16 << 20 });
    const rand = xorshift(SEED + 4);
    const [n, d] = [67, 9];
    const w = weights(k, 'f16', d, n, rand);
    const original: Weight = { dtype: 'f16', data: Uint16Array.from(w.data as Uint16Array) };
    const x = fill(k.allocF32(n), rand);
    const want = new Float32Array(d);
    ref.matmul(want, x, original, null, 1, n, d);
    const p = k.prepare(w);
    expect(p.dtype === 'f16' && p.log2Scale).toBe(-10);
    const bits = p.data as Uint16Array;
    expect(bits.some((h) => (h & 0x7c00) === 0 && (h & 0x3ff) !== 0)).toBe(false);
    // every value is the original times 2^10, exactly
    const refPrepared = new Float32Array(d);
    ref.matmul(refPrepared, x, p, null, 1, n, d);
    expect(Array.from(refPrepared)).toEqual(Array.from(want));
    const got = k.allocF32(d);
    k.matmul(got, x, p, null, 1, n, d);
    expectClose(got, want, 1e-5 * Math.sqrt(n), 1e-5, 'prepared f16 matmul');
    k.close();
  });
  test('a matrix with large values is scaled less, so nothing overflows', async () => {
    const k = await createWasmKernels({ readWasm, reserveBytes: 1 << 20 });
    const data = k.allocU16(4);
    data.set([f32ToF16(30000), f32ToF16(1e-7), f32ToF16(-2), 0]);
    const p = k.prepare({ dtype: 'f16', data });
    expect(p.dtype === 'f16' && p.log2Scale).toBe(-1); // 30000 · 2 < 65504
    k.close();
  });
});
