// Activations to int8 blocks for the q8/q4 matmuls (twin: src/kernels/ref/quant.ts quantize_act;
// the layout: src/formats/quant.ts).

/**
 * Activations x (T, n) f32 to int8 blocks, tokens [t0, t1) (threads split tokens): per token
 * nbp blocks (whole records, the padding ones 0); xq the values (interleaved as the weights),
 * xs the scales, xsum the sums. The TS twin's arithmetic exactly: scale = max|x| / 127 and
 * q = x · (1 / scale) in f64, rounded half up like Math.round, 2 values a step (f64x2).
 */
export function quantize_act(
  x: usize,
  n: i32,
  nbp: i32,
  xq: usize,
  xs: usize,
  xsum: usize,
  t0: i32,
  t1: i32,
): void {
  for (let t = t0; t < t1; t++) {
    const xt = x + ((<usize>t * <usize>n) << 2);
    for (let b = 0; b < nbp; b++) {
      const start = b << 5;
      const len = max(0, min(32, n - start));
      const xb = xt + ((<usize>start) << 2);
      // max |x| over the block: 4 lanes at a time, then the rest
      let m = f32x4.splat(0);
      let k = 0;
      for (; k + 4 <= len; k += 4) m = f32x4.max(m, f32x4.abs(v128.load(xb + ((<usize>k) << 2))));
      let amax = max(
        max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)),
        max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)),
      );
      for (; k < len; k++) amax = max(amax, abs(load<f32>(xb + ((<usize>k) << 2))));
      const scale: f64 = <f64>amax / 127;
      const inv: f64 = scale != 0 ? 1 / scale : 0;
      const i = <usize>t * <usize>nbp + <usize>b;
      store<f32>(xs + (i << 2), <f32>scale);
      // this block's values go to bytes 4·(b % 4) + 16v + m of its record (v = k >> 2, m = k & 3)
      const rec = xq + ((<usize>t * <usize>nbp + <usize>(b & ~3)) << 5) + ((<usize>(b & 3)) << 2);
      let total = 0;
      if (len == 32) {
        const invv = f64x2.splat(inv);
        let sum = i32x4.splat(0);
        for (k = 0; k < 32; k += 4) {
          const q = round4(v128.load(xb + ((<usize>k) << 2)), invv); // 4 values as i32x4
          sum = i32x4.add(sum, q);
          // narrow to 4 bytes (|q| <= 127: no saturation)
          const q16 = i16x8.narrow_i32x4_s(q, q);
          store<i32>(
            rec + ((<usize>k) << 2),
            i32x4.extract_lane(i8x16.narrow_i16x8_s(q16, q16), 0),
          );
        }
        total =
          i32x4.extract_lane(sum, 0) +
          i32x4.extract_lane(sum, 1) +
          i32x4.extract_lane(sum, 2) +
          i32x4.extract_lane(sum, 3);
      } else {
        // a short last block: the same arithmetic, one value at a time
        for (k = 0; k < 32; k++) {
          let q = 0;
          if (k < len) {
            const v = <f64>load<f32>(xb + ((<usize>k) << 2)) * inv;
            const r = Math.floor(v);
            q = <i32>(v - r >= 0.5 ? r + 1 : r); // Math.round: ties up
          }
          store<i8>(rec + ((<usize>(k >> 2)) << 4) + <usize>(k & 3), <i8>q);
          total += q;
        }
      }
      store<i32>(xsum + (i << 2), total);
    }
  }
}

/** round(x · inv) for 4 f32 values, in f64 as Math.round does (halves up): i32x4. */
// @ts-ignore: decorator
@inline function round4(v: v128, inv: v128): v128 {
  const lo = f64x2.mul(f64x2.promote_low_f32x4(v), inv);
  const hi = f64x2.mul(f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1)), inv);
  return i32x4.shuffle(roundHalfUp(lo), roundHalfUp(hi), 0, 1, 4, 5);
}

/** Math.round of 2 f64 lanes (|v| < 2^31), as i32 in lanes 0 and 1: floor, plus 1 from .5 up. */
// @ts-ignore: decorator
@inline function roundHalfUp(v: v128): v128 {
  const f = f64x2.floor(v);
  const up = f64x2.ge(f64x2.sub(v, f), f64x2.splat(0.5)); // all ones where the fraction >= .5
  return i32x4.trunc_sat_f64x2_s_zero(f64x2.add(f, v128.and(up, f64x2.splat(1.0))));
}
