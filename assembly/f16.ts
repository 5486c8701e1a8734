// f16 -> f32 widening for the f16 matmuls (assembly/matmul.ts), exact.
import { f16HiMask } from './simd';

// f16 -> f32 widening without the exponent re-bias. An f32 with the bits
//   sign | 000 | h[14..0] | 13 zeros        equals   value(h) · 2^-112
// for normal and subnormal h alike. Built 8 weights at a time in the 16-bit domain, where one
// shift covers 8 lanes: the upper halves are (h >>s 3) & 0x8FFF (sign kept, its copies
// cleared), the lower halves h << 13; interleaving them gives four f32 bit patterns per
// shuffle. The 2^112 goes to the activation side: the caller passes x · 2^112 once per call
// instead of one multiply per weight. 5 operations per 8 weights; the textbook widening
// (extend, shift, re-bias, sign) needs about twice that.
const F16_MASK: i32 = 0x8fffe000;

// @ts-ignore: decorator
@inline export function widen_lo(lo: v128, hi: v128): v128 {
  return i8x16.shuffle(lo, hi, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
}

// @ts-ignore: decorator
@inline export function widen_hi(lo: v128, hi: v128): v128 {
  return i8x16.shuffle(lo, hi, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
}

// @ts-ignore: decorator
@inline export function lo_halves(h: v128): v128 {
  return i16x8.shl(h, 13);
}

// @ts-ignore: decorator
@inline export function hi_halves(h: v128, mask: v128): v128 {
  return v128.and(i16x8.shr_s(h, 3), mask); // mask: f16HiMask(), read once before the loop
}

// @ts-ignore: decorator
@inline export function widen1(ptr: usize): f32 {
  return reinterpret<f32>(((<i32>load<i16>(ptr)) << 13) & F16_MASK);
}

/** count f16 weights at src to f32 (times 2^-112, see above) at dst. */
// @ts-ignore: decorator
@inline export function widen_rows(dst: usize, src: usize, count: i32): void {
  const hm = f16HiMask();
  let k = 0;
  for (; k + 8 <= count; k += 8) {
    const h = v128.load(src + ((<usize>k) << 1));
    const lo = lo_halves(h),
      hi = hi_halves(h, hm);
    v128.store(dst + ((<usize>k) << 2), widen_lo(lo, hi));
    v128.store(dst + ((<usize>k) << 2), widen_hi(lo, hi), 16);
  }
  for (; k < count; k++) store<f32>(dst + ((<usize>k) << 2), widen1(src + ((<usize>k) << 1)));
}
