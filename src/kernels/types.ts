// The kernel contract: every numeric hot spot of the model goes through this interface,
// so the readable TypeScript kernels (src/kernels/ref) and the WebAssembly SIMD kernels
// (src/kernels/wasm) are interchangeable. All arrays are row-major.
//
// Shapes use: T = tokens in this step, n = input features, d = output features,
// H = heads, Dh = head dim, R = rotary dims, S = cache stride (= H*Dh).
import type { QuantizedWeight } from '../formats/quant.js';

export type { QuantizedWeight };

/**
 * A weight matrix as stored in memory: f32, or IEEE half floats kept as raw u16 bits.
 * f16 weights may carry a power-of-two scale: value = f16(bits) · 2^log2Scale (see
 * Kernels.prepare; a checkpoint's weights have none).
 */
export type Weight =
  | { readonly dtype: 'f32'; readonly data: Float32Array }
  | { readonly dtype: 'f16'; readonly data: Uint16Array; readonly log2Scale?: number }
  | QuantizedWeight;

export type WeightDType = Weight['dtype'];

export interface Kernels {
  readonly name: string;

  /** Bytes allocF32/allocU16/allocU8 can still hand out; absent: no fixed limit (plain JS). */
  readonly freeBytes?: number;

  /** Release threads or other resources (optional). */
  close?(): void;

  /** Buffers the kernels read and write. The wasm backend hands out views of its memory. */
  allocF32(length: number): Float32Array;
  allocU16(length: number): Uint16Array;
  allocU8(length: number): Uint8Array;

  /**
   * Optionally re-encode a linear layer's weight once after loading, exactly (the same
   * values), in a form this backend computes with faster. Absent: weights are used as loaded.
   */
  prepare?(w: Weight): Weight;

  /** W (d,n) @ x (T,n) + b (d,) -> out (T,d).  Linear layer y = x Wᵀ + b. */
  matmul(
    out: Float32Array,
    x: Float32Array,
    w: Weight,
    bias: Float32Array | null,
    T: number,
    n: number,
    d: number,
  ): void;

  /** out (T,n) = (x - mean) / sqrt(var + eps) * weight + bias, per row of x (T,n). */
  layernorm(
    out: Float32Array,
    x: Float32Array,
    weight: Float32Array,
    bias: Float32Array,
    T: number,
    n: number,
    eps: number,
  ): void;

  /**
   * out (T, d) += scale · u (T, r) · v (r, d): a LoRA term's up-projection (u = x·Aᵀ, v = Bᵀ) and
   * the merge of one into a weight (out = W, u = B, v = A). Each output's sum does not depend
   * on how the work is split.
   */
  lora_add(
    out: Float32Array,
    u: Float32Array,
    v: Float32Array,
    scale: number,
    T: number,
    r: number,
    d: number,
  ): void;

  /** x (len,) <- gelu_new(x) = 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))), in place. */
  gelu_new(x: Float32Array, len: number): void;

  /**
   * Partial NeoX rotary, in place, on x (T, H*Dh) at positions pos0..pos0+T-1: in each head
   * the pairs (i, i + R/2) for i < R/2 are rotated by angle pos·θ_i; dims R..Dh-1 pass through.
   * cos, sin: (maxPos, R/2) tables.
   */
  rotary(
    x: Float32Array,
    T: number,
    pos0: number,
    H: number,
    Dh: number,
    R: number,
    cos: Float32Array,
    sin: Float32Array,
  ): void;

  /**
   * Causal multi-head attention of T queries at positions pos0..pos0+T-1 against the cache:
   * out (T, H*Dh) = softmax(q kᵀ · scale, keys 0..pos) v, per head.
   * q (T, H*Dh); kCache, vCache (H, maxPos, Dh) holding positions 0..pos0+T-1.
   * probs: null, or (H, T, pos0+T) to receive the softmax probabilities (0 above the diagonal).
   */
  attention(
    out: Float32Array,
    q: Float32Array,
    kCache: Float32Array,
    vCache: Float32Array,
    T: number,
    pos0: number,
    H: number,
    Dh: number,
    maxPos: number,
    scale: number,
    probs: Float32Array | null,
  ): void;

  /**
   * Training: dst (n, m) <- rows [o0, o0 + m) of W (.., n) transposed, for a frozen layer's
   * input gradient dy·W. f32 stays f32 and f16 keeps its bits (dst a Uint16Array; W's
   * log2Scale applies to it); q8 and q4 widen to f32, exactly.
   */
  transpose_rows(
    dst: Float32Array | Uint16Array,
    w: Weight,
    n: number,
    o0: number,
    m: number,
  ): void;

  /**
   * Training: dq, dk, dv (T, H*Dh) <- the gradients of out = attention(q, k, v) over one
   * sequence at positions 0..T-1, given dOut (T, H*Dh). q (T, H*Dh) as the forward used it;
   * kH, vH (H, T, Dh); probs (H, T, T) the forward's softmax. Each head's sums do not depend on
   * how the heads are split.
   */
  /**
   * Training: dx (T, n) += the gradient through layernorm(x (T, n)) of dy (T, n), weight and
   * bias frozen (src/train/layernorm.ts).
   */
  layernorm_backward(
    dx: Float32Array,
    dy: Float32Array,
    x: Float32Array,
    weight: Float32Array,
    T: number,
    n: number,
    eps: number,
  ): void;

  /** Training: dx (len,) <- dy (len,) · gelu_new'(x), x the forward's input; dx may be dy. */
  gelu_backward(dx: Float32Array, dy: Float32Array, x: Float32Array, len: number): void;

  attention_backward(
    dq: Float32Array,
    dk: Float32Array,
    dv: Float32Array,
    dOut: Float32Array,
    q: Float32Array,
    kH: Float32Array,
    vH: Float32Array,
    probs: Float32Array,
    T: number,
    H: number,
    Dh: number,
    scale: number,
  ): void;
}
