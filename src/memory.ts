// Where the bytes go: everything a loaded model allocates in the kernels' memory, for a
// config, a weight dtype, a context, slots and threads. The loader sizes the wasm memory with
// it and refuses a model that cannot fit before reading a byte; the bench and the docs quote
// it; a test checks it equals what loading really allocates.
//
//   weights   each parameter as the loader holds it (weights/load.ts heldAs)
//   state     the activations of one step of B rows (model/state.ts)
//   caches    one KV cache (L, T_max, D) of keys and one of values per slot
//   scratch   the wasm kernels' own buffers (kernels/wasm/index.ts scratchLayout)
import type { WeightDType } from './kernels/types.js';
import { scratchLayout, type ScratchSizes } from './kernels/wasm/scratch.js';
import type { PhiConfig } from './model/config.js';
import { KVCache } from './model/kv_cache.js';
import { runStateLayout, stepRows } from './model/state.js';
import type { Checkpoint } from './weights/checkpoint.js';
import { heldAs, parameters } from './weights/names.js';

import { ALIGN, formatBytes, WASM32_BYTES } from './kernels/wasm/arena.js';

export { ALIGN, formatBytes, WASM32_BYTES };

const aligned = (bytes: number) => Math.ceil(bytes / ALIGN) * ALIGN;

export interface MemoryOptions {
  dtype: WeightDType | 'auto';
  /** Positions of each KV cache. */
  maxPositions: number;
  /** Most rows of one step. */
  maxBatch: number;
  /** Slots: one KV cache each. */
  parallel: number;
  /** Threads of the wasm kernels (their scratch is per thread); 0: no wasm scratch (js). */
  threads: number;
}

export interface MemoryPlan {
  weights: number;
  state: number;
  caches: number;
  scratch: number;
  total: number;
}

export function planMemory(ck: Checkpoint, cfg: PhiConfig, o: MemoryOptions): MemoryPlan {
  const weights = parameters(ck, cfg).reduce(
    (n, p) => n + aligned(heldAs(ck, p, o.dtype).bytes),
    0,
  );
  const B = stepRows(o.maxBatch, o.maxPositions);
  const state = runStateLayout(cfg, o.maxPositions, B).reduce(
    (n, [, len]) => n + aligned(4 * len),
    0,
  );
  const caches = o.parallel * 2 * aligned(KVCache.bytes(cfg, o.maxPositions) / 2);
  const scratch =
    o.threads > 0
      ? scratchLayout(scratchSizes(cfg, o), o.threads).reduce((n, [, b]) => n + aligned(b), 0)
      : 0;
  return { weights, state, caches, scratch, total: weights + state + caches + scratch };
}

/** The largest step of a model: what the wasm kernels' scratch is sized for. */
export function scratchSizes(
  cfg: PhiConfig,
  o: Pick<MemoryOptions, 'maxBatch' | 'maxPositions'>,
): ScratchSizes {
  return {
    rows: stepRows(o.maxBatch, o.maxPositions),
    inputs: Math.max(cfg.hiddenSize, cfg.intermediateSize),
    positions: o.maxPositions,
  };
}
