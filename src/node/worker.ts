// Node entry of a kernel thread: worker_threads hand the start data over as workerData.
import { workerData } from 'node:worker_threads';
import type { WorkerData } from '../kernels/wasm/pool.js';
import { runWorker } from '../kernels/wasm/worker-loop.js';

await runWorker(workerData as WorkerData);
