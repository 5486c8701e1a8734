// Every WebAssembly kernel against its readable TypeScript twin, on fresh random inputs of
// awkward sizes each run (the seed is in the test name to replay a failure), and threaded
// runs against single-threaded ones, bit for bit.
import { f32ToF16 } from '../../src/formats/f16.js';
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
import type { Weight } from '../../src/kernels/types.js';
import { FEW_X_BYTES, STREAM_ROWS, WIDE_ROWS } from '../../src/kernels/wasm/exports.js';
import { createWasmKernels, type WasmKernels } from '../../src/kernels/wasm/index.js';
import { OPS, type OpName } from '../../src/kernels/wasm/ops.js';
import { readWasm, spawnWorker } from '../../src/node/wasm.js';
import { expectClose, maxAbsDiff, xorshift } from '../helpers.js';

const SEED = (Date.now() % 1_000_000) + 1;
const SIZES = [1, 3, 17, 63, 2049];
let one: WasmKernels, two: WasmKernels, three: WasmKernels, ext: WasmKernels;
let sums32: WasmKernels, sums16: WasmKernels; // q4's integer sums in int32 or int16 lanes
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

beforeAll(async () => {
  const o = { readWasm, spawnWorker, reserveBytes: 256 << 20 };
  [one, two, three, ext, sums32, sums16] = await Promise.all([
    ...[1, 2, 3].map((threads) => createWasmKernels({ ...o, threads })),
    createWasmKernels({ ...o, int8Dot: false }), // the SIMD128 integer path, same build
    createWasmKernels({ ...o, q4Sums: 'i32' }),
    createWasmKernels({ ...o, q4Sums: 'i16' }),
  ]);
});
afterAll(() => [one, two, three, ext, sums32, sums16].forEach((k) => k.close()));

/** A copy of `a` in another backend's memory. */
function copyTo<A extends Float32Array | Uint8Array | Uint16Array>(k: WasmKernels, a: A): A {
  const b = (
    a instanceof Float32Array
      ? k.allocF32(a.length)
      : a instanceof Uint16Array
        ? k.allocU16(a.length)
        : k.allocU8(a.length)
  ) as A;
  b.set(a);
  return b;
}

/** Run a matmul on backend k with copies of the inputs. */
function matmulOn(
  k: WasmKernels,
  x: Float32Array,
  w: Weight,
  bias: Float32Array | null,
  T: number,
  n: number,
  d: number,
): Float32Array {
  const wk = { ...w, data: copyTo(k, w.data) } as Weight;
  const out = k.allocF32(T * d);
  k.matmul(out, copyTo(k, x), wk, bias && copyTo(k, bias), T, n, d);
  return out;
}

/** Every row of a T-token matmul, bit for bit, against T single-token ones. */
function expectRowsAsAlone(
  k: WasmKernels,
  x: Float32Array,
  w: Weight,
  bias: Float32Array | null,
  T: number,
  n: number,
  d: number,
  label: string,
): void {
  const all = matmulOn(k, x, w, bias, T, n, d);
  for (let t = 0; t < T; t++) {
    const alone = matmulOn(k, x.subarray(t * n, (t + 1) * n), w, bias, 1, n, d);
    expect([label, t, Array.from(all.subarray(t * d, (t + 1) * d))]).toEqual([
      label,
      t,
      Array.from(alone),
    ]);
  }
}

/** x (T, n) times the integer-valued weights src (d, n), transposed: exact in f64. */
function exactProducts(
  src: Float32Array,
  x: Float32Array,
  T: number,
  n: number,
  d: number,
): Float32Array {
  const out = new Float32Array(T * d);
  for (let t = 0; t < T; t++)
    for (let i = 0; i < d; i++) {
      let sum = 0;
      for (let j = 0; j < n; j++) sum += src[i * n + j] * x[t * n + j];
      out[t * d + i] = sum;
    }
  return out;
}

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
    expect(one.name).toMatch(/^wasm-(simd|relaxed|relaxed-dot)$/);
    expect(two.threads).toBe(2);
    expect(ext.int8Dot).toBe(false);
  });

  // so that a run on Node 22 or 24 (CI runs this file there too) covers the dot path
  (NODE_MAJOR >= 22 ? test : test.skip)(
    `Node 22+ validates the relaxed build and its int8 dot product passes the self-test${NODE_MAJOR >= 22 ? '' : ` (skipped: Node ${NODE_MAJOR} hides relaxed SIMD behind a flag)`}`,
    () => {
      expect(one.flavor).toBe('relaxed');
      expect(one.int8Dot).toBe(true);
      // and its int16 form, so the forced 'i16' instance below really runs matmul_q4_dot16
      expect(sums16.q4Sums).toBe('i16');
      expect(one.q4Sums).toBe('auto');
    },
  );

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

  test('the op table lists every kernel the module exports, with its parameters', () => {
    const fns = Object.entries(one.exports).filter(([, v]) => typeof v === 'function');
    const probes = ['heap_base', 'dot_probe', 'dot16_probe'];
    const kernels = fns.map(([name]) => name).filter((name) => !probes.includes(name));
    expect(kernels.sort()).toEqual(Object.keys(OPS).sort());
    for (const [name, f] of fns) {
      if (probes.includes(name)) continue;
      // a wasm export's length is its parameter count
      expect([name, (f as (...a: number[]) => void).length]).toEqual([
        name,
        OPS[name as OpName].params.length,
      ]);
    }
  });

  test("the tiling constants the TypeScript side sizes scratch and splits by are the modules' own", () => {
    // WIDE_ROWS sizes each thread's f16 prefill scratch: a smaller one here would overrun it
    expect(one.exports.WIDE_ROWS.value).toBe(WIDE_ROWS);
    expect(one.exports.STREAM_ROWS.value).toBe(STREAM_ROWS);
    // the few-token quantized path's activations in each thread's scratch: at most this
    expect(one.exports.FEW_X_BYTES.value).toBe(FEW_X_BYTES);
  });

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

  test('matmul with d = 0 or T = 0 writes nothing', () => {
    const out = one.allocF32(4).fill(7);
    one.matmul(out, one.allocF32(4), { dtype: 'f32', data: one.allocF32(0) }, null, 1, 4, 0);
    one.matmul(out, one.allocF32(4), { dtype: 'f16', data: one.allocU16(4) }, null, 0, 4, 1);
    expect(Array.from(out)).toEqual([7, 7, 7, 7]);
  });

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
        kk.attention(out, q, kc, vc, T, pos0, H, Dh, pos0 + T, 0.25, null);
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
