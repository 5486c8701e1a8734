// x [from, to) <- gelu_new(x) = 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))   (twin: src/kernels/ref/gelu.ts)
// computed as x · σ(2z) = x / (1 + e^(-2z)), z = √(2/π) (x + 0.044715 x³), the same function
// (0.5 (1 + tanh z) = σ(2z)) without tanh's cancellation; 4 lanes at a time.
// Differences from the TS twin: f32, exp by exp4 (assembly/simd.ts, ~1 ulp).
import { exp4 } from './simd';

const SQRT_2_OVER_PI: f32 = 0.7978845608028654;

// @ts-ignore: decorator
@inline function gelu4(v: v128): v128 {
  const z = f32x4.mul(
    f32x4.splat(SQRT_2_OVER_PI),
    f32x4.add(v, f32x4.mul(f32x4.splat(0.044715), f32x4.mul(v, f32x4.mul(v, v)))),
  );
  const e = exp4(f32x4.mul(z, f32x4.splat(-2)));
  return f32x4.div(v, f32x4.add(f32x4.splat(1), e));
}

/**
 * Training: dx [from, to) <- dy · gelu_new'(x) (twin: src/kernels/ref/gelu.ts). With
 * s = σ(2u) = 0.5 (1 + tanh u), 1 - tanh² u = 4 s (1 - s), so
 *   gelu'(x) = s + 2 x s (1 - s) · c (1 + 3 · 0.044715 x²)
 * and no tanh is needed; dx may be dy.
 */
// @ts-ignore: decorator
@inline function geluGrad4(v: v128): v128 {
  const v2 = f32x4.mul(v, v);
  const z = f32x4.mul(
    f32x4.splat(SQRT_2_OVER_PI),
    f32x4.add(v, f32x4.mul(f32x4.splat(0.044715), f32x4.mul(v, v2))),
  );
  const one = f32x4.splat(1);
  const s = f32x4.div(one, f32x4.add(one, exp4(f32x4.mul(z, f32x4.splat(-2)))));
  const du = f32x4.mul(
    f32x4.splat(SQRT_2_OVER_PI),
    f32x4.add(one, f32x4.mul(f32x4.splat(3 * 0.044715), v2)),
  );
  const ds = f32x4.mul(f32x4.mul(s, f32x4.sub(one, s)), f32x4.mul(f32x4.add(v, v), du));
  return f32x4.add(s, ds);
}

export function gelu_backward(dx: usize, dy: usize, x: usize, from: i32, to: i32): void {
  let i = from;
  for (; i + 4 <= to; i += 4) {
    const at = (<usize>i) << 2;
    v128.store(dx + at, f32x4.mul(v128.load(dy + at), geluGrad4(v128.load(x + at))));
  }
  for (; i < to; i++) {
    const at = (<usize>i) << 2;
    const g = f32x4.extract_lane(geluGrad4(f32x4.splat(load<f32>(x + at))), 0);
    store<f32>(dx + at, load<f32>(dy + at) * g);
  }
}

export function gelu_new(x: usize, from: i32, to: i32): void {
  let i = from;
  for (; i + 4 <= to; i += 4)
    v128.store(x + ((<usize>i) << 2), gelu4(v128.load(x + ((<usize>i) << 2))));
  for (; i < to; i++)
    store<f32>(
      x + ((<usize>i) << 2),
      f32x4.extract_lane(gelu4(f32x4.splat(load<f32>(x + ((<usize>i) << 2)))), 0),
    );
}
