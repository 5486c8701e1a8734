// x[t] = embed_tokens[token_t]: look up one row of the (V, D) table per token.
import { F16_TABLE } from '../formats/f16.js';
import type { Weight } from '../kernels/types.js';

/** out (T, D) <- rows `tokens` of table (V, D). */
export function embedding(
  out: Float32Array,
  table: Weight,
  tokens: ArrayLike<number>,
  D: number,
): void {
  for (let t = 0; t < tokens.length; t++) {
    const row = tokens[t] * D;
    if (table.dtype === 'f32') {
      out.set(table.data.subarray(row, row + D), t * D);
    } else {
      for (let i = 0; i < D; i++) out[t * D + i] = F16_TABLE[table.data[row + i]];
    }
  }
}
