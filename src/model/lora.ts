// LoRA terms applied unmerged: a linear layer's output plus each sequence's own adapter,
//   y = x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ          A (r, in), B (out, r), s = lora_alpha / r
// computed as two small products: u = x·Aᵀ (T, r), then y += s·u·Bᵀ. The base weight stays as
// loaded (a quantized base stays exact), and every sequence of a step may carry another
// adapter, or none: each sequence's rows get only its own term.
import type { Kernels, Weight } from '../kernels/types.js';
import type { PhiConfig } from './config.js';
import type { Linear } from './weights.js';

/** The linear layers of a Phi block an adapter can change (transformers' names). */
export const LORA_MODULES = ['q_proj', 'k_proj', 'v_proj', 'dense', 'fc1', 'fc2'] as const;
export type LoraModule = (typeof LORA_MODULES)[number];

/** in, out of each module of a Phi block. */
export function moduleShape(cfg: PhiConfig, m: LoraModule): [number, number] {
  const { hiddenSize: D, intermediateSize: F } = cfg;
  return m === 'fc1' ? [D, F] : m === 'fc2' ? [F, D] : [D, D];
}

/** One adapted linear layer: out += scale · (x·Aᵀ)·Bᵀ. */
export interface LoraTerm {
  r: number;
  scale: number;
  /** (r, in), row-major */
  A: Float32Array;
  /** (out, r), row-major */
  B: Float32Array;
  in: number;
  out: number;
}

export interface LoraAdapter {
  /** where it was read from, for messages */
  source: string;
  /** layer -> the terms of its adapted modules */
  layers: Partial<Record<LoraModule, LoraTerm>>[];
  /** the config's fields that matter, for listing */
  info: { r: number; lora_alpha: number; use_rslora: boolean; targets: LoraModule[] };
}

/** One term in the kernels' memory: A as a weight for matmul, B transposed for lora_add. */
export interface LoraTermWeights {
  r: number;
  scale: number;
  /** (r, in), f32 */
  A: Weight;
  /** Bᵀ (r, out) */
  Bt: Float32Array;
}

/** An adapter ready to apply: its terms per layer, and room for u (maxBatch, r). */
export interface LoraWeights {
  readonly name: string;
  readonly adapter: LoraAdapter;
  readonly layers: Partial<Record<LoraModule, LoraTermWeights>>[];
  /** (maxBatch · largest r) */
  readonly u: Float32Array;
}

/** What a sequence runs with: an adapter, at a multiple of its scale (1: as trained). */
export interface AdapterUse {
  readonly lora: LoraWeights;
  readonly scale: number;
}

export const sameUse = (a: AdapterUse | null, b: AdapterUse | null): boolean =>
  a === b || (a !== null && b !== null && a.lora === b.lora && a.scale === b.scale);

/** Copy an adapter's terms into the kernels' memory (B transposed once, here). */
export function uploadAdapter(
  name: string,
  adapter: LoraAdapter,
  kernels: Kernels,
  maxBatch: number,
): LoraWeights {
  let maxR = 0;
  const layers = adapter.layers.map((terms) => {
    const out: Partial<Record<LoraModule, LoraTermWeights>> = {};
    for (const [m, t] of Object.entries(terms) as [
      LoraModule,
      NonNullable<(typeof terms)[LoraModule]>,
    ][]) {
      const A = kernels.allocF32(t.r * t.in);
      A.set(t.A);
      const Bt = kernels.allocF32(t.r * t.out);
      for (let i = 0; i < t.out; i++)
        for (let k = 0; k < t.r; k++) Bt[k * t.out + i] = t.B[i * t.r + k];
      out[m] = { r: t.r, scale: t.scale, A: { dtype: 'f32', data: A }, Bt };
      maxR = Math.max(maxR, t.r);
    }
    return out;
  });
  return { name, adapter, layers, u: kernels.allocF32(Math.max(1, maxBatch * maxR)) };
}

/**
 * out (T, d) <- x (T, n)·Wᵀ + b for every row, then each sequence's adapter term on its own
 * rows: `module` of `layer`. Consecutive sequences with the same adapter share one call.
 */
export function linear(
  out: Float32Array,
  x: Float32Array,
  lin: Linear,
  layer: number,
  module: LoraModule,
  T: number,
  n: number,
  d: number,
  rows: readonly { cache: { adapter: AdapterUse | null }; row0: number; T: number }[],
  kernels: Kernels,
): void {
  kernels.matmul(out, x, lin.weight, lin.bias, T, n, d);
  for (let i = 0; i < rows.length;) {
    const use = rows[i].cache.adapter;
    let j = i + 1;
    while (j < rows.length && sameUse(rows[j].cache.adapter, use)) j++;
    const term = use?.lora.layers[layer][module];
    if (use && term) {
      const row0 = rows[i].row0;
      const m = rows[j - 1].row0 + rows[j - 1].T - row0; // rows of these sequences
      const u = use.lora.u.subarray(0, m * term.r);
      kernels.matmul(u, x.subarray(row0 * n, (row0 + m) * n), term.A, null, m, n, term.r);
      const scale = term.scale * use.scale;
      kernels.lora_add(out.subarray(row0 * d, (row0 + m) * d), u, term.Bt, scale, m, term.r, d);
    }
    i = j;
  }
}
