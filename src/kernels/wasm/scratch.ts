// The wasm backend's own buffers, besides weights, state and caches: sized once for the
// largest step a model makes (src/memory.ts counts them in the plan).
import { activationBlocks, BLOCK } from '../../formats/quant.js';
import { wideBytes } from './exports.js';

/** What a model's steps need the kernels to hold besides weights, state and caches. */
export interface ScratchSizes {
  /** Most rows (tokens) of one matmul. */
  rows: number;
  /** Most input features of one matmul (phi: the MLP width F). */
  inputs: number;
  /** Most positions attention looks at (the context). */
  positions: number;
}

/** The regions with a part for each thread (an op table entry's `scratch`). */
export type ScratchRegion = 'wide' | 'scores';

/** Bytes of each thread's part of the per-thread regions. */
export function threadScratchBytes(s: ScratchSizes): Record<ScratchRegion, number> {
  return {
    wide: wideBytes(s.inputs), // f16 rows widened to f32, or q8/q4 activations
    scores: 4 * s.positions, // attention: one row of scores
  };
}

/** The scratch buffers of the wasm backend, as (name, bytes), in allocation order. */
export function scratchLayout(s: ScratchSizes, threads: number): [string, number][] {
  const blocks = s.rows * activationBlocks(s.inputs);
  const own = threadScratchBytes(s);
  return [
    ['xScaled', 4 * s.rows * s.inputs], // f16 matmuls: the activations · 2^112
    ['wide', threads * own.wide],
    ['xq', blocks * BLOCK], // quantized activations: int8 values
    ['xqScale', 4 * blocks], // their block scales
    ['xqSum', 4 * blocks], // their block sums
    ['scores', threads * own.scores],
  ];
}
