// Node adapters for the wasm backend: read build/*.wasm from disk, start worker_threads.
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { SpawnWorker } from '../kernels/wasm/index.js';
import { markDead } from '../kernels/wasm/pool.js';

export const readWasm = async (file: string): Promise<Uint8Array<ArrayBuffer>> =>
  new Uint8Array(await readFile(new URL(`../../../build/${file}`, import.meta.url)));

export const spawnWorker: SpawnWorker = (data) => {
  const w = new Worker(new URL('./worker.js', import.meta.url), { workerData: data });
  w.unref(); // never keeps the process alive
  // a worker that goes away must not leave the pool waiting for it
  w.on('error', (e) => markDead(data, `error: ${e.message}`));
  w.on('exit', (code) => markDead(data, `exited with code ${code}`));
  return w;
};

export const defaultThreads = (): number => availableParallelism();
