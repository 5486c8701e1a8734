// AdamW (Loshchilov & Hutter), as torch.optim.AdamW computes it, per parameter p with
// gradient g at step t (1, 2, ..):
//   p ← p · (1 - lr · wd)                         decoupled weight decay
//   m ← β1 m + (1 - β1) g,   v ← β2 v + (1 - β2) g²
//   p ← p - (lr / (1 - β1^t)) · m / (√v / √(1 - β2^t) + ε)
// Defaults are torch's and the Hugging Face Trainer's: β1 0.9, β2 0.999, ε 1e-8; weight decay
// 0.01 (the Trainer's default is 0, torch's 0.01; PEFT recipes use 0.01). m and v are f32,
// as torch keeps them for f32 parameters; each update is computed in f64.

export interface AdamWOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

export const ADAMW_DEFAULTS = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };

/** The optimizer's state: the step count and m, v per parameter (what a checkpoint saves). */
export interface AdamWState {
  step: number;
  m: Float32Array[];
  v: Float32Array[];
}

export class AdamW {
  readonly state: AdamWState;

  constructor(
    private readonly params: { p: Float32Array; g: Float32Array }[],
    readonly options: Required<Omit<AdamWOptions, 'lr'>>,
    state?: AdamWState,
  ) {
    this.state = state ?? {
      step: 0,
      m: params.map(({ p }) => new Float32Array(p.length)),
      v: params.map(({ p }) => new Float32Array(p.length)),
    };
    params.forEach(({ p }, i) => {
      if (this.state.m[i].length !== p.length || this.state.v[i].length !== p.length)
        throw new Error(
          `optimizer state: tensor ${i} holds ${this.state.m[i].length} values, the parameter ${p.length}`,
        );
    });
  }

  /** One update of every parameter from its gradient, at learning rate lr. */
  step(lr: number): void {
    const { beta1: b1, beta2: b2, eps, weightDecay: wd } = this.options;
    const t = ++this.state.step;
    const c1 = 1 - b1 ** t;
    const c2 = Math.sqrt(1 - b2 ** t);
    const decay = 1 - lr * wd;
    const stepSize = lr / c1;
    this.params.forEach(({ p, g }, i) => {
      const [m, v] = [this.state.m[i], this.state.v[i]];
      for (let j = 0; j < p.length; j++) {
        m[j] = b1 * m[j] + (1 - b1) * g[j];
        v[j] = b2 * v[j] + (1 - b2) * g[j] * g[j];
        p[j] = p[j] * decay - (stepSize * m[j]) / (Math.sqrt(v[j]) / c2 + eps);
      }
    });
  }
}

/** Scale every gradient so that their global L2 norm is at most maxNorm; returns the norm before. */
export function clipGradNorm(grads: Float32Array[], maxNorm: number): number {
  let sq = 0;
  for (const g of grads) for (let j = 0; j < g.length; j++) sq += g[j] * g[j];
  const norm = Math.sqrt(sq);
  if (norm > maxNorm && maxNorm > 0) {
    // torch: clip_coef = max_norm / (total_norm + 1e-6)
    const k = maxNorm / (norm + 1e-6);
    for (const g of grads) for (let j = 0; j < g.length; j++) g[j] *= k;
  }
  return norm;
}
