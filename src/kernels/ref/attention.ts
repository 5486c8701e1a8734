import { softmax } from './softmax.js';

// Causal attention of T queries at positions pos0..pos0+T-1 over the KV cache, per head h:
//   scores_j = (q_t,h · k_j,h) · scale        for keys j = 0..pos0+t (causal: nothing later)
//   out_t,h  = Σ_j softmax(scores)_j · v_j,h
// q, out (T, H*Dh); kCache, vCache (H, maxPos, Dh); probs: null or (H, T, pos0+T), where the
// softmax(scores) of every query and head are copied (zeros past the causal limit).
// Everything stays f32 here whatever the weights' dtype (fp16 q·k overflows in Phi-2).
export function attention(
  out: Float32Array,
  q: Float32Array,
  kCache: Float32Array,
  vCache: Float32Array,
  T: number,
  pos0: number,
  H: number,
  Dh: number,
  maxPos: number,
  scale: number,
  probs: Float32Array | null,
): void {
  const S = H * Dh;
  const P = pos0 + T; // keys of the last query
  const scores = new Float64Array(P) as unknown as Float32Array; // f64: the twin is the exact one
  if (probs) probs.fill(0, 0, H * T * P);
  for (let t = 0; t < T; t++) {
    const keys = pos0 + t + 1;
    for (let h = 0; h < H; h++) {
      const qOff = t * S + h * Dh;
      for (let j = 0; j < keys; j++) {
        const kOff = (h * maxPos + j) * Dh;
        let dot = 0;
        for (let i = 0; i < Dh; i++) dot += q[qOff + i] * kCache[kOff + i];
        scores[j] = dot * scale;
      }
      softmax(scores, keys);
      probs?.set(scores.subarray(0, keys), (h * T + t) * P);
      const oOff = t * S + h * Dh;
      for (let i = 0; i < Dh; i++) out[oOff + i] = 0;
      for (let j = 0; j < keys; j++) {
        const p = scores[j];
        const vOff = (h * maxPos + j) * Dh;
        for (let i = 0; i < Dh; i++) out[oOff + i] += p * vCache[vOff + i];
      }
    }
  }
}

/**
 * dq, dk, dv (T, H·Dh) <- the gradients of O = attention(q, k, v) given dO (T, H·Dh).
 * q (T, H·Dh) rotated; kH, vH (H, T, Dh) rotated keys and values; probs (H, T, T) the forward's
 * softmax. Sums in f64. The derivation: src/train/attention.ts.
 */
export function attention_backward(
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
