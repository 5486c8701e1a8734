// The readable TypeScript backend: the spec every faster backend is tested against.
import type { Kernels, Weight } from '../types.js';
import { attention, attention_backward } from './attention.js';
import { gelu_backward, gelu_new } from './gelu.js';
import { layernorm, layernorm_backward } from './layernorm.js';
import { lora_add } from './lora.js';
import { matmul_f16, matmul_f32 } from './matmul.js';
import { matmul_q4, matmul_q8, quantize_act } from './quant.js';
import { rotary } from './rotary.js';
import { softmax } from './softmax.js';
import { transpose_rows } from './transpose.js';

export {
  attention,
  attention_backward,
  gelu_backward,
  gelu_new,
  layernorm,
  layernorm_backward,
  lora_add,
  matmul_f16,
  matmul_f32,
  matmul_q4,
  matmul_q8,
  quantize_act,
  rotary,
  softmax,
  transpose_rows,
};

/** W (d,n) @ x (T,n) + b (d,) -> out (T,d), whatever the weight's dtype. */
export function matmul(
  out: Float32Array,
  x: Float32Array,
  w: Weight,
  bias: Float32Array | null,
  T: number,
  n: number,
  d: number,
): void {
  switch (w.dtype) {
    case 'f32':
      return matmul_f32(out, x, w.data, bias, T, n, d);
    case 'f16':
      return matmul_f16(out, x, w.data, w.log2Scale ?? 0, bias, T, n, d);
    case 'q8':
      return matmul_q8(out, x, w, bias, T, n, d);
    case 'q4':
      return matmul_q4(out, x, w, bias, T, n, d);
  }
}

export function createRefKernels(): Kernels {
  return {
    name: 'js',
    allocF32: (n) => new Float32Array(n),
    allocU16: (n) => new Uint16Array(n),
    allocU8: (n) => new Uint8Array(n),
    matmul,
    layernorm,
    layernorm_backward,
    gelu_new,
    gelu_backward,
    rotary,
    attention,
    attention_backward,
    lora_add,
    transpose_rows,
  };
}
