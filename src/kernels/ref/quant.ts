// The quantized kernels, plainly (twins of assembly/quant.ts; the format: src/formats/quant.ts).
import {
  activationBlocks,
  BLOCK,
  blocksOf,
  decodeRow,
  interleaved,
  RECORD,
  RECORD_BLOCKS,
  type QuantizedActivations,
} from '../../formats/quant.js';
import type { QuantizedWeight } from '../types.js';

// module-level names: a global lookup per element is slow where code runs in a vm context (jest)
const { abs, floor, max, min, round } = Math;

/**
 * Activations x (T, n) to int8 blocks of 32: per block s = max|x| / 127 and
 * q = round(x / s) in [-127, 127] (Math.round: halves go up), in f64 as written here; the wasm
 * twin reproduces these integers exactly. Values land in the record-interleaved order.
 */
export function quantize_act(
  x: Float32Array,
  T: number,
  n: number,
  out: QuantizedActivations,
): void {
  const nbp = activationBlocks(n);
  for (let t = 0; t < T; t++) {
    for (let b = 0; b < nbp; b++) {
      const start = t * n + b * BLOCK;
      const len = max(0, min(BLOCK, n - b * BLOCK));
      let amax = 0;
      for (let k = 0; k < len; k++) amax = max(amax, abs(x[start + k]));
      const scale = amax / 127;
      const inv = scale !== 0 ? 1 / scale : 0;
      out.scale[t * nbp + b] = scale;
      const record = (t * nbp + b - (b % RECORD_BLOCKS)) * BLOCK; // first value of the record
      let sum = 0;
      for (let k = 0; k < BLOCK; k++) {
        const q = k < len ? round(x[start + k] * inv) : 0;
        out.q[record + interleaved((b % RECORD_BLOCKS) * BLOCK + k)] = q;
        sum += q;
      }
      out.sum[t * nbp + b] = sum;
    }
  }
}

/** q of feature j of token t, from quantized activations (the inverse of the interleaving). */
function activationQ(a: QuantizedActivations, nbp: number, t: number, j: number): number {
  const record = t * nbp * BLOCK + floor(j / RECORD) * RECORD;
  return a.q[record + interleaved(j % RECORD)];
}

/**
 * W (d,n) @ x (T,n) + b (d,) -> out (T,d), W quantized (q8 or q4):
 *   out[t, i] = b[i] + Σ_blocks s_w[i, blk] · s_x[t, blk] · Σ_k q_w[i, k] · q_x[t, k]
 * the integer sums exact, the rest in f64.
 */
function matmul_quantized(
  out: Float32Array,
  x: Float32Array,
  w: QuantizedWeight,
  bias: Float32Array | null,
  T: number,
  n: number,
  d: number,
): void {
  const nb = blocksOf(n);
  const nbp = activationBlocks(n);
  const act = {
    q: new Int8Array(T * nbp * BLOCK),
    scale: new Float32Array(T * nbp),
    sum: new Int32Array(T * nbp),
  };
  quantize_act(x, T, n, act);
  const xq = new Int32Array(T * n);
  for (let t = 0; t < T; t++)
    for (let j = 0; j < n; j++) xq[t * n + j] = activationQ(act, nbp, t, j);
  const q = new Int32Array(n);
  const scales = new Float64Array(nb);
  for (let i = 0; i < d; i++) {
    decodeRow(w, n, i, q, scales);
    for (let t = 0; t < T; t++) {
      let sum = 0;
      for (let b = 0; b < nb; b++) {
        let dot = 0; // exact integer
        const end = min(n, (b + 1) * BLOCK);
        for (let k = b * BLOCK; k < end; k++) dot += q[k] * xq[t * n + k];
        sum += scales[b] * act.scale[t * nbp + b] * dot;
      }
      out[t * d + i] = sum + (bias ? bias[i] : 0);
    }
  }
}

export const matmul_q8 = matmul_quantized;
export const matmul_q4 = matmul_quantized;
