// The training loss: mean cross-entropy of each position's next-token scores against the
// token that follows, over the positions that have a target:
//   loss      = (1/N) Σ_t -log softmax(logits_t)[y_t]        N = positions with a target
//   dlogits_t = (softmax(logits_t) - onehot(y_t)) / N        0 where there is no target
// The softmax runs over all V scores, the 51200 - 50295 ids the tokenizer never makes
// included, as transformers' loss does. Sums in f64.

/** A target of -1: no loss at that position (a prompt token, padding). */
export const NO_TARGET = -1;

/**
 * Σ of the -log p over rows with a target (divide by N for the mean); with `dlogits`, each
 * row's gradient of (that sum / N) written there (T, V). logits (T, V), targets (T,).
 */
export function crossEntropy(
  dlogits: Float32Array | null,
  logits: Float32Array,
  targets: ArrayLike<number>,
  T: number,
  V: number,
  N: number,
): number {
  let total = 0;
  for (let t = 0; t < T; t++) {
    const row = logits.subarray(t * V, (t + 1) * V);
    const y = targets[t];
    if (y === NO_TARGET) {
      dlogits?.fill(0, t * V, (t + 1) * V);
      continue;
    }
    let max = -Infinity;
    for (let i = 0; i < V; i++) if (row[i] > max) max = row[i];
    let sum = 0;
    for (let i = 0; i < V; i++) sum += Math.exp(row[i] - max);
    const logZ = max + Math.log(sum);
    total += logZ - row[y];
    if (dlogits) {
      for (let i = 0; i < V; i++) dlogits[t * V + i] = Math.exp(row[i] - logZ) / N;
      dlogits[t * V + y] -= 1 / N;
    }
  }
  return total;
}
