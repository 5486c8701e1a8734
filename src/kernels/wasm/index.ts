// The WebAssembly SIMD backend. One WebAssembly.Memory holds the weights, KV cache and
// activations: allocF32/allocU16 hand out views of it (a bump allocator, nothing is freed),
// and every kernel call passes those views' byte offsets as pointers.
//
// Two builds of assembly/ exist: SIMD128 (everywhere) and relaxed SIMD (fused multiply-add;
// Node 22+, Chrome 114+), each with shared memory for threads or without. The relaxed one is
// used when the runtime validates it. Threads need SharedArrayBuffer and a way to start
// workers; without them the backend runs on the calling thread alone.
import { f16Stats, scaleF16InPlace } from '../ref/f16.js';
import { BLOCK, RECORD_BLOCKS, recordsOf } from '../ref/quant.js';
import { rotary } from '../ref/rotary.js';
import { layernorm } from '../ref/layernorm.js';
import type { Kernels, Weight } from '../types.js';
import { OP, WIDE_ROWS, type KernelExports } from './exports.js';
import { ThreadPool, type SpawnWorker } from './pool.js';

export type { SpawnWorker, WorkerData, WorkerLike } from './pool.js';

export type WasmFlavor = 'simd' | 'relaxed';

export interface WasmKernelsOptions {
  /** Threads including the calling one (default 1). Needs SharedArrayBuffer and spawnWorker. */
  threads?: number;
  /** Start workers (Node: worker_threads; default: the Web Worker API when it exists). */
  spawnWorker?: SpawnWorker;
  /** Read a file of build/ (default: fetch relative to this module). */
  readWasm?: (file: string) => Promise<Uint8Array<ArrayBuffer>>;
  /** Force a build instead of feature detection. */
  flavor?: WasmFlavor;
  /** Bytes to reserve up front (the loader passes the model's size). */
  reserveBytes?: number;
}

const PAGE = 65536;
const MAX_BYTES = 65536 * PAGE; // wasm32: 4 GiB
const ALIGN = 64;

/** 2^112: the scale that the f16 widening trick moves onto the activations (assembly/matmul.ts). */
export const F16_X_SCALE = 2 ** 112;

async function defaultReadWasm(file: string): Promise<Uint8Array<ArrayBuffer>> {
  const url = new URL(`../../../../build/${file}`, import.meta.url);
  let r: Response;
  try {
    r = await fetch(url);
  } catch (e) {
    // Node's fetch does not read file: URLs (Deno's, Bun's and browsers' do)
    throw new Error(
      `cannot fetch ${url} (${(e as Error).message}); in Node use loadPhi from 'phi-wasm/node', or pass wasm.readWasm`,
    );
  }
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

function defaultSpawn(): SpawnWorker | undefined {
  const W = (globalThis as { Worker?: new (url: URL, o: object) => Worker }).Worker;
  if (!W) return undefined;
  return (data) => {
    const w = new W(new URL('./worker.js', import.meta.url), { type: 'module' });
    w.postMessage(data);
    return w;
  };
}

export function formatBytes(n: number): string {
  return `${(n / 2 ** 30).toFixed(2)} GiB`;
}

export class WasmKernels implements Kernels {
  readonly name: string;
  private top: number;
  private readonly buffers = new WeakSet<ArrayBufferLike>();
  private xs: Float32Array = new Float32Array(0);
  private xq: Int16Array = new Int16Array(0);
  private xqScales: Float32Array = new Float32Array(0);
  private xqSums: Int32Array = new Int32Array(0);
  private wide: Float32Array = new Float32Array(0);
  private scores: Float32Array = new Float32Array(0);

  constructor(
    readonly exports: KernelExports,
    readonly memory: WebAssembly.Memory,
    readonly flavor: WasmFlavor,
    readonly pool: ThreadPool,
    readonly shared: boolean,
  ) {
    this.top = Math.ceil(exports.heap_base() / ALIGN) * ALIGN;
    this.buffers.add(memory.buffer);
    this.name = `wasm-${flavor}${pool.nth > 1 ? ` x${pool.nth} threads` : ''}`;
  }

  get threads(): number {
    return this.pool.nth;
  }

  /** Bytes handed out so far. */
  get usedBytes(): number {
    return this.top;
  }

  private alloc(bytes: number): number {
    const ptr = this.top;
    const end = ptr + Math.ceil(bytes / ALIGN) * ALIGN;
    if (end > MAX_BYTES) {
      throw new Error(
        `out of WebAssembly memory: needs more than ${formatBytes(MAX_BYTES)}, the wasm32 limit`,
      );
    }
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      if (!this.shared) {
        // growing an unshared memory detaches every view handed out so far
        throw new Error(
          `wasm memory reservation too small (${formatBytes(have)}, need ${formatBytes(end)})`,
        );
      }
      this.memory.grow(Math.ceil((end - have) / PAGE));
      this.buffers.add(this.memory.buffer);
    }
    this.top = end;
    return ptr;
  }

  // alloc() first: it may grow the memory, and only the buffer after that covers the new range
  allocF32(n: number): Float32Array {
    const ptr = this.alloc(n * 4);
    return new Float32Array(this.memory.buffer, ptr, n);
  }

  allocU16(n: number): Uint16Array {
    const ptr = this.alloc(n * 2);
    return new Uint16Array(this.memory.buffer, ptr, n);
  }

  allocU8(n: number): Uint8Array {
    const ptr = this.alloc(n);
    return new Uint8Array(this.memory.buffer, ptr, n);
  }

  /** Byte offset of a view in our memory (throws for arrays the backend did not allocate). */
  private ptr(a: ArrayBufferView): number {
    if (!this.buffers.has(a.buffer)) {
      throw new Error('wasm kernels need arrays allocated by the wasm backend (allocF32/allocU16)');
    }
    return a.byteOffset;
  }

  /**
   * f16 subnormals widen to f32 denormals (see assembly/matmul.ts), and x86 multiplies a
   * denormal about a hundred times slower than a normal number: with trained weights (about
   * 0.2% subnormals) that costs a quarter of the decode speed. Scaling the whole matrix by 2^k
   * turns every subnormal into a normal f16, exactly; 2^-k then rides along with the 2^112 on
   * the activations. k <= 10 is enough, and is limited so the largest weight cannot overflow.
   */
  prepare(w: Weight): Weight {
    if (w.dtype !== 'f16' || w.log2Scale) return w;
    const { maxExponent, subnormals } = f16Stats(w.data);
    const k = Math.min(10, 30 - maxExponent);
    if (!subnormals || k <= 0) return w;
    scaleF16InPlace(w.data, k);
    return { dtype: 'f16', data: w.data, log2Scale: -k };
  }

  matmul(
    out: Float32Array,
    x: Float32Array,
    w: Weight,
    bias: Float32Array | null,
    T: number,
    n: number,
    d: number,
  ): void {
    const b = bias ? this.ptr(bias) : 0;
    if (w.dtype === 'q8' || w.dtype === 'q4') {
      // activations to int8 blocks (kept as int16 for the SIMD dot product), on this thread
      const nr = recordsOf(n);
      const blocks = T * nr * RECORD_BLOCKS;
      if (this.xqScales.length < blocks) {
        const bytes = this.allocU8(blocks * BLOCK * 2);
        this.xq = new Int16Array(bytes.buffer, bytes.byteOffset, blocks * BLOCK);
        this.xqScales = this.allocF32(blocks);
        const sums = this.allocF32(blocks);
        this.xqSums = new Int32Array(sums.buffer, sums.byteOffset, blocks);
      }
      // (the twin's arithmetic exactly, in wasm; tokens split over the threads for prefill)
      const args: [number, number, number, number, number, number] = [
        this.ptr(x),
        n,
        nr * RECORD_BLOCKS,
        this.ptr(this.xq),
        this.ptr(this.xqScales),
        this.ptr(this.xqSums),
      ];
      // one token: on this thread, without waking the workers for nothing
      if (T === 1) this.exports.quantize_act(...args, 0, 1);
      else this.pool.run(OP.quantize_act, [...args, T]);
      const op = w.dtype === 'q8' ? OP.matmul_q8 : OP.matmul_q4;
      this.pool.run(op, [
        this.ptr(out),
        this.ptr(this.xq),
        this.ptr(this.xqScales),
        this.ptr(this.xqSums),
        this.ptr(w.data),
        b,
        T,
        nr,
        d,
      ]);
      return;
    }
    if (w.dtype === 'f32') {
      this.pool.run(OP.matmul_f32, [this.ptr(out), this.ptr(x), this.ptr(w.data), b, T, n, d]);
      return;
    }
    if (this.xs.length < T * n) this.xs = this.allocF32(T * n);
    const xs = this.xs;
    const scale = F16_X_SCALE * 2 ** (w.log2Scale ?? 0);
    for (let i = 0; i < T * n; i++) xs[i] = x[i] * scale;
    // prefill widens rows into a scratch of each thread's own (assembly/matmul.ts)
    const stride = T >= 4 ? WIDE_ROWS * n : 0;
    if (this.wide.length < this.pool.nth * stride)
      this.wide = this.allocF32(this.pool.nth * stride);
    const scratch = stride ? this.ptr(this.wide) : 0;
    this.pool.run(OP.matmul_f16, [
      this.ptr(out),
      this.ptr(xs),
      this.ptr(w.data),
      b,
      T,
      n,
      d,
      scratch,
      stride * 4,
    ]);
  }

  attention(
    out: Float32Array,
    q: Float32Array,
    kCache: Float32Array,
    vCache: Float32Array,
    T: number,
    pos0: number,
    H: number,
    Dh: number,
    scale: number,
    probs: Float32Array | null,
  ): void {
    // one scores row per thread
    const stride = pos0 + T;
    if (this.scores.length < stride * this.threads)
      this.scores = this.allocF32(stride * this.threads);
    const scaleBits = new Int32Array(new Float32Array([scale]).buffer)[0];
    this.pool.run(OP.attention, [
      this.ptr(out),
      this.ptr(q),
      this.ptr(kCache),
      this.ptr(vCache),
      T,
      pos0,
      H,
      Dh,
      scaleBits,
      this.ptr(this.scores),
      stride * 4,
      probs ? this.ptr(probs) : 0,
    ]);
  }

  gelu_new(x: Float32Array, len: number): void {
    this.pool.run(OP.gelu_new, [this.ptr(x), len]);
  }

  // Cheap per token (O(D)): the TypeScript kernels are fast enough; measured, see README.
  layernorm = layernorm;
  rotary = rotary;

  /**
   * Memory-read bandwidth from WebAssembly, all threads streaming one buffer of `bytes`:
   * best of `reps` passes, in bytes per second. For the bench's roofline.
   */
  readBandwidth(buffer: Float32Array, reps = 5): number {
    const bytes = buffer.byteLength;
    this.pool.run(OP.stream_sum, [this.ptr(buffer), bytes]); // touch every page first
    let best = Infinity;
    for (let r = 0; r < reps; r++) {
      const t = performance.now();
      this.pool.run(OP.stream_sum, [this.ptr(buffer), bytes]);
      best = Math.min(best, performance.now() - t);
    }
    return bytes / (best / 1000);
  }

  close(): void {
    this.pool.close();
  }
}

export async function createWasmKernels(o: WasmKernelsOptions = {}): Promise<WasmKernels> {
  const readWasm = o.readWasm ?? defaultReadWasm;
  const spawn = o.spawnWorker ?? defaultSpawn();
  let threads = o.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1)
    throw new Error(`threads must be an integer >= 1, got ${threads}`);
  const canShare =
    typeof SharedArrayBuffer !== 'undefined' &&
    (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated !== false;
  if (threads > 1 && (!canShare || !spawn)) {
    console.warn(
      `phi-wasm: running on one thread, not ${threads}: ` +
        (!canShare
          ? 'no SharedArrayBuffer (a browser page needs the COOP/COEP headers, see README)'
          : 'no way to start workers here'),
    );
    threads = 1;
  }
  const shared = canShare; // shared memory can grow without detaching views, so use it when we can

  const reserve = o.reserveBytes ?? 0;
  if (reserve > MAX_BYTES - PAGE) {
    throw new Error(
      `needs ${formatBytes(reserve)} of WebAssembly memory, more than the 4 GiB a wasm32 module can address`,
    );
  }
  let flavor: WasmFlavor = o.flavor ?? 'relaxed';
  const suffix = shared ? '-threads' : '';
  let bytes = await readWasm(`kernels.${flavor}${suffix}.wasm`);
  if (flavor === 'relaxed' && !o.flavor && !WebAssembly.validate(bytes)) {
    flavor = 'simd';
    bytes = await readWasm(`kernels.simd${suffix}.wasm`);
  }
  const module = await WebAssembly.compile(bytes);
  const initial = Math.max(2, Math.ceil((reserve + 2 * PAGE) / PAGE));
  const memory = new WebAssembly.Memory({
    initial,
    maximum: 65536,
    shared,
  } as WebAssembly.MemoryDescriptor);
  const instance = await WebAssembly.instantiate(module, { env: { memory } });
  const exports = instance.exports as unknown as KernelExports;
  let pool = new ThreadPool(exports, module, memory, threads, spawn!);
  if (!(await pool.ready())) {
    pool.close();
    console.warn(
      `phi-wasm: the ${threads - 1} worker threads did not start in this runtime; running on one thread`,
    );
    pool = new ThreadPool(exports, module, memory, 1, spawn!);
  }
  return new WasmKernels(exports, memory, flavor, pool, shared);
}
