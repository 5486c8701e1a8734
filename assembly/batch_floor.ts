// Not a kernel: a probe of the least work any exact int8-dot kernel must do to multiply q4 or
// q8 weights by 4 tokens at once (batched decoding of 4 streams), with everything in L1 so
// that memory cannot limit it. What it leaves out (loops over rows, stores, q4's -8·Σx term,
// multi-threading) only makes a real kernel slower, so its rate bounds what 4 streams can
// decode on this machine, whatever the kernel. Built and run by `npm run bench:floor`
// (bench/batch-floor.ts), not part of the kernels' build.
//
// Layout, as assembly/matmul_q.ts: a record is 128 weights (q4: 64 bytes of nibbles, q8: 128
// bytes), its 4 blocks interleaved 4 values at a time; x: 4 tokens' int8 values, [t][r][128];
// scales: one f32x4 a record and token (the weight scales times the activation scales).

import { hsum, madd, negateWhere, nibbleMask } from './simd';

const ZERO = i32x4.splat(0);

/** acc + q4 nibbles v (16 bytes: 32 weights) times a token's values at x, in int16 lanes (M: nibbleMask()). */
// @ts-ignore: decorator
@inline function nibbles16(v: v128, x: usize, acc: v128, M: v128): v128 {
  const lo = i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x), v128.and(v, M));
  const hi = i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x, 64), v128.and(i16x8.shr_u(v, 4), M));
  return i16x8.add(acc, i16x8.add(lo, hi));
}

/** The same in int32 lanes (relaxed_dot_add). */
// @ts-ignore: decorator
@inline function nibbles32(v: v128, x: usize, acc: v128, M: v128): v128 {
  const lo = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(x), v128.and(v, M), acc);
  return i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(x, 64), v128.and(i16x8.shr_u(v, 4), M), lo);
}

/** acc + the block sums p (i32x4) times their scales at s. */
// @ts-ignore: decorator
@inline function scaled(p: v128, s: usize, acc: v128): v128 {
  return madd(f32x4.convert_i32x4_s(p), v128.load(s), acc);
}

/** The 4 f32x4 sums added into one number (so that nothing is optimized away). */
// @ts-ignore: decorator
@inline function total(a0: v128, a1: v128, a2: v128, a3: v128): f32 {
  return hsum(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)));
}

const Q4_INT16: i32 = 0; // q4, products summed in int16 lanes (as matmul_q4_dot16)
const Q4_INT32: i32 = 1; // q4, in int32 lanes
const Q8: i32 = 2; // q8: the relaxed dot needs one operand in 0..127, so each token's values
// take the weights' signs (x·w = (x·sgn w)·|w|), |w| and the sign mask made once for all tokens

/**
 * 4 tokens times `records` records of weights, `reps` times: each 16 bytes of weights loaded
 * (and unpacked, or split into sign and magnitude) once for all 4 tokens, each record's block
 * sums scaled into the f32 sums.
 */
// @ts-ignore: decorator
@inline function fourTokens(
  kind: i32,
  w: usize,
  x: usize,
  scales: usize,
  records: i32,
  reps: i32,
): f32 {
  let a0 = f32x4.splat(0),
    a1 = f32x4.splat(0),
    a2 = f32x4.splat(0),
    a3 = f32x4.splat(0);
  const xt: usize = (<usize>records) << 7; // bytes of one token's values
  const recBytes: usize = kind == Q8 ? 128 : 64;
  const M = nibbleMask();
  for (let rep = 0; rep < reps; rep++) {
    for (let r = 0; r < records; r++) {
      const rec = w + <usize>r * recBytes;
      const xr = x + ((<usize>r) << 7);
      let s0 = ZERO,
        s1 = ZERO,
        s2 = ZERO,
        s3 = ZERO;
      for (let j: usize = 0; j < recBytes; j += 16) {
        const v = v128.load(rec + j);
        const p = xr + j;
        if (kind == Q8) {
          const neg = i8x16.lt_s(v, ZERO),
            wa = i8x16.abs(v);
          s0 = i32x4.relaxed_dot_i8x16_i7x16_add_s(negateWhere(v128.load(p), neg), wa, s0);
          s1 = i32x4.relaxed_dot_i8x16_i7x16_add_s(negateWhere(v128.load(p + xt), neg), wa, s1);
          s2 = i32x4.relaxed_dot_i8x16_i7x16_add_s(negateWhere(v128.load(p + 2 * xt), neg), wa, s2);
          s3 = i32x4.relaxed_dot_i8x16_i7x16_add_s(negateWhere(v128.load(p + 3 * xt), neg), wa, s3);
        } else if (kind == Q4_INT16) {
          s0 = nibbles16(v, p, s0, M);
          s1 = nibbles16(v, p + xt, s1, M);
          s2 = nibbles16(v, p + 2 * xt, s2, M);
          s3 = nibbles16(v, p + 3 * xt, s3, M);
        } else {
          s0 = nibbles32(v, p, s0, M);
          s1 = nibbles32(v, p + xt, s1, M);
          s2 = nibbles32(v, p + 2 * xt, s2, M);
          s3 = nibbles32(v, p + 3 * xt, s3, M);
        }
      }
      if (kind == Q4_INT16) {
        s0 = i32x4.extadd_pairwise_i16x8_s(s0);
        s1 = i32x4.extadd_pairwise_i16x8_s(s1);
        s2 = i32x4.extadd_pairwise_i16x8_s(s2);
        s3 = i32x4.extadd_pairwise_i16x8_s(s3);
      }
      const s = scales + ((<usize>r) << 6);
      a0 = scaled(s0, s, a0);
      a1 = scaled(s1, s + 16, a1);
      a2 = scaled(s2, s + 32, a2);
      a3 = scaled(s3, s + 48, a3);
    }
  }
  return total(a0, a1, a2, a3);
}

export function q4_int16(w: usize, x: usize, scales: usize, records: i32, reps: i32): f32 {
  return fourTokens(Q4_INT16, w, x, scales, records, reps);
}

export function q4_int32(w: usize, x: usize, scales: usize, records: i32, reps: i32): f32 {
  return fourTokens(Q4_INT32, w, x, scales, records, reps);
}

export function q8(w: usize, x: usize, scales: usize, records: i32, reps: i32): f32 {
  return fourTokens(Q8, w, x, scales, records, reps);
}
