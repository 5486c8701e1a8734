// x (len,) <- exp(x - max x) / Σ exp(x - max x), in place   (twin: src/kernels/ref/softmax.ts)
// Differences from the TS twin: f32 throughout, exp by exp4 (assembly/simd.ts, ~1 ulp), the
// sum over 4 lanes.
import { exp4, hsum } from './simd';

export function softmax(x: usize, len: i32): void {
  if (len <= 0) return;
  const n4 = len & ~3;
  let m = f32x4.splat(-Infinity);
  let i = 0;
  for (; i < n4; i += 4) m = f32x4.pmax(m, v128.load(x + ((<usize>i) << 2)));
  let top = Mathf.max(
    Mathf.max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)),
    Mathf.max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)),
  );
  for (; i < len; i++) top = Mathf.max(top, load<f32>(x + ((<usize>i) << 2)));
  const mv = f32x4.splat(top);
  let s = f32x4.splat(0);
  for (i = 0; i < n4; i += 4) {
    const e = exp4(f32x4.sub(v128.load(x + ((<usize>i) << 2)), mv));
    v128.store(x + ((<usize>i) << 2), e);
    s = f32x4.add(s, e);
  }
  let sum = hsum(s);
  for (; i < len; i++) {
    const e = f32x4.extract_lane(exp4(f32x4.splat(load<f32>(x + ((<usize>i) << 2)) - top)), 0);
    store<f32>(x + ((<usize>i) << 2), e);
    sum += e;
  }
  const inv = f32x4.splat(<f32>1 / sum);
  for (i = 0; i < n4; i += 4)
    v128.store(x + ((<usize>i) << 2), f32x4.mul(v128.load(x + ((<usize>i) << 2)), inv));
  for (; i < len; i++)
    store<f32>(
      x + ((<usize>i) << 2),
      load<f32>(x + ((<usize>i) << 2)) * f32x4.extract_lane(inv, 0),
    );
}
