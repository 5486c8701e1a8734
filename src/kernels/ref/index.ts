// The readable TypeScript backend: the spec every faster backend is tested against.
import type { Kernels } from '../types.js';
import { attention } from './attention.js';
import { gelu_new } from './gelu.js';
import { layernorm } from './layernorm.js';
import { matmul } from './matmul.js';
import { rotary } from './rotary.js';
import { softmax } from './softmax.js';

export { attention, gelu_new, layernorm, matmul, rotary, softmax };

export function createRefKernels(): Kernels {
  return {
    name: 'js',
    allocF32: (n) => new Float32Array(n),
    allocU16: (n) => new Uint16Array(n),
    allocU8: (n) => new Uint8Array(n),
    matmul,
    layernorm,
    gelu_new,
    rotary,
    attention,
  };
}
