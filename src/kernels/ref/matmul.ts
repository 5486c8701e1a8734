import type { Weight } from '../types.js';
import { F16_TABLE } from './f16.js';
import { matmulQuantized } from './quant.js';

// W (d,n) @ x (T,n) + b (d,) -> out (T,d)
// The simplest correct loop: for every token t and output row i, out[t,i] = b[i] + Σ_j W[i,j] x[t,j].
// Accumulates in f64 (plain JS numbers); f16 weights are widened through a lookup table
// (and scaled by 2^log2Scale when a backend re-encoded them, see Kernels.prepare).
export function matmul(
  out: Float32Array,
  x: Float32Array,
  w: Weight,
  bias: Float32Array | null,
  T: number,
  n: number,
  d: number,
): void {
  if (w.dtype === 'q8' || w.dtype === 'q4') {
    matmulQuantized(out, x, w, bias, T, n, d);
    return;
  }
  const W = w.data;
  const widen = w.dtype === 'f16';
  const scale = w.dtype === 'f16' ? 2 ** (w.log2Scale ?? 0) : 1;
  for (let t = 0; t < T; t++) {
    const xOff = t * n;
    for (let i = 0; i < d; i++) {
      const wOff = i * n;
      let sum = 0;
      if (widen) {
        for (let j = 0; j < n; j++) sum += F16_TABLE[W[wOff + j]] * x[xOff + j];
      } else {
        for (let j = 0; j < n; j++) sum += W[wOff + j] * x[xOff + j];
      }
      out[t * d + i] = sum * scale + (bias ? bias[i] : 0);
    }
  }
}
