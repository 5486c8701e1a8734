// Multi-head self-attention with a KV cache, as transformers' PhiAttention:
//   q, k, v = x Wqᵀ + bq, x Wkᵀ + bk, x Wvᵀ + bv           (T, D) each, D = H·Dh
//   q, k    = rotary(q, k)                                  first R dims of each head
//   cache[pos0 .. pos0+T) = k, v                            (T_max, D) per layer
//   head_h  = softmax(q_h k_hᵀ / √Dh + causal mask) v_h     over cached positions 0..pos
//   attn(x) = concat(head_0 .. head_H-1) Wdenseᵀ + bdense
import type { Kernels } from '../kernels/types.js';
import type { PhiConfig } from './config.js';
import { applyRotary } from './rotary.js';
import type { RunState } from './state.js';
import type { LayerWeights } from './weights.js';

/** s.attnOut (T, D) <- attn(s.xNorm (T, D)) for layer `layer`, tokens at pos0..pos0+T-1. */
export function attention(
  s: RunState,
  w: LayerWeights,
  layer: number,
  T: number,
  pos0: number,
  cfg: PhiConfig,
  kernels: Kernels,
): void {
  const { hiddenSize: D, numHeads: H, headDim: Dh } = cfg;
  // project to queries, keys, values
  kernels.matmul(s.q, s.xNorm, w.q_proj.weight, w.q_proj.bias, T, D, D);
  kernels.matmul(s.k, s.xNorm, w.k_proj.weight, w.k_proj.bias, T, D, D);
  kernels.matmul(s.v, s.xNorm, w.v_proj.weight, w.v_proj.bias, T, D, D);

  // rotate the first R dims of every q and k head by their position
  applyRotary(s.q, s.k, T, pos0, cfg, s.ropeCos, s.ropeSin, kernels);

  // append this step's keys and values to the layer's cache (T_max, D)
  const layerOff = layer * s.maxPositions * D;
  const keyCache = s.keyCache.subarray(layerOff, layerOff + s.maxPositions * D);
  const valueCache = s.valueCache.subarray(layerOff, layerOff + s.maxPositions * D);
  keyCache.set(s.k.subarray(0, T * D), pos0 * D);
  valueCache.set(s.v.subarray(0, T * D), pos0 * D);

  // every head attends to positions 0..its own (causal), scores scaled by 1/√Dh
  kernels.attention(
    s.attnHeads,
    s.q,
    keyCache,
    valueCache,
    T,
    pos0,
    H,
    Dh,
    1 / Math.sqrt(Dh),
    s.scores,
  );

  // mix the heads back into the residual width
  kernels.matmul(s.attnOut, s.attnHeads, w.dense.weight, w.dense.bias, T, D, D);
}
