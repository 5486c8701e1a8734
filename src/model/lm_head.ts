// From the last hidden state to next-token scores:
//   logits = final_layernorm(x) W_lm_headᵀ + b_lm_head        (T, V)
import type { Kernels } from '../kernels/types.js';
import type { PhiConfig } from './config.js';
import { layernorm } from './layernorm.js';
import type { RunState } from './state.js';
import type { PhiWeights } from './weights.js';

/** s.logits (T, V) <- lm_head(final_layernorm(s.x rows first..first+T)). */
export function lmHead(
  s: RunState,
  w: PhiWeights,
  first: number,
  T: number,
  cfg: PhiConfig,
  kernels: Kernels,
): void {
  const { hiddenSize: D, vocabSize: V } = cfg;
  const x = s.x.subarray(first * D, (first + T) * D);
  layernorm(s.xNorm, x, w.final_layernorm, T, D, cfg.layerNormEps, kernels);
  kernels.matmul(s.logits, s.xNorm, w.lm_head.weight, w.lm_head.bias, T, D, V);
}
