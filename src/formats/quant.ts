// Block quantization, 32 weights a block, one f32 scale each (w ≈ scale · q):
//   q8: q = round(w / s) in [-127, 127],  s = max|w| / 127
//   q4: q = round(w / s) in [-8, 7],      s = m / -8 with m the weight of largest magnitude
//       (ggml's q4_0: the extreme weight lands exactly on -8, the rest use the full range)
// Activations are quantized the same way to int8 per block (q8), so a product is an integer
// dot product per block, scaled once (src/kernels/ref/quant.ts):
//   out[t, i] = b[i] + Σ_blocks s_w[i, blk] · s_x[t, blk] · Σ_k q_w[i, k] · q_x[t, k]
//
// This file is the format: how the numbers sit in memory (layout version 3).
//
// Row-major, so any run of rows is itself a matrix (a fused Wqkv splits into views). A row is
// a run of records, one per 4 blocks (128 weights), padded with zero blocks:
//   [4 f32 scales, blocks 0-3][values of blocks 0-3]
// The values of a record's 4 blocks are interleaved 4 weights at a time: 16-byte vector k
// (k = 0..7) holds weights 4k..4k+3 of block 0, then of block 1, 2 and 3. A SIMD dot product
// that sums groups of 4 neighbouring bytes into 4 lanes (relaxed SIMD's i8 dot product)
// then accumulates block b in lane b: the 4 block sums come out as one vector, in the order
// of the 4 scales, with no shuffling. The activations are stored in the same order.
//   q8: byte 16k + 4b + m       = q[b][4k + m]                     (int8)
//   q4: byte 16j + 4b + m, j<4  = (q[b][4j + m] + 8) | (q[b][16 + 4j + m] + 8) << 4
// so the low nibbles of q4's vector j are q8's vector j and the high nibbles its vector j + 4.
/**
 * Block-quantized weights: each row is cut into blocks of 32 weights, w ≈ scale · q, with
 * 8-bit (q8) or 4-bit (q4) q and an f32 scale per block. `data` holds scales and values
 * together, in the layout this file describes.
 */
export type QuantizedWeight =
  | { readonly dtype: 'q8'; readonly data: Uint8Array }
  | { readonly dtype: 'q4'; readonly data: Uint8Array };

/** Whatever hands out byte buffers: a kernel backend (its memory), or plain arrays. */
export interface ByteAllocator {
  allocU8(length: number): Uint8Array;
}

// module-level names: a global lookup per element is slow where code runs in a vm context (jest)
const { abs, ceil, floor, max, min, round } = Math;

export type QuantDType = 'q8' | 'q4';

export const BLOCK = 32;
/** Blocks in one record (one vector of scales). */
export const RECORD_BLOCKS = 4;
/** Weights in one record. */
export const RECORD = BLOCK * RECORD_BLOCKS;
/** The layout version this file describes (saved in quantized checkpoints' metadata). */
export const QUANT_LAYOUT = '3';

export const blocksOf = (n: number) => ceil(n / BLOCK);
/** Records in a row of n weights. */
export const recordsOf = (n: number) => ceil(n / RECORD);

/** Bytes of one record's values: 128 int8 or 128 nibbles. */
export const valueBytes = (dtype: QuantDType) => (dtype === 'q8' ? RECORD : RECORD / 2);

/** Bytes of one record: 4 scales and the values of 4 blocks. */
export const recordBytes = (dtype: QuantDType) => 4 * RECORD_BLOCKS + valueBytes(dtype);

/** Bytes of one row of n weights. */
export const rowBytes = (dtype: QuantDType, n: number) => recordsOf(n) * recordBytes(dtype);

export function quantizedBytes(dtype: QuantDType, rows: number, n: number): number {
  return rows * rowBytes(dtype, n);
}

/** Position of weight k (0..127) of a record in the interleaved order: 16·vector + 4·block + m. */
export function interleaved(k: number): number {
  const b = k >> 5; // block
  const j = k & 31; // weight in the block
  return 16 * (j >> 2) + 4 * b + (j & 3);
}

/** interleaved(k) for every k, looked up in the loops below. */
const INTERLEAVE = Uint8Array.from({ length: RECORD }, (_, k) => interleaved(k));

/** Allocate a quantized (rows, n) matrix in the kernels' memory (zeroed). */
export function allocQuantized(
  alloc: ByteAllocator,
  dtype: QuantDType,
  rows: number,
  n: number,
): QuantizedWeight {
  return {
    dtype,
    data: alloc.allocU8(quantizedBytes(dtype, rows, n)).fill(0),
  } as QuantizedWeight;
}

const f32View = (w: QuantizedWeight) =>
  new Float32Array(w.data.buffer, w.data.byteOffset, w.data.byteLength >> 2);

/** Byte offset of the record holding weight column j of `row`. */
const recordOffset = (w: QuantizedWeight, n: number, row: number, j: number) =>
  row * rowBytes(w.dtype, n) + floor(j / RECORD) * recordBytes(w.dtype);

/** Store q (q8: -127..127, q4: -8..7) as weight k (0..127) of the record whose values start at `values`. */
function storeQ(w: QuantizedWeight, values: number, k: number, q: number): void {
  const pos = INTERLEAVE[k];
  if (w.dtype === 'q8') w.data[values + pos] = q & 0xff;
  else if (pos < 64)
    w.data[values + pos] = (w.data[values + pos] & 0xf0) | (q + 8); // low nibble
  else w.data[values + pos - 64] = (w.data[values + pos - 64] & 0x0f) | ((q + 8) << 4);
}

/** q of weight k (0..127) of the record whose values start at `values`. */
function loadQ(w: QuantizedWeight, values: number, k: number): number {
  const pos = INTERLEAVE[k];
  if (w.dtype === 'q8') return (w.data[values + pos] << 24) >> 24; // as int8
  const byte = w.data[values + (pos & 63)];
  return (pos < 64 ? byte & 0x0f : byte >> 4) - 8;
}

/** q of weight (row, j) (n weights a row). */
export function weightQ(w: QuantizedWeight, n: number, row: number, j: number): number {
  return loadQ(w, recordOffset(w, n, row, j) + 4 * RECORD_BLOCKS, j % RECORD);
}

/** Scale of block b of `row` (n weights a row). */
export function blockScale(w: QuantizedWeight, n: number, row: number, b: number): number {
  return f32View(w)[(recordOffset(w, n, row, b * BLOCK) >> 2) + (b % RECORD_BLOCKS)];
}

/** Quantize rows (rows, n) of f32 values into `w`, starting at row `row0`. */
export function quantizeRows(
  src: Float32Array,
  rows: number,
  n: number,
  w: QuantizedWeight,
  row0: number,
): void {
  const f32 = f32View(w);
  const [q8, recBytes] = [w.dtype === 'q8', recordBytes(w.dtype)];
  for (let r = 0; r < rows; r++) {
    for (let rec = 0; rec < recordsOf(n); rec++) {
      const base = (row0 + r) * rowBytes(w.dtype, n) + rec * recBytes; // 4 scales, then values
      for (let b = 0; b < RECORD_BLOCKS; b++) {
        const col = rec * RECORD + b * BLOCK; // first column of the block
        const len = max(0, min(BLOCK, n - col)); // 0 for padding blocks
        const x = src.subarray(r * n + col, r * n + col + len);
        let extreme = 0; // the weight of largest magnitude
        for (let k = 0; k < len; k++) if (abs(x[k]) > abs(extreme)) extreme = x[k];
        const scale = q8 ? abs(extreme) / 127 : extreme / -8;
        const inv = scale !== 0 ? 1 / scale : 0;
        f32[(base >> 2) + b] = scale;
        for (let k = 0; k < BLOCK; k++) {
          const q = k < len ? round(x[k] * inv) : 0; // padding: weight 0
          storeQ(
            w,
            base + 4 * RECORD_BLOCKS,
            b * BLOCK + k,
            q8 ? clamp(q, -127, 127) : clamp(q, -8, 7),
          );
        }
      }
    }
  }
}

const clamp = (v: number, lo: number, hi: number) => max(lo, min(hi, v));

/** Row `row` of a quantized (.., n) matrix: its q values into q (n), block scales into scales. */
export function decodeRow(
  w: QuantizedWeight,
  n: number,
  row: number,
  q: Int32Array,
  scales: Float64Array,
): void {
  const f32 = f32View(w);
  const recBytes = recordBytes(w.dtype);
  for (let rec = 0; rec < recordsOf(n); rec++) {
    const base = row * rowBytes(w.dtype, n) + rec * recBytes;
    for (let k = 0; k < RECORD && rec * RECORD + k < n; k++)
      q[rec * RECORD + k] = loadQ(w, base + 4 * RECORD_BLOCKS, k);
    for (let b = 0; b < RECORD_BLOCKS && rec * RECORD + b * BLOCK < n; b++)
      scales[rec * RECORD_BLOCKS + b] = f32[(base >> 2) + b];
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
 * Quantized activations of T tokens of n features, in the weights' record order: per token
 * nbp = 4·recordsOf(n) blocks (the padding ones 0); q (T, nbp·32) int8 values, interleaved
 * per record as the weights are; scale (T, nbp); sum (T, nbp): Σ of each block's values
 * (q4 stores q + 8: Σ (q + 8)·x - 8·Σ x is the dot product of q).
 */
export interface QuantizedActivations {
  q: Int8Array;
  scale: Float32Array;
  sum: Int32Array;
}

/**
 * Where stored quantized data breaks the format, or null: a block scale that is not a finite
 * number, or a q8 value of -128 (the format's values are -127..127; the int8 dot kernels move
 * signs by negation, and -128 has none). For data read from a file.
 */
export function quantizedFault(dtype: QuantDType, data: Uint8Array): string | null {
  const rec = recordBytes(dtype);
  const words = new Uint32Array(data.buffer, data.byteOffset, data.byteLength >> 2);
  const scales = new Float32Array(data.buffer, data.byteOffset, data.byteLength >> 2);
  const recWords = rec >> 2;
  for (let r = 0, at = 0; at < words.length; r++, at += recWords) {
    for (let b = 0; b < RECORD_BLOCKS; b++) {
      if (!Number.isFinite(scales[at + b]))
        return `record ${r}: block scale ${b} is ${scales[at + b]}`;
    }
    if (dtype !== 'q8') continue;
    for (let i = at + RECORD_BLOCKS; i < at + recWords; i++) {
      // a byte equal to 0x80: the zero-byte test on v ^ 0x80808080
      const v = words[i] ^ 0x80808080;
      if (((v - 0x01010101) & ~v & 0x80808080) !== 0) {
        return `record ${r}: a value of -128 (q8 values are -127..127)`;
      }
    }
  }
  return null;
}

/** Blocks a token's activations take: whole records. */
export const activationBlocks = (n: number) => recordsOf(n) * RECORD_BLOCKS;
