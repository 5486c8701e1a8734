// The feed-forward network, as transformers' PhiMLP:
//   mlp(x) = fc2( gelu_new( fc1(x) ) )      fc1: D -> F,  fc2: F -> D,  both with bias
import type { Kernels } from '../kernels/types.js';
import type { PhiConfig } from './config.js';
import type { RunState } from './state.js';
import type { LayerWeights } from './weights.js';

/** s.mlpOut (T, D) <- mlp(s.xNorm (T, D)). */
export function mlp(
  s: RunState,
  w: LayerWeights,
  T: number,
  cfg: PhiConfig,
  kernels: Kernels,
): void {
  const { hiddenSize: D, intermediateSize: F } = cfg;
  kernels.matmul(s.mlpHidden, s.xNorm, w.fc1.weight, w.fc1.bias, T, D, F); // (T, F)
  kernels.gelu_new(s.mlpHidden, T * F);
  kernels.matmul(s.mlpOut, s.mlpHidden, w.fc2.weight, w.fc2.bias, T, F, D); // (T, D)
}
