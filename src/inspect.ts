// For learners: what the model did for a prompt. Replays the forward pass with the model's own
// modules and, at one layer, keeps what a normal pass throws away: the attention
// probabilities of one head, softmax(q kᵀ / √Dh) with the causal mask, (T, T).
import { attention } from './model/attention.js';
import { block } from './model/block.js';
import { embedding } from './model/embedding.js';
import { layernorm } from './model/layernorm.js';
import { lmHead } from './model/lm_head.js';
import { mlp } from './model/mlp.js';
import type { PhiForCausalLM } from './model/phi.js';

export interface Inspection {
  /** (T, T) row t: how much position t attends to each position 0..t (zeros above). */
  attention: Float32Array;
  /** next-token logits after the last position, (V,). */
  logits: Float32Array;
}

export function inspect(
  model: PhiForCausalLM,
  ids: number[],
  layer: number,
  head: number,
): Inspection {
  const { config: cfg, kernels, weights: w, state: s } = model;
  const { hiddenSize: D, numHeads: H, headDim: Dh, numLayers: L } = cfg;
  const T = ids.length;
  if (T === 0 || T > s.maxBatch) throw new Error(`inspect takes 1..${s.maxBatch} tokens, got ${T}`);
  if (!(layer >= 0 && layer < L && head >= 0 && head < H))
    throw new Error(`no layer ${layer} / head ${head}`);
  model.forward(ids, 0); // validates the ids

  const probs = new Float32Array(T * T);
  embedding(s.x, w.embed_tokens, ids, D);
  for (let l = 0; l < L; l++) {
    if (l !== layer) {
      block(s, w.layers[l], l, T, 0, cfg, kernels);
      continue;
    }
    // block(), spelled out so the rotated queries and the cached keys can be read in between
    layernorm(s.xNorm, s.x, w.layers[l].input_layernorm, T, D, cfg.layerNormEps, kernels);
    attention(s, w.layers[l], l, T, 0, cfg, kernels);
    const keys = s.keyCache.subarray(l * s.maxPositions * D);
    for (let t = 0; t < T; t++) {
      let max = -Infinity;
      for (let j = 0; j <= t; j++) {
        let dot = 0;
        for (let i = 0; i < Dh; i++)
          dot += s.q[t * D + head * Dh + i] * keys[j * D + head * Dh + i];
        probs[t * T + j] = dot / Math.sqrt(Dh);
        max = Math.max(max, probs[t * T + j]);
      }
      let sum = 0;
      for (let j = 0; j <= t; j++) sum += probs[t * T + j] = Math.exp(probs[t * T + j] - max);
      for (let j = 0; j <= t; j++) probs[t * T + j] /= sum;
    }
    mlp(s, w.layers[l], T, cfg, kernels);
    for (let i = 0; i < T * D; i++) s.x[i] += s.attnOut[i] + s.mlpOut[i];
  }
  lmHead(s, w, T - 1, 1, cfg, kernels);
  return { attention: probs, logits: s.logits.slice(0, cfg.vocabSize) };
}
