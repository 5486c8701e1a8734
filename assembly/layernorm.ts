// out (T,n) = (x - μ) / √(σ² + eps) · weight + bias per row, rows [t0, t1)   (twin: src/kernels/ref/layernorm.ts)
// Two passes (mean, then variance of x - μ), 4 lanes at a time.
// Differences from the TS twin: f32 sums over 4 lanes (the twin's are f64).
import { hsum } from './simd';

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
    let s = f32x4.splat(0);
    let i = 0;
    for (; i < n4; i += 4) s = f32x4.add(s, v128.load(xt + ((<usize>i) << 2)));
    let sum = hsum(s);
    for (; i < n; i++) sum += load<f32>(xt + ((<usize>i) << 2));
    const mean = sum / <f32>n;
    const mv = f32x4.splat(mean);
    let v = f32x4.splat(0);
    for (i = 0; i < n4; i += 4) {
      const c = f32x4.sub(v128.load(xt + ((<usize>i) << 2)), mv);
      v = f32x4.add(v, f32x4.mul(c, c));
    }
    let variance = hsum(v);
    for (; i < n; i++) {
      const c = load<f32>(xt + ((<usize>i) << 2)) - mean;
      variance += c * c;
    }
    const inv = <f32>1 / Mathf.sqrt(variance / <f32>n + eps);
    const iv = f32x4.splat(inv);
    for (i = 0; i < n4; i += 4) {
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
