// One Phi decoder layer: attention and MLP in parallel on one shared LayerNorm,
// as transformers' PhiDecoderLayer:
//   h = input_layernorm(x)
//   x = x + attn(h) + mlp(h)
import type { Kernels } from '../kernels/types.js';
import { attention } from './attention.js';
import type { SegmentRows } from './state.js';
import type { PhiConfig } from './config.js';
import { layernorm } from './layernorm.js';
import { mlp } from './mlp.js';
import type { RunState } from './state.js';
import type { LayerWeights } from './weights.js';

/** s.x (T, D) <- block_layer(s.x), T rows laid out as `rows` says. */
export function block(
  s: RunState,
  w: LayerWeights,
  layer: number,
  T: number,
  rows: readonly SegmentRows[],
  cfg: PhiConfig,
  kernels: Kernels,
): void {
  const D = cfg.hiddenSize;
  layernorm(s.xNorm, s.x, w.input_layernorm, T, D, cfg.layerNormEps, kernels);
  attention(s, w, layer, T, rows, cfg, kernels);
  mlp(s, w, layer, T, rows, cfg, kernels);
  for (let i = 0; i < T * D; i++) s.x[i] += s.attnOut[i] + s.mlpOut[i];
}
