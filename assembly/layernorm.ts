// out (T,n) = (x - μ) / √(σ² + eps) · weight + bias per row, rows [t0, t1)   (twin: src/kernels/ref/layernorm.ts),
// and its input gradient for training (layernorm_backward).
// Two passes (mean, then variance of x - μ), 4 lanes at a time.
// Differences from the TS twin: f32 sums over 4 lanes (the twin's are f64).
import { hsum } from './simd';

/** The mean of row xt (n values). */
// @ts-ignore: decorator
@inline function rowMean(xt: usize, n: i32): f32 {
  const n4 = n & ~3;
  let s = f32x4.splat(0);
  let i = 0;
  for (; i < n4; i += 4) s = f32x4.add(s, v128.load(xt + ((<usize>i) << 2)));
  let sum = hsum(s);
  for (; i < n; i++) sum += load<f32>(xt + ((<usize>i) << 2));
  return sum / <f32>n;
}

/** 1 / √(σ² + eps) of row xt, the variance of x - mean (the second pass). */
// @ts-ignore: decorator
@inline function rowRho(xt: usize, n: i32, mean: f32, eps: f32): f32 {
  const n4 = n & ~3;
  const mv = f32x4.splat(mean);
  let v = f32x4.splat(0);
  let i = 0;
  for (; i < n4; i += 4) {
    const c = f32x4.sub(v128.load(xt + ((<usize>i) << 2)), mv);
    v = f32x4.add(v, f32x4.mul(c, c));
  }
  let variance = hsum(v);
  for (; i < n; i++) {
    const c = load<f32>(xt + ((<usize>i) << 2)) - mean;
    variance += c * c;
  }
  return <f32>1 / Mathf.sqrt(variance / <f32>n + eps);
}

export function layernorm(
  out: usize,
  x: usize,
  weight: usize,
  bias: usize,
  n: i32,
  eps: f32,
  t0: i32,
  t1: i32,
): void {
  const n4 = n & ~3;
  for (let t = t0; t < t1; t++) {
    const xt = x + ((<usize>t * <usize>n) << 2);
    const ot = out + ((<usize>t * <usize>n) << 2);
    const mean = rowMean(xt, n);
    const mv = f32x4.splat(mean);
    const inv = rowRho(xt, n, mean, eps);
    const iv = f32x4.splat(inv);
    let i = 0;
    for (; i < n4; i += 4) {
      const o = (<usize>i) << 2;
      const y = f32x4.mul(f32x4.mul(f32x4.sub(v128.load(xt + o), mv), iv), v128.load(weight + o));
      v128.store(ot + o, f32x4.add(y, v128.load(bias + o)));
    }
    for (; i < n; i++) {
      const o = (<usize>i) << 2;
      store<f32>(
        ot + o,
        (load<f32>(xt + o) - mean) * inv * load<f32>(weight + o) + load<f32>(bias + o),
      );
    }
  }
}

/**
 * Training: dx (T,n) += the gradient through layernorm of dy (T,n), rows [t0, t1), weight
 * frozen (twin: src/kernels/ref/layernorm.ts; the derivation: src/train/layernorm.ts):
 *   x̂ = (x - μ) ρ,  dx̂ = dy · w,  dx += ρ (dx̂ - mean(dx̂) - x̂ · mean(dx̂ · x̂))
 * μ and ρ as the forward computes them. Differences from the twin: f32 sums over 4 lanes
 * (the twin's are f64).
 */
export function layernorm_backward(
  dx: usize,
  dy: usize,
  x: usize,
  weight: usize,
  n: i32,
  eps: f32,
  t0: i32,
  t1: i32,
): void {
  const n4 = n & ~3;
  for (let t = t0; t < t1; t++) {
    const row = (<usize>t * <usize>n) << 2;
    const xt = x + row;
    const dyt = dy + row;
    const dxt = dx + row;
    const mean = rowMean(xt, n);
    const rho = rowRho(xt, n, mean, eps);
    const mv = f32x4.splat(mean);
    const rv = f32x4.splat(rho);
    // the two means: of dx̂ and of dx̂ · x̂
    let sd = f32x4.splat(0);
    let sdx = f32x4.splat(0);
    let i = 0;
    for (; i < n4; i += 4) {
      const o = (<usize>i) << 2;
      const d = f32x4.mul(v128.load(dyt + o), v128.load(weight + o));
      const xh = f32x4.mul(f32x4.sub(v128.load(xt + o), mv), rv);
      sd = f32x4.add(sd, d);
      sdx = f32x4.add(sdx, f32x4.mul(d, xh));
    }
    let sumD = hsum(sd);
    let sumDX = hsum(sdx);
    for (; i < n; i++) {
      const o = (<usize>i) << 2;
      const d = load<f32>(dyt + o) * load<f32>(weight + o);
      sumD += d;
      sumDX += d * ((load<f32>(xt + o) - mean) * rho);
    }
    const meanD = sumD / <f32>n;
    const meanDX = sumDX / <f32>n;
    const md = f32x4.splat(meanD);
    const mdx = f32x4.splat(meanDX);
    for (i = 0; i < n4; i += 4) {
      const o = (<usize>i) << 2;
      const d = f32x4.mul(v128.load(dyt + o), v128.load(weight + o));
      const xh = f32x4.mul(f32x4.sub(v128.load(xt + o), mv), rv);
      const g = f32x4.mul(rv, f32x4.sub(f32x4.sub(d, md), f32x4.mul(xh, mdx)));
      v128.store(dxt + o, f32x4.add(v128.load(dxt + o), g));
    }
    for (; i < n; i++) {
      const o = (<usize>i) << 2;
      const d = load<f32>(dyt + o) * load<f32>(weight + o);
      const xh = (load<f32>(xt + o) - mean) * rho;
      store<f32>(dxt + o, load<f32>(dxt + o) + rho * (d - meanD - xh * meanDX));
    }
  }
}
