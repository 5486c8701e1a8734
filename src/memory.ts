// Where the bytes go: everything a loaded model allocates in the kernels' memory, for a
// config, a weight dtype, a context, slots and threads. The loader sizes the wasm memory with
// it and refuses a model that cannot fit before reading a byte; the bench and the docs quote
// it; a test checks it equals what loading really allocates.
//
//   weights   each parameter as the loader holds it (weights/load.ts heldAs)
//   state     the activations of one step of B rows (model/state.ts)
//   caches    one KV cache (L, T_max, D) of keys and one of values per slot
//   scratch   the wasm kernels' own buffers (kernels/wasm/index.ts scratchLayout)
//   adapters  LoRA adapters held unmerged (model/lora.ts), and the staging of merged ones
//   training  a fine-tune's terms, buffers and kept activations (train/plan.ts), when asked
import { mergeStaging } from './weights/merge.js';
import type { LoraAdapter } from './model/lora.js';
import type { WeightDType } from './kernels/types.js';
import { scratchLayout, type ScratchSizes } from './kernels/wasm/scratch.js';
import type { PhiConfig } from './model/config.js';
import { KVCache } from './model/kv_cache.js';
import { runStateLayout, stepRows } from './model/state.js';
import type { Checkpoint } from './weights/checkpoint.js';
import { CHUNK_ELEMENTS } from './weights/load.js';
import { heldAs, parameters } from './weights/names.js';
import { moduleShape, type LoraModule } from './model/lora.js';
import { pickPlan, scratchBound, type Checkpointing } from './train/plan.js';

import { ALIGN, aligned, formatBytes, WASM32_BYTES } from './kernels/wasm/arena.js';

export { ALIGN, formatBytes, WASM32_BYTES };

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
  /** LoRA adapters held unmerged, and those merged into the weights as they load. */
  adapters?: { unmerged: readonly LoraAdapter[]; merged: readonly LoraAdapter[] };
  /** A fine-tune to make room for (phi finetune): its sequences, terms and checkpointing. */
  training?: TrainingOptions;
}

export interface TrainingOptions {
  /** the longest training sequence */
  seq: number;
  rank: number;
  targets: readonly LoraModule[];
  dropout: boolean;
  checkpointing: Checkpointing;
}

export interface MemoryPlan {
  weights: number;
  state: number;
  caches: number;
  scratch: number;
  adapters: number;
  /** 0 without `training`; else what train/plan.ts says, and whether activations are kept */
  training: number;
  keepActivations: boolean;
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
  const adapters = adapterBytes(o.adapters?.unmerged ?? [], B, o.adapters?.merged ?? []);
  const model = weights + state + caches + scratch + adapters;
  const t = o.training && trainingBytes(ck, cfg, o, o.training, WASM32_BYTES - (1 << 20) - model);
  return {
    weights,
    state,
    caches,
    scratch,
    adapters,
    training: t?.bytes ?? 0,
    keepActivations: t?.keep ?? false,
    total: model + (t?.bytes ?? 0),
  };
}

/** A fine-tune's bytes, with the kernels' scratch bound: kept or recomputed as train/plan.ts picks. */
function trainingBytes(
  ck: Checkpoint,
  cfg: PhiConfig,
  o: MemoryOptions,
  t: TrainingOptions,
  free: number,
): { bytes: number; keep: boolean } {
  const linears = parameters(ck, cfg).filter((p) => p.role === 'linear');
  const shape = {
    maxT: t.seq,
    terms: Array.from({ length: cfg.numLayers }, () =>
      t.targets.map((m) => {
        const [n, d] = moduleShape(cfg, m);
        return { n, d, r: t.rank };
      }),
    ).flat(),
    dropout: t.dropout,
    dtypes: [...new Set(linears.map((p) => heldAs(ck, p, o.dtype).dtype))],
  };
  const { plan } = pickPlan(cfg, shape, t.checkpointing, free);
  return { bytes: plan.total + scratchBound(cfg, t.seq), keep: plan.keep };
}

/** What uploadAdapter (model/lora.ts) and a merge's staging (weights/merge.ts) allocate. */
function adapterBytes(
  unmerged: readonly LoraAdapter[],
  B: number,
  merged: readonly LoraAdapter[],
): number {
  let bytes = 0;
  for (const a of unmerged) {
    let maxR = 0;
    for (const layer of a.layers)
      for (const t of Object.values(layer)) {
        bytes += aligned(4 * t.r * t.in) + aligned(4 * t.r * t.out);
        maxR = Math.max(maxR, t.r);
      }
    bytes += aligned(4 * Math.max(1, B * maxR));
  }
  const stage = mergeStaging(merged, CHUNK_ELEMENTS);
  if (stage.terms) bytes += aligned(4 * stage.slab) + aligned(4 * stage.terms);
  return bytes;
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
