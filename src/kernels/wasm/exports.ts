// The tiling constants of assembly/ that the TypeScript side sizes scratch and splits rows by
// (a test checks them against the module's own exports).
/** Rows a thread widens at a time in the f16 prefill GEMM (assembly/matmul.ts WIDE_ROWS). */
export const WIDE_ROWS = 8;

/** Rows in each of a quantized tile's 4 streams (assembly/matmul_q.ts STREAM_ROWS). */
export const STREAM_ROWS = 64;

/** Most scratch bytes a thread's few-token quantized matmul uses (assembly/matmul_q_dot.ts FEW_X_BYTES). */
export const FEW_X_BYTES = 8 << 10;

/** Bytes of each thread's matmul scratch for inputs of n: f16 rows widened, or q8/q4 activations. */
export const wideBytes = (n: number) => Math.max(4 * WIDE_ROWS * n, FEW_X_BYTES);
