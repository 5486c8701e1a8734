const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

// x (len,) <- gelu_new(x) = 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))), in place.
// The tanh approximation ("gelu_new" in transformers' ACT2FN), not the exact erf GELU.
export function gelu_new(x: Float32Array, len: number): void {
  for (let i = 0; i < len; i++) {
    const v = x[i];
    x[i] = 0.5 * v * (1 + Math.tanh(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v)));
  }
}
