// The body of a kernel worker, whatever started it (worker.ts for Web Workers,
// src/node/worker.ts for Node's worker_threads): instantiate the kernels on the shared memory,
// then loop: wait for the next op, run its share, count itself done. Errors are reported
// through the control block (the caller is blocked in Atomics.wait and cannot get messages).
import { EXIT, runShare, type KernelExports } from './ops.js';
import {
  ARGS,
  DONE,
  ERR,
  MSG,
  MSG_BYTES,
  NARGS,
  OPC,
  READY,
  SEQ,
  type WorkerData,
} from './pool.js';

export async function runWorker(data: WorkerData): Promise<void> {
  const { module, memory, control, ith, nth } = data;
  const c = new Int32Array(control);
  const fail = (e: unknown) => {
    const bytes = new TextEncoder()
      .encode(String((e as Error)?.stack ?? e))
      .subarray(0, MSG_BYTES - 1);
    new Uint8Array(control, MSG * 4, MSG_BYTES).set(bytes);
    Atomics.store(c, ERR, ith + 1);
  };
  let k: KernelExports | null = null;
  try {
    k = (await WebAssembly.instantiate(module, { env: { memory } }))
      .exports as unknown as KernelExports;
  } catch (e) {
    fail(e); // reported with the first op, which then fails instead of hanging
  }
  Atomics.add(c, READY, 1);
  Atomics.notify(c, READY);
  // SEQ starts at 0 and the pool may have posted op 1 while we were instantiating
  let seen = 0;
  for (;;) {
    // spin a little (the next op usually follows within microseconds), then sleep
    let spins = 0;
    while (Atomics.load(c, SEQ) === seen) {
      if (++spins > 20000) Atomics.wait(c, SEQ, seen);
    }
    seen = Atomics.load(c, SEQ);
    const op = c[OPC];
    if (op === EXIT) return;
    try {
      if (k) runShare(k, op, c.subarray(ARGS, ARGS + NARGS), ith, nth);
    } catch (e) {
      fail(e);
    }
    Atomics.add(c, DONE, 1);
    Atomics.notify(c, DONE);
  }
}
