// The functions assembly/index.ts exports, with pointers as plain numbers (byte offsets into
// the shared memory), and how a thread splits each of them.

/** Output rows [row0, row1) of W (d,n) @ x (T,n) + b; pointers are byte offsets. */
type Matmul = (
  out: number,
  x: number,
  w: number,
  bias: number,
  T: number,
  n: number,
  d: number,
  row0: number,
  row1: number,
) => void;
/** The same for q8/q4 weights: xq, xs, xsum the quantized activations, nr records a row. */
type MatmulQuantized = (
  out: number,
  xq: number,
  xs: number,
  xsum: number,
  w: number,
  bias: number,
  T: number,
  nr: number,
  d: number,
  row0: number,
  row1: number,
  scratch: number,
) => void;

export interface KernelExports {
  heap_base(): number;
  /** The module's own values of the constants below (a test checks they agree). */
  WIDE_ROWS: WebAssembly.Global;
  STREAM_ROWS: WebAssembly.Global;
  FEW_X_BYTES: WebAssembly.Global;
  matmul_f32: Matmul;
  /** x is the activations times 2^112; scratch WIDE_ROWS·n f32 of the thread's own (assembly/matmul.ts) */
  matmul_f16: (...args: [...Parameters<Matmul>, scratch: number]) => void;
  attention(
    out: number,
    q: number,
    k: number,
    v: number,
    T: number,
    pos0: number,
    H: number,
    Dh: number,
    maxPos: number,
    scale: number,
    scores: number,
    probs: number,
    h0: number,
    h1: number,
  ): void;
  gelu_new(x: number, from: number, to: number): void;
  layernorm(
    out: number,
    x: number,
    weight: number,
    bias: number,
    n: number,
    eps: number,
    t0: number,
    t1: number,
  ): void;
  stream_sum(ptr: number, bytes: number): number;
  matmul_q8: MatmulQuantized;
  matmul_q4: MatmulQuantized;
  /** The same with relaxed SIMD's int8 dot product (only where dot_probe is right). */
  matmul_q8_dot: MatmulQuantized;
  matmul_q4_dot: MatmulQuantized;
  /** matmul_q4_dot with the sums in int16 lanes: the same results, faster on some engines. */
  matmul_q4_dot16: MatmulQuantized;
  /** out = relaxed_dot_i8x16_i7x16_add_s(a, b, c), all pointers; 0 without relaxed SIMD. */
  dot_probe(a: number, b: number, c: number, out: number): number;
  /** out (i16x8) = relaxed_dot_i8x16_i7x16_s(a, b); 0 without relaxed SIMD. */
  dot16_probe(a: number, b: number, out: number): number;
  /** Activations to int8 blocks, tokens [t0, t1) (twin: src/kernels/ref/quant.ts quantize_act). */
  quantize_act(
    x: number,
    n: number,
    nbp: number,
    xq: number,
    xs: number,
    xsum: number,
    t0: number,
    t1: number,
  ): void;
}

/** Rows a thread widens at a time in the f16 prefill GEMM (assembly/matmul.ts WIDE_ROWS). */
export const WIDE_ROWS = 8;

/** Rows in each of a quantized tile's 4 streams (assembly/quant.ts STREAM_ROWS). */
export const STREAM_ROWS = 64;

/** Most scratch bytes a thread's few-token quantized matmul uses (assembly/quant.ts FEW_X_BYTES). */
export const FEW_X_BYTES = 8 << 10;

/** Bytes of each thread's matmul scratch for inputs of n: f16 rows widened, or q8/q4 activations. */
export const wideBytes = (n: number) => Math.max(4 * WIDE_ROWS * n, FEW_X_BYTES);

export const OP = {
  matmul_f32: 1,
  matmul_f16: 2,
  attention: 3,
  gelu_new: 4,
  stream_sum: 5,
  matmul_q8: 6,
  matmul_q4: 7,
  quantize_act: 8,
  matmul_q8_dot: 9,
  matmul_q4_dot: 10,
  layernorm: 11,
  matmul_q4_dot16: 12,
  exit: 99,
} as const;

/** Split [0, total) into nth parts whose bounds are multiples of `align`; part ith. */
export function split(total: number, ith: number, nth: number, align = 1): [number, number] {
  const chunk = Math.ceil(total / nth / align) * align;
  const a = Math.min(total, ith * chunk);
  return [a, Math.min(total, a + chunk)];
}

/**
 * Run thread ith's share of an op. args layout (Int32 slots; the f32 `scale` travels as bits):
 *   matmul: out x w bias T n d (f16: + scratch, scratchStride)
 *   matmul_q8/q4: out xq xs xsum w bias T nr d scratch scratchStride
 *   attention: out q k v T pos0 H Dh maxPos scaleBits scores scoresStride probs
 *   gelu:   x len                      stream_sum: ptr bytes out (one f32 per thread)
 *   quantize_act: x n nbp xq xs xsum T       layernorm: out x weight bias n epsBits T
 */
export function runShare(
  k: KernelExports,
  op: number,
  a: Int32Array,
  ith: number,
  nth: number,
): void {
  switch (op) {
    case OP.matmul_f32: {
      const [r0, r1] = split(a[6], ith, nth, 2);
      if (r0 < r1) k.matmul_f32(a[0], a[1], a[2], a[3], a[4], a[5], a[6], r0, r1);
      return;
    }
    case OP.matmul_f16: {
      const [r0, r1] = split(a[6], ith, nth, 2);
      const scratch = a[7] + ith * a[8];
      if (r0 < r1) k.matmul_f16(a[0], a[1], a[2], a[3], a[4], a[5], a[6], r0, r1, scratch);
      return;
    }
    case OP.matmul_q8:
    case OP.matmul_q4:
    case OP.matmul_q8_dot:
    case OP.matmul_q4_dot:
    case OP.matmul_q4_dot16: {
      // whole tiles of 4 streams (assembly/quant.ts)
      const [r0, r1] = split(a[8], ith, nth, 4 * STREAM_ROWS);
      const f = {
        [OP.matmul_q8]: k.matmul_q8,
        [OP.matmul_q4]: k.matmul_q4,
        [OP.matmul_q8_dot]: k.matmul_q8_dot,
        [OP.matmul_q4_dot]: k.matmul_q4_dot,
        [OP.matmul_q4_dot16]: k.matmul_q4_dot16,
      }[op];
      const scratch = a[9] + ith * a[10];
      if (r0 < r1) f(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], r0, r1, scratch);
      return;
    }
    case OP.attention: {
      const [h0, h1] = split(a[6], ith, nth);
      const scale = new Float32Array(new Int32Array([a[9]]).buffer)[0];
      const scores = a[10] + ith * a[11];
      if (h0 < h1)
        k.attention(
          a[0],
          a[1],
          a[2],
          a[3],
          a[4],
          a[5],
          a[6],
          a[7],
          a[8],
          scale,
          scores,
          a[12],
          h0,
          h1,
        );
      return;
    }
    case OP.gelu_new: {
      const [i0, i1] = split(a[1], ith, nth, 4);
      if (i0 < i1) k.gelu_new(a[0], i0, i1);
      return;
    }
    case OP.layernorm: {
      const [t0, t1] = split(a[6], ith, nth);
      const eps = new Float32Array(new Int32Array([a[5]]).buffer)[0];
      if (t0 < t1) k.layernorm(a[0], a[1], a[2], a[3], a[4], eps, t0, t1);
      return;
    }
    case OP.quantize_act: {
      const [t0, t1] = split(a[6], ith, nth);
      if (t0 < t1) k.quantize_act(a[0], a[1], a[2], a[3], a[4], a[5], t0, t1);
      return;
    }
    case OP.stream_sum: {
      const [b0, b1] = split(a[1], ith, nth, 64);
      const sum = b0 < b1 ? k.stream_sum(a[0] + b0, b1 - b0) : 0;
      new Float32Array(new Int32Array([0]).buffer)[0] = sum; // keep the read alive
      return;
    }
    default:
      throw new Error(`unknown kernel op ${op}`);
  }
}
