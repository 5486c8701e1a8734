// For learners: what the model did for a prompt. Runs the forward pass once and, at one
// layer, asks attention to record its probabilities softmax(q kᵀ / √Dh) with the causal
// mask, for every head: the same numbers the layer used, from the same kernel.
import type { Phi } from './engine.js';

export interface Inspection {
  /** (T, T) row t: how much position t attends to each position 0..t (zeros above). */
  attention: Float32Array;
  /** (H, T, T): the same for every head of the layer. */
  heads: Float32Array;
  /** next-token logits after the last position, (V,). */
  logits: Float32Array;
}

export function inspect(phi: Phi, ids: number[], layer: number, head: number): Inspection {
  const { numHeads: H, numLayers: L } = phi.config;
  const s = phi.model.state;
  const T = ids.length;
  if (T === 0 || T > s.maxBatch) throw new Error(`inspect takes 1..${s.maxBatch} tokens, got ${T}`);
  if (!(Number.isInteger(layer) && layer >= 0 && layer < L))
    throw new Error(`layer must be an integer in 0..${L - 1}, got ${layer}`);
  if (!(Number.isInteger(head) && head >= 0 && head < H))
    throw new Error(`head must be an integer in 0..${H - 1}, got ${head}`);

  s.probeLayer = layer;
  try {
    const logits = phi.withFreeSlot('inspect', (cache) => phi.model.forward(ids, 0, cache).slice());
    const heads = s.attnProbs.slice(0, H * T * T); // one step of T tokens from position 0
    return { attention: heads.slice(head * T * T, (head + 1) * T * T), heads, logits };
  } finally {
    s.probeLayer = -1;
  }
}
