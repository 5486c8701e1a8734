// Block quantization, 32 weights a block, one f32 scale each (w ≈ scale · q):
//   q8: q = round(w / s) in [-127, 127],  s = max|w| / 127
//   q4: q = round(w / s) in [-8, 7],      s = m / -8 with m the weight of largest magnitude
//       (ggml's q4_0: the extreme weight lands exactly on -8, the rest use the full range)
// The activations are quantized the same way to int8 per block (q8), so a product is an
// integer dot product per block, scaled once:
//   out[t, i] = b[i] + Σ_blocks s_w[i, blk] · s_x[t, blk] · Σ_k q_w[i, k] · q_x[t, k]
//
// Layout: row-major, so any run of rows is itself a matrix (fused Wqkv splits into views).
// A row is a run of records, one per 4 blocks (128 weights):
//   [4 f32 scales, blocks 0-3][blocks 0-3 values: 4 x 32 int8 (q8) or 4 x 16 bytes (q4)]
// so the scales of 4 blocks come in one vector load next to their values. Blocks are padded
// to whole records with zeros.
// q8 values: q[0..31] as int8, in order. q4 values: 8 little-endian 16-bit lanes; lane j
// holds q[j] + 8 in bits 0-3, q[j+8] + 8 in bits 4-7, q[j+16] + 8 in bits 8-11 and q[j+24] + 8
// in bits 12-15, so one shift and one mask give 8 weights in order, already 16 bits wide.
//
// Why rows and not the 4-row interleaved records this replaced: the kernel reads 4 rows far
// apart (i, i+s, i+2s, i+3s), four long sequential streams, and the hardware prefetcher
// keeps up with that; one stream (interleaved records) or 4 streams of adjacent rows, which
// restart every few KiB, ran at half the memory bandwidth (measured in assembly/quant.ts).
import type { Kernels, QuantizedWeight } from '../types.js';

export const BLOCK = 32;
/** Blocks in one record (one vector of scales). */
export const RECORD_BLOCKS = 4;
export const blocksOf = (n: number) => Math.ceil(n / BLOCK);
/** Records in a row of n weights. */
export const recordsOf = (n: number) => Math.ceil(blocksOf(n) / RECORD_BLOCKS);

/** Bytes of one block's values: 32 int8 or 32 nibbles. */
export const valueBytes = (dtype: 'q8' | 'q4') => (dtype === 'q8' ? BLOCK : BLOCK / 2);

/** Bytes of one record: 4 scales and 4 blocks of values. */
export const recordBytes = (dtype: 'q8' | 'q4') => RECORD_BLOCKS * (4 + valueBytes(dtype));

/** Bytes of one row of n weights. */
export const rowBytes = (dtype: 'q8' | 'q4', n: number) => recordsOf(n) * recordBytes(dtype);

/** Byte offset of the record holding block b of `row`. */
export function recordOffset(dtype: 'q8' | 'q4', row: number, b: number, n: number): number {
  return row * rowBytes(dtype, n) + Math.floor(b / RECORD_BLOCKS) * recordBytes(dtype);
}

export function quantizedBytes(dtype: 'q8' | 'q4', rows: number, n: number): number {
  return rows * rowBytes(dtype, n);
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

/** Byte offset of weight k's value in a block (q8), or of its 16-bit lane (q4). */
const q4Lane = (k: number) => 2 * (k & 7);
/** Bit position of weight k's nibble in its 16-bit lane (q4). */
const q4Shift = (k: number) => 4 * (k >> 3);

/** Index, in the matrix's f32 view, of the scale of block b of `row`. */
const scaleIndex = (dtype: 'q8' | 'q4', row: number, b: number, n: number) =>
  (recordOffset(dtype, row, b, n) >> 2) + (b % RECORD_BLOCKS);

/** Byte offset of the values of block b of `row`. */
const valuesOffset = (dtype: 'q8' | 'q4', row: number, b: number, n: number) =>
  recordOffset(dtype, row, b, n) + 4 * RECORD_BLOCKS + (b % RECORD_BLOCKS) * valueBytes(dtype);

/** q of weight j of the block whose values start at byte `values`. */
function readQ(w: QuantizedWeight, values: number, j: number): number {
  if (w.dtype === 'q8') return (w.data[values + j] << 24) >> 24; // as int8
  const at = values + q4Lane(j);
  return (((w.data[at] | (w.data[at + 1] << 8)) >> q4Shift(j)) & 0x0f) - 8;
}

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
  for (let r = 0; r < rows; r++) {
    const row = row0 + r;
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
      f32[scaleIndex(w.dtype, row, b, n)] = scale;
      const values = valuesOffset(w.dtype, row, b, n);
      for (let k = 0; k < BLOCK; k++) {
        const v = k < len ? src[start + k] : 0;
        if (w.dtype === 'q8') {
          w.data[values + k] = Math.max(-127, Math.min(127, Math.round(v * inv))) & 0xff;
        } else {
          const q = Math.max(-8, Math.min(7, Math.round(v * inv))) + 8;
          const at = values + q4Lane(k);
          const lane = w.data[at] | (w.data[at + 1] << 8) | (q << q4Shift(k));
          w.data[at] = lane & 0xff;
          w.data[at + 1] = lane >> 8;
        }
      }
    }
  }
}

/** Scale of block b of `row` (n weights a row). */
export function blockScale(w: QuantizedWeight, n: number, row: number, b: number): number {
  return f32View(w)[scaleIndex(w.dtype, row, b, n)];
}

/** q of weight (row, k) (n weights a row). */
export function weightQ(w: QuantizedWeight, n: number, row: number, k: number): number {
  return readQ(w, valuesOffset(w.dtype, row, Math.floor(k / BLOCK), n), k % BLOCK);
}

/** Row `row` of a quantized (.., n) matrix: its q values into q (n), block scales into scales (nb). */
export function decodeRow(
  w: QuantizedWeight,
  n: number,
  row: number,
  q: Int32Array,
  scales: Float64Array,
): void {
  const f32 = f32View(w);
  for (let b = 0; b < blocksOf(n); b++) {
    scales[b] = f32[scaleIndex(w.dtype, row, b, n)];
    const values = valuesOffset(w.dtype, row, b, n);
    for (let j = 0; j < BLOCK && b * BLOCK + j < n; j++) q[b * BLOCK + j] = readQ(w, values, j);
  }
}

/** Rows [row0, row0 + rows) of a quantized (.., n) matrix, as a view. */
export function quantizedRows(
  w: QuantizedWeight,
  n: number,
  row0: number,
  rows: number,
): QuantizedWeight {
  const bytes = rowBytes(w.dtype, n);
  return { dtype: w.dtype, data: w.data.subarray(row0 * bytes, (row0 + rows) * bytes) };
}

/**
 * Quantize activations x (T, n) to int8 per block, for rows of `recordsOf(n)` records: per
 * token nbp = 4·recordsOf(n) blocks, the padding ones 0. xq (T, nbp·32): the values as int16
 * (pre-widened for the SIMD dot product); xs (T, nbp): scales; xsum (T, nbp): the sum of each
 * block's values (q4 stores q + 8: Σ (q + 8)·x - 8·Σ x is the dot product of q).
 */
export function quantizeActivations(
  x: Float32Array,
  T: number,
  n: number,
  xq: Int16Array,
  xs: Float32Array,
  xsum: Int32Array,
): void {
  const nbp = recordsOf(n) * RECORD_BLOCKS;
  for (let t = 0; t < T; t++) {
    for (let b = 0; b < nbp; b++) {
      const start = t * n + b * BLOCK;
      const len = Math.max(0, Math.min(BLOCK, n - b * BLOCK));
      let amax = 0;
      for (let k = 0; k < len; k++) amax = Math.max(amax, Math.abs(x[start + k]));
      const scale = amax / 127;
      const inv = scale !== 0 ? 1 / scale : 0;
      xs[t * nbp + b] = scale;
      const out = (t * nbp + b) * BLOCK;
      let sum = 0;
      for (let k = 0; k < BLOCK; k++) {
        const q = k < len ? Math.round(x[start + k] * inv) : 0;
        xq[out + k] = q;
        sum += q;
      }
      xsum[t * nbp + b] = sum;
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
  const nbp = recordsOf(n) * RECORD_BLOCKS;
  const xq = new Int16Array(T * nbp * BLOCK);
  const xs = new Float32Array(T * nbp);
  quantizeActivations(x, T, n, xq, xs, new Int32Array(T * nbp));
  const q = new Int32Array(n);
  const scales = new Float64Array(nb);
  for (let i = 0; i < d; i++) {
    decodeRow(w, n, i, q, scales);
    for (let t = 0; t < T; t++) {
      let sum = 0;
      for (let b = 0; b < nb; b++) {
        const xb = (t * nbp + b) * BLOCK;
        let dot = 0; // exact integer
        for (let k = 0; k < BLOCK && b * BLOCK + k < n; k++) dot += q[b * BLOCK + k] * xq[xb + k];
        sum += scales[b] * xs[t * nbp + b] * dot;
      }
      out[t * d + i] = sum + (bias ? bias[i] : 0);
    }
  }
}
