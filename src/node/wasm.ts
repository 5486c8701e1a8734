// Node adapters for the wasm backend: read build/*.wasm from disk, start worker_threads.
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
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
