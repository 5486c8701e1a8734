// PhiForCausalLM, the whole forward pass:
//   x      = embed_tokens[tokens]                         (T, D)
//   x      = block_l(x)  for l = 0 .. L-1                 x + attn(ln(x)) + mlp(ln(x))
//   logits = lm_head(final_layernorm(x))                  (T, V)
// Tokens are processed in steps of at most B (state.maxBatch) positions; each step appends
// its keys and values to the KV cache, so decoding one token at position p costs one step.
import type { Kernels } from '../kernels/types.js';
import { block } from './block.js';
import type { PhiConfig } from './config.js';
import { embedding } from './embedding.js';
import { lmHead } from './lm_head.js';
import { buildRotaryTables } from './rotary.js';
import { createRunState, type RunState } from './state.js';
import type { PhiWeights } from './weights.js';

export const DEFAULT_MAX_BATCH = 64;

export interface PhiOptions {
  /** Positions the KV cache holds (default: the config's max_position_embeddings). */
  maxPositions?: number;
  /** Most tokens per forward step; longer prompts are prefilled in chunks (default 64). */
  maxBatch?: number;
}

export class PhiForCausalLM {
  readonly state: RunState;

  constructor(
    readonly config: PhiConfig,
    readonly weights: PhiWeights,
    readonly kernels: Kernels,
    options: PhiOptions = {},
  ) {
    const maxPositions = options.maxPositions ?? config.maxPositions;
    if (
      !Number.isSafeInteger(maxPositions) ||
      maxPositions < 1 ||
      maxPositions > config.maxPositions
    ) {
      throw new Error(
        `maxPositions must be an integer in 1..${config.maxPositions} (the model's context), got ${maxPositions}`,
      );
    }
    const maxBatch = Math.min(options.maxBatch ?? DEFAULT_MAX_BATCH, maxPositions);
    this.state = createRunState(config, kernels, maxPositions, maxBatch);
    buildRotaryTables(
      this.state.ropeCos,
      this.state.ropeSin,
      maxPositions,
      config.rotaryDim,
      config.ropeTheta,
    );
  }

  /** Positions the KV cache holds: prompt plus generated tokens must fit. */
  get contextLength(): number {
    return this.state.maxPositions;
  }

  /**
   * Run `tokens` at positions pos0 .. pos0+T-1 (the cache must hold positions 0..pos0-1 from
   * earlier calls). Returns the logits of the last position (V,), a view that the next call
   * overwrites, or with `all` a new (T, V) array of every position's logits.
   */
  forward(tokens: ArrayLike<number>, pos0: number, all = false): Float32Array {
    const { vocabSize: V, hiddenSize: D, numLayers: L } = this.config;
    const s = this.state;
    const n = tokens.length;
    if (n === 0) throw new Error('forward: no tokens given');
    for (let i = 0; i < n; i++) {
      const id = tokens[i];
      if (!Number.isInteger(id) || id < 0 || id >= V) {
        throw new Error(
          `token id ${id} at index ${i} is out of range: the vocabulary has ids 0..${V - 1}`,
        );
      }
    }
    if (!Number.isSafeInteger(pos0) || pos0 < 0) throw new Error(`forward: bad position ${pos0}`);
    if (pos0 + n > s.maxPositions) {
      throw new Error(
        `sequence of ${pos0 + n} tokens does not fit the context of ${s.maxPositions} positions`,
      );
    }
    const out = all ? new Float32Array(n * V) : null;
    for (let start = 0; start < n; start += s.maxBatch) {
      const T = Math.min(s.maxBatch, n - start);
      const pos = pos0 + start;
      const chunk = Array.prototype.slice.call(tokens, start, start + T) as number[];

      embedding(s.x, this.weights.embed_tokens, chunk, D);
      for (let l = 0; l < L; l++)
        block(s, this.weights.layers[l], l, T, pos, this.config, this.kernels);

      if (out) {
        lmHead(s, this.weights, 0, T, this.config, this.kernels);
        out.set(s.logits.subarray(0, T * V), start * V);
      } else if (start + T === n) {
        lmHead(s, this.weights, T - 1, 1, this.config, this.kernels); // only the last row is needed
      }
    }
    return out ?? s.logits.subarray(0, V);
  }
}
