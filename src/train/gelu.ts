// gelu_new backward. With u = c (x + 0.044715 x³), c = √(2/π):
//   gelu(x)  = 0.5 x (1 + tanh u)
//   gelu'(x) = 0.5 (1 + tanh u)                      the (1 + tanh u) factor's own
//            + 0.5 x (1 - tanh² u) · du/dx           tanh' = 1 - tanh²
//   du/dx    = c (1 + 3 · 0.044715 x²)
// and dx = dy · gelu'(x), elementwise. That is Kernels.gelu_backward (the twin:
// src/kernels/ref/gelu.ts, beside the forward; wasm: assembly/gelu.ts, with σ for tanh).
export { gelu_backward as geluBackward } from '../kernels/ref/gelu.js';
