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
