// RunState: every activation buffer of one forward step, allocated once (by the kernel
// backend, so the wasm kernels can see them). Nothing is allocated per token. A step holds at
// most B rows: the tokens of one prompt chunk, or one token of each of several sequences.
// The KV caches are not here: each sequence has its own (kv_cache.ts).
import type { Kernels } from '../kernels/types.js';
import type { PhiConfig } from './config.js';
import type { KVCache } from './kv_cache.js';

/**
 * B, the rows of a step: the batch asked for, but never more than the positions a cache holds
 * (a step's tokens all go into one cache, or one each into several).
 */
export const stepRows = (maxBatch: number, maxPositions: number) =>
  Math.min(maxBatch, maxPositions);

/** Where a segment's rows sit in a step: rows [row0, row0 + T) of every activation. */
export interface SegmentRows {
  cache: KVCache;
  pos0: number;
  row0: number;
  T: number;
}

export interface RunState {
  /** B: most rows (tokens) in one forward step. */
  maxBatch: number;
  x: Float32Array; // (B, D) residual stream
  xNorm: Float32Array; // (B, D) input_layernorm(x), shared by attention and MLP
  q: Float32Array; // (B, D) = (B, H*Dh)
  k: Float32Array; // (B, D)
  v: Float32Array; // (B, D)
  attnHeads: Float32Array; // (B, D) attention output before dense
  attnOut: Float32Array; // (B, D) after dense
  mlpHidden: Float32Array; // (B, F)
  mlpOut: Float32Array; // (B, D)
  logits: Float32Array; // (B, V)
  ropeCos: Float32Array; // (T_max, R/2)
  ropeSin: Float32Array; // (T_max, R/2)
  attnProbs: Float32Array; // (H, B, B) attention probabilities of layer probeLayer
  /** The layer whose attention probabilities a step records (src/inspect.ts); -1: none. */
  probeLayer: number;
}

/** The f32 buffers of a RunState, by name and length: what createRunState allocates. */
export function runStateLayout(
  cfg: PhiConfig,
  maxPositions: number,
  maxBatch: number,
): [Exclude<keyof RunState, 'maxBatch' | 'probeLayer'>, number][] {
  const { hiddenSize: D, intermediateSize: F, vocabSize: V, rotaryDim: R, numHeads: H } = cfg;
  const B = maxBatch;
  return [
    ['x', B * D],
    ['xNorm', B * D],
    ['q', B * D],
    ['k', B * D],
    ['v', B * D],
    ['attnHeads', B * D],
    ['attnOut', B * D],
    ['mlpHidden', B * F],
    ['mlpOut', B * D],
    ['logits', B * V],
    ['ropeCos', maxPositions * (R / 2)],
    ['ropeSin', maxPositions * (R / 2)],
    ['attnProbs', H * B * B],
  ];
}

export function createRunState(
  cfg: PhiConfig,
  kernels: Kernels,
  maxPositions: number,
  maxBatch: number,
): RunState {
  const buffers = runStateLayout(cfg, maxPositions, maxBatch).map(
    ([name, n]) => [name, kernels.allocF32(n)] as const,
  );
  return { maxBatch, probeLayer: -1, ...Object.fromEntries(buffers) } as RunState;
}
