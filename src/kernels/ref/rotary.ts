// Partial rotary position embedding, NeoX "rotate_half" style, in place on x (T, H*Dh).
// For token t at position p = pos0 + t, in every head, for i < R/2 with angle a = p·θ_i:
//   x[i]       <- x[i] cos a - x[i + R/2] sin a
//   x[i + R/2] <- x[i + R/2] cos a + x[i] sin a
// Dims R..Dh-1 pass through. Pairs are (i, i + R/2), not llama2.c's interleaved (2i, 2i+1).
// cos, sin: (maxPos, R/2) tables, built once by src/model/rotary.ts.
export function rotary(
  x: Float32Array,
  T: number,
  pos0: number,
  H: number,
  Dh: number,
  R: number,
  cos: Float32Array,
  sin: Float32Array,
): void {
  const half = R >> 1;
  for (let t = 0; t < T; t++) {
    const tab = (pos0 + t) * half;
    for (let h = 0; h < H; h++) {
      const off = t * H * Dh + h * Dh;
      for (let i = 0; i < half; i++) {
        const c = cos[tab + i];
        const s = sin[tab + i];
        const x1 = x[off + i];
        const x2 = x[off + i + half];
        x[off + i] = x1 * c - x2 * s;
        x[off + i + half] = x2 * c + x1 * s;
      }
    }
  }
}
