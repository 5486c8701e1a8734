// dst (n, m) <- rows [o0, o0 + m) of a weight W (.., n), transposed; dst rows [i0, i1) only
// (twin: src/kernels/ref/transpose.ts). The backward's dy·W is a matmul against Wᵀ, so the
// forward kernels compute it from these chunks (src/train/linear.ts). f32 and f16 keep their
// bits; q8 and q4 widen to f32, q · scale (exact: an f32 product of a small integer).
// Tiles of 64 (128 for a quantized record) columns of W: the tile's rows of dst stay in L1
// while every row of W passes.
const TILE: i32 = 64;

/** elementBytes 4 (f32) or 2 (f16). */
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
  for (let ib = i0; ib < i1; ib += TILE) {
    const ie = min(i1, ib + TILE);
    for (let o = 0; o < m; o++) {
      const src = w + <usize>(o0 + o) * <usize>n * eb;
      for (let i = ib; i < ie; i++) {
        const at = (<usize>i * <usize>m + o) * eb;
        if (eb == 4) store<f32>(dst + at, load<f32>(src + ((<usize>i) << 2)));
        else store<u16>(dst + at, load<u16>(src + ((<usize>i) << 1)));
      }
    }
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

/**
 * q8 (bits 8) or q4 (bits 4) in src/formats/quant.ts's layout: a row is records of 128
 * weights, [4 f32 scales][values, interleaved]; i0 a multiple of 128.
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
    for (let o = 0; o < m; o++) {
      const base = w + <usize>(o0 + o) * rowBytes + rec * recBytes;
      const values = base + 16;
      for (let i = ib; i < ie; i++) {
        const k = i - ib;
        const pos = (((k & 31) >> 2) << 4) + ((k >> 5) << 2) + (k & 3); // interleaved
        let q: i32;
        if (bits == 8) q = <i32>load<i8>(values + pos);
        else {
          const byte = <i32>load<u8>(values + (pos & 63));
          q = (pos < 64 ? byte & 15 : byte >> 4) - 8;
        }
        const scale = load<f32>(base + ((<usize>(k >> 5)) << 2));
        store<f32>(dst + ((<usize>i * <usize>m + o) << 2), <f32>q * scale);
      }
    }
  }
}
