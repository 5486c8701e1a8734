// Which of two kernels that compute the same thing runs faster on this machine, found by timing
// the real calls. Used for q4's integer sums (assembly/matmul_q_dot.ts matmul_q4_dot16): which form is
// faster depends on how the engine compiles the relaxed int8 dot (3 instructions in V8 12, one
// in V8 13 with AVX-VNNI), and nothing but timing tells them apart. Since both give the same
// results bit for bit, the choice changes only the speed.
//
// Per shape of call: the first `warm` calls of each variant are not counted (the engine's first
// tier is still running), the next `trials` of each are, alternating, and the alternative (1)
// is kept only if its best time beats the default's (0) by the margin; best times, so that a
// stall of the machine in one call does not decide.

interface Trial {
  calls: number;
  best: [number, number];
  choice: 0 | 1 | null;
}

export class KernelPick {
  private readonly shapes = new Map<string, Trial>();

  constructor(
    readonly warm = 4,
    readonly trials = 8,
    readonly margin = 0.9,
  ) {}

  /** The variant to run now for calls of this shape. */
  choose(shape: string): 0 | 1 {
    const t = this.shapes.get(shape);
    if (!t) return 0;
    return t.choice ?? ((t.calls & 1) as 0 | 1);
  }

  /** How long a call of this shape took with `variant` (any unit, the same for both). */
  report(shape: string, variant: 0 | 1, time: number): void {
    let t = this.shapes.get(shape);
    if (!t) this.shapes.set(shape, (t = { calls: 0, best: [Infinity, Infinity], choice: null }));
    if (t.choice !== null) return;
    t.calls++;
    if (t.calls > 2 * this.warm) t.best[variant] = Math.min(t.best[variant], time);
    if (t.calls >= 2 * (this.warm + this.trials))
      t.choice = t.best[1] < this.margin * t.best[0] ? 1 : 0;
  }

  /** The settled choices: shape -> variant. */
  get choices(): Record<string, 0 | 1> {
    const out: Record<string, 0 | 1> = {};
    for (const [shape, t] of this.shapes) if (t.choice !== null) out[shape] = t.choice;
    return out;
  }
}
