// W (d,n) @ x (T,n) + b (d,) -> out (T,d) with block-quantized weights   (contract: src/kernels/ref/quant.ts)
//   out[t, i] = b[i] + Σ_blocks s_w[i, blk] · s_x[t, blk] · Σ_k q_w[i, k] · q_x[t, k]
// Rows [row0, row1) only (threads split rows in whole tiles). xq: (T, nr·4·32) int8
// activation values widened to int16; xs: (T, nr·4) their scales; xsum: (T, nr·4) the sums of
// each block's values (for q4's +8); w: rows of nr records (below); nr: records a row.
//
// A record is 4 blocks of one row: [4 f32 scales][4 blocks of values]. Each block's integer
// dot product is four i32x4.dot_i16x8_s (pmaddwd: 8 products summed in pairs); the 4 blocks'
// partial sums are transposed and added into one vector [Σ blk 0, Σ blk 1, Σ blk 2, Σ blk 3],
// converted to float once and multiplied by the 4 scales (times the activation scales) at
// once: about 0.5 vector operations a weight.
//
// Memory order: decode reads every weight once, so this kernel runs at the speed the memory
// delivers. Rows are computed 4 at a time, and the 4 are far apart (i, i+s, i+2s, i+3s inside a
// tile of 4s rows): four long sequential streams, which the hardware prefetcher follows. With
// 4 adjacent rows (streams that end after one row) or rows interleaved into one stream, the
// same arithmetic ran at half the bandwidth (q8, 2048 x 8192, 2 threads: 10-13 Gweights/s
// against 18-19).
//
// Differences from the TS twin: the float sums are f32 over 4 lanes (twin: f64).
import { hsum, madd } from './simd';

/** Rows in each of a tile's 4 streams; a tile is 4 x this many rows (threads split tiles). */
export const STREAM_ROWS: i32 = 16;

/** 4 i32 partial sums of one block: 32 int8 weights at w times 32 int16 activations at x. */
// @ts-ignore: decorator
@inline function dot_q8(w: usize, x: usize): v128 {
  const a = v128.load(w);
  const b = v128.load(w, 16);
  return i32x4.add(
    i32x4.add(
      i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(a), v128.load(x)),
      i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(a), v128.load(x, 16)),
    ),
    i32x4.add(
      i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(b), v128.load(x, 32)),
      i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(b), v128.load(x, 48)),
    ),
  );
}

/**
 * The same for q4: 8 16-bit lanes, lane j holding q[j], q[j+8], q[j+16], q[j+24] (each + 8) in
 * its 4 nibbles, so a shift and a mask give 8 weights in order, already 16 bits wide.
 * The +8 is left in here and taken out once per record (xsum).
 */
// @ts-ignore: decorator
@inline function dot_q4(w: usize, x: usize): v128 {
  const v = v128.load(w);
  const m = i16x8.splat(0x0f);
  return i32x4.add(
    i32x4.add(
      i32x4.dot_i16x8_s(v128.and(v, m), v128.load(x)),
      i32x4.dot_i16x8_s(v128.and(i16x8.shr_u(v, 4), m), v128.load(x, 16)),
    ),
    i32x4.add(
      i32x4.dot_i16x8_s(v128.and(i16x8.shr_u(v, 8), m), v128.load(x, 32)),
      i32x4.dot_i16x8_s(i16x8.shr_u(v, 12), v128.load(x, 48)),
    ),
  );
}

/** [Σ p0, Σ p1, Σ p2, Σ p3]: the lane sums of 4 vectors in one (a 4x4 transpose, added). */
// @ts-ignore: decorator
@inline function sum4(p0: v128, p1: v128, p2: v128, p3: v128): v128 {
  const a = i32x4.add(i32x4.shuffle(p0, p1, 0, 4, 1, 5), i32x4.shuffle(p0, p1, 2, 6, 3, 7));
  const b = i32x4.add(i32x4.shuffle(p2, p3, 0, 4, 1, 5), i32x4.shuffle(p2, p3, 2, 6, 3, 7));
  return i32x4.add(i32x4.shuffle(a, b, 0, 1, 4, 5), i32x4.shuffle(a, b, 2, 3, 6, 7));
}

/**
 * acc + one record of one row against one token: rec the record, x its 4 blocks of
 * activations, xsc their 4 scales, x8 8 x their 4 sums (q4 only).
 */
// @ts-ignore: decorator
@inline function record(q4: bool, rec: usize, x: usize, xsc: v128, x8: v128, acc: v128): v128 {
  const v = rec + 16;
  let p: v128;
  if (q4) {
    p = sum4(dot_q4(v, x), dot_q4(v + 16, x + 64), dot_q4(v + 32, x + 128), dot_q4(v + 48, x + 192));
    p = i32x4.sub(p, x8); // Σ (q + 8)·x - 8·Σ x
  } else {
    p = sum4(dot_q8(v, x), dot_q8(v + 32, x + 64), dot_q8(v + 64, x + 128), dot_q8(v + 96, x + 192));
  }
  return madd(f32x4.convert_i32x4_s(p), f32x4.mul(v128.load(rec), xsc), acc);
}

// @ts-ignore: decorator
@inline function storeRow(out: usize, bias: usize, i: i32, row1: i32, acc: v128): void {
  if (i < row1) store<f32>(out + (<usize>i << 2), hsum(acc) + (bias ? load<f32>(bias + (<usize>i << 2)) : 0));
}

// One body for both formats, inlined with a constant q4 so the branches fold away.
// @ts-ignore: decorator
@inline function matmul_q(
  q4: bool, out: usize, xq: usize, xs: usize, xsum: usize, w: usize, bias: usize,
  T: i32, nr: i32, d: i32, row0: i32, row1: i32,
): void {
  const RECORD: usize = q4 ? 16 + 64 : 16 + 128;
  const rowBytes = <usize>nr * RECORD;
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
        const xt = xq + (<usize>t * <usize>nr << 8); // 4 blocks x 32 int16 a record
        const st = xs + (<usize>t * <usize>nr << 4);
        const zt = xsum + (<usize>t * <usize>nr << 4);
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
        for (let r = 0; r < nr; r++) {
          const o = <usize>r * RECORD;
          const x = xt + (<usize>r << 8);
          const xsc = v128.load(st + (<usize>r << 4));
          const x8 = q4 ? i32x4.shl(v128.load(zt + (<usize>r << 4)), 3) : i32x4.splat(0);
          a0 = record(q4, w0 + o, x, xsc, x8, a0);
          a1 = record(q4, w1 + o, x, xsc, x8, a1);
          a2 = record(q4, w2 + o, x, xsc, x8, a2);
          a3 = record(q4, w3 + o, x, xsc, x8, a3);
        }
        const ot = out + (<usize>t * <usize>d << 2);
        storeRow(ot, bias, i, row1, a0);
        storeRow(ot, bias, i + s, row1, a1);
        storeRow(ot, bias, i + 2 * s, row1, a2);
        storeRow(ot, bias, i + 3 * s, row1, a3);
      }
    }
  }
}

export function matmul_q8(
  out: usize, xq: usize, xs: usize, xsum: usize, w: usize, bias: usize,
  T: i32, nr: i32, d: i32, row0: i32, row1: i32,
): void {
  matmul_q(false, out, xq, xs, xsum, w, bias, T, nr, d, row0, row1);
}

export function matmul_q4(
  out: usize, xq: usize, xs: usize, xsum: usize, w: usize, bias: usize,
  T: i32, nr: i32, d: i32, row0: i32, row1: i32,
): void {
  matmul_q(true, out, xq, xs, xsum, w, bias, T, nr, d, row0, row1);
}

/**
 * Activations x (T, n) f32 to int8 blocks, tokens [t0, t1) (threads split tokens): per token
 * nbp blocks (whole records, the padding ones 0), xq the values as int16, xs the scales, xsum
 * the sums. The TS twin's arithmetic exactly (src/kernels/ref/quant.ts quantizeActivations):
 * scale max|x| / 127 and the products in f64, rounded half up like Math.round, so both
 * backends give the same integers.
 */
export function quantize_act(
  x: usize, n: i32, nbp: i32, xq: usize, xs: usize, xsum: usize, t0: i32, t1: i32,
): void {
  for (let t = t0; t < t1; t++) {
    const xt = x + (<usize>t * <usize>n << 2);
    for (let b = 0; b < nbp; b++) {
      const start = b << 5;
      const len = max(0, min(32, n - start));
      const xb = xt + (<usize>start << 2);
      // max |x| over the block: 4 lanes at a time, then the rest
      let m = f32x4.splat(0);
      let k = 0;
      for (; k + 4 <= len; k += 4) m = f32x4.max(m, f32x4.abs(v128.load(xb + (<usize>k << 2))));
      let amax = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
      for (; k < len; k++) amax = max(amax, abs(load<f32>(xb + (<usize>k << 2))));
      const scale: f64 = <f64>amax / 127;
      const inv: f64 = scale != 0 ? 1 / scale : 0;
      const i = <usize>t * <usize>nbp + <usize>b;
      store<f32>(xs + (i << 2), <f32>scale);
      const out = xq + (i << 6);
      let sum = 0;
      for (k = 0; k < 32; k++) {
        let q = 0;
        if (k < len) {
          const v = <f64>load<f32>(xb + (<usize>k << 2)) * inv;
          const r = Math.floor(v);
          q = <i32>(v - r >= 0.5 ? r + 1 : r); // Math.round: ties up
        }
        store<i16>(out + (<usize>k << 1), <i16>q);
        sum += q;
      }
      store<i32>(xsum + (i << 2), sum);
    }
  }
}
