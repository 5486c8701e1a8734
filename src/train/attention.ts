// Attention backward, one sequence of T tokens at positions 0..T-1 (training runs whole
// sequences, no cache). The forward, per head h (src/model/attention.ts):
//   S = q kᵀ · scale,   P = softmax(S + causal mask),   O = P v                 (T, T), (T, Dh)
// and backward, from dO (T, Dh) per head:
//   dv = Pᵀ dO
//   dP = dO vᵀ
//   dS = P ⊙ (dP - rowsum(dP ⊙ P))           softmax's Jacobian, row by row
//   dq = dS k · scale,   dk = dSᵀ q · scale
// Masked entries have P = 0, so they get no gradient. Then the rotary: q and k were rotated
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
 * dq, dk, dv (T, H·Dh) <- the gradients of O = attention(q, k, v) given dO (T, H·Dh).
 * q (T, H·Dh) rotated; kH, vH (H, T, Dh) rotated keys and values; probs (H, T, T) the forward's
 * softmax. Sums in f64.
 */
export function attentionBackward(
  dq: Float32Array,
  dk: Float32Array,
  dv: Float32Array,
  dO: Float32Array,
  q: Float32Array,
  kH: Float32Array,
  vH: Float32Array,
  probs: Float32Array,
  T: number,
  H: number,
  Dh: number,
  scale: number,
): void {
  const S = H * Dh;
  dq.fill(0, 0, T * S);
  dk.fill(0, 0, T * S);
  dv.fill(0, 0, T * S);
  const dS = new Float64Array(T);
  for (let h = 0; h < H; h++)
    for (let t = 0; t < T; t++) {
      const P = probs.subarray((h * T + t) * T, (h * T + t + 1) * T); // row t: keys 0..t
      const dOt = t * S + h * Dh;
      // dP_j = dO_t · v_j, and rowsum(dP ⊙ P)
      let dot = 0;
      for (let j = 0; j <= t; j++) {
        const vj = (h * T + j) * Dh;
        let dp = 0;
        for (let i = 0; i < Dh; i++) dp += dO[dOt + i] * vH[vj + i];
        dS[j] = dp;
        dot += dp * P[j];
      }
      for (let j = 0; j <= t; j++) {
        const g = P[j] * (dS[j] - dot) * scale; // dS_tj, with the scale of S folded in
        const kj = (h * T + j) * Dh;
        const row = j * S + h * Dh; // key j's place in dk, dv (T, H·Dh)
        for (let i = 0; i < Dh; i++) {
          dq[dOt + i] += g * kH[kj + i];
          dk[row + i] += g * q[dOt + i];
          dv[row + i] += P[j] * dO[dOt + i];
        }
      }
    }
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
