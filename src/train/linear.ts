// A linear layer in training: the base frozen, the LoRA term trained.
//   y  = x·Wᵀ + b + s·u·Bᵀ,   u = x̃·Aᵀ,   x̃ = dropout(x)          (T, d), u (T, r)
// Backward, from dy (T, d):
//   dB += s·dyᵀ·u                     (kept as dBᵀ (r, d), the layout the forward reads)
//   du  = s·dy·B                      (T, r)
//   dA += duᵀ·x̃                       (r, n)
//   dx += dy·W + (du·A) ⊙ dropout's mask
// W is never updated, so only its input gradient dy·W is needed, in whatever dtype the model
// holds (f32, f16, q8, q4: the "QLoRA" case is a q4 base). That is a matmul against Wᵀ: rows of
// W are transposed, a chunk at a time, into a scratch weight the forward kernels multiply
// with (f32 stays f32, f16 stays f16 with its scale, q8/q4 widen to f32: exact in each case).
import type { Kernels, Weight, WeightDType } from '../kernels/types.js';
import type { LoraModule } from '../model/lora.js';

/** One trained LoRA term: A (r, in) and Bᵀ (r, out), their gradients, in the kernels' memory. */
export interface TrainTerm {
  layer: number;
  module: LoraModule;
  r: number;
  /** lora_alpha / r, or lora_alpha / √r (rsLoRA) */
  scale: number;
  n: number;
  d: number;
  A: Float32Array;
  Bt: Float32Array;
  dA: Float32Array;
  dBt: Float32Array;
}

/** The shape FrozenInputGrad's scratch is allocated for. */
export interface FrozenGradShape {
  /** most rows */
  maxT: number;
  /** the narrowest and widest input (n) of a weight it multiplies with */
  minN: number;
  maxN: number;
  /** the weights' dtypes: f16 ones transpose into f16 scratch, the others into f32 */
  dtypes: readonly WeightDType[];
}

/**
 * The default scratch: 16M elements of transposed weight at a time, so every weight of a phi-1.5
 * block (fc1, fc2: 2048 x 8192) is one chunk (32 MiB as f16, 64 MiB as f32), and lm_head 7.
 * Each chunk costs a pass adding its product into dx and a copy of dy's columns.
 */
const BUDGET = 1 << 24;

type Alloc = Pick<Kernels, 'allocF32' | 'allocU16'>;

/** dx (T, n) += dy (T, d) · W (d, n), W frozen in any dtype, through a bounded scratch. */
export class FrozenInputGrad {
  private readonly wtF32: Float32Array;
  private readonly wtF16: Uint16Array;
  private readonly dyChunk: Float32Array;
  private readonly out: Float32Array;
  private readonly budget: number;

  constructor(
    private readonly kernels: Kernels,
    private readonly shape: FrozenGradShape,
    budget = BUDGET,
  ) {
    ({
      budget: this.budget,
      out: this.out,
      wtF16: this.wtF16,
      wtF32: this.wtF32,
      dyChunk: this.dyChunk,
    } = FrozenInputGrad.allocate(kernels, shape, budget));
  }

  /** The scratch for `shape` (train/plan.ts counts bytes by calling this with a counter). */
  static allocate(alloc: Alloc, s: FrozenGradShape, budget = BUDGET) {
    budget = Math.max(budget, s.maxN); // at least one row of the widest layer
    return {
      budget,
      out: alloc.allocF32(s.maxT * s.maxN),
      wtF16: alloc.allocU16(s.dtypes.includes('f16') ? budget : 1),
      wtF32: alloc.allocF32(s.dtypes.some((d) => d !== 'f16') ? budget : 1),
      // a chunk holds floor(budget / n) rows of W: dy's columns for it are most for the narrowest
      dyChunk: alloc.allocF32(s.maxT * Math.floor(budget / s.minN)),
    };
  }

  apply(dx: Float32Array, dy: Float32Array, w: Weight, T: number, n: number, d: number): void {
    const { maxT, minN, maxN } = this.shape;
    if (T > maxT || n > maxN || n < minN)
      throw new Error(
        `FrozenInputGrad: ${T}x${n} is outside its scratch (up to ${maxT} rows, ${minN}..${maxN} wide)`,
      );
    const c = Math.max(1, Math.min(d, Math.floor(this.budget / n))); // rows of W a chunk
    const k = this.kernels;
    for (let o0 = 0; o0 < d; o0 += c) {
      const m = Math.min(c, d - o0);
      // Wᵀ rows [o0, o0 + m): (n, m)
      let wt: Weight;
      if (w.dtype === 'f16') {
        const dst = this.wtF16.subarray(0, n * m);
        k.transpose_rows(dst, w, n, o0, m);
        wt = { dtype: 'f16', data: dst, log2Scale: w.log2Scale };
      } else {
        const dst = this.wtF32.subarray(0, n * m);
        k.transpose_rows(dst, w, n, o0, m);
        wt = { dtype: 'f32', data: dst };
      }
      // dy's columns [o0, o0 + m): (T, m); all of dy when one chunk holds W
      let dyc = dy;
      if (m < d) {
        dyc = this.dyChunk;
        for (let t = 0; t < T; t++) dyc.set(dy.subarray(t * d + o0, t * d + o0 + m), t * m);
      }
      k.matmul(this.out, dyc, wt, null, T, m, n);
      for (let i = 0; i < T * n; i++) dx[i] += this.out[i];
    }
  }
}

/** dst (cols, rows) <- src (rows, cols). */
function transpose(dst: Float32Array, src: Float32Array, rows: number, cols: number): void {
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < cols; j++) dst[j * rows + i] = src[i * cols + j];
}

/** Scratch for the LoRA products of T rows at rank r: u ᵀ, du, duᵀ. */
export interface LoraScratch {
  /** (maxT · rmax) each */
  uT: Float32Array;
  du: Float32Array;
  duT: Float32Array;
}

/** y (T, d) += s·(x̃·Aᵀ)·Bᵀ, keeping u = x̃·Aᵀ (T, r) for the backward. */
export function loraForward(
  y: Float32Array,
  xd: Float32Array,
  u: Float32Array,
  term: TrainTerm,
  T: number,
  kernels: Kernels,
): void {
  const { r, n, d } = term;
  kernels.matmul(u, xd, { dtype: 'f32', data: term.A }, null, T, n, r);
  kernels.lora_add(y, u, term.Bt, term.scale, T, r, d);
}

/**
 * The term's gradients from dy (T, d): dBᵀ and dA accumulate; dxLora (T, n) += du·A, the
 * gradient of x̃ (the caller applies dropout's mask on the way to x).
 */
export function loraBackward(
  dxLora: Float32Array,
  dy: Float32Array,
  xd: Float32Array,
  u: Float32Array,
  term: TrainTerm,
  T: number,
  s: LoraScratch,
  kernels: Kernels,
): void {
  const { r, n, d, scale } = term;
  const uT = s.uT.subarray(0, r * T);
  transpose(uT, u, T, r);
  kernels.lora_add(term.dBt, uT, dy, scale, r, T, d); // dBᵀ (r, d) += s·uᵀ·dy
  const du = s.du.subarray(0, T * r);
  kernels.matmul(du, dy, { dtype: 'f32', data: term.Bt }, null, T, d, r); // dy·B (T, r)
  for (let i = 0; i < T * r; i++) du[i] *= scale;
  const duT = s.duT.subarray(0, r * T);
  transpose(duT, du, T, r);
  kernels.lora_add(term.dA, duT, xd, 1, r, T, n); // dA (r, n) += duᵀ·x̃
  kernels.lora_add(dxLora, du, term.A, 1, T, r, n); // dx̃ (T, n) += du·A
}
