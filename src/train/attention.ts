// Attention backward, one sequence of T tokens at positions 0..T-1 (training runs whole
// sequences, no cache). The forward, per head h (src/model/attention.ts):
//   S = q kᵀ · scale,   P = softmax(S + causal mask),   O = P v                 (T, T), (T, Dh)
// and backward, from dO (T, Dh) per head:
//   dv = Pᵀ dO
//   dP = dO vᵀ
//   dS = P ⊙ (dP - rowsum(dP ⊙ P))           softmax's Jacobian, row by row
//   dq = dS k · scale,   dk = dSᵀ q · scale
// Masked entries have P = 0, so they get no gradient. That is Kernels.attention_backward (the
// twin: src/kernels/ref/attention.ts; wasm: assembly/attention_backward.ts). Then the rotary: q and k were rotated
// by angle p·θ_i, an orthogonal map, so their gradients rotate back by -p·θ_i.
import type { Kernels } from '../kernels/types.js';
import type { PhiConfig } from '../model/config.js';

/** dst (H, T, Dh) <- src (T, H·Dh): one head's rows together, the layout attention reads. */
export function toHeads(dst: Float32Array, src: Float32Array, T: number, H: number, Dh: number) {
  for (let t = 0; t < T; t++)
    for (let h = 0; h < H; h++)
      dst.set(src.subarray((t * H + h) * Dh, (t * H + h + 1) * Dh), (h * T + t) * Dh);
}

/**
 * The gradient through the rotary, in place on dx (T, H·Dh) at positions 0..T-1: the
 * transpose of a rotation is the rotation by the opposite angle, so the forward kernel runs
 * with sin negated (negSin: (T_max, R/2), -sin of the forward's table).
 */
export function rotaryBackward(
  dx: Float32Array,
  T: number,
  cfg: PhiConfig,
  cos: Float32Array,
  negSin: Float32Array,
  kernels: Kernels,
): void {
  kernels.rotary(dx, T, 0, cfg.numHeads, cfg.headDim, cfg.rotaryDim, cos, negSin);
}
