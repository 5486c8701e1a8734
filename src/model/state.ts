// RunState: every activation buffer and the KV cache, allocated once (by the kernel backend,
// so the wasm kernels can see them). Nothing is allocated per token.
import type { Kernels } from '../kernels/types.js';
import type { PhiConfig } from './config.js';

export interface RunState {
  /** B: most tokens processed in one forward step (prefill goes in chunks of B). */
  maxBatch: number;
  /** T_max: positions the KV cache holds. */
  maxPositions: number;
  x: Float32Array; // (B, D) residual stream
  xNorm: Float32Array; // (B, D) input_layernorm(x), shared by attention and MLP
  q: Float32Array; // (B, D) = (B, H*Dh)
  k: Float32Array; // (B, D)
  v: Float32Array; // (B, D)
  attnHeads: Float32Array; // (B, D) attention output before dense
  attnOut: Float32Array; // (B, D) after dense
  mlpHidden: Float32Array; // (B, F)
  mlpOut: Float32Array; // (B, D)
  scores: Float32Array; // (T_max,) attention weights of one query and head
  logits: Float32Array; // (B, V)
  keyCache: Float32Array; // (L, T_max, D)
  valueCache: Float32Array; // (L, T_max, D)
  ropeCos: Float32Array; // (T_max, R/2)
  ropeSin: Float32Array; // (T_max, R/2)
}

export function createRunState(
  cfg: PhiConfig,
  kernels: Kernels,
  maxPositions: number,
  maxBatch: number,
): RunState {
  const { hiddenSize: D, intermediateSize: F, numLayers: L, vocabSize: V, rotaryDim: R } = cfg;
  const B = maxBatch;
  const f32 = (n: number) => kernels.allocF32(n);
  return {
    maxBatch: B,
    maxPositions,
    x: f32(B * D),
    xNorm: f32(B * D),
    q: f32(B * D),
    k: f32(B * D),
    v: f32(B * D),
    attnHeads: f32(B * D),
    attnOut: f32(B * D),
    mlpHidden: f32(B * F),
    mlpOut: f32(B * D),
    scores: f32(maxPositions),
    logits: f32(B * V),
    keyCache: f32(L * maxPositions * D),
    valueCache: f32(L * maxPositions * D),
    ropeCos: f32(maxPositions * (R / 2)),
    ropeSin: f32(maxPositions * (R / 2)),
  };
}

/** Bytes createRunState allocates (before alignment), for sizing wasm memory up front. */
export function runStateBytes(cfg: PhiConfig, maxPositions: number, maxBatch: number): number {
  const { hiddenSize: D, intermediateSize: F, numLayers: L, vocabSize: V, rotaryDim: R } = cfg;
  const B = maxBatch;
  const floats =
    8 * B * D + B * F + maxPositions + B * V + 2 * L * maxPositions * D + maxPositions * R;
  return 4 * floats;
}
