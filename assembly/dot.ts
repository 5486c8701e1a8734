// Relaxed SIMD's int8 dot product, as the quantized kernels use it, and the probes the host
// runs once, cold, to check that this engine computes it exactly (V8 11 did not in its
// baseline tier): the dot kernels are used only where both pass.
//   i32x4.relaxed_dot_i8x16_i7x16_add_s(a, b, c): 16 products a instruction. Its second
//   operand must be in 0..127 for every engine to agree: q4's nibbles are (0..15); for q8 the
//   sign moves onto the other operand (simd.ts negateWhere), w·x = (w·sgn x)·|x|.

/** relaxed dot of signed a and b in 0..127, accumulated into c (the relaxed build only). */
// @ts-ignore: decorator
@inline export function dot7(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.relaxed_dot_i8x16_i7x16_add_s(a, b, c);
  unreachable(); // never called: the dot path exists only in the relaxed build
  return c;
}

/**
 * acc + xa·lo + xb·hi for nibbles lo, hi (0..15): in i32x4 lanes (d16 false), or in i16x8
 * lanes (d16 true: i16x8.relaxed_dot, pairs of products; a record's 8 such steps stay within
 * 8 · 2 · 15 · 127 = 30480 from 0, and within ±16256 from nibbleOffsets' start: no overflow),
 * widened once a record by nibbleSum.
 */
// @ts-ignore: decorator
@inline export function nib2(
  d16: bool,
  xa: v128,
  lo: v128,
  xb: v128,
  hi: v128,
  acc: v128,
): v128 {
  if (!d16) return dot7(xb, hi, dot7(xa, lo, acc));
  if (ASC_FEATURE_RELAXED_SIMD)
    return i16x8.add(
      acc,
      i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(xa, lo), i16x8.relaxed_dot_i8x16_i7x16_s(xb, hi)),
    );
  unreachable();
  return acc;
}

/** A record's nib2 sums as i32x4, lane b = block b. */
// @ts-ignore: decorator
@inline export function nibbleSum(d16: bool, acc: v128): v128 {
  return d16 ? i32x4.extadd_pairwise_i16x8_s(acc) : acc;
}

/**
 * The self-test of the relaxed dot product: out (i32x4) = relaxed_dot(a, b, c) for the
 * vectors at a, b (i8x16, b in 0..127) and c (i32x4). Called once, cold, before any kernel
 * uses the instruction: the JS side compares with the exact answer. 0 where the build has no
 * relaxed SIMD.
 */
export function dot_probe(a: usize, b: usize, c: usize, out: usize): i32 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    v128.store(out, i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(a), v128.load(b), v128.load(c)));
    return 1;
  }
  return 0;
}

/** The same for the int16 form: out (i16x8) = relaxed_dot_i8x16_i7x16_s(a, b); 0 without it. */
export function dot16_probe(a: usize, b: usize, out: usize): i32 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    v128.store(out, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(a), v128.load(b)));
    return 1;
  }
  return 0;
}
