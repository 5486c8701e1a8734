// The KV cache of one sequence: every layer's rotated keys and its values for the positions
// computed so far, so that a new token attends to them without recomputing the prefix.
//   keys, values: (L, H, T_max, Dh)
// Head-major: one head's keys for all positions lie together, so attention streams them in
// order (position-major rows put each head's 64 values 8 KB apart: about 4x slower here).
// `tokens` records which token sits at each cached position: the cache holds positions
// 0..tokens.length-1, and a later prompt that starts with the same tokens can reuse them.
import type { Kernels } from '../kernels/types.js';
import type { PhiConfig } from './config.js';
import { sameUse, type AdapterUse } from './lora.js';

export class KVCache {
  readonly keys: Float32Array; // (L, H, T_max, Dh)
  readonly values: Float32Array; // (L, H, T_max, Dh)
  /** The token at every cached position; its length is the number of positions held. */
  readonly tokens: number[] = [];
  /** The LoRA adapter this sequence runs with (model/lora.ts), or null for the base model. */
  private _adapter: AdapterUse | null = null;

  constructor(
    kernels: Kernels,
    cfg: PhiConfig,
    /** T_max: positions this cache holds. */
    readonly maxPositions: number,
  ) {
    const size = cfg.numLayers * maxPositions * cfg.hiddenSize;
    this.keys = kernels.allocF32(size);
    this.values = kernels.allocF32(size);
    this.H = cfg.numHeads;
    this.Dh = cfg.headDim;
  }

  private readonly H: number;
  private readonly Dh: number;

  /** Positions held (the next token goes at this position). */
  get length(): number {
    return this.tokens.length;
  }

  /** Layer l's keys (H, T_max, Dh). */
  layerKeys(l: number): Float32Array {
    const size = this.maxPositions * this.H * this.Dh;
    return this.keys.subarray(l * size, (l + 1) * size);
  }

  /** Layer l's values (H, T_max, Dh). */
  layerValues(l: number): Float32Array {
    const size = this.maxPositions * this.H * this.Dh;
    return this.values.subarray(l * size, (l + 1) * size);
  }

  /** Store k, v (T, H·Dh) of layer l at positions pos0..pos0+T-1, head by head. */
  write(l: number, pos0: number, k: Float32Array, v: Float32Array, T: number): void {
    const [keys, values] = [this.layerKeys(l), this.layerValues(l)];
    const { H, Dh } = this;
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < H; h++) {
        const from = (t * H + h) * Dh; // row t, head h of k and v
        const to = (h * this.maxPositions + pos0 + t) * Dh; // head h, position pos0 + t
        // a plain loop: 64 numbers are too few for subarray + set to pay off (half the speed)
        for (let i = 0; i < Dh; i++) {
          keys[to + i] = k[from + i];
          values[to + i] = v[from + i];
        }
      }
    }
  }

  get adapter(): AdapterUse | null {
    return this._adapter;
  }

  /** Run with another adapter (or scale) from now on: what is cached was computed with the old. */
  useAdapter(a: AdapterUse | null): void {
    if (!sameUse(a, this._adapter)) this.truncate(0);
    this._adapter = a;
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
