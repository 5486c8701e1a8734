// A token mask: bit i of word i >> 5 says whether token i may come next (XGrammar's layout,
// ceil(V / 32) words). Applied to logits (V,) before anything else in sampling, so that
// temperature, top-k, top-p and the repetition penalty all work on the allowed tokens only.

export type TokenMask = Int32Array;

export const allows = (mask: TokenMask, id: number): boolean =>
  ((mask[id >>> 5] >>> (id & 31)) & 1) === 1;

/** Set every token the mask forbids to -Infinity, in one pass; words of all ones are skipped. */
export function applyMask(logits: Float32Array, mask: TokenMask): void {
  const V = logits.length;
  if (mask.length * 32 < V)
    throw new Error(`a token mask of ${mask.length} words cannot cover ${V} logits`);
  for (let w = 0; w * 32 < V; w++) {
    const bits = mask[w];
    if (bits === -1) continue;
    const end = Math.min(V, w * 32 + 32);
    for (let i = w * 32; i < end; i++) if (((bits >>> (i & 31)) & 1) === 0) logits[i] = -Infinity;
  }
}

/** How many of the first V tokens the mask allows. */
export function allowedCount(mask: TokenMask, V: number): number {
  let n = 0;
  for (let i = 0; i < V; i++) if (allows(mask, i)) n++;
  return n;
}

/** The one token the mask allows among the first V, or -1 when it allows none or several. */
export function onlyAllowed(mask: TokenMask, V: number): number {
  let found = -1;
  for (let w = 0; w * 32 < V; w++) {
    const bits = mask[w];
    if (bits === 0) continue;
    // a single bit set, and inside the vocabulary
    if ((bits & (bits - 1)) !== 0 || found >= 0) return -1;
    found = w * 32 + (31 - Math.clz32(bits));
    if (found >= V) return -1;
  }
  return found;
}
