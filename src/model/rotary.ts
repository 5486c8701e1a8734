// Rotary position embedding (RoPE), partial and NeoX style, as transformers' PhiRotaryEmbedding
// and apply_rotary_pos_emb with rotate_half:
//   θ_i = base^(-2i/R) for i < R/2,   angle(p, i) = p · θ_i
//   q_rot = q[..., :R] * cos + rotate_half(q[..., :R]) * sin,   q[..., R:] unchanged
// with rotate_half(x) = [-x[R/2:], x[:R/2]]: dim i pairs with i + R/2.
// phi-1.5: R = 32 of Dh = 64 dims, base 10000.
import type { Kernels } from '../kernels/types.js';
import type { PhiConfig } from './config.js';

/** Fill cos, sin (T_max, R/2) with cos(p θ_i), sin(p θ_i), computed in f64. */
export function buildRotaryTables(
  cos: Float32Array,
  sin: Float32Array,
  maxPositions: number,
  R: number,
  base: number,
): void {
  const half = R / 2;
  for (let p = 0; p < maxPositions; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * Math.pow(base, (-2 * i) / R);
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
}

/** Rotate q and k (T, H*Dh) in place for positions pos0..pos0+T-1. */
export function applyRotary(
  q: Float32Array,
  k: Float32Array,
  T: number,
  pos0: number,
  cfg: PhiConfig,
  cos: Float32Array,
  sin: Float32Array,
  kernels: Kernels,
): void {
  const { numHeads: H, headDim: Dh, rotaryDim: R } = cfg;
  kernels.rotary(q, T, pos0, H, Dh, R, cos, sin);
  kernels.rotary(k, T, pos0, H, Dh, R, cos, sin);
}
