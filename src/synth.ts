// Random-weight Phi checkpoints of a given shape, for trying everything without a network
// (`phi synth`) and for the bench (speed does not depend on the values). Values follow
// N(0, 0.02) like a trained checkpoint, so f16 subnormals appear about as often as in the real
// weights; a pool of 1 Mi values is drawn once and tiled at shifting offsets, which makes
// billions of weights cheap. Quantized matrices tile a quantized pool by whole rows.
import { f32ToF16 } from './formats/f16.js';
import { allocQuantized, quantizeRows, type QuantDType } from './formats/quant.js';
import type { PhiConfig } from './model/config.js';
import { PHI_1_5 } from './model/config.js';

const POOL = 1 << 20;

/** The shapes `phi synth --size` knows: phi-1.5's, and the reference checkpoints' tiny one. */
export const SYNTH_SIZES: Record<'phi-1_5' | 'tiny', PhiConfig> = {
  'phi-1_5': PHI_1_5,
  tiny: {
    ...PHI_1_5,
    hiddenSize: 64,
    intermediateSize: 256,
    numLayers: 2,
    numHeads: 4,
    headDim: 16,
    rotaryDim: 8,
    maxPositions: 512,
  },
};

/** N(0, std) values from a seeded xorshift and Box-Muller. */
export function gaussianPool(seed: number, n = POOL, std = 0.02): Float32Array {
  let s = seed >>> 0 || 1;
  const uniform = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) + 0.5) / 4294967296;
  };
  const pool = new Float32Array(n);
  for (let i = 0; i < n; i++)
    pool[i] = std * Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  return pool;
}

/** Fills arrays of any size from the pools, each at a new offset. */
export class SyntheticValues {
  private readonly pool: Float32Array;
  private readonly pool16: Uint16Array;
  private readonly quantPools = new Map<string, Uint8Array>();
  private offset = 0;

  constructor(seed = 1) {
    this.pool = gaussianPool(seed);
    this.pool16 = Uint16Array.from(this.pool, f32ToF16);
  }

  /** f32 values (or f16 bits) into `a`. */
  fill<A extends Float32Array | Uint16Array>(a: A): A {
    const src = (a instanceof Uint16Array ? this.pool16 : this.pool) as A;
    for (let i = 0; i < a.length; i += POOL) {
      const n = Math.min(POOL, a.length - i);
      const start = (this.offset = (this.offset + 7919) % (POOL - n + 1));
      a.set(src.subarray(start, start + n), i);
    }
    return a;
  }

  /** Quantized (rows, cols) matrix bytes into `dst`: whole quantized rows of the pool, tiled. */
  fillQuantized(dst: Uint8Array, dtype: QuantDType, cols: number): Uint8Array {
    const key = `${dtype}:${cols}`;
    let src = this.quantPools.get(key);
    if (!src) {
      const rows = Math.max(1, Math.floor(POOL / cols));
      const plain = { allocU8: (n: number) => new Uint8Array(n) } as Parameters<
        typeof allocQuantized
      >[0];
      const w = allocQuantized(plain, dtype, rows, cols);
      quantizeRows(this.pool.subarray(0, rows * cols), rows, cols, w, 0);
      src = w.data;
      this.quantPools.set(key, src);
    }
    for (let i = 0; i < dst.length; i += src.length)
      dst.set(src.subarray(0, Math.min(src.length, dst.length - i)), i);
    return dst;
  }
}

/** config.json for a shape, in transformers' "phi" format. */
export function configJson(cfg: PhiConfig): Record<string, unknown> {
  return {
    architectures: ['PhiForCausalLM'],
    model_type: 'phi',
    vocab_size: cfg.vocabSize,
    hidden_size: cfg.hiddenSize,
    intermediate_size: cfg.intermediateSize,
    num_hidden_layers: cfg.numLayers,
    num_attention_heads: cfg.numHeads,
    num_key_value_heads: cfg.numHeads,
    partial_rotary_factor: cfg.rotaryDim / cfg.headDim,
    rope_theta: cfg.ropeTheta,
    layer_norm_eps: cfg.layerNormEps,
    max_position_embeddings: cfg.maxPositions,
    hidden_act: 'gelu_new',
    tie_word_embeddings: false,
    torch_dtype: 'float16',
    bos_token_id: 50256,
    eos_token_id: 50256,
  };
}
