// Web Worker entry of a kernel thread (browsers, Deno, Bun): the pool posts the start data.
// Listen at once, so the message cannot arrive unheard.
import type { WorkerData } from './pool.js';
import { runWorker } from './worker-loop.js';

const scope = globalThis as unknown as { onmessage: unknown; close?: () => void };
scope.onmessage = (e: MessageEvent<WorkerData>) => {
  runWorker(e.data).then(() => scope.close?.());
};
