// What training allocates in the kernels' memory, and whether each block's activations can be
// kept or must be recomputed in the backward (gradient checkpointing). One rule for the
// trainer, which allocates by it, and for the memory plan (src/memory.ts), which the loader
// checks before reading a byte. The same allocation code runs against a counter, so the
// plan cannot drift from what is allocated.
//
// For phi-1.5 at 256 tokens, rank 8 on all six targets: the LoRA terms and their gradients
// take 54 MiB, the step's buffers 272 MiB (the logits and their gradient are 100 MiB of it),
// each block's kept activations 18 MiB (415 MiB more in all). Beside 2.6 GiB of f16 weights,
// keeping fits wasm32's 4 GiB at 256 tokens, not at 512 (1.3 GiB); with a q4 base, at 1024.
import type { WeightDType } from '../kernels/types.js';
import { aligned, formatBytes } from '../kernels/wasm/arena.js';
import type { PhiConfig } from '../model/config.js';
import { scratchLayout } from '../kernels/wasm/scratch.js';
import { FrozenInputGrad } from './linear.js';
import { termBuffers } from './lora_params.js';
import { createTrainState } from './state.js';

/** Recompute each block's insides in the backward: on, off, or off when memory allows. */
export type Checkpointing = 'auto' | 'on' | 'off';

export interface TrainShape {
  /** the longest sequence a step takes */
  maxT: number;
  /** every trained term: its input and output widths and rank */
  terms: readonly { n: number; d: number; r: number }[];
  dropout: boolean;
  /** the dtypes of the frozen linear weights (dy·W's scratch depends on them) */
  dtypes: readonly WeightDType[];
}

export interface TrainPlan {
  /** A, Bᵀ and their gradients (train/lora_params.ts) */
  params: number;
  /** the step's buffers and the kept activations (train/state.ts) */
  state: number;
  /** dy·W's scratch (train/linear.ts) */
  grad: number;
  total: number;
  keep: boolean;
}

/** An allocator that hands out empty arrays and counts the bytes asked for, as the arena would. */
function counter() {
  const c = {
    bytes: 0,
    allocF32: (n: number) => ((c.bytes += aligned(4 * n)), new Float32Array(0)),
    allocU16: (n: number) => ((c.bytes += aligned(2 * n)), new Uint16Array(0)),
  };
  return c;
}

export function planTraining(cfg: PhiConfig, s: TrainShape, keep: boolean): TrainPlan {
  const [p, st, g] = [counter(), counter(), counter()];
  for (const { n, d, r } of s.terms) termBuffers(p, r, n, d);
  const maxRank = Math.max(1, ...s.terms.map((t) => t.r));
  createTrainState(cfg, st, { maxT: s.maxT, maxRank, dropout: s.dropout, keep }, null);
  FrozenInputGrad.allocate(g, frozenGradShape(cfg, s));
  const [params, state, grad] = [p.bytes, st.bytes, g.bytes];
  return { params, state, grad, total: params + state + grad, keep };
}

/** dy·W's scratch for a trainer of this shape: every linear layer of the model goes through it. */
export function frozenGradShape(cfg: PhiConfig, s: Pick<TrainShape, 'maxT' | 'dtypes'>) {
  const { hiddenSize: D, intermediateSize: F } = cfg;
  return { maxT: s.maxT, minN: Math.min(D, F), maxN: Math.max(D, F), dtypes: s.dtypes };
}

/**
 * The plan `mode` asks for when `free` bytes are left (undefined: no limit): on recomputes,
 * off keeps, auto keeps when that fits; and whether it fits beside the kernels' scratch bound.
 * The trainer (choosePlan) and the loader's memory plan (src/memory.ts) both decide by it.
 */
export function pickPlan(
  cfg: PhiConfig,
  s: TrainShape,
  mode: Checkpointing,
  free: number | undefined,
): { plan: TrainPlan; fits: boolean } {
  const fits = (p: TrainPlan) => free === undefined || p.total + scratchBound(cfg, s.maxT) <= free;
  if (mode !== 'on') {
    const kept = planTraining(cfg, s, true);
    if (mode === 'off' || fits(kept)) return { plan: kept, fits: fits(kept) };
  }
  const recomputed = planTraining(cfg, s, false);
  return { plan: recomputed, fits: fits(recomputed) };
}

/**
 * The plan to train with when `free` bytes are left (undefined: no limit), or an error saying
 * what it needs, and what would fit: checkpointing, shorter sequences.
 */
export function choosePlan(
  cfg: PhiConfig,
  s: TrainShape,
  mode: Checkpointing,
  free: number | undefined,
): TrainPlan {
  const { plan: need, fits: ok } = pickPlan(cfg, s, mode, free);
  if (ok) return need;
  const fits = (p: TrainPlan) => free === undefined || p.total + scratchBound(cfg, s.maxT) <= free;
  const recomputed = planTraining(cfg, s, false);
  const hints: string[] = [];
  if (mode === 'off' && fits(recomputed))
    hints.push(`with gradient checkpointing it needs ${formatBytes(recomputed.total)}`);
  let T = s.maxT;
  while (T > 1 && !fits(planTraining(cfg, { ...s, maxT: T }, mode === 'off')))
    T = Math.floor(T / 2);
  if (T < s.maxT && fits(planTraining(cfg, { ...s, maxT: T }, mode === 'off')))
    hints.push(`sequences of ${T} tokens fit`);
  hints.push('a q8 or q4 base, or a shorter context, leaves more room');
  return fail(
    `training on sequences of ${s.maxT} tokens ` +
      `(${need.keep ? "every block's activations kept" : 'with gradient checkpointing'}) needs ` +
      `${formatBytes(need.total)} of wasm memory (the LoRA terms ${formatBytes(need.params)}, ` +
      `activations and buffers ${formatBytes(need.state + need.grad)}), ` +
      `but ${formatBytes(free ?? 0)} is left after the model: ${hints.join('; ')}`,
  );
}

/**
 * An upper bound on what the wasm kernels' scratch may grow by for steps of T rows (it is
 * sized at load for the model's own steps): all of it, as for 64 threads.
 */
export function scratchBound(cfg: PhiConfig, T: number): number {
  const inputs = Math.max(cfg.hiddenSize, cfg.intermediateSize);
  return scratchLayout({ rows: T, inputs, positions: T }, 64).reduce(
    (n, [, b]) => n + aligned(b),
    0,
  );
}

function fail(message: string): never {
  throw new Error(message);
}
