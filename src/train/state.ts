// Every buffer one training step needs, allocated once for sequences of up to maxT tokens
// (in the kernels' memory, so the wasm kernels can read them). Gradient checkpointing: only
// each block's input is kept for the whole pass (L + 1 of (T, D)); a block's insides are
// recomputed, one block at a time, when the backward reaches it.
import type { Kernels } from '../kernels/types.js';
import type { PhiConfig } from '../model/config.js';
import { LORA_MODULES, type LoraModule } from '../model/lora.js';
import type { LoraScratch } from './linear.js';

export interface TrainState {
  maxT: number;
  /** block inputs: xs[l] (T, D) enters block l; xs[L] enters the final LayerNorm */
  xs: Float32Array[];
  // one block's forward, kept for its backward
  xNorm: Float32Array; // (T, D)
  q: Float32Array; // (T, D) rotated
  k: Float32Array; // (T, D) rotated
  v: Float32Array; // (T, D)
  kH: Float32Array; // (H, T, Dh) the keys as attention reads them
  vH: Float32Array; // (H, T, Dh)
  probs: Float32Array; // (H, T, T) softmax of the scores
  heads: Float32Array; // (T, D) attention before dense
  attnOut: Float32Array; // (T, D)
  pre: Float32Array; // (T, F) fc1's output, before gelu
  act: Float32Array; // (T, F) gelu(pre)
  mlpOut: Float32Array; // (T, D)
  /** per module: u = x̃·Aᵀ (T, r), and with dropout x̃ (T, in) and its mask (T, in) */
  u: Record<LoraModule, Float32Array>;
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

export function createTrainState(
  cfg: PhiConfig,
  kernels: Kernels,
  maxT: number,
  maxRank: number,
  dropout: boolean,
  sin: Float32Array,
): TrainState {
  const { hiddenSize: D, intermediateSize: F, vocabSize: V, numHeads: H, numLayers: L } = cfg;
  const f = (n: number) => kernels.allocF32(Math.max(1, n));
  const T = maxT;
  const per = <X>(g: (m: LoraModule) => X) =>
    Object.fromEntries(LORA_MODULES.map((m) => [m, g(m)])) as Record<LoraModule, X>;
  const width = (m: LoraModule) => (m === 'fc2' ? F : D);
  const negSin = f(sin.length);
  for (let i = 0; i < sin.length; i++) negSin[i] = -sin[i];
  return {
    maxT,
    xs: Array.from({ length: L + 1 }, () => f(T * D)),
    xNorm: f(T * D),
    q: f(T * D),
    k: f(T * D),
    v: f(T * D),
    kH: f(T * D),
    vH: f(T * D),
    probs: f(H * T * T),
    heads: f(T * D),
    attnOut: f(T * D),
    pre: f(T * F),
    act: f(T * F),
    mlpOut: f(T * D),
    u: per(() => f(T * maxRank)),
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
