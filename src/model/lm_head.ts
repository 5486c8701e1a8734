// From the last hidden state to next-token scores:
//   logits = final_layernorm(x) W_lm_headᵀ + b_lm_head        (T, V)
// Only for the rows whose next token is wanted (the last of a prompt, each decoded token).
import type { Kernels } from '../kernels/types.js';
import type { PhiConfig } from './config.js';
import { layernorm } from './layernorm.js';
import type { RunState } from './state.js';
import type { PhiWeights } from './weights.js';

/** s.logits (n, V) <- lm_head(final_layernorm(s.x rows `rows`)), n = rows.length. */
export function lmHead(
  s: RunState,
  w: PhiWeights,
  rows: readonly number[],
  cfg: PhiConfig,
  kernels: Kernels,
): void {
  const { hiddenSize: D, vocabSize: V } = cfg;
  rows.forEach((row, i) => {
    const x = s.x.subarray(row * D, (row + 1) * D);
    layernorm(s.xNorm.subarray(i * D), x, w.final_layernorm, 1, D, cfg.layerNormEps, kernels);
  });
  kernels.matmul(s.logits, s.xNorm, w.lm_head.weight, w.lm_head.bias, rows.length, D, V);
}
