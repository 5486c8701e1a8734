// The KV cache of one sequence: every layer's rotated keys and its values for the positions
// computed so far, so that a new token attends to them without recomputing the prefix.
//   keys, values: (L, T_max, D), layer l at rows [l·T_max, (l+1)·T_max)
// `tokens` records which token sits at each cached position: the cache holds positions
// 0..tokens.length-1, and a later prompt that starts with the same tokens can reuse them.
import type { Kernels } from '../kernels/types.js';
import type { PhiConfig } from './config.js';

export class KVCache {
  readonly keys: Float32Array; // (L, T_max, D)
  readonly values: Float32Array; // (L, T_max, D)
  /** The token at every cached position; its length is the number of positions held. */
  readonly tokens: number[] = [];

  constructor(
    kernels: Kernels,
    cfg: PhiConfig,
    /** T_max: positions this cache holds. */
    readonly maxPositions: number,
  ) {
    const size = cfg.numLayers * maxPositions * cfg.hiddenSize;
    this.keys = kernels.allocF32(size);
    this.values = kernels.allocF32(size);
    this.D = cfg.hiddenSize;
  }

  private readonly D: number;

  /** Positions held (the next token goes at this position). */
  get length(): number {
    return this.tokens.length;
  }

  /** Layer l's keys (T_max, D). */
  layerKeys(l: number): Float32Array {
    const size = this.maxPositions * this.D;
    return this.keys.subarray(l * size, (l + 1) * size);
  }

  /** Layer l's values (T_max, D). */
  layerValues(l: number): Float32Array {
    const size = this.maxPositions * this.D;
    return this.values.subarray(l * size, (l + 1) * size);
  }

  /** Forget positions n and later (the keys and values there are overwritten next). */
  truncate(n: number): void {
    if (n < this.tokens.length) this.tokens.length = n;
  }

  /** Bytes one cache takes: keys and values, f32. */
  static bytes(cfg: PhiConfig, maxPositions: number): number {
    return 2 * cfg.numLayers * maxPositions * cfg.hiddenSize * 4;
  }
}
