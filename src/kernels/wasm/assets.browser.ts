// The browser bundle's twin of assets.ts: the .wasm files and worker.js sit beside the bundle
// (build/browser/), so the package works served from any path or a CDN, and inside a bundler.

export const WASM_FILES = {
  'kernels.simd.wasm': () => new URL('./kernels.simd.wasm', import.meta.url),
  'kernels.relaxed.wasm': () => new URL('./kernels.relaxed.wasm', import.meta.url),
  'kernels.simd-threads.wasm': () => new URL('./kernels.simd-threads.wasm', import.meta.url),
  'kernels.relaxed-threads.wasm': () => new URL('./kernels.relaxed-threads.wasm', import.meta.url),
} as const;

export const workerUrl = () => new URL('./worker.js', import.meta.url);
