// Causal attention over the KV cache for heads [h0, h1)   (contract: src/kernels/ref/attention.ts)
//   scores_j = (q_t,h · k_j,h) · scale  for j = 0..pos0+t;  out_t,h = Σ_j softmax(scores)_j v_j,h
// q, out (T, H*Dh); kCache, vCache (maxPos, H*Dh); scores: this thread's scratch (>= pos0+T);
// probs: 0, or (H, T, pos0+T) to receive the probabilities (zeros past the causal limit).
// Differences from the TS twin: f32 sums over 4 lanes (the twin's are f64, sequential).
import { softmax } from './softmax';
import { hsum } from './simd';

export function attention(
  out: usize, q: usize, kCache: usize, vCache: usize, T: i32, pos0: i32, H: i32, Dh: i32,
  scale: f32, scores: usize, probs: usize, h0: i32, h1: i32,
): void {
  const S = <usize>(H * Dh);
  const P = <usize>(pos0 + T);
  const d4 = Dh & ~3;
  for (let t = 0; t < T; t++) {
    const keys = pos0 + t + 1;
    for (let h = h0; h < h1; h++) {
      const qh = q + ((<usize>t * S + <usize>(h * Dh)) << 2);
      for (let j = 0; j < keys; j++) {
        const kh = kCache + ((<usize>j * S + <usize>(h * Dh)) << 2);
        let acc = f32x4.splat(0);
        let i = 0;
        for (; i < d4; i += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(qh + (<usize>i << 2)), v128.load(kh + (<usize>i << 2))));
        let dot = hsum(acc);
        for (; i < Dh; i++) dot += load<f32>(qh + (<usize>i << 2)) * load<f32>(kh + (<usize>i << 2));
        store<f32>(scores + (<usize>j << 2), dot * scale);
      }
      softmax(scores, keys);
      if (probs) {
        const row = probs + ((<usize>h * <usize>T + <usize>t) * P << 2);
        memory.copy(row, scores, <usize>keys << 2);
        memory.fill(row + (<usize>keys << 2), 0, (P - <usize>keys) << 2);
      }
      const oh = out + ((<usize>t * S + <usize>(h * Dh)) << 2);
      for (let i = 0; i < Dh; i++) store<f32>(oh + (<usize>i << 2), 0);
      for (let j = 0; j < keys; j++) {
        const p = f32x4.splat(load<f32>(scores + (<usize>j << 2)));
        const ps = load<f32>(scores + (<usize>j << 2));
        const vh = vCache + ((<usize>j * S + <usize>(h * Dh)) << 2);
        let i = 0;
        for (; i < d4; i += 4) {
          const o = <usize>i << 2;
          v128.store(oh + o, f32x4.add(v128.load(oh + o), f32x4.mul(p, v128.load(vh + o))));
        }
        for (; i < Dh; i++) store<f32>(oh + (<usize>i << 2), load<f32>(oh + (<usize>i << 2)) + ps * load<f32>(vh + (<usize>i << 2)));
      }
    }
  }
}
