// A pool of workers that share the wasm memory. The calling thread is thread 0: it posts an op
// through a small shared control block, does its own share, then waits for the others.
// Workers spin briefly, then sleep in Atomics.wait, between ops.
//
// Control block (Int32): [SEQ] op counter, [DONE] finished workers, [ERR] failed worker + 1,
// [OP], [READY] started workers, [ARGS..] op arguments, then an error message buffer (UTF-8).
import { OP, runShare, type KernelExports } from './exports.js';

export const SEQ = 0;
export const DONE = 1;
export const ERR = 2;
export const OPC = 3;
export const READY = 4; // workers that have started
export const ARGS = 5;
export const NARGS = 16;
export const MSG = ARGS + NARGS; // byte offset MSG*4
export const MSG_BYTES = 1024;
export const CONTROL_BYTES = MSG * 4 + MSG_BYTES;

/** What a runtime adapter gives us: start a kernel worker (worker-loop.ts) with `data`. */
export interface WorkerLike {
  terminate(): unknown;
}
export type SpawnWorker = (data: WorkerData) => WorkerLike;

export interface WorkerData {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
  ith: number;
  nth: number;
}

/** How long the caller waits for a silent worker before calling it dead. */
const WORKER_TIMEOUT_MS = 120_000;

export class ThreadPool {
  readonly nth: number;
  private readonly ctrl: Int32Array;
  private readonly workers: WorkerLike[] = [];
  private closed = false;

  constructor(
    private readonly kernels: KernelExports,
    module: WebAssembly.Module,
    memory: WebAssembly.Memory,
    threads: number,
    spawn: SpawnWorker,
  ) {
    this.nth = threads;
    const control = new SharedArrayBuffer(CONTROL_BYTES);
    this.ctrl = new Int32Array(control);
    for (let ith = 1; ith < threads; ith++) {
      this.workers.push(spawn({ module, memory, control, ith, nth: threads }));
    }
  }

  /**
   * Wait (without blocking the event loop) until every worker has started; false if they do
   * not within `timeoutMs` (a runtime whose workers cannot take shared wasm memory).
   */
  async ready(timeoutMs = 10_000): Promise<boolean> {
    const start = Date.now();
    while (Atomics.load(this.ctrl, READY) < this.nth - 1) {
      if (Date.now() - start > timeoutMs) return false;
      await new Promise((r) => setTimeout(r, 5));
    }
    return true;
  }

  /** Run `op` on every thread and return when all are done (blocks the calling thread). */
  run(op: number, args: number[]): void {
    if (this.closed) throw new Error('the thread pool was closed');
    const c = this.ctrl;
    if (this.nth === 1) {
      runShare(this.kernels, op, Int32Array.from(args), 0, 1);
      return;
    }
    for (let i = 0; i < args.length; i++) c[ARGS + i] = args[i];
    c[OPC] = op;
    Atomics.store(c, DONE, 0);
    Atomics.add(c, SEQ, 1);
    Atomics.notify(c, SEQ);
    // our share; if it fails, still wait for the workers so no op is left half-done
    let failure: unknown = null;
    try {
      runShare(this.kernels, op, c.subarray(ARGS, ARGS + NARGS), 0, this.nth);
    } catch (e) {
      failure = e;
    }
    const want = this.nth - 1;
    const start = Date.now();
    for (let spins = 0; ; spins++) {
      const done = Atomics.load(c, DONE);
      if (done >= want) break;
      if (spins > 2000) {
        Atomics.wait(c, DONE, done, 50);
        if (Date.now() - start > WORKER_TIMEOUT_MS) {
          this.close();
          throw new Error(
            `a kernel worker did not finish op ${op} within ${WORKER_TIMEOUT_MS / 1000} s`,
          );
        }
      }
    }
    const err = Atomics.load(c, ERR);
    if (err) {
      const bytes = new Uint8Array(c.buffer, MSG * 4, MSG_BYTES).slice();
      const msg = new TextDecoder().decode(
        bytes.subarray(0, bytes.indexOf(0) < 0 ? MSG_BYTES : bytes.indexOf(0)),
      );
      this.close();
      throw new Error(`kernel worker ${err - 1} failed: ${msg}`);
    }
    if (failure) {
      this.close();
      throw failure;
    }
  }

  /** Stop the workers; the process can then exit by itself. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.nth > 1) {
      this.ctrl[OPC] = OP.exit;
      Atomics.add(this.ctrl, SEQ, 1);
      Atomics.notify(this.ctrl, SEQ);
    }
    for (const w of this.workers) w.terminate();
  }
}
