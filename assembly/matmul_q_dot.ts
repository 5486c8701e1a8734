// The relaxed-dot kernels for 2-4 tokens (several sequences decoding together, or a prefill's
// last chunk), and the entry points of the relaxed build. The record layout, the float sequence
// and the 4-stream tiles are matmul_q.ts's; the int8 dot and its operand rules, dot.ts's.

import { dot7, nib2, nibbleSum } from './dot';
import {
  DOT,
  finish,
  matmul_q,
  Q4,
  Q8,
  STREAM_ROWS,
  storeRow,
  SUMS_I16,
  SUMS_I32,
  ZERO,
} from './matmul_q';
import { negateWhere, nibbleMask } from './simd';

/**
 * The most bytes of activations the few-token path sweeps for every row (its scratch, per
 * thread): they must stay in L1 while the weights stream through it. phi's n = 2048 with 4
 * tokens is 8 KB; at 16-32 KB that path was no faster than the token-by-token one, and longer
 * rows go through matmul_q_streams.
 */
export const FEW_X_BYTES: i32 = 8 << 10;

/** The tn tokens' values (xq: [t][nr·128]) record by record into scratch: [r][t][128 bytes]. */
// @ts-ignore: decorator
@inline function recordMajor(xq: usize, nr: i32, tn: i32, scratch: usize): void {
  const xt: usize = (<usize>nr) << 7;
  for (let t = 0; t < tn; t++) {
    for (let r = 0; r < nr; r++) {
      const src = xq + <usize>t * xt + ((<usize>r) << 7);
      const dst = scratch + ((<usize>r * <usize>tn + <usize>t) << 7);
      for (let k: usize = 0; k < 128; k += 16) v128.store(dst + k, v128.load(src + k));
    }
  }
}

/**
 * q4's -8·Σx term in int16 lanes, for the int16 sums to start from: for each record and token
 * of scratch (recordMajor's layout), at offs + (r·tn + t)·16, lane l = -8 · the sum of the 16
 * values that lane l of i16x8.relaxed_dot meets in nib2 (bytes 2l, 2l+1 of each 16). A lane's
 * running sum is then Σ q·x over the products done and -8·x over the rest: within ±16·8·127,
 * so int16 holds it at every step, and extadd_pairwise gives each block's exact sum.
 */
// @ts-ignore: decorator
@inline function nibbleOffsets(scratch: usize, nr: i32, tn: i32, offs: usize): void {
  const count = nr * tn;
  for (let i = 0; i < count; i++) {
    const x = scratch + ((<usize>i) << 7);
    let sum = i16x8.extadd_pairwise_i8x16_s(v128.load(x));
    for (let k: usize = 16; k < 128; k += 16)
      sum = i16x8.add(sum, i16x8.extadd_pairwise_i8x16_s(v128.load(x + k)));
    v128.store(offs + ((<usize>i) << 4), i16x8.neg(i16x8.shl(sum, 3)));
  }
}

/** Where token t's q4 sums of a record start: its nibbleOffsets lanes (int16), or 0. */
// @ts-ignore: decorator
@inline function q4Start(d16: bool, off: usize, t: i32): v128 {
  return d16 ? v128.load(off + ((<usize>t) << 4)) : ZERO;
}

/** A token's q4 block sums of a record: widened from int16, or less 8·Σx (Σx at x8). */
// @ts-ignore: decorator
@inline function q4Sums(d16: bool, s: v128, x8: usize): v128 {
  return d16 ? nibbleSum(true, s) : i32x4.sub(s, i32x4.shl(v128.load(x8), 3));
}

/**
 * 3 or 4 tokens (tn, a constant), as in decoding several sequences at once: one row at a time,
 * each record read from memory once and used for all tn tokens before the next, so the weights
 * stream in at an even pace while the tokens' work is done (the token-by-token loop reads a
 * row group once, then computes from cache with no memory traffic in flight).
 *   q4: each 16 bytes of nibbles unpacked once for all tokens; the int16 sums start from
 *       the -8·Σx term (nibbleOffsets, once a call), not corrected after each record;
 *   q8: the sign of w moved onto x (below), |w| and the sign mask made once for all tokens.
 * The activations are first copied record by record into scratch (tn·nr·128 bytes of this
 * thread's own, at most FEW_X_BYTES; q4's int16 starts follow, tn·nr·16), a record's tokens
 * side by side: rows of 2 or 8 KB put the tokens a multiple of 4 KB apart, in the same L1
 * sets, which cost a third of the speed.
 * Each (row, token) sums its records in order, as the other paths do.
 */
// @ts-ignore: decorator
@inline function matmul_q_few(
  q4: bool,
  d16: bool,
  tn: i32,
  out: usize,
  xq: usize,
  xs: usize,
  xsum: usize,
  w: usize,
  bias: usize,
  nr: i32,
  d: i32,
  row0: i32,
  row1: i32,
  scratch: usize,
): void {
  const REC: usize = q4 ? 16 + 64 : 16 + 128;
  const rowBytes = <usize>nr * REC;
  const st: usize = (<usize>nr) << 4; // bytes of a token's scales (and sums)
  const od: usize = (<usize>d) << 2;
  const xr: usize = (<usize>tn) << 7; // bytes of one record's tokens in scratch
  recordMajor(xq, nr, tn, scratch);
  const offs = scratch + <usize>nr * xr; // q4, int16 sums: their -8·Σx starts
  if (q4 && d16) nibbleOffsets(scratch, nr, tn, offs);
  const m = nibbleMask();
  for (let i = row0; i < row1; i++) {
    const wr = w + <usize>i * rowBytes;
    let a0 = f32x4.splat(0),
      a1 = f32x4.splat(0),
      a2 = f32x4.splat(0),
      a3 = f32x4.splat(0);
    for (let r = 0; r < nr; r++) {
      const rec = wr + <usize>r * REC;
      const xrec = scratch + <usize>r * xr;
      const so = (<usize>r) << 4;
      const off = offs + ((<usize>r * <usize>tn) << 4);
      let s0 = q4 ? q4Start(d16, off, 0) : ZERO,
        s1 = q4 ? q4Start(d16, off, 1) : ZERO,
        s2 = q4 ? q4Start(d16, off, 2) : ZERO,
        s3 = q4 && tn > 3 ? q4Start(d16, off, 3) : ZERO;
      if (q4) {
        for (let j: usize = 0; j < 64; j += 16) {
          const v = v128.load(rec + 16 + j);
          const lo = v128.and(v, m),
            hi = v128.and(i16x8.shr_u(v, 4), m);
          const x = xrec + j;
          s0 = nib2(d16, v128.load(x), lo, v128.load(x, 64), hi, s0);
          s1 = nib2(d16, v128.load(x, 128), lo, v128.load(x, 192), hi, s1);
          s2 = nib2(d16, v128.load(x, 256), lo, v128.load(x, 320), hi, s2);
          if (tn > 3) s3 = nib2(d16, v128.load(x, 384), lo, v128.load(x, 448), hi, s3);
        }
        s0 = q4Sums(d16, s0, xsum + so);
        s1 = q4Sums(d16, s1, xsum + st + so);
        s2 = q4Sums(d16, s2, xsum + 2 * st + so);
        if (tn > 3) s3 = q4Sums(d16, s3, xsum + 3 * st + so);
      } else {
        for (let k: usize = 0; k < 128; k += 16) {
          // the sign of w moves onto x: x·w = (x·sgn w)·|w|, |w| <= 127 the unsigned operand,
          // so the per-token step is two operations and the dot
          const wv = v128.load(rec + 16 + k);
          const neg = i8x16.lt_s(wv, ZERO),
            wa = i8x16.abs(wv);
          const x = xrec + k;
          s0 = dot7(negateWhere(v128.load(x), neg), wa, s0);
          s1 = dot7(negateWhere(v128.load(x, 128), neg), wa, s1);
          s2 = dot7(negateWhere(v128.load(x, 256), neg), wa, s2);
          if (tn > 3) s3 = dot7(negateWhere(v128.load(x, 384), neg), wa, s3);
        }
      }
      a0 = finish(s0, rec, v128.load(xs + so), a0);
      a1 = finish(s1, rec, v128.load(xs + st + so), a1);
      a2 = finish(s2, rec, v128.load(xs + 2 * st + so), a2);
      if (tn > 3) a3 = finish(s3, rec, v128.load(xs + 3 * st + so), a3);
    }
    storeRow(out, bias, i, row1, a0);
    storeRow(out + od, bias, i, row1, a1);
    storeRow(out + 2 * od, bias, i, row1, a2);
    if (tn > 3) storeRow(out + 3 * od, bias, i, row1, a3);
  }
}

/**
 * One record of one row for tn tokens, added to that row's running sums at ap (tn f32x4, in
 * memory: the 4-stream loop below keeps 16 of them). rec: the record; xrec: its tokens' values
 * ([t][128]); so: its scales' offset; st: bytes of a token's scales.
 */
// @ts-ignore: decorator
@inline function recordTokens(
  q4: bool,
  d16: bool,
  tn: i32,
  rec: usize,
  xrec: usize,
  xs: usize,
  xsum: usize,
  so: usize,
  st: usize,
  ap: usize,
  off: usize,
): void {
  const m = nibbleMask();
  let s0 = q4 ? q4Start(d16, off, 0) : ZERO,
    s1 = q4 ? q4Start(d16, off, 1) : ZERO,
    s2 = q4 && tn > 2 ? q4Start(d16, off, 2) : ZERO,
    s3 = q4 && tn > 3 ? q4Start(d16, off, 3) : ZERO;
  if (q4) {
    for (let j: usize = 0; j < 64; j += 16) {
      const v = v128.load(rec + 16 + j);
      const lo = v128.and(v, m),
        hi = v128.and(i16x8.shr_u(v, 4), m);
      const x = xrec + j;
      s0 = nib2(d16, v128.load(x), lo, v128.load(x, 64), hi, s0);
      s1 = nib2(d16, v128.load(x, 128), lo, v128.load(x, 192), hi, s1);
      if (tn > 2) s2 = nib2(d16, v128.load(x, 256), lo, v128.load(x, 320), hi, s2);
      if (tn > 3) s3 = nib2(d16, v128.load(x, 384), lo, v128.load(x, 448), hi, s3);
    }
    s0 = q4Sums(d16, s0, xsum + so);
    s1 = q4Sums(d16, s1, xsum + st + so);
    if (tn > 2) s2 = q4Sums(d16, s2, xsum + 2 * st + so);
    if (tn > 3) s3 = q4Sums(d16, s3, xsum + 3 * st + so);
  } else {
    for (let k: usize = 0; k < 128; k += 16) {
      // the sign of w moves onto x: x·w = (x·sgn w)·|w|, |w| <= 127 the unsigned operand,
      // so the per-token step is two operations and the dot
      const wv = v128.load(rec + 16 + k);
      const neg = i8x16.lt_s(wv, ZERO),
        wa = i8x16.abs(wv);
      const x = xrec + k;
      s0 = dot7(negateWhere(v128.load(x), neg), wa, s0);
      s1 = dot7(negateWhere(v128.load(x, 128), neg), wa, s1);
      if (tn > 2) s2 = dot7(negateWhere(v128.load(x, 256), neg), wa, s2);
      if (tn > 3) s3 = dot7(negateWhere(v128.load(x, 384), neg), wa, s3);
    }
  }
  v128.store(ap, finish(s0, rec, v128.load(xs + so), v128.load(ap)));
  v128.store(ap, finish(s1, rec, v128.load(xs + st + so), v128.load(ap, 16)), 16);
  if (tn > 2) v128.store(ap, finish(s2, rec, v128.load(xs + 2 * st + so), v128.load(ap, 32)), 32);
  if (tn > 3) v128.store(ap, finish(s3, rec, v128.load(xs + 3 * st + so), v128.load(ap, 48)), 48);
}

/**
 * tn = 2..4 tokens over 4 rows far apart (the 4 streams of matmul_q), which take each record
 * in turn and share its activations. For rows of more than FEW_X_BYTES / tn (phi's fc2, 8192
 * inputs), where the tokens' values no longer stay in L1 while one row streams past, and for
 * q4's 2-token steps. The 16 running sums live in scratch after the values and q4's int16
 * starts (tn·nr·144 + 256 bytes: within wideBytes(n), 8 KB or 32·n). With them in registers
 * the one-row loop above ran 15% faster, so it keeps its own copy of the record step. Measured at n = 8192 and 4 tokens:
 * 1.3-1.5x the token loop for q4, 1.0-1.05x for q8.
 */
// @ts-ignore: decorator
@inline function matmul_q_streams(
  q4: bool,
  d16: bool,
  tn: i32,
  out: usize,
  xq: usize,
  xs: usize,
  xsum: usize,
  w: usize,
  bias: usize,
  nr: i32,
  d: i32,
  row0: i32,
  row1: i32,
  scratch: usize,
): void {
  const REC: usize = q4 ? 16 + 64 : 16 + 128;
  const rowBytes = <usize>nr * REC;
  const st: usize = (<usize>nr) << 4;
  const od: usize = (<usize>d) << 2;
  const xr: usize = (<usize>tn) << 7;
  recordMajor(xq, nr, tn, scratch);
  const offs = scratch + <usize>nr * xr; // q4, int16 sums: their -8·Σx starts
  if (q4 && d16) nibbleOffsets(scratch, nr, tn, offs);
  const accs = offs + ((<usize>nr * <usize>tn) << 4);
  for (let g = row0; g < row1; g += 4 * STREAM_ROWS) {
    const sr = min(STREAM_ROWS, (row1 - g + 3) >> 2);
    for (let i = g; i < g + sr; i++) {
      for (let k: usize = 0; k < 256; k += 16) v128.store(accs + k, ZERO);
      const w0 = w + <usize>i * rowBytes;
      const w1 = w + <usize>min(i + sr, row1 - 1) * rowBytes;
      const w2 = w + <usize>min(i + 2 * sr, row1 - 1) * rowBytes;
      const w3 = w + <usize>min(i + 3 * sr, row1 - 1) * rowBytes;
      for (let r = 0; r < nr; r++) {
        const o = <usize>r * REC;
        const xrec = scratch + <usize>r * xr;
        const so = (<usize>r) << 4;
        const off = offs + ((<usize>r * <usize>tn) << 4);
        recordTokens(q4, d16, tn, w0 + o, xrec, xs, xsum, so, st, accs, off);
        recordTokens(q4, d16, tn, w1 + o, xrec, xs, xsum, so, st, accs + 64, off);
        recordTokens(q4, d16, tn, w2 + o, xrec, xs, xsum, so, st, accs + 128, off);
        recordTokens(q4, d16, tn, w3 + o, xrec, xs, xsum, so, st, accs + 192, off);
      }
      for (let q = 0; q < 4; q++) {
        const ap = accs + ((<usize>q) << 6);
        const row = i + q * sr;
        storeRow(out, bias, row, row1, v128.load(ap));
        storeRow(out + od, bias, row, row1, v128.load(ap, 16));
        if (tn > 2) storeRow(out + 2 * od, bias, row, row1, v128.load(ap, 32));
        if (tn > 3) storeRow(out + 3 * od, bias, row, row1, v128.load(ap, 48));
      }
    }
  }
}

/**
 * The relaxed-dot kernels: 3 or 4 tokens through matmul_q_few (rows whose tokens' activations
 * fit FEW_X_BYTES) or matmul_q_streams (longer rows); 2 q4 tokens through matmul_q_streams
 * (1.1-1.25x the token loop; for q8 it was no faster, and the one-row loop ran 2 tokens as
 * slowly as 3); 1, the other 2s and more than 4 through matmul_q.
 */
// @ts-ignore: decorator
@inline function matmul_q_dot(
  q4: bool,
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
  scratch: usize,
): void {
  const fits = <usize>T * ((<usize>nr) << 7) <= <usize>FEW_X_BYTES;
  if (T == 2 && q4)
    matmul_q_streams(q4, d16, 2, out, xq, xs, xsum, w, bias, nr, d, row0, row1, scratch);
  else if (T == 3) {
    if (fits) matmul_q_few(q4, d16, 3, out, xq, xs, xsum, w, bias, nr, d, row0, row1, scratch);
    else matmul_q_streams(q4, d16, 3, out, xq, xs, xsum, w, bias, nr, d, row0, row1, scratch);
  } else if (T == 4) {
    if (fits) matmul_q_few(q4, d16, 4, out, xq, xs, xsum, w, bias, nr, d, row0, row1, scratch);
    else matmul_q_streams(q4, d16, 4, out, xq, xs, xsum, w, bias, nr, d, row0, row1, scratch);
  } else matmul_q(q4, DOT, d16, out, xq, xs, xsum, w, bias, T, nr, d, row0, row1);
}

/** matmul_q8 with the relaxed dot product (the relaxed build, after dot_probe passed). */
export function matmul_q8_dot(
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
  scratch: usize,
): void {
  if (ASC_FEATURE_RELAXED_SIMD) {
    matmul_q_dot(Q8, SUMS_I32, out, xq, xs, xsum, w, bias, T, nr, d, row0, row1, scratch);
  } else unreachable();
}

/** matmul_q4 with the relaxed dot product. */
export function matmul_q4_dot(
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
  scratch: usize,
): void {
  if (ASC_FEATURE_RELAXED_SIMD) {
    matmul_q_dot(Q4, SUMS_I32, out, xq, xs, xsum, w, bias, T, nr, d, row0, row1, scratch);
  } else unreachable();
}

/**
 * matmul_q4_dot with the nibble products summed in int16 lanes (nib2): where the engine spells
 * the i32 relaxed dot as 3 instructions (V8 12 on x64: pmaddubsw, pmaddwd, paddd), this takes
 * 2 (pmaddubsw, paddw) and was 1.4x faster; where it has one (AVX-VNNI's vpdpbusd, V8 13), it
 * is slower. The same integer sums, so the same results: the TypeScript side picks whichever
 * runs faster (src/kernels/wasm/pick.ts).
 */
export function matmul_q4_dot16(
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
  scratch: usize,
): void {
  if (ASC_FEATURE_RELAXED_SIMD) {
    matmul_q_dot(Q4, SUMS_I16, out, xq, xs, xsum, w, bias, T, nr, d, row0, row1, scratch);
  } else unreachable();
}
