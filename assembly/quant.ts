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
import { hsum, madd, nibbleMask } from './simd';

/** Rows in each of a tile's 4 streams; a tile is 4 x this many rows (threads split tiles). */
export const STREAM_ROWS: i32 = 64;

const ZERO = i32x4.splat(0);

/**
 * The most bytes of activations the few-token path sweeps for every row (its scratch, per
 * thread): they must stay in L1 while the weights stream through it. phi's n = 2048 with 4
 * tokens is 8 KB; at 16-32 KB that path was no faster than the token-by-token one, and longer
 * rows go through matmul_q_streams.
 */
export const FEW_X_BYTES: i32 = 8 << 10;

// --- integer sums of one record: 4 blocks of one row against one token, lanes = blocks

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

/** relaxed dot of signed a and b in 0..127, accumulated into c (the relaxed build only). */
// @ts-ignore: decorator
@inline function dot7(a: v128, b: v128, c: v128): v128 {
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
@inline function nib2(d16: bool, xa: v128, lo: v128, xb: v128, hi: v128, acc: v128): v128 {
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
@inline function nibbleSum(d16: bool, acc: v128): v128 {
  return d16 ? i32x4.extadd_pairwise_i16x8_s(acc) : acc;
}

/** q8 · x with the relaxed dot: (w · sgn x) · |x|. */
// @ts-ignore: decorator
@inline function q8_dot(w: usize, x: usize): v128 {
  let acc = ZERO;
  for (let k: usize = 0; k < 128; k += 16) {
    const xv = v128.load(x + k);
    const neg = i8x16.lt_s(xv, ZERO); // 0xff where x < 0
    const ws = i8x16.sub(v128.xor(v128.load(w + k), neg), neg); // w, negated where x < 0
    acc = dot7(ws, i8x16.abs(xv), acc);
  }
  return acc;
}

/** (q4 + 8) · x with the relaxed dot: the nibbles (0..15) are the unsigned operand. */
// @ts-ignore: decorator
@inline function q4_dot(w: usize, x: usize): v128 {
  const m = nibbleMask();
  let acc = ZERO;
  for (let j: usize = 0; j < 64; j += 16) {
    const v = v128.load(w + j);
    acc = dot7(v128.load(x + j), v128.and(v, m), acc);
    acc = dot7(v128.load(x + j, 64), v128.and(i16x8.shr_u(v, 4), m), acc);
  }
  return acc;
}

/**
 * acc + one record of one row against one token: rec the record (scales, then values), x its
 * activations, xsc their 4 scales, x8 8 x their 4 sums (q4 only).
 */
// @ts-ignore: decorator
@inline function record(
  q4: bool,
  dot: bool,
  rec: usize,
  x: usize,
  xsc: v128,
  x8: v128,
  acc: v128,
): v128 {
  let p: v128;
  if (q4)
    p = i32x4.sub(dot ? q4_dot(rec + 16, x) : q4_ext(rec + 16, x), x8); // Σ (q + 8)·x - 8·Σ x
  else p = dot ? q8_dot(rec + 16, x) : q8_ext(rec + 16, x);
  return finish(p, rec, xsc, acc);
}

/** acc + a record's integer block sums p times its 4 weight scales (at rec) times xsc. */
// @ts-ignore: decorator
@inline function finish(p: v128, rec: usize, xsc: v128, acc: v128): v128 {
  return madd(f32x4.convert_i32x4_s(p), f32x4.mul(v128.load(rec), xsc), acc);
}

// @ts-ignore: decorator
@inline function storeRow(out: usize, bias: usize, i: i32, row1: i32, acc: v128): void {
  if (i < row1)
    store<f32>(
      out + ((<usize>i) << 2),
      hsum(acc) + (bias ? load<f32>(bias + ((<usize>i) << 2)) : 0),
    );
}

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
          s0 = dot7(i8x16.sub(v128.xor(v128.load(x), neg), neg), wa, s0);
          s1 = dot7(i8x16.sub(v128.xor(v128.load(x, 128), neg), neg), wa, s1);
          s2 = dot7(i8x16.sub(v128.xor(v128.load(x, 256), neg), neg), wa, s2);
          if (tn > 3) s3 = dot7(i8x16.sub(v128.xor(v128.load(x, 384), neg), neg), wa, s3);
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
      s0 = dot7(i8x16.sub(v128.xor(v128.load(x), neg), neg), wa, s0);
      s1 = dot7(i8x16.sub(v128.xor(v128.load(x, 128), neg), neg), wa, s1);
      if (tn > 2) s2 = dot7(i8x16.sub(v128.xor(v128.load(x, 256), neg), neg), wa, s2);
      if (tn > 3) s3 = dot7(i8x16.sub(v128.xor(v128.load(x, 384), neg), neg), wa, s3);
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
  } else matmul_q(q4, true, d16, out, xq, xs, xsum, w, bias, T, nr, d, row0, row1);
}

// One body for both formats and both integer paths, inlined with constant flags so the
// branches fold away.
// @ts-ignore: decorator
@inline function matmul_q(
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
                s0 = dot7(i8x16.sub(v128.xor(v128.load(w0 + o + 16 + k), neg), neg), xa, s0);
                s1 = dot7(i8x16.sub(v128.xor(v128.load(w1 + o + 16 + k), neg), neg), xa, s1);
                s2 = dot7(i8x16.sub(v128.xor(v128.load(w2 + o + 16 + k), neg), neg), xa, s2);
                s3 = dot7(i8x16.sub(v128.xor(v128.load(w3 + o + 16 + k), neg), neg), xa, s3);
              }
            }
            a0 = finish(s0, w0 + o, xsc, a0);
            a1 = finish(s1, w1 + o, xsc, a1);
            a2 = finish(s2, w2 + o, xsc, a2);
            a3 = finish(s3, w3 + o, xsc, a3);
          } else {
            a0 = record(q4, dot, w0 + o, x, xsc, x8, a0);
            a1 = record(q4, dot, w1 + o, x, xsc, x8, a1);
            a2 = record(q4, dot, w2 + o, x, xsc, x8, a2);
            a3 = record(q4, dot, w3 + o, x, xsc, x8, a3);
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
  matmul_q(false, false, false, out, xq, xs, xsum, w, bias, T, nr, d, row0, row1);
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
  matmul_q(true, false, false, out, xq, xs, xsum, w, bias, T, nr, d, row0, row1);
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
    matmul_q_dot(false, false, out, xq, xs, xsum, w, bias, T, nr, d, row0, row1, scratch);
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
    matmul_q_dot(true, false, out, xq, xs, xsum, w, bias, T, nr, d, row0, row1, scratch);
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
    matmul_q_dot(true, true, out, xq, xs, xsum, w, bias, T, nr, d, row0, row1, scratch);
  } else unreachable();
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
