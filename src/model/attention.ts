// Multi-head self-attention with a KV cache, as transformers' PhiAttention:
//   q, k, v = x Wqᵀ + bq, x Wkᵀ + bk, x Wvᵀ + bv           (T, D) each, D = H·Dh
//   q, k    = rotary(q, k)                                  first R dims of each head
//   cache[pos0 .. pos0+T) = k, v                            (H, T_max, Dh) per layer
//   head_h  = softmax(q_h k_hᵀ / √Dh + causal mask) v_h     over cached positions 0..pos
//   attn(x) = concat(head_0 .. head_H-1) Wdenseᵀ + bdense
// The projections run on all rows of the step at once; each sequence's rows then attend to
// that sequence's own cache.
import type { Kernels } from '../kernels/types.js';
import type { SegmentRows } from './state.js';
import type { PhiConfig } from './config.js';
import { linear } from './lora.js';
import { applyRotary } from './rotary.js';
import type { RunState } from './state.js';
import type { LayerWeights } from './weights.js';

/** s.attnOut (T, D) <- attn(s.xNorm (T, D)) for layer `layer`. */
export function attention(
  s: RunState,
  w: LayerWeights,
  layer: number,
  T: number,
  rows: readonly SegmentRows[],
  cfg: PhiConfig,
  kernels: Kernels,
): void {
  const { hiddenSize: D, numHeads: H, headDim: Dh } = cfg;
  // project to queries, keys, values (with each sequence's LoRA terms, model/lora.ts)
  linear(s.q, s.xNorm, w.q_proj, layer, 'q_proj', T, D, D, rows, kernels);
  linear(s.k, s.xNorm, w.k_proj, layer, 'k_proj', T, D, D, rows, kernels);
  linear(s.v, s.xNorm, w.v_proj, layer, 'v_proj', T, D, D, rows, kernels);

  for (const { cache, pos0, row0, T: n } of rows) {
    const part = (a: Float32Array) => a.subarray(row0 * D, (row0 + n) * D); // (n, D)
    const [q, k, v] = [part(s.q), part(s.k), part(s.v)];

    // rotate the first R dims of every q and k head by their position
    applyRotary(q, k, n, pos0, cfg, s.ropeCos, s.ropeSin, kernels);

    // append these keys and values to the sequence's cache, (H, T_max, Dh) a layer
    cache.write(layer, pos0, k, v, n);

    // every head attends to positions 0..its own (causal), scores scaled by 1/√Dh
    const probs = layer === s.probeLayer ? s.attnProbs : null; // (H, n, pos0+n), for inspect
    const [keys, values] = [cache.layerKeys(layer), cache.layerValues(layer)];
    const scale = 1 / Math.sqrt(Dh);
    const T_max = cache.maxPositions;
    kernels.attention(part(s.attnHeads), q, keys, values, n, pos0, H, Dh, T_max, scale, probs);
  }

  // mix the heads back into the residual width
  linear(s.attnOut, s.attnHeads, w.dense, layer, 'dense', T, D, D, rows, kernels);
}
