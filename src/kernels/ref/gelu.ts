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

// Training: dx (len,) <- dy (len,) · gelu_new'(x), x the forward's input (dx may be dy).
// With u = c (x + 0.044715 x³), c = √(2/π) (the derivation: src/train/gelu.ts):
//   gelu'(x) = 0.5 (1 + tanh u) + 0.5 x (1 - tanh² u) · c (1 + 3 · 0.044715 x²)
export function gelu_backward(
  dx: Float32Array,
  dy: Float32Array,
  x: Float32Array,
  len: number,
): void {
  const c = SQRT_2_OVER_PI;
  for (let i = 0; i < len; i++) {
    const v = x[i];
    const th = tanh(c * (v + 0.044715 * v * v * v));
    dx[i] = dy[i] * (0.5 * (1 + th) + 0.5 * v * (1 - th * th) * c * (1 + 3 * 0.044715 * v * v));
  }
}
