// W (d,n) @ x (T,n) + b (d,) -> out (T,d) with block-quantized weights
//   (twins: src/kernels/ref/quant.ts; the format: src/formats/quant.ts)
//   out[t, i] = b[i] + Σ_blocks s_w[i, blk] · s_x[t, blk] · Σ_k q_w[i, k] · q_x[t, k]
// Rows [row0, row1) only (threads split rows in whole tiles). xq: (T, nr·128) int8 activation
// values in the weights' interleaved record order; xs: (T, nr·4) their scales; xsum: (T, nr·4)
// the sums of each block's values (for q4's +8); w: rows of nr records; nr: records a row.
//
// Each record gives the integer sums of its 4 blocks as one i32x4 (lane b = block b; the
// values are interleaved so that this needs no shuffling), which is converted to f32 once and
// multiplied by the 4 weight scales times the 4 activation scales:
//   acc = madd(f32(isum), s_w · s_x, acc)      per record, in order;   out = Σ lanes(acc) + b
// That float sequence is the same for every row and token whatever T, the thread split or
// the integer path, so decoding, prefill and batched steps agree bit for bit.
//
// Two integer paths, exactly equal (integer sums do not round):
//   dot: relaxed SIMD's i32x4.relaxed_dot_i8x16_i7x16_add_s, 16 products a instruction. Its
//        second operand must be in 0..127 for every engine to agree: q4's nibbles are (0..15);
//        for q8 the sign of x moves onto w, w·x = (w·sgn x)·|x|, |x| <= 127.
//   ext: SIMD128 everywhere: widen to int16, i32x4.dot_i16x8_s (8 products), add.
// The dot path is used only where a start-up self-test found the instruction right
// (dot_probe below; V8 11 got it wrong in its baseline tier).
//
// Memory order: decode reads every weight once, so the kernel runs at the speed memory
// delivers it. Rows are computed 4 at a time, and the 4 are far apart (i, i+s, i+2s, i+3s
// inside a tile of 4s rows): four long sequential streams, which the hardware prefetcher
// follows; 4 adjacent rows or one interleaved stream ran at half the bandwidth.
//
// Differences from the TS twin: the float sums are f32 (twin: f64).

import { dot7, nib2, nibbleSum } from './dot';
import { hsum, madd, negateWhere, nibbleMask } from './simd';

/** Rows in each of a tile's 4 streams; a tile is 4 x this many rows (threads split tiles). */
export const STREAM_ROWS: i32 = 64;

export const ZERO = i32x4.splat(0);

/**
 * The kernels' flags by name. The bodies below are inlined with constant flags, so each export
 * compiles to its own straight-line kernel.
 */
export const Q8: bool = false,
  Q4: bool = true;
/** The integer path: SIMD128's widening dot (everywhere), or relaxed SIMD's int8 dot (dot.ts). */
export const EXT: bool = false,
  DOT: bool = true;
/** q4's sums with the int8 dot: in int32 lanes, or in int16 lanes (dot.ts nib2). */
export const SUMS_I32: bool = false,
  SUMS_I16: bool = true;

// --- integer sums of one record (SIMD128): 4 blocks of one row against one token, lanes = blocks

/** i32x4 [b0, b1, b2, b3] from dot_i16x8 partials lo = [b0, b0, b1, b1], hi = [b2, b2, b3, b3]. */
// @ts-ignore: decorator
@inline function pairs(lo: v128, hi: v128): v128 {
  return i32x4.add(i32x4.shuffle(lo, hi, 0, 2, 4, 6), i32x4.shuffle(lo, hi, 1, 3, 5, 7));
}

/** q8 · x over one record, 4 rows at once (w0..w3 their values, x the token's). */
// @ts-ignore: decorator
@inline function q8_ext(w: usize, x: usize): v128 {
  let lo = ZERO,
    hi = ZERO;
  for (let k: usize = 0; k < 128; k += 16) {
    const wv = v128.load(w + k);
    const xv = v128.load(x + k);
    lo = i32x4.add(
      lo,
      i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(wv), i16x8.extend_low_i8x16_s(xv)),
    );
    hi = i32x4.add(
      hi,
      i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(wv), i16x8.extend_high_i8x16_s(xv)),
    );
  }
  return pairs(lo, hi);
}

/** (q4 + 8) · x over one record. */
// @ts-ignore: decorator
@inline function q4_ext(w: usize, x: usize): v128 {
  const m = nibbleMask();
  let lo = ZERO,
    hi = ZERO;
  for (let j: usize = 0; j < 64; j += 16) {
    const v = v128.load(w + j);
    const a = v128.and(v, m); // weights of vector j
    const b = v128.and(i16x8.shr_u(v, 4), m); // of vector j + 4
    const xa = v128.load(x + j);
    const xb = v128.load(x + j, 64);
    lo = i32x4.add(
      lo,
      i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(a), i16x8.extend_low_i8x16_s(xa)),
    );
    hi = i32x4.add(
      hi,
      i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(a), i16x8.extend_high_i8x16_s(xa)),
    );
    lo = i32x4.add(
      lo,
      i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(b), i16x8.extend_low_i8x16_s(xb)),
    );
    hi = i32x4.add(
      hi,
      i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(b), i16x8.extend_high_i8x16_s(xb)),
    );
  }
  return pairs(lo, hi);
}

/** acc + one record of one row against one token (SIMD128): rec the record (scales, then
 * values), x its activations, xsc their 4 scales, x8 8 x their 4 sums (q4 only). */
// @ts-ignore: decorator
@inline function record(q4: bool, rec: usize, x: usize, xsc: v128, x8: v128, acc: v128): v128 {
  const p = q4 ? i32x4.sub(q4_ext(rec + 16, x), x8) : q8_ext(rec + 16, x); // Σ (q + 8)·x - 8·Σ x
  return finish(p, rec, xsc, acc);
}

/** acc + a record's integer block sums p times its 4 weight scales (at rec) times xsc. */
// @ts-ignore: decorator
@inline export function finish(p: v128, rec: usize, xsc: v128, acc: v128): v128 {
  return madd(f32x4.convert_i32x4_s(p), f32x4.mul(v128.load(rec), xsc), acc);
}

/** out[i] = Σ lanes(acc) + bias[i], for rows below row1 (a short tile computes a few past it). */
// @ts-ignore: decorator
@inline export function storeRow(out: usize, bias: usize, i: i32, row1: i32, acc: v128): void {
  if (i < row1)
    store<f32>(
      out + ((<usize>i) << 2),
      hsum(acc) + (bias ? load<f32>(bias + ((<usize>i) << 2)) : 0),
    );
}

// One body for both formats and both integer paths, inlined with constant flags so the
// branches fold away.
// @ts-ignore: decorator
@inline export function matmul_q(
  q4: bool,
  dot: bool,
  d16: bool,
  out: usize,
  xq: usize,
  xs: usize,
  xsum: usize,
  w: usize,
  bias: usize,
  T: i32,
  nr: i32,
  d: i32,
  row0: i32,
  row1: i32,
): void {
  const REC: usize = q4 ? 16 + 64 : 16 + 128;
  const rowBytes = <usize>nr * REC;
  const m = nibbleMask();
  for (let g = row0; g < row1; g += 4 * STREAM_ROWS) {
    // s rows a stream; a last, short tile has 4s >= its rows: the rows past row1 are computed
    // from row row1 - 1 instead (so nothing past the matrix is read) and not stored
    const s = min(STREAM_ROWS, (row1 - g + 3) >> 2);
    for (let i = g; i < g + s; i++) {
      const w0 = w + <usize>i * rowBytes;
      const w1 = w + <usize>min(i + s, row1 - 1) * rowBytes;
      const w2 = w + <usize>min(i + 2 * s, row1 - 1) * rowBytes;
      const w3 = w + <usize>min(i + 3 * s, row1 - 1) * rowBytes;
      for (let t = 0; t < T; t++) {
        const xt = xq + ((<usize>t * <usize>nr) << 7); // 128 int8 a record
        const st = xs + ((<usize>t * <usize>nr) << 4);
        const zt = xsum + ((<usize>t * <usize>nr) << 4);
        let a0 = f32x4.splat(0),
          a1 = f32x4.splat(0),
          a2 = f32x4.splat(0),
          a3 = f32x4.splat(0);
        for (let r = 0; r < nr; r++) {
          const o = <usize>r * REC;
          const x = xt + ((<usize>r) << 7);
          const xsc = v128.load(st + ((<usize>r) << 4));
          const x8 = q4 ? i32x4.shl(v128.load(zt + ((<usize>r) << 4)), 3) : ZERO;
          if (dot) {
            // the dot paths spelled out for the 4 rows, so each activation vector is loaded
            // (and, for q8, split into sign and magnitude) once for all 4
            let s0 = ZERO,
              s1 = ZERO,
              s2 = ZERO,
              s3 = ZERO;
            if (q4) {
              for (let j: usize = 0; j < 64; j += 16) {
                const xa = v128.load(x + j),
                  xb = v128.load(x + j, 64);
                let v = v128.load(w0 + o + 16 + j);
                s0 = nib2(d16, xa, v128.and(v, m), xb, v128.and(i16x8.shr_u(v, 4), m), s0);
                v = v128.load(w1 + o + 16 + j);
                s1 = nib2(d16, xa, v128.and(v, m), xb, v128.and(i16x8.shr_u(v, 4), m), s1);
                v = v128.load(w2 + o + 16 + j);
                s2 = nib2(d16, xa, v128.and(v, m), xb, v128.and(i16x8.shr_u(v, 4), m), s2);
                v = v128.load(w3 + o + 16 + j);
                s3 = nib2(d16, xa, v128.and(v, m), xb, v128.and(i16x8.shr_u(v, 4), m), s3);
              }
              s0 = i32x4.sub(nibbleSum(d16, s0), x8);
              s1 = i32x4.sub(nibbleSum(d16, s1), x8);
              s2 = i32x4.sub(nibbleSum(d16, s2), x8);
              s3 = i32x4.sub(nibbleSum(d16, s3), x8);
            } else {
              for (let k: usize = 0; k < 128; k += 16) {
                const xv = v128.load(x + k);
                const neg = i8x16.lt_s(xv, ZERO); // 0xff where x < 0
                const xa = i8x16.abs(xv);
                s0 = dot7(negateWhere(v128.load(w0 + o + 16 + k), neg), xa, s0);
                s1 = dot7(negateWhere(v128.load(w1 + o + 16 + k), neg), xa, s1);
                s2 = dot7(negateWhere(v128.load(w2 + o + 16 + k), neg), xa, s2);
                s3 = dot7(negateWhere(v128.load(w3 + o + 16 + k), neg), xa, s3);
              }
            }
            a0 = finish(s0, w0 + o, xsc, a0);
            a1 = finish(s1, w1 + o, xsc, a1);
            a2 = finish(s2, w2 + o, xsc, a2);
            a3 = finish(s3, w3 + o, xsc, a3);
          } else {
            a0 = record(q4, w0 + o, x, xsc, x8, a0);
            a1 = record(q4, w1 + o, x, xsc, x8, a1);
            a2 = record(q4, w2 + o, x, xsc, x8, a2);
            a3 = record(q4, w3 + o, x, xsc, x8, a3);
          }
        }
        const ot = out + ((<usize>t * <usize>d) << 2);
        storeRow(ot, bias, i, row1, a0);
        storeRow(ot, bias, i + s, row1, a1);
        storeRow(ot, bias, i + 2 * s, row1, a2);
        storeRow(ot, bias, i + 3 * s, row1, a3);
      }
    }
  }
}

export function matmul_q8(
  out: usize,
  xq: usize,
  xs: usize,
  xsum: usize,
  w: usize,
  bias: usize,
  T: i32,
  nr: i32,
  d: i32,
  row0: i32,
  row1: i32,
): void {
  matmul_q(Q8, EXT, SUMS_I32, out, xq, xs, xsum, w, bias, T, nr, d, row0, row1);
}

export function matmul_q4(
  out: usize,
  xq: usize,
  xs: usize,
  xsum: usize,
  w: usize,
  bias: usize,
  T: i32,
  nr: i32,
  d: i32,
  row0: i32,
  row1: i32,
): void {
  matmul_q(Q4, EXT, SUMS_I32, out, xq, xs, xsum, w, bias, T, nr, d, row0, row1);
}
