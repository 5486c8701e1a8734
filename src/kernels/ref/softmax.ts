// x (len,) <- exp(x - max x) / Σ exp(x - max x), in place.
// Subtracting the max keeps exp() from overflowing; the result is unchanged mathematically.
const { exp } = Math; // a module-level name: global lookups per element are slow in vm contexts (jest)

export function softmax(x: Float32Array, len: number): void {
  if (len === 0) return;
  let max = x[0];
  for (let i = 1; i < len; i++) if (x[i] > max) max = x[i];
  let sum = 0;
  for (let i = 0; i < len; i++) {
    const e = exp(x[i] - max);
    x[i] = e;
    sum += e;
  }
  const inv = 1 / sum;
  for (let i = 0; i < len; i++) x[i] *= inv;
}
