// LayerNorm(x) = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias, per token, over D.
// Phi uses it twice: input_layernorm in every block, final_layernorm before lm_head.
import type { Kernels } from '../kernels/types.js';
import type { LayerNormParams } from './weights.js';

/** out (T, D) <- LayerNorm(x (T, D)). */
export function layernorm(
  out: Float32Array,
  x: Float32Array,
  p: LayerNormParams,
  T: number,
  D: number,
  eps: number,
  kernels: Kernels,
): void {
  kernels.layernorm(out, x, p.weight, p.bias, T, D, eps);
}
