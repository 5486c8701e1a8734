// LayerNorm backward, the weight and bias frozen (only the input's gradient is needed):
//   y  = x̂ · w + b,   x̂ = (x - μ) · ρ,   ρ = 1 / √(σ² + ε)         per row of D
//   dx̂ = dy · w
//   dx = ρ · (dx̂ - mean(dx̂) - x̂ · mean(dx̂ · x̂))
// μ and ρ are recomputed from x (two passes, as the forward kernel does): cheaper to redo
// than to keep for every row of every layer. Sums in f64.
// Twin of the forward: src/kernels/ref/layernorm.ts.

/** dx (T, D) += the gradient through LayerNorm(x (T, D)) of dy (T, D). */
export function layernormBackward(
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
