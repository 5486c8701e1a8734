// W (d,n) @ x (T,n) + b (d,) -> out (T,d)   (twins of assembly/matmul.ts)
// The simplest correct loop: for every token t and output row i, out[t,i] = b[i] + Σ_j W[i,j] x[t,j].
// Accumulates in f64 (plain JS numbers).
import { F16_TABLE } from '../../formats/f16.js';

/** f32 weights. */
export function matmul_f32(
  out: Float32Array,
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | null,
  T: number,
  n: number,
  d: number,
): void {
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < d; i++) {
      let sum = 0;
      for (let j = 0; j < n; j++) sum += w[i * n + j] * x[t * n + j];
      out[t * d + i] = sum + (bias ? bias[i] : 0);
    }
  }
}

/**
 * f16 weights (raw u16 bits), widened through a lookup table; values are f16(bits) · 2^log2Scale
 * (a backend may have re-encoded them, see Kernels.prepare).
 */
export function matmul_f16(
  out: Float32Array,
  x: Float32Array,
  w: Uint16Array,
  log2Scale: number,
  bias: Float32Array | null,
  T: number,
  n: number,
  d: number,
): void {
  const scale = 2 ** log2Scale;
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < d; i++) {
      let sum = 0;
      for (let j = 0; j < n; j++) sum += F16_TABLE[w[i * n + j]] * x[t * n + j];
      out[t * d + i] = sum * scale + (bias ? bias[i] : 0);
    }
  }
}
