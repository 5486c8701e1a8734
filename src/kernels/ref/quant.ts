// Block quantization, 32 weights a block, one f32 scale each (w ≈ scale · q):
//   q8: q = round(w / s) in [-127, 127],  s = max|w| / 127
//   q4: q = round(w / s) in [-8, 7],      s = m / -8 with m the weight of largest magnitude
//       (ggml's q4_0: the extreme weight lands exactly on -8, the rest use the full range)
// The activations are quantized the same way to int8 per block (q8), so a product is an
// integer dot product per block, scaled once:
//   out[t, i] = b[i] + Σ_blocks s_w[i, blk] · s_x[t, blk] · Σ_k q_w[i, k] · q_x[t, k]
//
// Layout, chosen so the kernels read one sequential stream: rows go in groups of 4 (the
// wasm kernel computes 4 rows at once), and for each group, block by block, one record:
//   [4 f32 scales, rows 0-3][rows 0-3 values: 4 x 32 int8 (q8) or 4 x 16 bytes (q4)]
// q4 bytes: byte k of a row's block has q[k] + 8 in its low nibble, q[k + 16] + 8 in its high
// nibble (ggml's q4_0 order). Storage is padded to whole groups and blocks with zeros.
// (With the scales in a separate array, or rows as separate streams, 2 or 4 of which share
// a 4 KiB page, the hardware prefetcher falls behind: measured 45% slower for q4.)
import type { Kernels, QuantizedWeight } from '../types.js';

export const BLOCK = 32;
/** Rows interleaved together; the wasm kernels compute this many rows at once. */
export const GROUP = 4;

export const blocksOf = (n: number) => Math.ceil(n / BLOCK);

/** Bytes of one row's values in one block: 32 int8 or 32 nibbles. */
export const valueBytes = (dtype: 'q8' | 'q4') => (dtype === 'q8' ? BLOCK : BLOCK / 2);

/** Bytes of one record: a group's 4 scales and 4 rows of values for one block. */
export const recordBytes = (dtype: 'q8' | 'q4') => 4 * GROUP + GROUP * valueBytes(dtype);

/** Byte offset of the record holding block b of `row`. */
export function recordOffset(dtype: 'q8' | 'q4', row: number, b: number, nb: number): number {
  return (Math.floor(row / GROUP) * nb + b) * recordBytes(dtype);
}

export function quantizedBytes(dtype: 'q8' | 'q4', rows: number, n: number): number {
  return Math.ceil(rows / GROUP) * blocksOf(n) * recordBytes(dtype);
}

/** Allocate a quantized (rows, n) matrix in the kernels' memory (zeroed). */
export function allocQuantized(
  kernels: Kernels,
  dtype: 'q8' | 'q4',
  rows: number,
  n: number,
): QuantizedWeight {
  return {
    dtype,
    data: kernels.allocU8(quantizedBytes(dtype, rows, n)).fill(0),
  } as QuantizedWeight;
}

const f32View = (w: QuantizedWeight) =>
  new Float32Array(w.data.buffer, w.data.byteOffset, w.data.byteLength >> 2);

/** Quantize rows (rows, n) of f32 values into `w`, starting at row `row0`. */
export function quantizeRows(
  src: Float32Array,
  rows: number,
  n: number,
  w: QuantizedWeight,
  row0: number,
): void {
  const nb = blocksOf(n);
  const f32 = f32View(w);
  const per = valueBytes(w.dtype);
  for (let r = 0; r < rows; r++) {
    const row = row0 + r;
    const lane = row % GROUP;
    for (let b = 0; b < nb; b++) {
      const start = r * n + b * BLOCK;
      const len = Math.min(BLOCK, n - b * BLOCK);
      let amax = 0;
      let extreme = 0;
      for (let k = 0; k < len; k++) {
        const v = src[start + k];
        if (Math.abs(v) > amax) {
          amax = Math.abs(v);
          extreme = v;
        }
      }
      const scale = w.dtype === 'q8' ? amax / 127 : extreme / -8;
      const inv = scale !== 0 ? 1 / scale : 0;
      const rec = recordOffset(w.dtype, row, b, nb);
      f32[(rec >> 2) + lane] = scale;
      const values = rec + 4 * GROUP + lane * per;
      for (let k = 0; k < BLOCK; k++) {
        const v = k < len ? src[start + k] : 0;
        if (w.dtype === 'q8') {
          w.data[values + k] = Math.max(-127, Math.min(127, Math.round(v * inv))) & 0xff;
        } else {
          const q = Math.max(-8, Math.min(7, Math.round(v * inv))) + 8;
          const byte = values + (k & 15);
          w.data[byte] = k < 16 ? (w.data[byte] & 0xf0) | q : (w.data[byte] & 0x0f) | (q << 4);
        }
      }
    }
  }
}

/** Scale of block b of `row`. */
export function blockScale(w: QuantizedWeight, nb: number, row: number, b: number): number {
  return f32View(w)[(recordOffset(w.dtype, row, b, nb) >> 2) + (row % GROUP)];
}

/** q of weight (row, k). */
export function weightQ(w: QuantizedWeight, nb: number, row: number, k: number): number {
  const j = k % BLOCK;
  const values =
    recordOffset(w.dtype, row, Math.floor(k / BLOCK), nb) +
    4 * GROUP +
    (row % GROUP) * valueBytes(w.dtype);
  if (w.dtype === 'q8') return (w.data[values + j] << 24) >> 24; // as int8
  const byte = w.data[values + (j & 15)];
  return (j < 16 ? byte & 0x0f : byte >> 4) - 8;
}

/** Rows [row0, row0 + rows) of a quantized matrix, as a view (row0, rows: multiples of GROUP). */
export function quantizedRows(
  w: QuantizedWeight,
  n: number,
  row0: number,
  rows: number,
): QuantizedWeight {
  if (row0 % GROUP || rows % GROUP)
    throw new Error(`quantized row slices must start and end at multiples of ${GROUP}`);
  const groupBytes = blocksOf(n) * recordBytes(w.dtype);
  return {
    dtype: w.dtype,
    data: w.data.subarray((row0 / GROUP) * groupBytes, ((row0 + rows) / GROUP) * groupBytes),
  };
}

/**
 * Quantize activations x (T, n) to int8 per block: xq (T, nb·32) as int16 (pre-widened for
 * the SIMD dot product), xs (T, nb) scales. Padding positions get 0.
 */
export function quantizeActivations(
  x: Float32Array,
  T: number,
  n: number,
  xq: Int16Array,
  xs: Float32Array,
): void {
  const nb = blocksOf(n);
  for (let t = 0; t < T; t++) {
    for (let b = 0; b < nb; b++) {
      const start = t * n + b * BLOCK;
      const len = Math.min(BLOCK, n - b * BLOCK);
      let amax = 0;
      for (let k = 0; k < len; k++) amax = Math.max(amax, Math.abs(x[start + k]));
      const scale = amax / 127;
      const inv = scale !== 0 ? 1 / scale : 0;
      xs[t * nb + b] = scale;
      const out = t * nb * BLOCK + b * BLOCK;
      for (let k = 0; k < BLOCK; k++) xq[out + k] = k < len ? Math.round(x[start + k] * inv) : 0;
    }
  }
}

/** W (d,n) @ x (T,n) + b (d,) -> out (T,d), W quantized: the formula above, plainly. */
export function matmulQuantized(
  out: Float32Array,
  x: Float32Array,
  w: QuantizedWeight,
  bias: Float32Array | null,
  T: number,
  n: number,
  d: number,
): void {
  const nb = blocksOf(n);
  const xq = new Int16Array(T * nb * BLOCK);
  const xs = new Float32Array(T * nb);
  quantizeActivations(x, T, n, xq, xs);
  const f32 = f32View(w);
  const i8 = new Int8Array(w.data.buffer, w.data.byteOffset, w.data.length);
  const per = valueBytes(w.dtype);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < d; i++) {
      let sum = 0;
      for (let b = 0; b < nb; b++) {
        const rec = recordOffset(w.dtype, i, b, nb);
        const scale = f32[(rec >> 2) + (i % GROUP)];
        const values = rec + 4 * GROUP + (i % GROUP) * per;
        const xb = t * nb * BLOCK + b * BLOCK;
        let dot = 0; // exact integer
        if (w.dtype === 'q8') {
          for (let k = 0; k < BLOCK; k++) dot += i8[values + k] * xq[xb + k];
        } else {
          for (let k = 0; k < 16; k++) {
            const byte = w.data[values + k];
            dot += ((byte & 0x0f) - 8) * xq[xb + k] + ((byte >> 4) - 8) * xq[xb + k + 16];
          }
        }
        sum += scale * xs[t * nb + b] * dot;
      }
      out[t * d + i] = sum + (bias ? bias[i] : 0);
    }
  }
}
