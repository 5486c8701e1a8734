// What the wasm kernel tests share: the backends they compare (1, 2 and 3 threads, the SIMD128
// integer path, q4's two integer-sum forms), the seed, the awkward sizes, and input makers.
// Each test file (test/kernels/*.test.ts) takes one op; the seed is in its title to replay a
// failure.
import { f32ToF16 } from '../../src/formats/f16.js';

import type { Weight } from '../../src/kernels/types.js';

import { createWasmKernels, type WasmKernels } from '../../src/kernels/wasm/index.js';

import { readWasm, spawnWorker } from '../../src/node/wasm.js';

export const SEED = (Date.now() % 1_000_000) + 1;
export const SIZES = [1, 3, 17, 63, 2049];
export let one: WasmKernels, two: WasmKernels, three: WasmKernels, ext: WasmKernels;
export let sums32: WasmKernels, sums16: WasmKernels; // q4's integer sums in int32 or int16 lanes
export const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

/** The backends every kernel test compares (call once at the top of a test file). */
export function useBackends(): void {
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
}

/** A copy of `a` in another backend's memory. */
export function copyTo<A extends Float32Array | Uint8Array | Uint16Array>(k: WasmKernels, a: A): A {
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
export function matmulOn(
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
export function expectRowsAsAlone(
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
export function exactProducts(
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

export function fill(a: Float32Array, rand: () => number, scale = 1): Float32Array {
  for (let i = 0; i < a.length; i++) a[i] = (rand() * 2 - 1) * scale;
  return a;
}

export function weights(
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
