// dst (n, m) <- rows [o0, o0 + m) of a weight W (.., n), transposed: what training multiplies
// by for a frozen layer's input gradient dy·W (src/train/linear.ts). f32 stays f32, f16 keeps
// its bits (and W's log2Scale applies), q8 and q4 widen to f32 as q · scale (exact).
import { blocksOf, decodeRow, quantizedRows } from '../../formats/quant.js';
import type { Weight } from '../types.js';

export function transpose_rows(
  dst: Float32Array | Uint16Array,
  w: Weight,
  n: number,
  o0: number,
  m: number,
): void {
  if (w.dtype === 'f32' || w.dtype === 'f16') {
    for (let o = 0; o < m; o++) {
      const row = (o0 + o) * n;
      for (let i = 0; i < n; i++) dst[i * m + o] = w.data[row + i];
    }
    return;
  }
  const part = quantizedRows(w, n, o0, m);
  const q = new Int32Array(n);
  const scales = new Float64Array(blocksOf(n) + 4);
  for (let o = 0; o < m; o++) {
    decodeRow(part, n, o, q, scales);
    for (let i = 0; i < n; i++) dst[i * m + o] = q[i] * scales[i >> 5];
  }
}
