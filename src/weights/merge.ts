// Merging LoRA adapters into the base weights as they load: W' = W + s·B·A, in f32, then held
// in the dtype asked for (f16, or quantized: the merged weight is what gets quantized). One
// adapter used for every request runs as fast as the base model this way.
import type { Kernels } from '../kernels/types.js';
import type { LoraAdapter, LoraModule, LoraTerm } from '../model/lora.js';

/** A term that adds to rows [row0, row0 + term.out) of a matrix (a fused Wqkv holds three). */
export interface PlacedTerm {
  row0: number;
  term: LoraTerm;
}

/** The terms of `adapters` for the modules stored in one matrix, in that matrix's row order. */
export function termsFor(
  adapters: readonly LoraAdapter[],
  layer: number,
  modules: readonly LoraModule[],
  rowsEach: number,
): PlacedTerm[] {
  const out: PlacedTerm[] = [];
  for (const a of adapters)
    modules.forEach((m, i) => {
      const term = a.layers[layer]?.[m];
      if (term) out.push({ row0: i * rowsEach, term });
    });
  return out;
}

/** f32 elements of the staging buffers a merge needs for a slab of `slabRows` rows of `cols`. */
export function mergeStaging(
  adapters: readonly LoraAdapter[],
  slabElements: number,
): { slab: number; terms: number } {
  let terms = 0;
  for (const a of adapters)
    for (const layer of a.layers)
      for (const t of Object.values(layer)) {
        const slabRows = Math.max(1, Math.floor(slabElements / t.in));
        terms = Math.max(terms, t.r * (t.in + Math.min(slabRows, t.out)));
      }
  return { slab: terms ? slabElements : 0, terms };
}

/**
 * Adds terms to slabs of a matrix's rows. The slab and the terms' parts are staged in the
 * kernels' memory (the wasm kernels compute only there), in buffers allocated once.
 */
export class Merger {
  private stage: Float32Array | null = null;
  private termStage: Float32Array | null = null;

  constructor(
    private readonly kernels: Kernels,
    private readonly sizes: { slab: number; terms: number },
  ) {}

  /** slab (count, cols) holds rows row0.. of the matrix; returns them with every term added. */
  apply(
    slab: Float32Array,
    row0: number,
    count: number,
    cols: number,
    terms: readonly PlacedTerm[],
  ): Float32Array {
    this.stage ??= this.kernels.allocF32(this.sizes.slab); // a slab is at most this (weights/load.ts)
    this.termStage ??= this.kernels.allocF32(this.sizes.terms);
    const stage = this.stage.subarray(0, count * cols);
    stage.set(slab.subarray(0, count * cols));
    for (const { row0: t0, term } of terms) {
      const lo = Math.max(row0, t0);
      const hi = Math.min(row0 + count, t0 + term.out);
      if (lo >= hi) continue;
      const { r } = term;
      // W[lo..hi) += s · B[lo-t0 .. hi-t0) (hi-lo, r) · A (r, cols)
      const b = this.termStage.subarray(0, (hi - lo) * r);
      b.set(term.B.subarray((lo - t0) * r, (hi - t0) * r));
      const a = this.termStage.subarray((hi - lo) * r, (hi - lo) * r + r * cols);
      a.set(term.A);
      const part = stage.subarray((lo - row0) * cols, (hi - row0) * cols);
      this.kernels.lora_add(part, b, a, term.scale, hi - lo, r, cols);
    }
    return stage;
  }
}
