// Where the wasm backend finds its files when the caller gives no readWasm / spawnWorker: beside
// this module, in the package's layout (dist/src/kernels/wasm/ -> build/*.wasm). Each URL is
// spelled out as `new URL('literal', import.meta.url)`, the form bundlers (Vite, webpack,
// Parcel) recognise and copy. The browser bundle swaps this file for assets.browser.ts, whose
// files sit beside the bundle (scripts/build-browser.mjs).

export const WASM_FILES = {
  'kernels.simd.wasm': () => new URL('../../../../build/kernels.simd.wasm', import.meta.url),
  'kernels.relaxed.wasm': () => new URL('../../../../build/kernels.relaxed.wasm', import.meta.url),
  'kernels.simd-threads.wasm': () =>
    new URL('../../../../build/kernels.simd-threads.wasm', import.meta.url),
  'kernels.relaxed-threads.wasm': () =>
    new URL('../../../../build/kernels.relaxed-threads.wasm', import.meta.url),
} as const;

export const workerUrl = () => new URL('./worker.js', import.meta.url);
