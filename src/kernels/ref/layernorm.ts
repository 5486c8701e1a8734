// out (T,n) = (x - μ) / √(σ² + eps) · weight + bias, μ and σ² over each row of x (T,n).
// Two passes (mean, then variance of x - μ): the numerically safe textbook form.
export function layernorm(
  out: Float32Array,
  x: Float32Array,
  weight: Float32Array,
  bias: Float32Array,
  T: number,
  n: number,
  eps: number,
): void {
  for (let t = 0; t < T; t++) {
    const off = t * n;
    let mean = 0;
    for (let j = 0; j < n; j++) mean += x[off + j];
    mean /= n;
    let variance = 0;
    for (let j = 0; j < n; j++) {
      const c = x[off + j] - mean;
      variance += c * c;
    }
    variance /= n;
    const inv = 1 / Math.sqrt(variance + eps);
    for (let j = 0; j < n; j++) out[off + j] = (x[off + j] - mean) * inv * weight[j] + bias[j];
  }
}
