// The fine-tune every runtime runs (e2e.mjs, and the browser's worker): a made-up key/value
// format, a few steps with dropout on: the same losses everywhere (to relaxed SIMD's rounding).
export const TRAIN_RECORDS = Array.from({ length: 12 }, (_, i) => ({
  prompt: `item ${i} colour`,
  completion: ` colour=${['red', 'blue'][i % 2]};`,
}));
export const TRAIN_OPTIONS = { steps: 6, seq: 32, lr: 5e-3, rank: 4, dropout: 0.1 };

/** The losses of the run, and whether it learned. */
export async function trainLosses(phi) {
  const losses = [];
  for await (const m of phi.finetune(TRAIN_RECORDS, TRAIN_OPTIONS)) losses.push(m.loss);
  return { losses, learns: losses.at(-1) < losses[0] };
}
