// gelu_new backward. With u = c (x + 0.044715 x³), c = √(2/π):
//   gelu(x)  = 0.5 x (1 + tanh u)
//   gelu'(x) = 0.5 (1 + tanh u) + 0.5 x (1 - tanh² u) · c (1 + 3 · 0.044715 x²)
// Twin of the forward: src/kernels/ref/gelu.ts.
const C = Math.sqrt(2 / Math.PI);
const { tanh } = Math;

/** dx (len,) <- dy (len,) · gelu'(x), x the input of the forward (before gelu). */
export function geluBackward(
  dx: Float32Array,
  dy: Float32Array,
  x: Float32Array,
  len: number,
): void {
  for (let i = 0; i < len; i++) {
    const v = x[i];
    const th = tanh(C * (v + 0.044715 * v * v * v));
    dx[i] = dy[i] * (0.5 * (1 + th) + 0.5 * v * (1 - th * th) * C * (1 + 3 * 0.044715 * v * v));
  }
}
