// A pool of workers that share the wasm memory. The calling thread is thread 0: it posts an op
// through a small shared control block, does its own share, then waits for the others.
// Workers spin briefly, then sleep in Atomics.wait, between ops.
//
// Control block (Int32): [SEQ] op counter, [DONE] finished workers, [ERR] failed worker + 1,
// [OP], [READY] started workers, [DEAD] a worker that exited + 1, [ARGS..] op arguments,
// then an error message buffer (UTF-8).
//
// A worker that dies must not leave the caller waiting: the runtime adapter marks DEAD when
// the worker exits (Node's 'exit' event, a Web Worker's error), which the wait loop checks;
// and a worker that has not finished long after the caller finished its own share of the
// same op (50x, at least 0.75 s) is given up on too, for deaths no event reports.
import { EXIT, MAX_SLOTS, opName, runShare, type KernelExports } from './ops.js';

export const SEQ = 0;
export const DONE = 1;
export const ERR = 2;
export const OPC = 3;
export const READY = 4; // workers that have started
export const DEAD = 5; // a worker that exited, + 1
export const ARGS = 6;
export const NARGS = MAX_SLOTS;
export const MSG = ARGS + NARGS; // byte offset MSG*4
export const MSG_BYTES = 1024;
export const CONTROL_BYTES = MSG * 4 + MSG_BYTES;

/**
 * What a runtime adapter gives us: start a kernel worker (worker-loop.ts) with `data`. The
 * adapter calls markDead(data, why) when the worker exits or fails outside an op.
 */
export interface WorkerLike {
  terminate(): unknown;
}

/** Record in the control block that worker `data.ith` is gone (for adapters). */
export function markDead(data: WorkerData, why: string): void {
  const c = new Int32Array(data.control);
  if (Atomics.load(c, DEAD)) return;
  const bytes = new TextEncoder().encode(why).subarray(0, MSG_BYTES - 1);
  const msg = new Uint8Array(data.control, MSG * 4, MSG_BYTES);
  msg.fill(0);
  msg.set(bytes);
  Atomics.store(c, DEAD, data.ith + 1);
  Atomics.notify(c, DONE);
}
export type SpawnWorker = (data: WorkerData) => WorkerLike;

export interface WorkerData {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
  ith: number;
  nth: number;
}

/** A worker this much slower than the caller at its share of an op is given up on... */
const SLOWER = 50;
/**
 * ...but never before this many ms: a busy machine can keep a thread off its core for a good
 * part of a second, and giving up on a healthy worker fails every request.
 */
const MIN_WAIT_MS = 4000;

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

  /**
   * Run op `op` (an id of ops.ts) with its packed arguments on every thread, and return when all
   * are done (blocks the calling thread).
   */
  run(op: number, args: ArrayLike<number>): void {
    if (this.closed) throw new Error('the thread pool was closed');
    const c = this.ctrl;
    if (this.nth === 1) {
      runShare(this.kernels, op, Int32Array.from(args), 0, 1);
      return;
    }
    this.checkAlive();
    for (let i = 0; i < args.length; i++) c[ARGS + i] = args[i];
    c[OPC] = op;
    Atomics.store(c, DONE, 0);
    Atomics.add(c, SEQ, 1);
    Atomics.notify(c, SEQ);
    // our share; if it fails, still wait for the workers so no op is left half-done
    let failure: unknown = null;
    const t0 = performance.now();
    try {
      runShare(this.kernels, op, c.subarray(ARGS, ARGS + NARGS), 0, this.nth);
    } catch (e) {
      failure = e;
    }
    const ours = performance.now() - t0;
    const want = this.nth - 1;
    const limit = Math.max(MIN_WAIT_MS, SLOWER * ours);
    for (let spins = 0; ; spins++) {
      const done = Atomics.load(c, DONE);
      if (done >= want) break;
      if (spins > 2000) {
        Atomics.wait(c, DONE, done, 20);
        this.checkAlive();
        const waited = performance.now() - t0 - ours;
        if (waited > limit) {
          this.close();
          throw new Error(
            `a kernel worker did not finish ${opName(op)} ${Math.round(waited)} ms after this thread ` +
              `finished its share (${ours.toFixed(1)} ms): it died or is stuck; load the model again`,
          );
        }
      }
    }
    const err = Atomics.load(c, ERR);
    if (err) {
      const msg = this.message();
      this.close();
      throw new Error(`kernel worker ${err - 1} failed: ${msg}`);
    }
    if (failure) {
      this.close();
      throw failure;
    }
  }

  /** Throw (and close) if the adapter saw a worker exit. */
  private checkAlive(): void {
    const dead = Atomics.load(this.ctrl, DEAD);
    if (!dead) return;
    const msg = this.message();
    this.close();
    throw new Error(`kernel worker ${dead - 1} died (${msg}); load the model again`);
  }

  private message(): string {
    const bytes = new Uint8Array(this.ctrl.buffer, MSG * 4, MSG_BYTES).slice();
    const end = bytes.indexOf(0);
    return new TextDecoder().decode(bytes.subarray(0, end < 0 ? MSG_BYTES : end));
  }

  /** Stop the workers; the process can then exit by itself. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.ctrl, DEAD, Atomics.load(this.ctrl, DEAD) || -1); // our own terminate is no death
    if (this.nth > 1) {
      this.ctrl[OPC] = EXIT;
      Atomics.add(this.ctrl, SEQ, 1);
      Atomics.notify(this.ctrl, SEQ);
    }
    for (const w of this.workers) w.terminate();
  }
}
