// The wasm backend's arena: one WebAssembly.Memory, handed out from the bottom up in aligned
// blocks (WasmKernels.alloc). The memory plan (src/memory.ts) counts by the same rules.

/** The address space of wasm32: one WebAssembly.Memory holds everything. */
export const WASM32_BYTES = 4 * 2 ** 30;

/** Every allocation starts on a 64-byte boundary (a cache line; the SIMD kernels' alignment). */
export const ALIGN = 64;

/** Bytes an allocation of `bytes` takes, rounded up to ALIGN. */
export const aligned = (bytes: number) => Math.ceil(bytes / ALIGN) * ALIGN;

/** "2.71 GiB", or "512.0 MiB" below a GiB (where two decimals of GiB say nothing) */
export function formatBytes(n: number): string {
  return n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`;
}
