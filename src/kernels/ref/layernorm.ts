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

// Training: dx (T, D) += the gradient through LayerNorm(x (T, D)) of dy (T, D), the weight and
// bias frozen; μ and ρ recomputed from x, sums in f64 (the derivation: src/train/layernorm.ts).
export function layernorm_backward(
  dx: Float32Array,
  dy: Float32Array,
  x: Float32Array,
  weight: Float32Array,
  T: number,
  D: number,
  eps: number,
): void {
  const xhat = new Float64Array(D);
  const dxhat = new Float64Array(D);
  for (let t = 0; t < T; t++) {
    const off = t * D;
    let mean = 0;
    for (let j = 0; j < D; j++) mean += x[off + j];
    mean /= D;
    let variance = 0;
    for (let j = 0; j < D; j++) variance += (x[off + j] - mean) ** 2;
    const rho = 1 / Math.sqrt(variance / D + eps);
    let meanD = 0;
    let meanDX = 0;
    for (let j = 0; j < D; j++) {
      xhat[j] = (x[off + j] - mean) * rho;
      dxhat[j] = dy[off + j] * weight[j];
      meanD += dxhat[j];
      meanDX += dxhat[j] * xhat[j];
    }
    meanD /= D;
    meanDX /= D;
    for (let j = 0; j < D; j++) dx[off + j] += rho * (dxhat[j] - meanD - xhat[j] * meanDX);
  }
}
