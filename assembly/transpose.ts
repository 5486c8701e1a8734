// dst (n, m) <- rows [o0, o0 + m) of a weight W (.., n), transposed; dst rows [i0, i1) only
// (twin: src/kernels/ref/transpose.ts). The backward's dy·W is a matmul against Wᵀ, so the
// forward kernels compute it from these chunks (src/train/linear.ts). f32 and f16 keep their
// bits; q8 and q4 widen to f32, q · scale (exact: an f32 product of a small integer).
// Tiles of 64 (128 for a quantized record) columns of W: the tile's rows of dst stay in L1
// while every row of W passes.
const TILE: i32 = 64;

/** One 4x4 block of f32: rows r0..r3 of W become 4 columns, each stored as 16 bytes. */
// @ts-ignore: decorator
@inline function block4x4(dst: usize, src: usize, rowBytes: usize, dstRow: usize): void {
  const r0 = v128.load(src);
  const r1 = v128.load(src + rowBytes);
  const r2 = v128.load(src + 2 * rowBytes);
  const r3 = v128.load(src + 3 * rowBytes);
  const t0 = i32x4.shuffle(r0, r1, 0, 4, 1, 5); // r0_0 r1_0 r0_1 r1_1
  const t1 = i32x4.shuffle(r0, r1, 2, 6, 3, 7);
  const t2 = i32x4.shuffle(r2, r3, 0, 4, 1, 5);
  const t3 = i32x4.shuffle(r2, r3, 2, 6, 3, 7);
  v128.store(dst, i64x2.shuffle(t0, t2, 0, 2)); // r0_0 r1_0 r2_0 r3_0
  v128.store(dst + dstRow, i64x2.shuffle(t0, t2, 1, 3));
  v128.store(dst + 2 * dstRow, i64x2.shuffle(t1, t3, 0, 2));
  v128.store(dst + 3 * dstRow, i64x2.shuffle(t1, t3, 1, 3));
}

/** One 8x8 block of f16 bits, the same in three rounds of interleaving (16, 32, 64 bits). */
// @ts-ignore: decorator
@inline function block8x8(dst: usize, src: usize, rowBytes: usize, dstRow: usize): void {
  const r0 = v128.load(src);
  const r1 = v128.load(src + rowBytes);
  const r2 = v128.load(src + 2 * rowBytes);
  const r3 = v128.load(src + 3 * rowBytes);
  const r4 = v128.load(src + 4 * rowBytes);
  const r5 = v128.load(src + 5 * rowBytes);
  const r6 = v128.load(src + 6 * rowBytes);
  const r7 = v128.load(src + 7 * rowBytes);
  const a0 = i16x8.shuffle(r0, r1, 0, 8, 1, 9, 2, 10, 3, 11); // r0_0 r1_0 .. r0_3 r1_3
  const a1 = i16x8.shuffle(r0, r1, 4, 12, 5, 13, 6, 14, 7, 15);
  const a2 = i16x8.shuffle(r2, r3, 0, 8, 1, 9, 2, 10, 3, 11);
  const a3 = i16x8.shuffle(r2, r3, 4, 12, 5, 13, 6, 14, 7, 15);
  const a4 = i16x8.shuffle(r4, r5, 0, 8, 1, 9, 2, 10, 3, 11);
  const a5 = i16x8.shuffle(r4, r5, 4, 12, 5, 13, 6, 14, 7, 15);
  const a6 = i16x8.shuffle(r6, r7, 0, 8, 1, 9, 2, 10, 3, 11);
  const a7 = i16x8.shuffle(r6, r7, 4, 12, 5, 13, 6, 14, 7, 15);
  const b0 = i32x4.shuffle(a0, a2, 0, 4, 1, 5); // r0_0 r1_0 r2_0 r3_0 r0_1 .. r3_1
  const b1 = i32x4.shuffle(a0, a2, 2, 6, 3, 7); // columns 2, 3
  const b2 = i32x4.shuffle(a1, a3, 0, 4, 1, 5); // 4, 5
  const b3 = i32x4.shuffle(a1, a3, 2, 6, 3, 7); // 6, 7
  const b4 = i32x4.shuffle(a4, a6, 0, 4, 1, 5); // rows 4..7
  const b5 = i32x4.shuffle(a4, a6, 2, 6, 3, 7);
  const b6 = i32x4.shuffle(a5, a7, 0, 4, 1, 5);
  const b7 = i32x4.shuffle(a5, a7, 2, 6, 3, 7);
  v128.store(dst, i64x2.shuffle(b0, b4, 0, 2)); // column 0: r0_0 .. r7_0
  v128.store(dst + dstRow, i64x2.shuffle(b0, b4, 1, 3));
  v128.store(dst + 2 * dstRow, i64x2.shuffle(b1, b5, 0, 2));
  v128.store(dst + 3 * dstRow, i64x2.shuffle(b1, b5, 1, 3));
  v128.store(dst + 4 * dstRow, i64x2.shuffle(b2, b6, 0, 2));
  v128.store(dst + 5 * dstRow, i64x2.shuffle(b2, b6, 1, 3));
  v128.store(dst + 6 * dstRow, i64x2.shuffle(b3, b7, 0, 2));
  v128.store(dst + 7 * dstRow, i64x2.shuffle(b3, b7, 1, 3));
}

/**
 * elementBytes 4 (f32) or 2 (f16). Blocks of 16 bytes a side (4x4 f32, 8x8 f16) go through
 * registers, so dst is written 16 bytes at a time; the edges one element at a time.
 */
// @ts-ignore: decorator
@inline function transposeFloat(
  eb: i32,
  dst: usize,
  w: usize,
  n: i32,
  o0: i32,
  m: i32,
  i0: i32,
  i1: i32,
): void {
  const B: i32 = 16 / eb; // a block's side
  const rowBytes = <usize>n * eb;
  const dstRow = <usize>m * eb;
  for (let ib = i0; ib < i1; ib += TILE) {
    const ie = min(i1, ib + TILE);
    const iv = ib + ((ie - ib) / B) * B; // columns [ib, iv) in whole blocks
    let o = 0;
    for (; o + B <= m; o += B) {
      const src = w + <usize>(o0 + o) * rowBytes;
      for (let i = ib; i < iv; i += B) {
        const s = src + <usize>i * eb;
        const d = dst + (<usize>i * <usize>m + o) * eb;
        if (eb == 4) block4x4(d, s, rowBytes, dstRow);
        else block8x8(d, s, rowBytes, dstRow);
      }
      for (let k = 0; k < B; k++)
        transposeRow(eb, dst, src + <usize>k * rowBytes, m, o + k, iv, ie);
    }
    for (; o < m; o++) transposeRow(eb, dst, w + <usize>(o0 + o) * rowBytes, m, o, ib, ie);
  }
}

/** dst[i][o] <- src[i] for i in [i0, i1): one row of W into column o of dst. */
// @ts-ignore: decorator
@inline function transposeRow(
  eb: i32,
  dst: usize,
  src: usize,
  m: i32,
  o: i32,
  i0: i32,
  i1: i32,
): void {
  for (let i = i0; i < i1; i++) {
    const at = (<usize>i * <usize>m + o) * eb;
    if (eb == 4) store<f32>(dst + at, load<f32>(src + ((<usize>i) << 2)));
    else store<u16>(dst + at, load<u16>(src + ((<usize>i) << 1)));
  }
}

export function transpose_f32(
  dst: usize,
  w: usize,
  n: i32,
  o0: i32,
  m: i32,
  i0: i32,
  i1: i32,
): void {
  transposeFloat(4, dst, w, n, o0, m, i0, i1);
}

export function transpose_f16(
  dst: usize,
  w: usize,
  n: i32,
  o0: i32,
  m: i32,
  i0: i32,
  i1: i32,
): void {
  transposeFloat(2, dst, w, n, o0, m, i0, i1);
}

/** Weight i (within its record at `base`) of a q8/q4 row, as f32: q · its block's scale. */
// @ts-ignore: decorator
@inline function decodeAt(base: usize, bits: i32, k: i32): f32 {
  const values = base + 16;
  const pos = (((k & 31) >> 2) << 4) + ((k >> 5) << 2) + (k & 3); // interleaved
  let q: i32;
  if (bits == 8) q = <i32>load<i8>(values + pos);
  else {
    const byte = <i32>load<u8>(values + (pos & 63));
    q = (pos < 64 ? byte & 15 : byte >> 4) - 8;
  }
  return <f32>q * load<f32>(base + ((<usize>(k >> 5)) << 2));
}

/**
 * q8 (bits 8) or q4 (bits 4) in src/formats/quant.ts's layout: a row is records of 128
 * weights, [4 f32 scales][values, interleaved]; i0 a multiple of 128. Four rows of W at a
 * time, so each element of dst's rows is written with its three neighbours, 16 bytes.
 */
export function transpose_q(
  dst: usize,
  w: usize,
  bits: i32,
  n: i32,
  o0: i32,
  m: i32,
  i0: i32,
  i1: i32,
): void {
  const recBytes: usize = 16 + (bits == 8 ? 128 : 64);
  const rowBytes = <usize>((n + 127) >> 7) * recBytes;
  for (let ib = i0; ib < i1; ib += 128) {
    const ie = min(i1, ib + 128);
    const rec = <usize>(ib >> 7);
    let o = 0;
    for (; o + 4 <= m; o += 4) {
      const b0 = w + <usize>(o0 + o) * rowBytes + rec * recBytes;
      const b1 = b0 + rowBytes;
      const b2 = b1 + rowBytes;
      const b3 = b2 + rowBytes;
      for (let i = ib; i < ie; i++) {
        const k = i - ib;
        let v = f32x4.splat(decodeAt(b0, bits, k));
        v = f32x4.replace_lane(v, 1, decodeAt(b1, bits, k));
        v = f32x4.replace_lane(v, 2, decodeAt(b2, bits, k));
        v = f32x4.replace_lane(v, 3, decodeAt(b3, bits, k));
        v128.store(dst + ((<usize>i * <usize>m + o) << 2), v);
      }
    }
    for (; o < m; o++) {
      const base = w + <usize>(o0 + o) * rowBytes + rec * recBytes;
      for (let i = ib; i < ie; i++)
        store<f32>(dst + ((<usize>i * <usize>m + o) << 2), decodeAt(base, bits, i - ib));
    }
  }
}
