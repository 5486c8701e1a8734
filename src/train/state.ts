// Every buffer one training step needs, allocated once for sequences of up to maxT tokens
// (in the kernels' memory, so the wasm kernels can read them). Two ways to have a block's
// activations when its backward runs:
//   kept          each block's own BlockActs, written by the forward pass (L of them)
//   checkpointing one BlockActs shared by all blocks: only each block's input is kept for the
//                 whole pass (xs, L + 1 of (T, D)), and a block's insides are recomputed, one
//                 block at a time, when the backward reaches it
// Either way the big and cheap ones (the softmax (H, T, T), gelu's output, dropout's inputs
// and masks) are not kept per block but rebuilt for the block in hand (train/block.ts
// blockRestore): they cost no matmul, and would double what keeping costs.
import type { Kernels } from '../kernels/types.js';
import type { PhiConfig } from '../model/config.js';
import { LORA_MODULES, moduleShape, type LoraModule } from '../model/lora.js';
import type { LoraScratch } from './linear.js';

/** One block's forward, kept for its backward. */
export interface BlockActs {
  xNorm: Float32Array; // (T, D) the shared LayerNorm's output
  q: Float32Array; // (T, D) rotated
  kH: Float32Array; // (H, T, Dh) the rotated keys as attention reads them
  vH: Float32Array; // (H, T, Dh)
  heads: Float32Array; // (T, D) attention before dense
  pre: Float32Array; // (T, F) fc1's output, before gelu
  /** per module: u = x̃·Aᵀ (T, r) */
  u: Record<LoraModule, Float32Array>;
}

export interface TrainState {
  maxT: number;
  /** acts[l] is block l's (kept), or acts[0] every block's in turn (checkpointing) */
  keep: boolean;
  acts: BlockActs[];
  /** block inputs: xs[l] (T, D) enters block l; xs[L] enters the final LayerNorm */
  xs: Float32Array[];
  // the block in hand's forward scratch, and what blockRestore rebuilds
  k: Float32Array; // (T, D)
  v: Float32Array; // (T, D)
  probs: Float32Array; // (H, T, T) softmax of the scores
  attnOut: Float32Array; // (T, D)
  act: Float32Array; // (T, F) gelu(pre)
  mlpOut: Float32Array; // (T, D)
  /** with dropout, per module: x̃ (T, in) and its mask (T, in) */
  xd: Record<LoraModule, Float32Array | null>;
  mask: Record<LoraModule, Float32Array | null>;
  // the backward's
  dx: Float32Array; // (T, D) gradient of the residual stream
  dxNorm: Float32Array; // (T, D)
  dHeads: Float32Array; // (T, D)
  dq: Float32Array; // (T, D)
  dk: Float32Array; // (T, D)
  dv: Float32Array; // (T, D)
  dAct: Float32Array; // (T, F)
  dLora: Float32Array; // (T, max(D, F)) a LoRA term's dx̃ before the mask
  lora: LoraScratch;
  // the head
  xf: Float32Array; // (T, D) final_layernorm(xs[L])
  logits: Float32Array; // (T, V)
  dlogits: Float32Array; // (T, V)
  dxf: Float32Array; // (T, D)
  /** -sin of the rotary table, for the backward (train/attention.ts) */
  negSin: Float32Array;
}

export interface TrainStateShape {
  maxT: number;
  maxRank: number;
  dropout: boolean;
  /** each block's activations kept (no recomputation) */
  keep: boolean;
}

export function createTrainState(
  cfg: PhiConfig,
  kernels: Pick<Kernels, 'allocF32'>,
  { maxT, maxRank, dropout, keep }: TrainStateShape,
  /** the model's rotary sin table (T_max, R/2), or null to count bytes only (train/plan.ts) */
  sin: Float32Array | null,
): TrainState {
  const { hiddenSize: D, intermediateSize: F, vocabSize: V, numHeads: H, numLayers: L } = cfg;
  const { rotaryDim: R } = cfg;
  const f = (n: number) => kernels.allocF32(Math.max(1, n));
  const T = maxT;
  const per = <X>(g: (m: LoraModule) => X) =>
    Object.fromEntries(LORA_MODULES.map((m) => [m, g(m)])) as Record<LoraModule, X>;
  const width = (m: LoraModule) => moduleShape(cfg, m)[0]; // the module's input
  const negSin = f(maxT * (R >> 1)); // positions 0..maxT-1 of the table
  if (sin) for (let i = 0; i < negSin.length; i++) negSin[i] = -sin[i];
  const blockActs = (): BlockActs => ({
    xNorm: f(T * D),
    q: f(T * D),
    kH: f(T * D),
    vH: f(T * D),
    heads: f(T * D),
    pre: f(T * F),
    u: per(() => f(T * maxRank)),
  });
  return {
    maxT,
    keep,
    acts: Array.from({ length: keep ? L : 1 }, blockActs),
    xs: Array.from({ length: L + 1 }, () => f(T * D)),
    k: f(T * D),
    v: f(T * D),
    probs: f(H * T * T),
    attnOut: f(T * D),
    act: f(T * F),
    mlpOut: f(T * D),
    xd: per((m) => (dropout ? f(T * width(m)) : null)),
    mask: per((m) => (dropout ? f(T * width(m)) : null)),
    dx: f(T * D),
    dxNorm: f(T * D),
    dHeads: f(T * D),
    dq: f(T * D),
    dk: f(T * D),
    dv: f(T * D),
    dAct: f(T * F),
    dLora: f(T * Math.max(D, F)),
    lora: { uT: f(T * maxRank), du: f(T * maxRank), duT: f(T * maxRank) },
    xf: f(T * D),
    logits: f(T * V),
    dlogits: f(T * V),
    dxf: f(T * D),
    negSin,
  };
}
