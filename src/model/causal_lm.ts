// PhiForCausalLM, the whole forward pass:
//   x      = embed_tokens[tokens]                         (T, D)
//   x      = block_l(x)  for l = 0 .. L-1                 x + attn(ln(x)) + mlp(ln(x))
//   logits = lm_head(final_layernorm(x))                  (T, V)
// Each sequence keeps its keys and values in a KVCache of its own, so decoding one token at
// position p costs one step over that token alone. A step can carry several sequences at
// once (one new token each, or prompt chunks): the matmuls then read every weight once for
// all of them, and only attention looks at each sequence's own cache.
import { OptionError } from '../defaults.js';
import type { Kernels } from '../kernels/types.js';
import { block } from './block.js';
import type { PhiConfig } from './config.js';
import { embedding } from './embedding.js';
import { KVCache } from './kv_cache.js';
import { lmHead } from './lm_head.js';
import { buildRotaryTables } from './rotary.js';
import { badTokenId } from './token_ids.js';
import { createRunState, stepRows, type RunState, type SegmentRows } from './state.js';
import type { PhiWeights } from './weights.js';

export const DEFAULT_MAX_BATCH = 64;

export interface PhiOptions {
  /** Positions a KV cache holds (default: the config's max_position_embeddings). */
  maxPositions?: number;
  /** Most tokens per forward step; longer prompts are prefilled in chunks (default 64). */
  maxBatch?: number;
}

/** One sequence's part of a step: `tokens` go to positions pos0.. of `cache`. */
export interface Segment {
  cache: KVCache;
  tokens: readonly number[];
  pos0: number;
  /** Which rows' logits to compute: none (a prompt chunk), the last, or all. */
  logits: 'none' | 'last' | 'all';
}

export type { SegmentRows } from './state.js';

export class PhiForCausalLM {
  readonly state: RunState;
  /** Positions a KV cache holds: prompt plus generated tokens must fit. */
  readonly contextLength: number;

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
      throw new OptionError(
        'maxPositions',
        `must be an integer in 1..${config.maxPositions} (the model's context), got ${maxPositions}`,
      );
    }
    const maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH;
    if (!Number.isSafeInteger(maxBatch) || maxBatch < 1) {
      throw new OptionError('maxBatch', `must be an integer >= 1, got ${maxBatch}`);
    }
    this.contextLength = maxPositions;
    this.state = createRunState(config, kernels, maxPositions, stepRows(maxBatch, maxPositions));
    buildRotaryTables(
      this.state.ropeCos,
      this.state.ropeSin,
      maxPositions,
      config.rotaryDim,
      config.ropeTheta,
    );
  }

  /** A new, empty KV cache for one sequence (allocated from the kernels' memory). */
  newCache(): KVCache {
    return new KVCache(this.kernels, this.config, this.contextLength);
  }

  /**
   * Run `tokens` at positions pos0 .. pos0+T-1 of `cache` (which must hold positions
   * 0..pos0-1 from earlier calls), in steps of at most B tokens. Returns the logits of the
   * last position (V,), a view that the next call overwrites, or with `all` a new (T, V)
   * array of every position's logits.
   */
  forward(tokens: readonly number[], pos0: number, cache: KVCache, all = false): Float32Array {
    const V = this.config.vocabSize;
    const B = this.state.maxBatch;
    const n = tokens.length;
    if (n === 0) throw new Error('forward: no tokens given');
    const out = all ? new Float32Array(n * V) : null;
    let last = this.state.logits;
    for (let start = 0; start < n; start += B) {
      const chunk = tokens.slice(start, start + B);
      const logits = all ? 'all' : start + B >= n ? 'last' : 'none';
      last = this.step([{ cache, tokens: chunk, pos0: pos0 + start, logits }]);
      out?.set(last, start * V);
    }
    return out ?? last.subarray(0, V);
  }

  /**
   * One forward step over several sequences at once (at most B tokens in all). Returns the
   * requested logits, segment after segment: (rows, V), a view that the next step overwrites.
   */
  step(segments: readonly Segment[]): Float32Array {
    const { vocabSize: V, hiddenSize: D, numLayers: L } = this.config;
    const s = this.state;
    const rows = this.place(segments);
    const T = rows.reduce((n, r) => n + r.T, 0);

    const tokens = segments.flatMap((seg) => seg.tokens);
    for (const r of rows) r.cache.truncate(r.pos0);
    embedding(s.x, this.weights.embed_tokens, tokens, D);
    for (let l = 0; l < L; l++)
      block(s, this.weights.layers[l], l, T, rows, this.config, this.kernels);
    segments.forEach((seg, i) => seg.cache.tokens.push(...seg.tokens.slice(0, rows[i].T)));

    // logits only where asked: the last row of a finished prompt, every row of a decode step
    const wanted: number[] = [];
    segments.forEach((seg, i) => {
      const { row0, T: n } = rows[i];
      if (seg.logits === 'all') for (let t = 0; t < n; t++) wanted.push(row0 + t);
      else if (seg.logits === 'last') wanted.push(row0 + n - 1);
    });
    if (wanted.length > 0) lmHead(s, this.weights, wanted, this.config, this.kernels);
    return s.logits.subarray(0, wanted.length * V);
  }

  /** Check a step's segments and lay their tokens out as consecutive rows. */
  private place(segments: readonly Segment[]): SegmentRows[] {
    const V = this.config.vocabSize;
    const B = this.state.maxBatch;
    let row0 = 0;
    const rows = segments.map(({ cache, tokens, pos0 }) => {
      const bad = badTokenId(tokens, V);
      if (bad) throw new Error(bad);
      if (!Number.isSafeInteger(pos0) || pos0 < 0 || pos0 > cache.length) {
        throw new Error(
          `forward: position ${pos0} is not one the cache can continue from (it holds ${cache.length})`,
        );
      }
      if (pos0 + tokens.length > cache.maxPositions) {
        throw new Error(
          `sequence of ${pos0 + tokens.length} tokens does not fit the context of ${cache.maxPositions} positions`,
        );
      }
      const r = { cache, pos0, row0, T: tokens.length };
      row0 += tokens.length;
      return r;
    });
    if (row0 === 0) throw new Error('forward: no tokens given');
    if (row0 > B) throw new Error(`a step holds at most ${B} tokens, got ${row0}`);
    if (new Set(segments.map((s) => s.cache)).size !== segments.length) {
      throw new Error('a step cannot hold two segments of the same cache');
    }
    return rows;
  }
}
