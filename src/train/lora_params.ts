// The trained parameters: a LoRA term (A, B) on each chosen module of each layer, as PEFT
// makes them. PEFT's initialisation: A Kaiming-uniform with a = √5 (torch's default for a
// Linear: bound = 1/√in), B zero, so training starts from the base model exactly.
//   scale = lora_alpha / r,  or lora_alpha / √r with rsLoRA
// Kept as A (r, in) and Bᵀ (r, out): the layout the forward kernels read (model/lora.ts).
import type { Kernels } from '../kernels/types.js';
import type { PhiConfig } from '../model/config.js';
import { LORA_MODULES, moduleShape, type LoraAdapter, type LoraModule } from '../model/lora.js';
import type { TrainTerm } from './linear.js';
import type { Rng } from './rng.js';

export interface LoraShape {
  rank: number;
  alpha: number;
  targets: readonly LoraModule[];
  rslora?: boolean;
}

export class LoraParams {
  /** layer -> its terms */
  readonly layers: Partial<Record<LoraModule, TrainTerm>>[];

  constructor(
    readonly terms: TrainTerm[],
    readonly shape: LoraShape,
    numLayers: number,
  ) {
    this.layers = Array.from({ length: numLayers }, () => ({}));
    for (const t of terms) this.layers[t.layer][t.module] = t;
  }

  /** Every parameter and its gradient, in one order (the optimizer's). */
  tensors(): { name: string; p: Float32Array; g: Float32Array }[] {
    return this.terms.flatMap((t) => [
      { name: `${t.layer}.${t.module}.A`, p: t.A, g: t.dA },
      { name: `${t.layer}.${t.module}.Bt`, p: t.Bt, g: t.dBt },
    ]);
  }

  zeroGrad(): void {
    for (const t of this.terms) {
      t.dA.fill(0);
      t.dBt.fill(0);
    }
  }

  count(): number {
    return this.terms.reduce((n, t) => n + t.A.length + t.Bt.length, 0);
  }

  /** New terms, PEFT's initialisation, drawn from rng in layer then LORA_MODULES order. */
  static init(cfg: PhiConfig, shape: LoraShape, rng: Rng, kernels: Kernels): LoraParams {
    const terms: TrainTerm[] = [];
    const scale = shape.rslora ? shape.alpha / Math.sqrt(shape.rank) : shape.alpha / shape.rank;
    for (let layer = 0; layer < cfg.numLayers; layer++)
      for (const module of LORA_MODULES) {
        if (!shape.targets.includes(module)) continue;
        const [n, d] = moduleShape(cfg, module);
        const t = newTerm(kernels, layer, module, shape.rank, scale, n, d);
        const bound = 1 / Math.sqrt(n);
        for (let i = 0; i < t.A.length; i++) t.A[i] = (2 * rng.next() - 1) * bound;
        terms.push(t);
      }
    return new LoraParams(terms, shape, cfg.numLayers);
  }

  /** Terms copied from a loaded adapter (to go on training it). */
  static from(adapter: LoraAdapter, kernels: Kernels): LoraParams {
    const terms: TrainTerm[] = [];
    adapter.layers.forEach((mods, layer) => {
      for (const module of LORA_MODULES) {
        const a = mods[module];
        if (!a) continue;
        const t = newTerm(kernels, layer, module, a.r, a.scale, a.in, a.out);
        t.A.set(a.A);
        for (let o = 0; o < a.out; o++)
          for (let k = 0; k < a.r; k++) t.Bt[k * a.out + o] = a.B[o * a.r + k];
        terms.push(t);
      }
    });
    const { r, lora_alpha, use_rslora, targets } = adapter.info;
    return new LoraParams(
      terms,
      { rank: r, alpha: lora_alpha, rslora: use_rslora, targets },
      adapter.layers.length,
    );
  }

  /** As an adapter the engine runs (model/lora.ts): B (out, r) from Bᵀ. */
  toAdapter(source: string): LoraAdapter {
    const layers: LoraAdapter['layers'] = this.layers.map((mods) => {
      const out: LoraAdapter['layers'][number] = {};
      for (const [m, t] of Object.entries(mods) as [LoraModule, TrainTerm][]) {
        const B = new Float32Array(t.d * t.r);
        for (let o = 0; o < t.d; o++)
          for (let k = 0; k < t.r; k++) B[o * t.r + k] = t.Bt[k * t.d + o];
        out[m] = { r: t.r, scale: t.scale, A: Float32Array.from(t.A), B, in: t.n, out: t.d };
      }
      return out;
    });
    const { rank, alpha, rslora, targets } = this.shape;
    return {
      source,
      layers,
      info: { r: rank, lora_alpha: alpha, use_rslora: !!rslora, targets: [...targets] },
    };
  }
}

function newTerm(
  kernels: Kernels,
  layer: number,
  module: LoraModule,
  r: number,
  scale: number,
  n: number,
  d: number,
): TrainTerm {
  const t = { layer, module, r, scale, n, d, ...termBuffers(kernels, r, n, d) };
  t.Bt.fill(0); // B starts at zero (PEFT), whatever the memory held
  return t;
}

/** A term's A (r, in), Bᵀ (r, out) and their gradients (train/plan.ts counts by it too). */
export function termBuffers(kernels: Pick<Kernels, 'allocF32'>, r: number, n: number, d: number) {
  const f = (len: number) => kernels.allocF32(len);
  return { A: f(r * n), Bt: f(r * d), dA: f(r * n), dBt: f(r * d) };
}
