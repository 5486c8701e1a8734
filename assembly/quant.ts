// W (d,n) @ x (T,n) + b (d,) -> out (T,d) with block-quantized weights   (contract: src/kernels/ref/quant.ts)
//   out[t, i] = b[i] + Σ_blocks s_w[i, blk] · s_x[t, blk] · Σ_k q_w[i, k] · q_x[t, k]
// Rows [row0, row1) only (threads split rows). xq: (T, nb·32) int8 activation values widened to
// int16; xs: (T, nb) their scales; w: scales and values in records (below).
// Each block's integer dot product is four i32x4.dot_i16x8_s (pmaddwd: 8 products summed in
// pairs per instruction), then one int -> float conversion and one multiply-add per block.
// Differences from the TS twin: the per-block float sums are f32 over 4 lanes (twin: f64).
import { hsum, madd } from './simd';

/** Σ over one block of 32: the q8 weights at w (32 int8) times the activations at x (32 int16). */
@inline function dot_q8(w: usize, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  const a = v128.load(w);
  const b = v128.load(w, 16);
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(a), x0), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(a), x1)),
    i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(b), x2), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(b), x3)),
  );
}

/** The same for q4: 16 bytes, low nibbles are weights 0..15, high nibbles 16..31, stored + 8. */
@inline function dot_q4(w: usize, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  const v = v128.load(w);
  const eight = i8x16.splat(8);
  const lo = i8x16.sub(v128.and(v, i8x16.splat(0x0f)), eight);
  const hi = i8x16.sub(i8x16.shr_u(v, 4), eight);
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(lo), x0), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(lo), x1)),
    i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(hi), x2), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(hi), x3)),
  );
}

// One body for both formats, inlined with a constant q4 so the branches fold away.
// Weights come in groups of 4 rows as one sequential stream of records, one per block
// (src/kernels/ref/quant.ts): [4 f32 scales][4 rows of values]. row0 is a multiple of 4;
// rows of the last group past row1 are computed but not stored.
@inline function matmul_q(
  q4: bool, out: usize, xq: usize, xs: usize, w: usize, bias: usize, T: i32, nb: i32, d: i32, row0: i32, row1: i32,
): void {
  const BYTES: usize = q4 ? 16 : 32; // one row's values in one block
  const RECORD: usize = 16 + (BYTES << 2);
  for (let t = 0; t < T; t++) {
    const xt = xq + (<usize>t * <usize>nb << 6); // 32 int16 = 64 bytes a block
    const st = xs + (<usize>t * <usize>nb << 2);
    const ot = out + (<usize>t * <usize>d << 2);
    for (let i = row0; i < row1; i += 4) {
      let rec = w + <usize>(i >> 2) * <usize>nb * RECORD;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const xb = xt + (<usize>b << 6);
        const x0 = v128.load(xb), x1 = v128.load(xb, 16), x2 = v128.load(xb, 32), x3 = v128.load(xb, 48);
        // the 4 rows' weight scales times this block's activation scale, in one vector
        const s = f32x4.mul(v128.load(rec), f32x4.splat(load<f32>(st + (<usize>b << 2))));
        const v = rec + 16;
        const p0 = !q4 ? dot_q8(v, x0, x1, x2, x3) : dot_q4(v, x0, x1, x2, x3);
        const p1 = !q4 ? dot_q8(v + BYTES, x0, x1, x2, x3) : dot_q4(v + BYTES, x0, x1, x2, x3);
        const p2 = !q4 ? dot_q8(v + 2 * BYTES, x0, x1, x2, x3) : dot_q4(v + 2 * BYTES, x0, x1, x2, x3);
        const p3 = !q4 ? dot_q8(v + 3 * BYTES, x0, x1, x2, x3) : dot_q4(v + 3 * BYTES, x0, x1, x2, x3);
        a0 = madd(f32x4.convert_i32x4_s(p0), i32x4.shuffle(s, s, 0, 0, 0, 0), a0);
        a1 = madd(f32x4.convert_i32x4_s(p1), i32x4.shuffle(s, s, 1, 1, 1, 1), a1);
        a2 = madd(f32x4.convert_i32x4_s(p2), i32x4.shuffle(s, s, 2, 2, 2, 2), a2);
        a3 = madd(f32x4.convert_i32x4_s(p3), i32x4.shuffle(s, s, 3, 3, 3, 3), a3);
        rec += RECORD;
      }
      store<f32>(ot + (<usize>i << 2), hsum(a0) + (bias ? load<f32>(bias + (<usize>i << 2)) : 0));
      if (i + 1 < row1) store<f32>(ot + (<usize>(i + 1) << 2), hsum(a1) + (bias ? load<f32>(bias + (<usize>(i + 1) << 2)) : 0));
      if (i + 2 < row1) store<f32>(ot + (<usize>(i + 2) << 2), hsum(a2) + (bias ? load<f32>(bias + (<usize>(i + 2) << 2)) : 0));
      if (i + 3 < row1) store<f32>(ot + (<usize>(i + 3) << 2), hsum(a3) + (bias ? load<f32>(bias + (<usize>(i + 3) << 2)) : 0));
    }
  }
}

export function matmul_q8(
  out: usize, xq: usize, xs: usize, w: usize, bias: usize, T: i32, nb: i32, d: i32, row0: i32, row1: i32,
): void {
  matmul_q(false, out, xq, xs, w, bias, T, nb, d, row0, row1);
}

export function matmul_q4(
  out: usize, xq: usize, xs: usize, w: usize, bias: usize, T: i32, nb: i32, d: i32, row0: i32, row1: i32,
): void {
  matmul_q(true, out, xq, xs, w, bias, T, nb, d, row0, row1);
}
