// The feed-forward network, as transformers' PhiMLP:
//   mlp(x) = fc2( gelu_new( fc1(x) ) )      fc1: D -> F,  fc2: F -> D,  both with bias
import type { Kernels } from '../kernels/types.js';
import type { PhiConfig } from './config.js';
import { linear } from './lora.js';
import type { RunState, SegmentRows } from './state.js';
import type { LayerWeights } from './weights.js';

/** s.mlpOut (T, D) <- mlp(s.xNorm (T, D)) for layer `layer` (LoRA terms: model/lora.ts). */
export function mlp(
  s: RunState,
  w: LayerWeights,
  layer: number,
  T: number,
  rows: readonly SegmentRows[],
  cfg: PhiConfig,
  kernels: Kernels,
): void {
  const { hiddenSize: D, intermediateSize: F } = cfg;
  linear(s.mlpHidden, s.xNorm, w.fc1, layer, 'fc1', T, D, F, rows, kernels); // (T, F)
  kernels.gelu_new(s.mlpHidden, T * F);
  linear(s.mlpOut, s.mlpHidden, w.fc2, layer, 'fc2', T, F, D, rows, kernels); // (T, D)
}
