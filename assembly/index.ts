// phi-wasm's WebAssembly kernels: raw pointers into the one shared memory, no allocator,
// no model logic. Each has a readable TypeScript twin in src/kernels/ref/.
export { matmul_f32, matmul_f16, WIDE_ROWS } from './matmul';
export { matmul_q8, matmul_q4, STREAM_ROWS } from './matmul_q';
export { matmul_q8_dot, matmul_q4_dot, matmul_q4_dot16, FEW_X_BYTES } from './matmul_q_dot';
export { dot_probe, dot16_probe } from './dot';
export { quantize_act } from './quantize_act';
export { attention } from './attention';
export { attention_backward } from './attention_backward';
export { gelu_backward, gelu_new } from './gelu';
export { layernorm, layernorm_backward } from './layernorm';
export { lora_add } from './lora';
export { transpose_f32, transpose_f16, transpose_q } from './transpose';
export { stream_sum } from './stream';
export { fma_peak } from './fma_peak';

/** First byte after the module's static data: the JS side allocates from here up. */
export function heap_base(): usize {
  return __heap_base;
}
