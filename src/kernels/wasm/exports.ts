// What assembly/index.ts exports: the kernels of the op table (ops.ts), with pointers as plain
// numbers (byte offsets into the shared memory), the probes the backend runs once, and the
// tiling constants the TypeScript side sizes scratch by.
import type { OpName } from './ops.js';

export type KernelExports = Readonly<Record<OpName, (...params: number[]) => unknown>> & {
  heap_base(): number;
  /** The module's own values of the constants below (a test checks they agree). */
  WIDE_ROWS: WebAssembly.Global;
  STREAM_ROWS: WebAssembly.Global;
  FEW_X_BYTES: WebAssembly.Global;
  /** out = relaxed_dot_i8x16_i7x16_add_s(a, b, c), all pointers; 0 without relaxed SIMD. */
  dot_probe(a: number, b: number, c: number, out: number): number;
  /** out (i16x8) = relaxed_dot_i8x16_i7x16_s(a, b); 0 without relaxed SIMD. */
  dot16_probe(a: number, b: number, out: number): number;
};

/** Rows a thread widens at a time in the f16 prefill GEMM (assembly/matmul.ts WIDE_ROWS). */
export const WIDE_ROWS = 8;

/** Rows in each of a quantized tile's 4 streams (assembly/matmul_q.ts STREAM_ROWS). */
export const STREAM_ROWS = 64;

/** Most scratch bytes a thread's few-token quantized matmul uses (assembly/matmul_q_dot.ts FEW_X_BYTES). */
export const FEW_X_BYTES = 8 << 10;

/** Bytes of each thread's matmul scratch for inputs of n: f16 rows widened, or q8/q4 activations. */
export const wideBytes = (n: number) => Math.max(4 * WIDE_ROWS * n, FEW_X_BYTES);
