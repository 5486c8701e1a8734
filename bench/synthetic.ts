// Synthetic weights of the exact phi-1.5 shapes, generated in memory (speed does not depend on
// the values). Values follow N(0, 0.02) like a trained checkpoint, so the rare f16 subnormals
// appear about as often as in the real weights; a 1 Mi-value pool is drawn once and tiled.
import { f32ToF16 } from '../src/formats/f16.js';
import { allocQuantized, quantizeRows } from '../src/formats/quant.js';
import type { Kernels, QuantizedWeight, Weight, WeightDType } from '../src/kernels/types.js';
import { PHI_1_5, type PhiConfig } from '../src/model/config.js';
import { PhiForCausalLM } from '../src/model/causal_lm.js';
import type { Linear, PhiWeights } from '../src/model/weights.js';

const POOL = 1 << 20;

function gaussianPool(seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const uniform = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) + 0.5) / 4294967296;
  };
  const pool = new Float32Array(POOL);
  for (let i = 0; i < POOL; i++) {
    pool[i] = 0.02 * Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  }
  return pool;
}

export function syntheticWeights(
  cfg: PhiConfig,
  kernels: Kernels,
  dtype: WeightDType,
  seed = 1,
): PhiWeights {
  const pool = gaussianPool(seed);
  const pool16 = Uint16Array.from(pool, f32ToF16);
  let offset = 0;
  const fill = (a: Float32Array | Uint16Array) => {
    const src = a instanceof Uint16Array ? pool16 : pool;
    for (let i = 0; i < a.length; i += POOL) {
      const n = Math.min(POOL, a.length - i);
      const start = (offset = (offset + 7919) % (POOL - n + 1));
      (a as Uint16Array).set((src as Uint16Array).subarray(start, start + n), i);
    }
    return a;
  };
  // quantized: the pool quantized once per row length as whole rows, tiled row-aligned
  const quantPools = new Map<number, QuantizedWeight>();
  const quantPool = (q: 'q8' | 'q4', cols: number) => {
    let w = quantPools.get(cols);
    if (!w) {
      const rows = POOL / cols;
      w = allocQuantized({ ...kernels, allocU8: (n) => new Uint8Array(n) }, q, rows, cols);
      quantizeRows(pool, rows, cols, w, 0);
      quantPools.set(cols, w);
    }
    return w;
  };
  const quantized = dtype === 'q8' || dtype === 'q4' ? dtype : null;
  const tile = (dst: Uint8Array, src: Uint8Array) => {
    for (let i = 0; i < dst.length; i += src.length)
      dst.set(src.subarray(0, Math.min(src.length, dst.length - i)), i);
  };
  const matrix = (rows: number, cols: number, linear = true): Weight => {
    if (quantized && linear) {
      const w = allocQuantized(kernels, quantized, rows, cols);
      tile(w.data, quantPool(quantized, cols).data); // whole rows: cols divides POOL
      return w;
    }
    return dtype === 'f16' || (quantized && !linear)
      ? { dtype: 'f16', data: fill(kernels.allocU16(rows * cols)) as Uint16Array }
      : { dtype: 'f32', data: fill(kernels.allocF32(rows * cols)) as Float32Array };
  };
  const vector = (n: number) => fill(kernels.allocF32(n)) as Float32Array;
  const ones = (n: number) => kernels.allocF32(n).fill(1);
  // as the loader does: the backend may re-encode linear weights once (Kernels.prepare)
  const prepare = (w: Weight) => (kernels.prepare ? kernels.prepare(w) : w);
  const linear = (out: number, inp: number): Linear => ({
    weight: prepare(matrix(out, inp)),
    bias: vector(out),
  });
  const { vocabSize: V, hiddenSize: D, intermediateSize: F } = cfg;
  return {
    embed_tokens: matrix(V, D, false), // the embedding stays f16 when the linear layers are quantized
    layers: Array.from({ length: cfg.numLayers }, () => ({
      input_layernorm: { weight: ones(D), bias: vector(D) },
      q_proj: linear(D, D),
      k_proj: linear(D, D),
      v_proj: linear(D, D),
      dense: linear(D, D),
      fc1: linear(F, D),
      fc2: linear(D, F),
    })),
    final_layernorm: { weight: ones(D), bias: vector(D) },
    lm_head: linear(V, D),
  };
}

/** Multiply-adds of the matrices for one token (every linear layer and lm_head once). */
export function weightsPerToken(cfg: PhiConfig): number {
  const { vocabSize: V, hiddenSize: D, intermediateSize: F, numLayers: L } = cfg;
  return L * (4 * D * D + 2 * D * F) + V * D;
}

/** Bytes of the weights that one decoded token reads (every matrix once, plus one embedding row). */
export function weightBytesPerToken(cfg: PhiConfig, dtype: WeightDType): number {
  const { vocabSize: V, hiddenSize: D, intermediateSize: F, numLayers: L } = cfg;
  const size = { f16: 2, f32: 4, q8: 1 + 4 / 32, q4: 0.5 + 4 / 32 }[dtype];
  const embedRow = dtype === 'f32' ? 4 : 2; // the embedding stays f16 when quantized
  const matrices = weightsPerToken(cfg); // layers + lm_head
  const vectors = L * (6 * D + F) + 2 * D + V; // biases and LayerNorms, f32
  return matrices * size + vectors * 4 + D * embedRow;
}

export function syntheticPhi(
  kernels: Kernels,
  dtype: WeightDType,
  options: { maxPositions?: number; maxBatch?: number } = {},
): PhiForCausalLM {
  return new PhiForCausalLM(PHI_1_5, syntheticWeights(PHI_1_5, kernels, dtype), kernels, options);
}
