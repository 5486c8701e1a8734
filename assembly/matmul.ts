// W (d,n) @ x (T,n) + b (d,) -> out (T,d), f32 or f16 weights   (twins: src/kernels/ref/matmul.ts)
//
// Rows [row0, row1) of the output only, so a thread pool can split the rows (ggml's
// ir0..ir1 partition).
//
// Every output is summed in one order, whatever T, the thread split or the code path:
//   acc (4 lanes) += w[j..j+3] · x[j..j+3]  for j = 0, 4, 8, ..   (one multiply-add each)
//   s = (acc0 + acc1) + (acc2 + acc3);  s += w[j] x[j] for the last n % 4;  out = s + b
// so decoding one token, a prefill and a batched step give bit-identical rows.
//
// Differences from the TS twin (results differ in the last bits): f32 accumulation in those
// 4-lane partial sums; the TS twin sums in f64.
// f16 weights are widened to f32 exactly (times 2^-112) as they are read: assembly/f16.ts.
import { hi_halves, lo_halves, widen1, widen_hi, widen_lo, widen_rows } from './f16';
import { f16HiMask, hsum, madd } from './simd';
/** Weights 4j..4j+3 of a row as f32x4 (f16 rows: widened, times 2^-112; hm: f16HiMask()). */
// @ts-ignore: decorator
@inline function load4(f16: bool, row: usize, j: i32, hm: v128): v128 {
  if (!f16) return v128.load(row + ((<usize>j) << 2));
  const h = v128.load64_zero(row + ((<usize>j) << 1));
  return widen_lo(lo_halves(h), hi_halves(h, hm));
}

/** Weight j of a row as f32. */
// @ts-ignore: decorator
@inline function load1(f16: bool, row: usize, j: i32): f32 {
  return f16 ? widen1(row + ((<usize>j) << 1)) : load<f32>(row + ((<usize>j) << 2));
}

// @ts-ignore: decorator
@inline function plusBias(s: f32, bias: usize, i: i32): f32 {
  return s + (bias ? load<f32>(bias + ((<usize>i) << 2)) : 0);
}

/** Rows in each of a decode tile's 4 streams (as the quantized kernels' STREAM_ROWS). */
const GEMV_STREAM_ROWS: i32 = 64;

/**
 * Decode: one token against rows [row0, row1), weights straight from memory. 4 rows at a time
 * share the activation loads; 8 weights of each row a step (two multiply-adds into the row's
 * one accumulator, so the order stays the canonical one). The 4 rows are far apart (i, i+s,
 * i+2s, i+3s in a tile of 4s rows): four sequential streams, which the hardware prefetcher
 * follows, so memory stays busy while the widening runs (4 adjacent rows are one stream; with
 * them the kernel's time was about its time from cache plus memory's, not the larger of them).
 */
// @ts-ignore: decorator
@inline function gemv(
  f16: bool,
  out: usize,
  x: usize,
  w: usize,
  bias: usize,
  n: i32,
  row0: i32,
  row1: i32,
): void {
  const st: usize = f16 ? (<usize>n) << 1 : (<usize>n) << 2; // bytes a row
  for (let g = row0; g < row1; g += 4 * GEMV_STREAM_ROWS) {
    const end = min(row1, g + 4 * GEMV_STREAM_ROWS);
    const s = (end - g + 3) >> 2;
    for (let i = g; i < g + s; i++) {
      if (i + 3 * s < end) gemv4(f16, out, x, w, bias, n, st, i, i + s, i + 2 * s, i + 3 * s);
      else for (let r = i; r < end; r += s) gemv1(f16, out, x, w, bias, n, st, r);
    }
  }
}

/** Rows k0..k3 (anywhere in the matrix) against one token. */
// @ts-ignore: decorator
@inline function gemv4(
  f16: bool,
  out: usize,
  x: usize,
  w: usize,
  bias: usize,
  n: i32,
  st: usize,
  k0: i32,
  k1: i32,
  k2: i32,
  k3: i32,
): void {
  const n8 = n & ~7;
  const n4 = n & ~3;
  const hm = f16HiMask();
  const r0 = w + <usize>k0 * st,
    r1 = w + <usize>k1 * st,
    r2 = w + <usize>k2 * st,
    r3 = w + <usize>k3 * st;
  let a0 = f32x4.splat(0),
    a1 = f32x4.splat(0),
    a2 = f32x4.splat(0),
    a3 = f32x4.splat(0);
  let j = 0;
  for (; j < n8; j += 8) {
    const xl = v128.load(x + ((<usize>j) << 2));
    const xh = v128.load(x + ((<usize>j) << 2), 16);
    if (f16) {
      const o = (<usize>j) << 1;
      let h = v128.load(r0 + o);
      let lo = lo_halves(h),
        hi = hi_halves(h, hm);
      a0 = madd(widen_hi(lo, hi), xh, madd(widen_lo(lo, hi), xl, a0));
      h = v128.load(r1 + o);
      lo = lo_halves(h);
      hi = hi_halves(h, hm);
      a1 = madd(widen_hi(lo, hi), xh, madd(widen_lo(lo, hi), xl, a1));
      h = v128.load(r2 + o);
      lo = lo_halves(h);
      hi = hi_halves(h, hm);
      a2 = madd(widen_hi(lo, hi), xh, madd(widen_lo(lo, hi), xl, a2));
      h = v128.load(r3 + o);
      lo = lo_halves(h);
      hi = hi_halves(h, hm);
      a3 = madd(widen_hi(lo, hi), xh, madd(widen_lo(lo, hi), xl, a3));
    } else {
      const o = (<usize>j) << 2;
      a0 = madd(v128.load(r0 + o, 16), xh, madd(v128.load(r0 + o), xl, a0));
      a1 = madd(v128.load(r1 + o, 16), xh, madd(v128.load(r1 + o), xl, a1));
      a2 = madd(v128.load(r2 + o, 16), xh, madd(v128.load(r2 + o), xl, a2));
      a3 = madd(v128.load(r3 + o, 16), xh, madd(v128.load(r3 + o), xl, a3));
    }
  }
  if (j < n4) {
    const xv = v128.load(x + ((<usize>j) << 2));
    a0 = madd(load4(f16, r0, j, hm), xv, a0);
    a1 = madd(load4(f16, r1, j, hm), xv, a1);
    a2 = madd(load4(f16, r2, j, hm), xv, a2);
    a3 = madd(load4(f16, r3, j, hm), xv, a3);
    j += 4;
  }
  let s0 = hsum(a0),
    s1 = hsum(a1),
    s2 = hsum(a2),
    s3 = hsum(a3);
  for (; j < n; j++) {
    const xj = load<f32>(x + ((<usize>j) << 2));
    s0 += load1(f16, r0, j) * xj;
    s1 += load1(f16, r1, j) * xj;
    s2 += load1(f16, r2, j) * xj;
    s3 += load1(f16, r3, j) * xj;
  }
  store<f32>(out + ((<usize>k0) << 2), plusBias(s0, bias, k0));
  store<f32>(out + ((<usize>k1) << 2), plusBias(s1, bias, k1));
  store<f32>(out + ((<usize>k2) << 2), plusBias(s2, bias, k2));
  store<f32>(out + ((<usize>k3) << 2), plusBias(s3, bias, k3));
}

/** Row i against one token, in the same order as gemv4. */
// @ts-ignore: decorator
@inline function gemv1(
  f16: bool,
  out: usize,
  x: usize,
  w: usize,
  bias: usize,
  n: i32,
  st: usize,
  i: i32,
): void {
  const n4 = n & ~3;
  const hm = f16HiMask();
  const r = w + <usize>i * st;
  let a = f32x4.splat(0);
  let j = 0;
  for (; j < n4; j += 4) a = madd(load4(f16, r, j, hm), v128.load(x + ((<usize>j) << 2)), a);
  let s = hsum(a);
  for (; j < n; j++) s += load1(f16, r, j) * load<f32>(x + ((<usize>j) << 2));
  store<f32>(out + ((<usize>i) << 2), plusBias(s, bias, i));
}

/**
 * A few tokens (tn = 2..4, a constant) straight from memory, as in decoding several sequences
 * at once: 2 rows a pass, each group of 8 weights loaded (and widened) once and used for all
 * tn tokens, 2·tn accumulators. Each (row, token) sums in the canonical order. The 2 rows are
 * half a tile apart (two sequential streams, as gemv's four).
 */
// @ts-ignore: decorator
@inline function gemv_few(
  f16: bool,
  tn: i32,
  out: usize,
  x: usize,
  w: usize,
  bias: usize,
  n: i32,
  d: i32,
  row0: i32,
  row1: i32,
): void {
  const st: usize = f16 ? (<usize>n) << 1 : (<usize>n) << 2; // bytes a row
  const xs: usize = (<usize>n) << 2; // bytes a token
  const od: usize = (<usize>d) << 2;
  const n8 = n & ~7;
  const n4 = n & ~3;
  const hm = f16HiMask();
  for (let g = row0; g < row1; g += 4 * GEMV_STREAM_ROWS) {
    const end = min(row1, g + 4 * GEMV_STREAM_ROWS);
    const s = (end - g + 1) >> 1;
    for (let i = g; i < g + s; i++) {
      const k = i + s; // the pair's second row, half a tile on: two streams
      if (k >= end) {
        // an odd tile's last row: each token alone, same order
        for (let t = 0; t < tn; t++)
          gemv(f16, out + <usize>t * od, x + <usize>t * xs, w, bias, n, i, i + 1);
        continue;
      }
      const r0 = w + <usize>i * st,
        r1 = w + <usize>k * st;
      let a0 = f32x4.splat(0),
        a1 = f32x4.splat(0),
        a2 = f32x4.splat(0),
        a3 = f32x4.splat(0); // row i, tokens 0..3
      let b0 = f32x4.splat(0),
        b1 = f32x4.splat(0),
        b2 = f32x4.splat(0),
        b3 = f32x4.splat(0); // row i + 1
      let j = 0;
      for (; j < n8; j += 8) {
        let p0: v128, q0: v128, p1: v128, q1: v128; // rows i, i+1: weights j..j+3, j+4..j+7
        if (f16) {
          let h = v128.load(r0 + ((<usize>j) << 1));
          let lo = lo_halves(h),
            hi = hi_halves(h, hm);
          p0 = widen_lo(lo, hi);
          q0 = widen_hi(lo, hi);
          h = v128.load(r1 + ((<usize>j) << 1));
          lo = lo_halves(h);
          hi = hi_halves(h, hm);
          p1 = widen_lo(lo, hi);
          q1 = widen_hi(lo, hi);
        } else {
          p0 = v128.load(r0 + ((<usize>j) << 2));
          q0 = v128.load(r0 + ((<usize>j) << 2), 16);
          p1 = v128.load(r1 + ((<usize>j) << 2));
          q1 = v128.load(r1 + ((<usize>j) << 2), 16);
        }
        const xj = x + ((<usize>j) << 2);
        let xl = v128.load(xj),
          xh = v128.load(xj, 16);
        a0 = madd(q0, xh, madd(p0, xl, a0));
        b0 = madd(q1, xh, madd(p1, xl, b0));
        xl = v128.load(xj + xs);
        xh = v128.load(xj + xs, 16);
        a1 = madd(q0, xh, madd(p0, xl, a1));
        b1 = madd(q1, xh, madd(p1, xl, b1));
        if (tn > 2) {
          xl = v128.load(xj + 2 * xs);
          xh = v128.load(xj + 2 * xs, 16);
          a2 = madd(q0, xh, madd(p0, xl, a2));
          b2 = madd(q1, xh, madd(p1, xl, b2));
        }
        if (tn > 3) {
          xl = v128.load(xj + 3 * xs);
          xh = v128.load(xj + 3 * xs, 16);
          a3 = madd(q0, xh, madd(p0, xl, a3));
          b3 = madd(q1, xh, madd(p1, xl, b3));
        }
      }
      if (j < n4) {
        const p0 = load4(f16, r0, j, hm),
          p1 = load4(f16, r1, j, hm);
        const xj = x + ((<usize>j) << 2);
        a0 = madd(p0, v128.load(xj), a0);
        b0 = madd(p1, v128.load(xj), b0);
        a1 = madd(p0, v128.load(xj + xs), a1);
        b1 = madd(p1, v128.load(xj + xs), b1);
        if (tn > 2) {
          a2 = madd(p0, v128.load(xj + 2 * xs), a2);
          b2 = madd(p1, v128.load(xj + 2 * xs), b2);
        }
        if (tn > 3) {
          a3 = madd(p0, v128.load(xj + 3 * xs), a3);
          b3 = madd(p1, v128.load(xj + 3 * xs), b3);
        }
        j += 4;
      }
      let sa0 = hsum(a0),
        sa1 = hsum(a1),
        sa2 = hsum(a2),
        sa3 = hsum(a3);
      let sb0 = hsum(b0),
        sb1 = hsum(b1),
        sb2 = hsum(b2),
        sb3 = hsum(b3);
      for (; j < n; j++) {
        const w0 = load1(f16, r0, j),
          w1 = load1(f16, r1, j);
        const xj = x + ((<usize>j) << 2);
        sa0 += w0 * load<f32>(xj);
        sb0 += w1 * load<f32>(xj);
        sa1 += w0 * load<f32>(xj + xs);
        sb1 += w1 * load<f32>(xj + xs);
        if (tn > 2) {
          sa2 += w0 * load<f32>(xj + 2 * xs);
          sb2 += w1 * load<f32>(xj + 2 * xs);
        }
        if (tn > 3) {
          sa3 += w0 * load<f32>(xj + 3 * xs);
          sb3 += w1 * load<f32>(xj + 3 * xs);
        }
      }
      const o = out + ((<usize>i) << 2),
        ok = out + ((<usize>k) << 2);
      store<f32>(o, plusBias(sa0, bias, i));
      store<f32>(ok, plusBias(sb0, bias, k));
      store<f32>(o + od, plusBias(sa1, bias, i));
      store<f32>(ok + od, plusBias(sb1, bias, k));
      if (tn > 2) {
        store<f32>(o + 2 * od, plusBias(sa2, bias, i));
        store<f32>(ok + 2 * od, plusBias(sb2, bias, k));
      }
      if (tn > 3) {
        store<f32>(o + 3 * od, plusBias(sa3, bias, i));
        store<f32>(ok + 3 * od, plusBias(sb3, bias, k));
      }
    }
  }
}

/**
 * Several tokens against a few f32 rows that sit in cache (rows [i0, i1), row i at
 * w + (i - i0)·n·4): 4 tokens at a time, so each weight vector is loaded once for 4 tokens,
 * then the remaining tokens one at a time.
 */
// @ts-ignore: decorator
@inline function gemm(
  out: usize,
  x: usize,
  w: usize,
  bias: usize,
  T: i32,
  n: i32,
  d: i32,
  i0: i32,
  i1: i32,
): void {
  const n4 = n & ~3;
  const xs = (<usize>n) << 2; // bytes a token
  let t = 0;
  for (; t + 4 <= T; t += 4) {
    const x0 = x + <usize>t * xs,
      x1 = x0 + xs,
      x2 = x1 + xs,
      x3 = x2 + xs;
    const od = (<usize>d) << 2;
    let i = i0;
    // 2 rows x 4 tokens: 8 accumulators, 6 loads for 8 multiply-adds (1 row: 5 for 4, which
    // the load ports bound); each output keeps its own accumulator, so its sum is unchanged
    for (; i + 2 <= i1; i += 2) {
      const wr = w + ((<usize>(i - i0) * <usize>n) << 2);
      const wq = wr + ((<usize>n) << 2);
      let a0 = f32x4.splat(0),
        a1 = f32x4.splat(0),
        a2 = f32x4.splat(0),
        a3 = f32x4.splat(0),
        b0 = f32x4.splat(0),
        b1 = f32x4.splat(0),
        b2 = f32x4.splat(0),
        b3 = f32x4.splat(0);
      let j = 0;
      for (; j < n4; j += 4) {
        const o = (<usize>j) << 2;
        const wv = v128.load(wr + o),
          wu = v128.load(wq + o);
        let xv = v128.load(x0 + o);
        a0 = madd(wv, xv, a0);
        b0 = madd(wu, xv, b0);
        xv = v128.load(x1 + o);
        a1 = madd(wv, xv, a1);
        b1 = madd(wu, xv, b1);
        xv = v128.load(x2 + o);
        a2 = madd(wv, xv, a2);
        b2 = madd(wu, xv, b2);
        xv = v128.load(x3 + o);
        a3 = madd(wv, xv, a3);
        b3 = madd(wu, xv, b3);
      }
      let s0 = hsum(a0),
        s1 = hsum(a1),
        s2 = hsum(a2),
        s3 = hsum(a3),
        r0 = hsum(b0),
        r1 = hsum(b1),
        r2 = hsum(b2),
        r3 = hsum(b3);
      for (; j < n; j++) {
        const o = (<usize>j) << 2;
        const wj = load<f32>(wr + o),
          uj = load<f32>(wq + o);
        s0 += wj * load<f32>(x0 + o);
        s1 += wj * load<f32>(x1 + o);
        s2 += wj * load<f32>(x2 + o);
        s3 += wj * load<f32>(x3 + o);
        r0 += uj * load<f32>(x0 + o);
        r1 += uj * load<f32>(x1 + o);
        r2 += uj * load<f32>(x2 + o);
        r3 += uj * load<f32>(x3 + o);
      }
      const ot = out + ((<usize>t * <usize>d + <usize>i) << 2);
      store<f32>(ot, plusBias(s0, bias, i));
      store<f32>(ot + od, plusBias(s1, bias, i));
      store<f32>(ot + 2 * od, plusBias(s2, bias, i));
      store<f32>(ot + 3 * od, plusBias(s3, bias, i));
      store<f32>(ot + 4, plusBias(r0, bias, i + 1));
      store<f32>(ot + od + 4, plusBias(r1, bias, i + 1));
      store<f32>(ot + 2 * od + 4, plusBias(r2, bias, i + 1));
      store<f32>(ot + 3 * od + 4, plusBias(r3, bias, i + 1));
    }
    for (; i < i1; i++) {
      const wr = w + ((<usize>(i - i0) * <usize>n) << 2);
      let a0 = f32x4.splat(0),
        a1 = f32x4.splat(0),
        a2 = f32x4.splat(0),
        a3 = f32x4.splat(0);
      let j = 0;
      for (; j < n4; j += 4) {
        const o = (<usize>j) << 2;
        const wv = v128.load(wr + o);
        a0 = madd(wv, v128.load(x0 + o), a0);
        a1 = madd(wv, v128.load(x1 + o), a1);
        a2 = madd(wv, v128.load(x2 + o), a2);
        a3 = madd(wv, v128.load(x3 + o), a3);
      }
      let s0 = hsum(a0),
        s1 = hsum(a1),
        s2 = hsum(a2),
        s3 = hsum(a3);
      for (; j < n; j++) {
        const o = (<usize>j) << 2;
        const wj = load<f32>(wr + o);
        s0 += wj * load<f32>(x0 + o);
        s1 += wj * load<f32>(x1 + o);
        s2 += wj * load<f32>(x2 + o);
        s3 += wj * load<f32>(x3 + o);
      }
      const ot = out + ((<usize>t * <usize>d + <usize>i) << 2);
      store<f32>(ot, plusBias(s0, bias, i));
      store<f32>(ot + od, plusBias(s1, bias, i));
      store<f32>(ot + 2 * od, plusBias(s2, bias, i));
      store<f32>(ot + 3 * od, plusBias(s3, bias, i));
    }
  }
  // the last T % 4 tokens one at a time, 4 rows a pass: 4 independent multiply-add chains
  // (one chain alone waits on its own latency, a quarter of the speed)
  for (; t < T; t++) {
    const xt = x + <usize>t * xs;
    const ot = out + ((<usize>t * <usize>d) << 2);
    let i = i0;
    for (; i + 4 <= i1; i += 4) {
      const w0 = w + ((<usize>(i - i0) * <usize>n) << 2);
      const ws = (<usize>n) << 2;
      let a0 = f32x4.splat(0),
        a1 = f32x4.splat(0),
        a2 = f32x4.splat(0),
        a3 = f32x4.splat(0);
      let j = 0;
      for (; j < n4; j += 4) {
        const o = (<usize>j) << 2;
        const xv = v128.load(xt + o);
        a0 = madd(v128.load(w0 + o), xv, a0);
        a1 = madd(v128.load(w0 + ws + o), xv, a1);
        a2 = madd(v128.load(w0 + 2 * ws + o), xv, a2);
        a3 = madd(v128.load(w0 + 3 * ws + o), xv, a3);
      }
      let s0 = hsum(a0),
        s1 = hsum(a1),
        s2 = hsum(a2),
        s3 = hsum(a3);
      for (; j < n; j++) {
        const o = (<usize>j) << 2;
        const xj = load<f32>(xt + o);
        s0 += load<f32>(w0 + o) * xj;
        s1 += load<f32>(w0 + ws + o) * xj;
        s2 += load<f32>(w0 + 2 * ws + o) * xj;
        s3 += load<f32>(w0 + 3 * ws + o) * xj;
      }
      store<f32>(ot + ((<usize>i) << 2), plusBias(s0, bias, i));
      store<f32>(ot + ((<usize>(i + 1)) << 2), plusBias(s1, bias, i + 1));
      store<f32>(ot + ((<usize>(i + 2)) << 2), plusBias(s2, bias, i + 2));
      store<f32>(ot + ((<usize>(i + 3)) << 2), plusBias(s3, bias, i + 3));
    }
    for (; i < i1; i++) {
      const wr = w + ((<usize>(i - i0) * <usize>n) << 2);
      let a = f32x4.splat(0);
      let j = 0;
      for (; j < n4; j += 4)
        a = madd(v128.load(wr + ((<usize>j) << 2)), v128.load(xt + ((<usize>j) << 2)), a);
      let s = hsum(a);
      for (; j < n; j++) s += load<f32>(wr + ((<usize>j) << 2)) * load<f32>(xt + ((<usize>j) << 2));
      store<f32>(ot + ((<usize>i) << 2), plusBias(s, bias, i));
    }
  }
}

/** Rows a thread takes at a time for several tokens (f16: widened into its scratch, WIDE_ROWS·n f32). */
export const WIDE_ROWS: i32 = 8;

/**
 * The body of both exports, inlined with a constant f16 so the branches fold away. One token:
 * the GEMV from memory. 2-4 tokens (several sequences decoding together): gemv_few, each weight
 * loaded once for all of them. More (a prefill): WIDE_ROWS rows at a time for all tokens, so
 * the rows stay in cache while every token passes over them; f16 rows are widened into the
 * thread's scratch first, once for all T tokens, so the widening (5 operations per 8 weights)
 * costs nothing per token and the inner loop is the f32 one. Widening is exact, so the sums are
 * the same, bit for bit, as widening in registers.
 */
// @ts-ignore: decorator
@inline function matmul(
  f16: bool,
  out: usize,
  x: usize,
  w: usize,
  bias: usize,
  T: i32,
  n: i32,
  d: i32,
  row0: i32,
  row1: i32,
  scratch: usize,
): void {
  if (T == 1) gemv(f16, out, x, w, bias, n, row0, row1);
  else if (T == 2) gemv_few(f16, 2, out, x, w, bias, n, d, row0, row1);
  else if (T == 3) gemv_few(f16, 3, out, x, w, bias, n, d, row0, row1);
  else if (T == 4) gemv_few(f16, 4, out, x, w, bias, n, d, row0, row1);
  else
    for (let i0 = row0; i0 < row1; i0 += WIDE_ROWS) {
      const i1 = min(i0 + WIDE_ROWS, row1);
      if (f16) {
        widen_rows(scratch, w + ((<usize>i0 * <usize>n) << 1), (i1 - i0) * n);
        gemm(out, x, scratch, bias, T, n, d, i0, i1);
      } else gemm(out, x, w + ((<usize>i0 * <usize>n) << 2), bias, T, n, d, i0, i1);
    }
}

/** f32 weights. */
export function matmul_f32(
  out: usize,
  x: usize,
  w: usize,
  bias: usize,
  T: i32,
  n: i32,
  d: i32,
  row0: i32,
  row1: i32,
): void {
  matmul(false, out, x, w, bias, T, n, d, row0, row1, 0);
}

/**
 * f16 weights (raw u16 bits); x = the activations · 2^112 (see the top). scratch: WIDE_ROWS·n
 * f32 of this thread's own, for more than 4 tokens.
 */
export function matmul_f16(
  out: usize,
  x: usize,
  w: usize,
  bias: usize,
  T: i32,
  n: i32,
  d: i32,
  row0: i32,
  row1: i32,
  scratch: usize,
): void {
  matmul(true, out, x, w, bias, T, n, d, row0, row1, scratch);
}
