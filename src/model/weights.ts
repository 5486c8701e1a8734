// The parameters of PhiForCausalLM, named as transformers names them.
// Linear weights are (out, in): y = x Wᵀ + b. Biases and LayerNorm parameters are small and
// always f32; the big matrices keep the checkpoint's dtype (f16 stays f16 in memory).
import type { Weight } from '../kernels/types.js';

export interface Linear {
  weight: Weight; // (out, in)
  bias: Float32Array; // (out,)
}

export interface LayerNormParams {
  weight: Float32Array; // (D,)
  bias: Float32Array; // (D,)
}

export interface LayerWeights {
  input_layernorm: LayerNormParams;
  q_proj: Linear; // (D, D)
  k_proj: Linear; // (D, D)
  v_proj: Linear; // (D, D)
  dense: Linear; // (D, D)  attention output projection
  fc1: Linear; // (F, D)
  fc2: Linear; // (D, F)
}

export interface PhiWeights {
  embed_tokens: Weight; // (V, D)
  layers: LayerWeights[]; // L of them
  final_layernorm: LayerNormParams;
  lm_head: Linear; // (V, D)
}
