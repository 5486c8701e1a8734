// Every WebAssembly kernel against its readable TypeScript twin, on fresh random inputs of
// awkward sizes each run (the seed is in the test name to replay a failure), and threaded
// runs against single-threaded ones, bit for bit.
import { f32ToF16 } from '../../src/kernels/ref/f16.js';
import * as ref from '../../src/kernels/ref/index.js';
import {
  allocQuantized,
  quantizeRows,
  weightQ,
  blockScale,
  blocksOf,
  quantizeActivations,
  recordsOf,
} from '../../src/kernels/ref/quant.js';
import type { Weight } from '../../src/kernels/types.js';
import { OP, STREAM_ROWS, WIDE_ROWS } from '../../src/kernels/wasm/exports.js';
import { createWasmKernels, type WasmKernels } from '../../src/kernels/wasm/index.js';
import { readWasm, spawnWorker } from '../../src/node/wasm.js';
import { expectClose, maxAbsDiff, xorshift } from '../helpers.js';

const SEED = (Date.now() % 1_000_000) + 1;
const SIZES = [1, 3, 17, 63, 2049];
let one: WasmKernels, two: WasmKernels, three: WasmKernels;

beforeAll(async () => {
  const o = { readWasm, spawnWorker, reserveBytes: 64 << 20 };
  [one, two, three] = await Promise.all(
    [1, 2, 3].map((threads) => createWasmKernels({ ...o, threads })),
  );
});
afterAll(() => [one, two, three].forEach((k) => k.close()));

function fill(a: Float32Array, rand: () => number, scale = 1): Float32Array {
  for (let i = 0; i < a.length; i++) a[i] = (rand() * 2 - 1) * scale;
  return a;
}

function weights(
  k: WasmKernels,
  dtype: 'f32' | 'f16',
  d: number,
  n: number,
  rand: () => number,
): Weight {
  if (dtype === 'f32') return { dtype, data: fill(k.allocF32(d * n), rand, 0.5) };
  const data = k.allocU16(d * n);
  for (let i = 0; i < data.length; i++) {
    // mostly normal values, some subnormals and zeros, both signs
    const r = rand();
    const v = r < 0.05 ? (rand() - 0.5) * 1e-6 : r < 0.07 ? 0 : (rand() * 2 - 1) * 0.5;
    data[i] = f32ToF16(v);
  }
  return { dtype, data };
}

describe(`wasm kernels vs TypeScript twins (seed ${SEED})`, () => {
  test('the backend reports what it is', () => {
    expect(one.name).toMatch(/^wasm-(simd|relaxed)$/);
    expect(two.threads).toBe(2);
  });

  for (const dtype of ['f32', 'f16'] as const) {
    test(`matmul ${dtype}: T x n x d over awkward sizes, with and without bias`, () => {
      const rand = xorshift(SEED);
      for (const T of [1, 3, 4, 5, 9]) {
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
          }
        }
      }
    });
  }

  for (const dtype of ['q8', 'q4'] as const) {
    test(`matmul ${dtype}: quantized twin over awkward sizes (padded blocks and records, short tiles)`, () => {
      const rand = xorshift(SEED + (dtype === 'q8' ? 5 : 6));
      for (const T of [1, 2, 5]) {
        for (const n of [1, 3, 17, 63, 64, 2049]) {
          for (const d of n > 100 ? [1, 3, 5, 17, 63] : [1, 3, 5, 17, 63, 64, 70, 131, 195]) {
            const src = fill(new Float32Array(d * n), rand, 0.5);
            const w = allocQuantized(one, dtype, d, n);
            quantizeRows(src, d, n, w, 0);
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
            // threads split whole tiles of 64 rows: bit-identical
            const got3 = three.allocF32(T * d);
            const w3 = allocQuantized(three, dtype, d, n);
            w3.data.set(w.data);
            const x3 = three.allocF32(T * n);
            x3.set(x);
            const b3 = bias ? three.allocF32(d) : null;
            if (b3 && bias) b3.set(bias);
            three.matmul(got3, x3, w3, b3, T, n, d);
            expect(Array.from(got3)).toEqual(Array.from(got));
          }
        }
      }
    });
  }

  test("the tiling constants the TypeScript side sizes scratch and splits by are the modules' own", () => {
    // WIDE_ROWS sizes each thread's f16 prefill scratch: a smaller one here would overrun it
    expect(one.exports.WIDE_ROWS.value).toBe(WIDE_ROWS);
    expect(one.exports.STREAM_ROWS.value).toBe(STREAM_ROWS);
  });

  test('quantize_act: the same integers and scales as quantizeActivations, padding zero', () => {
    const rand = xorshift(SEED + 8);
    for (const T of [1, 2, 5]) {
      for (const n of [...SIZES, 64, 129]) {
        const x = fill(three.allocF32(T * n), rand, 3);
        if (n > 3) {
          // ties: with max |x| = 127 the scale is 1, and Math.round(2.5) = 3, Math.round(-2.5) = -2
          x[0] = 127;
          x[1] = 2.5;
          x[2] = -2.5;
        }
        const nbp = recordsOf(n) * 4;
        const want = {
          xq: new Int16Array(T * nbp * 32),
          xs: new Float32Array(T * nbp),
          xsum: new Int32Array(T * nbp),
        };
        quantizeActivations(x, T, n, want.xq, want.xs, want.xsum);
        const xq = three.allocU8(T * nbp * 64).fill(0xaa); // garbage: padding must be written
        const xs = three.allocF32(T * nbp);
        const xsum = three.allocF32(T * nbp);
        three.pool.run(OP.quantize_act, [
          x.byteOffset,
          n,
          nbp,
          xq.byteOffset,
          xs.byteOffset,
          xsum.byteOffset,
          T,
        ]);
        const where = `T=${T} n=${n}`;
        expect([where, Array.from(new Int16Array(xq.buffer, xq.byteOffset, T * nbp * 32))]).toEqual(
          [where, Array.from(want.xq)],
        );
        expect(Array.from(xs)).toEqual(Array.from(want.xs));
        expect(Array.from(new Int32Array(xsum.buffer, xsum.byteOffset, T * nbp))).toEqual(
          Array.from(want.xsum),
        );
      }
    }
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

  test('matmul with d = 0 or T = 0 writes nothing', () => {
    const out = one.allocF32(4).fill(7);
    one.matmul(out, one.allocF32(4), { dtype: 'f32', data: one.allocF32(0) }, null, 1, 4, 0);
    one.matmul(out, one.allocF32(4), { dtype: 'f16', data: one.allocU16(4) }, null, 0, 4, 1);
    expect(Array.from(out)).toEqual([7, 7, 7, 7]);
  });

  test('attention over awkward head sizes and positions', () => {
    const rand = xorshift(SEED + 1);
    for (const [H, Dh] of [
      [1, 1],
      [3, 5],
      [4, 16],
      [2, 63],
    ]) {
      for (const [T, pos0] of [
        [1, 0],
        [1, 40],
        [7, 0],
        [3, 17],
      ]) {
        const S = H * Dh;
        const maxPos = pos0 + T + 2;
        const q = fill(one.allocF32(T * S), rand);
        const k = fill(one.allocF32(maxPos * S), rand);
        const v = fill(one.allocF32(maxPos * S), rand);
        const want = new Float32Array(T * S);
        const P = pos0 + T;
        const wantProbs = new Float32Array(H * T * P);
        ref.attention(want, q, k, v, T, pos0, H, Dh, 1 / Math.sqrt(Dh), wantProbs);
        const got = one.allocF32(T * S);
        const probs = one.allocF32(H * T * P).fill(NaN);
        one.attention(got, q, k, v, T, pos0, H, Dh, 1 / Math.sqrt(Dh), probs);
        const label = `attention H=${H} Dh=${Dh} T=${T} pos0=${pos0}`;
        expectClose(got, want, 1e-5, 1e-5, label);
        expectClose(probs, wantProbs, 1e-6, 1e-5, `${label} probabilities`);
        const alone = one.allocF32(T * S);
        one.attention(alone, q, k, v, T, pos0, H, Dh, 1 / Math.sqrt(Dh), null);
        expect(maxAbsDiff(alone, got)).toBe(0);
      }
    }
  });

  test('gelu_new over awkward lengths', () => {
    const rand = xorshift(SEED + 2);
    for (const len of [1, 3, 17, 63, 2049]) {
      const g = fill(one.allocF32(len), rand, 6);
      const gw = Float32Array.from(g);
      ref.gelu_new(gw, len);
      one.gelu_new(g, len);
      expectClose(g, gw, 1e-6, 1e-5, `gelu_new ${len}`);
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
    one.attention(got, q, k, v, T, 0, H, Dh, 1, probs);
    const want = new Float32Array(T * Dh);
    const wantProbs = new Float32Array(H * T * T);
    ref.attention(want, q, k, v, T, 0, H, Dh, 1, wantProbs);
    expect(got.every(Number.isFinite)).toBe(true);
    expectClose(got, want, 1e-5, 1e-5, 'attention');
    expectClose(probs, wantProbs, 1e-6, 0, 'probabilities');
  });

  test('2 and 3 threads give bit-identical results to 1', () => {
    const rand = xorshift(SEED + 3);
    for (const k of [two, three]) {
      // T = 9: two blocks of 4 tokens (the GEMM, f16 widening into per-thread scratch) + 1
      for (const [dtype, T] of [
        ['f32', 3],
        ['f16', 3],
        ['f32', 9],
        ['f16', 9],
      ] as const) {
        const [n, d] = [67, 103];
        const w1 = weights(one, dtype, d, n, rand);
        const wk =
          dtype === 'f32' ? { dtype, data: k.allocF32(d * n) } : { dtype, data: k.allocU16(d * n) };
        (wk.data as Float32Array).set(w1.data as Float32Array);
        const x1 = fill(one.allocF32(T * n), rand);
        const xk = k.allocF32(T * n);
        xk.set(x1);
        const [o1, ok] = [one.allocF32(T * d), k.allocF32(T * d)];
        one.matmul(o1, x1, w1, null, T, n, d);
        k.matmul(ok, xk, wk as Weight, null, T, n, d);
        expect(Array.from(ok)).toEqual(Array.from(o1));
      }
      const [H, Dh, T, pos0] = [5, 16, 2, 9];
      const S = H * Dh;
      const arrs = [T * S, (pos0 + T) * S, (pos0 + T) * S].map((len) =>
        fill(new Float32Array(len), rand),
      );
      const run = (kk: WasmKernels) => {
        const [q, kc, vc] = arrs.map((a) => {
          const b = kk.allocF32(a.length);
          b.set(a);
          return b;
        });
        const out = kk.allocF32(T * S);
        kk.attention(out, q, kc, vc, T, pos0, H, Dh, 0.25, null);
        return Array.from(out);
      };
      expect(run(k)).toEqual(run(one));
    }
  });

  test('arrays from outside the wasm memory are refused', () => {
    expect(() => one.gelu_new(new Float32Array(4), 4)).toThrow(/allocated by the wasm backend/);
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

describe('wasm backend failures are errors, not hangs', () => {
  test('an op that fails in the workers surfaces as an error and closes the pool', async () => {
    const k = await createWasmKernels({ readWasm, spawnWorker, threads: 2, reserveBytes: 1 << 20 });
    expect(() => k.pool.run(42, [])).toThrow(/unknown kernel op 42/);
    expect(() => k.gelu_new(k.allocF32(4), 4)).toThrow(/the thread pool was closed/);
  });
  test('a model larger than wasm32 memory is refused with its size', async () => {
    await expect(createWasmKernels({ readWasm, reserveBytes: 5.7e9 })).rejects.toThrow(
      /needs 5\.31 GiB of WebAssembly memory, more than the 4 GiB a wasm32 module can address/,
    );
  });
});
