// Node adapters for the wasm backend: read build/*.wasm from disk, start worker_threads.
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';
import type { SpawnWorker } from '../kernels/wasm/index.js';

export const readWasm = async (file: string): Promise<Uint8Array<ArrayBuffer>> =>
  new Uint8Array(await readFile(new URL(`../../../build/${file}`, import.meta.url)));

export const spawnWorker: SpawnWorker = (data) => {
  const w = new Worker(new URL('./worker.js', import.meta.url), { workerData: data });
  w.unref(); // never keeps the process alive
  return w;
};

export const defaultThreads = (): number => availableParallelism();

/**
 * Node 20 and 21 (V8 11.3-11.8) implement relaxed SIMD behind a flag; from Node 22 it is on by
 * default. Turning the flag on lets feature detection pick the fused multiply-add build there
 * too (measured on phi-1.5 shapes: f16 decode 5-10% faster). It enables that wasm feature and
 * nothing else; the kernels' `flavor: 'simd'` option still forces the SIMD128 build.
 */
export function enableRelaxedSimd(): void {
  const major = Number(process.versions.node.split('.')[0]);
  if (major === 20 || major === 21) setFlagsFromString('--experimental-wasm-relaxed-simd');
}
