// Synthetic weights of the exact phi-1.5 shapes, generated in memory (speed does not depend on
// the values), from the same pools `phi synth` writes (src/synth.ts).
import type { Kernels, Weight, WeightDType } from '../src/kernels/types.js';
import { PHI_1_5, type PhiConfig } from '../src/model/config.js';
import { PhiForCausalLM } from '../src/model/causal_lm.js';
import type { Linear, PhiWeights } from '../src/model/weights.js';
import { LORA_MODULES, moduleShape, type LoraAdapter } from '../src/model/lora.js';
import { SyntheticValues } from '../src/synth.js';
import { quantizedBytes } from '../src/formats/quant.js';

export function syntheticWeights(
  cfg: PhiConfig,
  kernels: Kernels,
  dtype: WeightDType,
  seed = 1,
): PhiWeights {
  const values = new SyntheticValues(seed);
  const quantized = dtype === 'q8' || dtype === 'q4' ? dtype : null;
  const matrix = (rows: number, cols: number, linear = true): Weight => {
    if (quantized && linear) {
      const data = kernels.allocU8(quantizedBytes(quantized, rows, cols));
      return { dtype: quantized, data: values.fillQuantized(data, quantized, cols) };
    }
    // the embedding stays f16 when the linear layers are quantized, as the loader does
    return dtype === 'f16' || (quantized && !linear)
      ? { dtype: 'f16', data: values.fill(kernels.allocU16(rows * cols)) }
      : { dtype: 'f32', data: values.fill(kernels.allocF32(rows * cols)) };
  };
  const vector = (n: number) => values.fill(kernels.allocF32(n));
  const ones = (n: number) => kernels.allocF32(n).fill(1);
  // as the loader does: the backend may re-encode linear weights once (Kernels.prepare)
  const prepare = (w: Weight) => (kernels.prepare ? kernels.prepare(w) : w);
  const linear = (out: number, inp: number): Linear => ({
    weight: prepare(matrix(out, inp)),
    bias: vector(out),
  });
  const { vocabSize: V, hiddenSize: D, intermediateSize: F } = cfg;
  return {
    embed_tokens: matrix(V, D, false),
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
  return blockWeights(cfg) + cfg.vocabSize * cfg.hiddenSize;
}

/**
 * Multiply-adds a prompt token costs in prefill: every block's matrices; lm_head runs for the
 * last position only (under 1% of a 128-token prompt, as is attention at that length).
 */
export function blockWeights(cfg: PhiConfig): number {
  const { hiddenSize: D, intermediateSize: F, numLayers: L } = cfg;
  return L * (4 * D * D + 2 * D * F);
}

/** Bytes of the weights that one decoded token reads (every matrix once, plus one embedding row). */
export function weightBytesPerToken(cfg: PhiConfig, dtype: WeightDType): number {
  const { vocabSize: V, hiddenSize: D, intermediateSize: F, numLayers: L } = cfg;
  const size = { f16: 2, f32: 4, q8: 1 + 4 / 32, q4: 0.5 + 4 / 32 }[dtype];
  const embedRow = dtype === 'f32' ? 4 : 2; // the embedding stays f16 when quantized
  const vectors = L * (6 * D + F) + 2 * D + V; // biases and LayerNorms, f32
  return weightsPerToken(cfg) * size + vectors * 4 + D * embedRow;
}

export function syntheticPhi(
  kernels: Kernels,
  dtype: WeightDType,
  options: { maxPositions?: number; maxBatch?: number } = {},
): PhiForCausalLM {
  return new PhiForCausalLM(PHI_1_5, syntheticWeights(PHI_1_5, kernels, dtype), kernels, options);
}

/** A LoRA adapter of rank r on every target of every layer, small random values. */
export function randomAdapter(cfg: PhiConfig, r: number, seed = 1): LoraAdapter {
  const rand = (n: number) =>
    Float32Array.from(
      { length: n },
      () => ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * 0.02,
    );
  const layers = Array.from({ length: cfg.numLayers }, () => {
    const terms: LoraAdapter['layers'][number] = {};
    for (const m of LORA_MODULES) {
      const [inp, out] = moduleShape(cfg, m);
      terms[m] = { r, scale: 2, A: rand(r * inp), B: rand(out * r), in: inp, out };
    }
    return terms;
  });
  return {
    source: 'random',
    layers,
    info: { r, lora_alpha: 2 * r, use_rslora: false, targets: [...LORA_MODULES] },
  };
}
