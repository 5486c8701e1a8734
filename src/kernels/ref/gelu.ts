const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const { tanh } = Math; // a module-level name: global lookups per element are slow in vm contexts (jest)

// x (len,) <- gelu_new(x) = 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))), in place.
// The tanh approximation ("gelu_new" in transformers' ACT2FN), not the exact erf GELU.
export function gelu_new(x: Float32Array, len: number): void {
  for (let i = 0; i < len; i++) {
    const v = x[i];
    x[i] = 0.5 * v * (1 + tanh(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v)));
  }
}
