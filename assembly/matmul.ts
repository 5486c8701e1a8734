// W (d,n) @ x (T,n) + b (d,) -> out (T,d)       (same contract as src/kernels/ref/matmul.ts)
//
// Rows [row0, row1) of the output only, so a thread pool can split the rows (ggml's
// ir0..ir1 partition); every row is summed in the same order whatever the split, so
// threaded and single-threaded results are bit-identical.
//
// Differences from the TS twin (results differ in the last bits): f32 accumulation in
// 4-lane SIMD partial sums, combined at the end of the row; the TS twin sums in f64.
import { hsum, madd } from './simd';

// f16 -> f32 widening without the exponent re-bias. An f32 with the bits
//   sign | 000 | h[14..0] | 13 zeros        equals   value(h) · 2^-112
// for normal and subnormal h alike. Built 8 weights at a time in the 16-bit domain, where one
// shift covers 8 lanes: the upper halves are (h >>s 3) & 0x8FFF (sign kept, its copies
// cleared), the lower halves h << 13; interleaving them gives four f32 bit patterns per
// shuffle. The 2^112 goes to the activation side: the caller passes x · 2^112 (F16_X_SCALE)
// once per call instead of one multiply per weight. 5 operations per 8 weights, the textbook
// widening (extend, shift, re-bias, sign) needs about twice that.
const F16_MASK: i32 = 0x8fffe000;

@inline function widen_lo(lo: v128, hi: v128): v128 {
  return i8x16.shuffle(lo, hi, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
}

@inline function widen_hi(lo: v128, hi: v128): v128 {
  return i8x16.shuffle(lo, hi, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
}

@inline function lo_halves(h: v128): v128 {
  return i16x8.shl(h, 13);
}

@inline function hi_halves(h: v128): v128 {
  return v128.and(i16x8.shr_s(h, 3), i16x8.splat(<i16>0x8fff));
}

@inline function widen1(ptr: usize): f32 {
  return reinterpret<f32>((<i32>load<i16>(ptr) << 13) & F16_MASK);
}

/**
 * Tokens [0, T4) (T4 a multiple of 4), rows [row0, row1) of f32 weights, row i at
 * w + (i - row0)·n·4: 4 tokens at a time, so each weight vector is loaded once for 4 tokens.
 */
// @ts-ignore: decorator
@inline function gemm4_f32(
  out: usize, x: usize, w: usize, bias: usize, T4: i32, n: i32, d: i32, row0: i32, row1: i32,
): void {
  for (let t = 0; t < T4; t += 4) {
    for (let i = row0; i < row1; i++) {
      const wr = w + (<usize>(i - row0) * <usize>n << 2);
      const x0 = x + (<usize>t * <usize>n << 2);
      const x1 = x0 + (<usize>n << 2);
      const x2 = x1 + (<usize>n << 2);
      const x3 = x2 + (<usize>n << 2);
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let j = 0;
      for (; j + 4 <= n; j += 4) {
        const o = <usize>j << 2;
        const wv = v128.load(wr + o);
        a0 = madd(wv, v128.load(x0 + o), a0);
        a1 = madd(wv, v128.load(x1 + o), a1);
        a2 = madd(wv, v128.load(x2 + o), a2);
        a3 = madd(wv, v128.load(x3 + o), a3);
      }
      let s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
      for (; j < n; j++) {
        const o = <usize>j << 2;
        const wj = load<f32>(wr + o);
        s0 += wj * load<f32>(x0 + o);
        s1 += wj * load<f32>(x1 + o);
        s2 += wj * load<f32>(x2 + o);
        s3 += wj * load<f32>(x3 + o);
      }
      const b: f32 = bias ? load<f32>(bias + (<usize>i << 2)) : 0;
      store<f32>(out + ((<usize>t * <usize>d + <usize>i) << 2), s0 + b);
      store<f32>(out + (((<usize>t + 1) * <usize>d + <usize>i) << 2), s1 + b);
      store<f32>(out + (((<usize>t + 2) * <usize>d + <usize>i) << 2), s2 + b);
      store<f32>(out + (((<usize>t + 3) * <usize>d + <usize>i) << 2), s3 + b);
    }
  }
}

/** Rows a thread widens to f32 at a time for the prefill GEMM (its scratch: this x n f32). */
export const WIDE_ROWS: i32 = 8;

/** count f16 weights at src to f32 (times 2^-112, see above) at dst. */
// @ts-ignore: decorator
@inline function widen_rows(dst: usize, src: usize, count: i32): void {
  let k = 0;
  for (; k + 8 <= count; k += 8) {
    const h = v128.load(src + (<usize>k << 1));
    const lo = lo_halves(h), hi = hi_halves(h);
    v128.store(dst + (<usize>k << 2), widen_lo(lo, hi));
    v128.store(dst + (<usize>k << 2), widen_hi(lo, hi), 16);
  }
  for (; k < count; k++) store<f32>(dst + (<usize>k << 2), widen1(src + (<usize>k << 1)));
}

/** f32 weights. */
export function matmul_f32(
  out: usize, x: usize, w: usize, bias: usize, T: i32, n: i32, d: i32, row0: i32, row1: i32,
): void {
  const n8 = n & ~7;
  let t = T & ~3;
  // WIDE_ROWS rows at a time for all token blocks, so the rows stay in cache across tokens
  // instead of streaming from memory once per 4 tokens
  if (t > 0) {
    for (let i0 = row0; i0 < row1; i0 += WIDE_ROWS) {
      const i1 = min(i0 + WIDE_ROWS, row1);
      gemm4_f32(out, x, w + (<usize>i0 * <usize>n << 2), bias, t, n, d, i0, i1);
    }
  }
  // remaining tokens one at a time (decode is T = 1): 4 rows at a time share the
  // activation loads; 8 weights of each row per step
  for (; t < T; t++) {
    const xt = x + (<usize>t * <usize>n << 2);
    const ot = out + (<usize>t * <usize>d << 2);
    const st = <usize>n << 2; // bytes per weight row
    let i = row0;
    for (; i + 4 <= row1; i += 4) {
      const w0 = w + <usize>i * st;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), b0 = f32x4.splat(0), b1 = f32x4.splat(0);
      let c0 = f32x4.splat(0), c1 = f32x4.splat(0), e0 = f32x4.splat(0), e1 = f32x4.splat(0);
      let j = 0;
      for (; j < n8; j += 8) {
        const o = <usize>j << 2;
        const xl = v128.load(xt + o);
        const xh = v128.load(xt + o, 16);
        const p = w0 + o;
        a0 = madd(v128.load(p), xl, a0);
        a1 = madd(v128.load(p, 16), xh, a1);
        b0 = madd(v128.load(p + st), xl, b0);
        b1 = madd(v128.load(p + st, 16), xh, b1);
        c0 = madd(v128.load(p + 2 * st), xl, c0);
        c1 = madd(v128.load(p + 2 * st, 16), xh, c1);
        e0 = madd(v128.load(p + 3 * st), xl, e0);
        e1 = madd(v128.load(p + 3 * st, 16), xh, e1);
      }
      let s0 = hsum(f32x4.add(a0, a1)), s1 = hsum(f32x4.add(b0, b1));
      let s2 = hsum(f32x4.add(c0, c1)), s3 = hsum(f32x4.add(e0, e1));
      for (; j < n; j++) {
        const xj = load<f32>(xt + (<usize>j << 2));
        const p = w0 + (<usize>j << 2);
        s0 += load<f32>(p) * xj;
        s1 += load<f32>(p + st) * xj;
        s2 += load<f32>(p + 2 * st) * xj;
        s3 += load<f32>(p + 3 * st) * xj;
      }
      store<f32>(ot + (<usize>i << 2), s0 + (bias ? load<f32>(bias + (<usize>i << 2)) : 0));
      store<f32>(ot + (<usize>(i + 1) << 2), s1 + (bias ? load<f32>(bias + (<usize>(i + 1) << 2)) : 0));
      store<f32>(ot + (<usize>(i + 2) << 2), s2 + (bias ? load<f32>(bias + (<usize>(i + 2) << 2)) : 0));
      store<f32>(ot + (<usize>(i + 3) << 2), s3 + (bias ? load<f32>(bias + (<usize>(i + 3) << 2)) : 0));
    }
    // leftover rows, same arithmetic one row at a time
    for (; i < row1; i++) {
      const w0 = w + <usize>i * st;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
      let j = 0;
      for (; j < n8; j += 8) {
        const o = <usize>j << 2;
        a0 = madd(v128.load(w0 + o), v128.load(xt + o), a0);
        a1 = madd(v128.load(w0 + o, 16), v128.load(xt + o, 16), a1);
      }
      let s0 = hsum(f32x4.add(a0, a1));
      for (; j < n; j++) s0 += load<f32>(w0 + (<usize>j << 2)) * load<f32>(xt + (<usize>j << 2));
      store<f32>(ot + (<usize>i << 2), s0 + (bias ? load<f32>(bias + (<usize>i << 2)) : 0));
    }
  }
}

/**
 * f16 weights (raw u16 bits); xs = x · 2^112 (see the top). scratch: WIDE_ROWS·n f32 of this
 * thread's own, for prefill.
 *
 * Prefill (T >= 4) widens WIDE_ROWS rows at a time into scratch, once for all T tokens, and
 * runs the f32 GEMM on them: the widening (5 operations per 8 weights) then costs nothing per
 * token, and the inner loop is the f32 one, a multiply-add per 4 weights and token. Widening
 * is exact, so the sums are the same, bit for bit, as widening in registers.
 */
export function matmul_f16(
  out: usize, xs: usize, w: usize, bias: usize, T: i32, n: i32, d: i32, row0: i32, row1: i32,
  scratch: usize,
): void {
  const n8 = n & ~7;
  let t = T & ~3;
  if (t > 0) {
    for (let i0 = row0; i0 < row1; i0 += WIDE_ROWS) {
      const i1 = min(i0 + WIDE_ROWS, row1);
      widen_rows(scratch, w + (<usize>i0 * <usize>n << 1), (i1 - i0) * n);
      gemm4_f32(out, xs, scratch, bias, t, n, d, i0, i1);
    }
  }
  // remaining tokens one at a time (decode is T = 1): 4 rows at a time share the
  // activation loads; 8 weights of each row per step
  for (; t < T; t++) {
    const xt = xs + (<usize>t * <usize>n << 2);
    const ot = out + (<usize>t * <usize>d << 2);
    const st = <usize>n << 1; // bytes per weight row
    let i = row0;
    for (; i + 4 <= row1; i += 4) {
      const w0 = w + <usize>i * st;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), b0 = f32x4.splat(0), b1 = f32x4.splat(0);
      let c0 = f32x4.splat(0), c1 = f32x4.splat(0), e0 = f32x4.splat(0), e1 = f32x4.splat(0);
      let j = 0;
      for (; j < n8; j += 8) {
        const xl = v128.load(xt + (<usize>j << 2));
        const xh = v128.load(xt + (<usize>j << 2), 16);
        const p = w0 + (<usize>j << 1);
        let h = v128.load(p);
        let lo = lo_halves(h), hi = hi_halves(h);
        a0 = madd(widen_lo(lo, hi), xl, a0);
        a1 = madd(widen_hi(lo, hi), xh, a1);
        h = v128.load(p + st);
        lo = lo_halves(h); hi = hi_halves(h);
        b0 = madd(widen_lo(lo, hi), xl, b0);
        b1 = madd(widen_hi(lo, hi), xh, b1);
        h = v128.load(p + 2 * st);
        lo = lo_halves(h); hi = hi_halves(h);
        c0 = madd(widen_lo(lo, hi), xl, c0);
        c1 = madd(widen_hi(lo, hi), xh, c1);
        h = v128.load(p + 3 * st);
        lo = lo_halves(h); hi = hi_halves(h);
        e0 = madd(widen_lo(lo, hi), xl, e0);
        e1 = madd(widen_hi(lo, hi), xh, e1);
      }
      let s0 = hsum(f32x4.add(a0, a1)), s1 = hsum(f32x4.add(b0, b1));
      let s2 = hsum(f32x4.add(c0, c1)), s3 = hsum(f32x4.add(e0, e1));
      for (; j < n; j++) {
        const xj = load<f32>(xt + (<usize>j << 2));
        const p = w0 + (<usize>j << 1);
        s0 += widen1(p) * xj;
        s1 += widen1(p + st) * xj;
        s2 += widen1(p + 2 * st) * xj;
        s3 += widen1(p + 3 * st) * xj;
      }
      store<f32>(ot + (<usize>i << 2), s0 + (bias ? load<f32>(bias + (<usize>i << 2)) : 0));
      store<f32>(ot + (<usize>(i + 1) << 2), s1 + (bias ? load<f32>(bias + (<usize>(i + 1) << 2)) : 0));
      store<f32>(ot + (<usize>(i + 2) << 2), s2 + (bias ? load<f32>(bias + (<usize>(i + 2) << 2)) : 0));
      store<f32>(ot + (<usize>(i + 3) << 2), s3 + (bias ? load<f32>(bias + (<usize>(i + 3) << 2)) : 0));
    }
    // leftover rows, same arithmetic one row at a time (same sums as above, bit for bit)
    for (; i < row1; i++) {
      const w0 = w + <usize>i * st;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
      let j = 0;
      for (; j < n8; j += 8) {
        const h = v128.load(w0 + (<usize>j << 1));
        const lo = lo_halves(h), hi = hi_halves(h);
        a0 = madd(widen_lo(lo, hi), v128.load(xt + (<usize>j << 2)), a0);
        a1 = madd(widen_hi(lo, hi), v128.load(xt + (<usize>j << 2), 16), a1);
      }
      let s0 = hsum(f32x4.add(a0, a1));
      for (; j < n; j++) s0 += widen1(w0 + (<usize>j << 1)) * load<f32>(xt + (<usize>j << 2));
      store<f32>(ot + (<usize>i << 2), s0 + (bias ? load<f32>(bias + (<usize>i << 2)) : 0));
    }
  }
}
