// The WebAssembly SIMD backend. One WebAssembly.Memory holds the weights, KV cache and
// activations: allocF32/allocU16 hand out views of it (a bump allocator, nothing is freed),
// and every kernel call passes those views' byte offsets as pointers.
//
// Two builds of assembly/ exist: SIMD128 (everywhere) and relaxed SIMD (fused multiply-add;
// Node 22+, Chrome 114+), each with shared memory for threads or without. The relaxed one is
// used when the runtime validates it. Threads need SharedArrayBuffer and a way to start
// workers; without them the backend runs on the calling thread alone.
import { f16Stats, scaleF16InPlace } from '../../formats/f16.js';
import { activationBlocks, recordsOf } from '../../formats/quant.js';
import { aligned, formatBytes, WASM32_BYTES } from './arena.js';
import { rotary } from '../ref/rotary.js';
import type { Kernels, Weight } from '../types.js';
import { WASM_FILES, workerUrl } from './assets.js';
import {
  MAX_SLOTS,
  OP,
  pack,
  runShare,
  type OpArgs,
  type OpName,
  type KernelExports,
} from './ops.js';
import { KernelPick } from './pick.js';
import { markDead, ThreadPool, type SpawnWorker } from './pool.js';
import { scratchLayout, threadScratchBytes, type ScratchSizes } from './scratch.js';

export { scratchLayout, type ScratchSizes };

export type { SpawnWorker, WorkerData, WorkerLike } from './pool.js';

export type WasmFlavor = 'simd' | 'relaxed';

/** The quantized matmul kernels, which share one argument list. */
type QuantizedOp =
  'matmul_q8' | 'matmul_q4' | 'matmul_q8_dot' | 'matmul_q4_dot' | 'matmul_q4_dot16';

export interface WasmKernelsOptions {
  /** Threads including the calling one (default 1). Needs SharedArrayBuffer and spawnWorker. */
  threads?: number;
  /** Start workers (Node: worker_threads; default: the Web Worker API when it exists). */
  spawnWorker?: SpawnWorker;
  /** Read a file of build/ (default: fetch it from baseUrl, else relative to this module). */
  readWasm?: (file: string) => Promise<Uint8Array<ArrayBuffer>>;
  /**
   * Where the default readWasm and spawnWorker find the .wasm files and worker.js, for a host
   * that serves them apart from the module (e.g. '/static/phi-wasm/'). Default: beside it.
   */
  baseUrl?: string | URL;
  /** Force a build instead of feature detection. */
  flavor?: WasmFlavor;
  /** Bytes to reserve up front (the loader passes the model's size). */
  reserveBytes?: number;
  /** Allocate the scratch for steps of this size at once (the loader does; else on first use). */
  scratch?: ScratchSizes;
  /**
   * Let the quantized matmuls use relaxed SIMD's int8 dot product where the start-up
   * self-test passes (default true); false keeps them on the SIMD128 integer path.
   */
  int8Dot?: boolean;
  /**
   * q4's integer sums with the int8 dot: 'i32' lanes, 'i16' lanes (matmul_q4_dot16), or 'auto'
   * (default): per shape, whichever the first calls time faster (./pick.ts). Same results.
   */
  q4Sums?: 'auto' | 'i32' | 'i16';
}

const PAGE = 65536;
const MAX_BYTES = WASM32_BYTES;

/** 2^112: the scale that the f16 widening trick moves onto the activations (assembly/matmul.ts). */
const F16_X_SCALE = 2 ** 112;

/** Where `file` (a name of build/) is fetched from: `baseUrl`, else beside this module. */
function wasmFileUrl(file: string, baseUrl?: string | URL): URL {
  if (baseUrl !== undefined) {
    const page = (globalThis as { location?: { href: string } }).location?.href;
    const base = String(baseUrl).endsWith('/') ? String(baseUrl) : `${baseUrl}/`; // a folder
    return new URL(file, new URL(base, page));
  }
  const at = WASM_FILES[file as keyof typeof WASM_FILES];
  if (!at) throw new Error(`no wasm file ${file}`);
  return at();
}

const fetchWasm =
  (baseUrl?: string | URL) =>
  async (file: string): Promise<Uint8Array<ArrayBuffer>> => {
    const url = wasmFileUrl(file, baseUrl);
    let r: Response;
    try {
      r = await fetch(url);
    } catch (e) {
      // Node's fetch does not read file: URLs (Deno's, Bun's and browsers' do)
      throw new Error(
        `cannot fetch ${url} (${(e as Error).message}); in Node use loadPhi from 'phi-wasm/node', or pass wasm.readWasm`,
      );
    }
    if (!r.ok)
      throw new Error(
        `${url}: HTTP ${r.status}; if the package's files are served elsewhere, pass wasm: { baseUrl } (README: the browser)`,
      );
    return new Uint8Array(await r.arrayBuffer());
  };

function defaultSpawn(baseUrl?: string | URL): SpawnWorker | undefined {
  const W = (globalThis as { Worker?: new (url: URL, o: object) => Worker }).Worker;
  if (!W) return undefined;
  return (data) => {
    const w = new W(baseUrl !== undefined ? wasmFileUrl('worker.js', baseUrl) : workerUrl(), {
      type: 'module',
    });
    w.onerror = (e: ErrorEvent) => markDead(data, `error: ${e.message}`);
    w.postMessage(data);
    return w;
  };
}

export class WasmKernels implements Kernels {
  readonly name: string;
  private top: number;
  private readonly buffers = new WeakSet<ArrayBufferLike>();
  private sizes: ScratchSizes = { rows: 0, inputs: 0, positions: 0 };
  private scratch: Record<string, number> = {};
  /** Bytes of each thread's part of the per-thread scratch regions, for this.sizes. */
  private threadBytes = threadScratchBytes(this.sizes);
  private readonly slots = new Int32Array(MAX_SLOTS);
  /** Whether the quantized matmuls use the relaxed int8 dot product (see dotSelfTest). */
  readonly int8Dot: boolean;
  /** How q4 sums with the int8 dot ('auto': by q4Pick); 'i32' where the int16 form failed its self-test. */
  readonly q4Sums: 'auto' | 'i32' | 'i16';
  /** The timings behind q4Sums 'auto': shape -> 0 (i32) or 1 (i16). */
  readonly q4Pick = new KernelPick();

  constructor(
    readonly exports: KernelExports,
    readonly memory: WebAssembly.Memory,
    readonly flavor: WasmFlavor,
    readonly pool: ThreadPool,
    readonly shared: boolean,
    allowInt8Dot = true,
    q4Sums: 'auto' | 'i32' | 'i16' = 'auto',
  ) {
    this.top = aligned(exports.heap_base());
    this.buffers.add(memory.buffer);
    this.int8Dot = flavor === 'relaxed' && this.dotSelfTest() && allowInt8Dot;
    this.q4Sums = this.int8Dot && this.dot16SelfTest() ? q4Sums : 'i32';
    this.base = this.top; // what the self-test took is not part of the model's plan
    this.name = `wasm-${flavor}${this.int8Dot ? '-dot' : ''}${pool.nth > 1 ? ` x${pool.nth} threads` : ''}`;
  }

  /** First byte handed out: the module's own static data lies below. */
  readonly base: number;

  /**
   * Does the relaxed int8 dot product give the exact answer here? Run once, cold (so in the
   * engine's first tier, where V8 11 computed it wrong), on inputs with negative a, b up to
   * 127 and a non-zero accumulator. The quantized kernels use it only if so.
   */
  private dotSelfTest(): boolean {
    const p = this.alloc(64);
    const a = new Int8Array(this.memory.buffer, p, 16);
    const b = new Uint8Array(this.memory.buffer, p + 16, 16);
    const c = new Int32Array(this.memory.buffer, p + 32, 4);
    a.set([1, -2, 3, -128, 127, 5, -7, 9, -1, -1, -1, -1, 100, -100, 50, -50]);
    b.set([1, 2, 3, 4, 127, 0, 127, 1, 5, 6, 7, 8, 127, 127, 1, 2]);
    c.set([100, -200, 300, 2 ** 30]);
    const want = [0, 1, 2, 3].map((l) => {
      let sum = c[l];
      for (let k = 4 * l; k < 4 * l + 4; k++) sum += a[k] * b[k];
      return sum;
    });
    if (!this.exports.dot_probe(p, p + 16, p + 32, p + 48)) return false;
    const got = new Int32Array(this.memory.buffer, p + 48, 4);
    return want.every((v, l) => got[l] === v);
  }

  /** The same for the int16 form, i16x8.relaxed_dot_i8x16_i7x16_s (pairs; no overflow here). */
  private dot16SelfTest(): boolean {
    const p = this.alloc(48);
    const a = new Int8Array(this.memory.buffer, p, 16);
    const b = new Uint8Array(this.memory.buffer, p + 16, 16);
    a.set([1, -2, 3, -128, 127, 5, -7, 9, -1, -1, -1, -1, 100, -100, 50, -50]);
    b.set([1, 2, 3, 4, 127, 0, 127, 1, 5, 6, 7, 8, 127, 15, 1, 2]);
    if (!this.exports.dot16_probe(p, p + 16, p + 32)) return false;
    const got = new Int16Array(this.memory.buffer, p + 32, 8);
    return Array.from(got).every((v, l) => v === a[2 * l] * b[2 * l] + a[2 * l + 1] * b[2 * l + 1]);
  }

  /**
   * Allocate the scratch that steps of up to `sizes` need (once, by the loader; a kernel
   * called with larger inputs grows it, which only shared memory allows).
   */
  reserveScratch(sizes: ScratchSizes): void {
    const want = {
      rows: Math.max(sizes.rows, this.sizes.rows),
      inputs: Math.max(sizes.inputs, this.sizes.inputs),
      positions: Math.max(sizes.positions, this.sizes.positions),
    };
    if (
      want.rows === this.sizes.rows &&
      want.inputs === this.sizes.inputs &&
      want.positions === this.sizes.positions
    )
      return;
    this.sizes = want;
    this.threadBytes = threadScratchBytes(want);
    this.scratch = Object.fromEntries(
      scratchLayout(want, this.threads).map(([name, bytes]) => [name, this.alloc(bytes)]),
    );
  }

  private scratchFor(T: number, n: number, positions = 0): Record<string, number> {
    if (T > this.sizes.rows || n > this.sizes.inputs || positions > this.sizes.positions)
      this.reserveScratch({ rows: T, inputs: n, positions });
    return this.scratch;
  }

  get threads(): number {
    return this.pool.nth;
  }

  /**
   * The one door to a kernel: op `name` of the op table with its arguments by name, run on
   * every thread, or on this one alone when `here` (a step of one token: waking the workers
   * costs more than the work).
   */
  run<N extends OpName>(name: N, args: OpArgs<N>, here = false): void {
    const op = OP[name];
    const region = op.scratch;
    const scratch = region && {
      base: this.scratch[region],
      stride: this.threadBytes[region],
    };
    const slots = this.slots.subarray(0, pack(op, args, this.slots, scratch || undefined));
    if (here) runShare(this.exports, op.id, slots, 0, 1);
    else this.pool.run(op.id, slots);
  }

  get freeBytes(): number {
    return MAX_BYTES - this.top;
  }

  /** Bytes handed out so far (from `base`). */
  get usedBytes(): number {
    return this.top - this.base;
  }

  private alloc(bytes: number): number {
    const ptr = this.top;
    const end = ptr + aligned(bytes);
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
    const [o, bias0] = [this.ptr(out), bias ? this.ptr(bias) : 0];
    this.scratchFor(T, n);
    const sc = this.scratch;
    switch (w.dtype) {
      case 'f32':
        // a LoRA down-projection (d = r rows) is cheaper than waking the other threads; the
        // split never changes a row's sum
        this.run(
          'matmul_f32',
          { out: o, x: this.ptr(x), w: this.ptr(w.data), bias: bias0, T, n, d },
          T * n * d < 1 << 17,
        );
        return;
      case 'f16': {
        // the widening leaves a 2^-112 (and the re-encoding 2^log2Scale) to put on x
        const scale = F16_X_SCALE * 2 ** (w.log2Scale ?? 0);
        const xScaled = new Float32Array(this.memory.buffer, sc.xScaled, T * n);
        for (let i = 0; i < T * n; i++) xScaled[i] = x[i] * scale;
        const args = { out: o, x: sc.xScaled, w: this.ptr(w.data), bias: bias0, T, n, d };
        this.run('matmul_f16', args);
        return;
      }
      case 'q8':
      case 'q4': {
        // activations to int8 blocks in wasm (the twin's arithmetic exactly), tokens split
        // over threads
        const [xq, xs, xsum] = [sc.xq, sc.xqScale, sc.xqSum];
        this.run(
          'quantize_act',
          { x: this.ptr(x), n, nbp: activationBlocks(n), xq, xs, xsum, T },
          T === 1,
        );
        const { op, shape, variant } = this.quantizedOp(w.dtype, T, n, d);
        const t0 = performance.now();
        const args = {
          out: o,
          xq,
          xs,
          xsum,
          w: this.ptr(w.data),
          bias: bias0,
          T,
          nr: recordsOf(n),
          d,
        };
        this.run(op, args);
        if (shape) this.q4Pick.report(shape, variant, (performance.now() - t0) / T);
        return;
      }
    }
  }

  /** The kernel for a q8/q4 matmul; shape: set when q4Pick is timing this call. */
  private quantizedOp(
    dtype: 'q8' | 'q4',
    T: number,
    n: number,
    d: number,
  ): { op: QuantizedOp; shape: string | null; variant: 0 | 1 } {
    if (!this.int8Dot)
      return { op: dtype === 'q8' ? 'matmul_q8' : 'matmul_q4', shape: null, variant: 0 };
    if (dtype === 'q8') return { op: 'matmul_q8_dot', shape: null, variant: 0 };
    if (this.q4Sums !== 'auto') {
      const op = this.q4Sums === 'i16' ? 'matmul_q4_dot16' : 'matmul_q4_dot';
      return { op, shape: null, variant: 0 };
    }
    const shape = `${d}x${n}x${Math.min(T, 5)}`; // 5: prefill chunks, per token
    const variant = this.q4Pick.choose(shape);
    return { op: variant ? 'matmul_q4_dot16' : 'matmul_q4_dot', shape, variant };
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
    maxPos: number,
    scale: number,
    probs: Float32Array | null,
  ): void {
    this.scratchFor(0, 0, pos0 + T);
    const [o, qp, kp, vp] = [out, q, kCache, vCache].map((a) => this.ptr(a));
    const args = { out: o, q: qp, k: kp, v: vp, T, pos0, H, Dh, maxPos, scale };
    this.run('attention', { ...args, probs: probs ? this.ptr(probs) : 0 });
  }

  transpose_rows(
    dst: Float32Array | Uint16Array,
    w: Weight,
    n: number,
    o0: number,
    m: number,
  ): void {
    const args = { dst: this.ptr(dst), w: this.ptr(w.data), n, o0, m };
    if (w.dtype === 'f32') this.run('transpose_f32', args);
    else if (w.dtype === 'f16') this.run('transpose_f16', args);
    else this.run('transpose_q', { ...args, bits: w.dtype === 'q4' ? 4 : 8 });
  }

  attention_backward(
    dq: Float32Array,
    dk: Float32Array,
    dv: Float32Array,
    dOut: Float32Array,
    q: Float32Array,
    kH: Float32Array,
    vH: Float32Array,
    probs: Float32Array,
    T: number,
    H: number,
    Dh: number,
    scale: number,
  ): void {
    this.scratchFor(0, 0, T);
    const [dqp, dkp, dvp, dO, qp, kp, vp, pp] = [dq, dk, dv, dOut, q, kH, vH, probs].map((a) =>
      this.ptr(a),
    );
    const args = { dq: dqp, dk: dkp, dv: dvp, dO, q: qp, kH: kp, vH: vp, probs: pp };
    this.run('attention_backward', { ...args, T, H, Dh, scale });
  }

  gelu_new(x: Float32Array, len: number): void {
    this.run('gelu_new', { x: this.ptr(x), len });
  }

  gelu_backward(dx: Float32Array, dy: Float32Array, x: Float32Array, len: number): void {
    this.run('gelu_backward', { dx: this.ptr(dx), dy: this.ptr(dy), x: this.ptr(x), len });
  }

  lora_add(
    out: Float32Array,
    u: Float32Array,
    v: Float32Array,
    scale: number,
    T: number,
    r: number,
    d: number,
  ): void {
    const [o, up, vp] = [out, u, v].map((a) => this.ptr(a));
    // a decode step's term (r·d multiply-adds) is cheaper than waking the other threads
    this.run('lora_add', { out: o, u: up, v: vp, scale, T, r, d }, T * r * d < 1 << 17);
  }

  layernorm(
    out: Float32Array,
    x: Float32Array,
    weight: Float32Array,
    bias: Float32Array,
    T: number,
    n: number,
    eps: number,
  ): void {
    const [o, xp, wp, bp] = [out, x, weight, bias].map((a) => this.ptr(a));
    this.run('layernorm', { out: o, x: xp, weight: wp, bias: bp, n, eps, T }, T === 1);
  }

  layernorm_backward(
    dx: Float32Array,
    dy: Float32Array,
    x: Float32Array,
    weight: Float32Array,
    T: number,
    n: number,
    eps: number,
  ): void {
    const [dxp, dyp, xp, wp] = [dx, dy, x, weight].map((a) => this.ptr(a));
    this.run('layernorm_backward', { dx: dxp, dy: dyp, x: xp, weight: wp, n, eps, T });
  }

  // O(T·D) a layer and cheap: the TypeScript kernel is fast enough (measured: 0.2% of decode)
  rotary = rotary;

  /**
   * Memory-read bandwidth from WebAssembly, all threads streaming one buffer of `bytes`: the
   * median of `reps` passes, in bytes per second. For the bench's roofline: the buffer must be
   * much larger than the last-level cache, or this measures the cache.
   */
  readBandwidth(buffer: Float32Array, reps = 7): number {
    const bytes = buffer.byteLength;
    const args = { ptr: this.ptr(buffer), bytes };
    this.run('stream_sum', args); // touch every page first
    const times: number[] = [];
    for (let r = 0; r < reps; r++) {
      const t = performance.now();
      this.run('stream_sum', args);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    return bytes / (times[reps >> 1] / 1000);
  }

  /**
   * The f32 arithmetic peak from WebAssembly: flops per second of multiply-adds from registers
   * (assembly/fma_peak.ts), on this thread alone (`threads` 1) or on every thread of the pool:
   * the best of `passes`. What the compute-bound kernels (the f16 and f32 prefill GEMMs) are
   * measured against.
   */
  fmaPeak(threads: 1 | 'all' = 'all', passes = 7, reps = 1 << 23): number {
    const units = threads === 1 ? 1 : this.threads;
    const out = this.allocF32(4 * units);
    const args = { out: this.ptr(out), reps, units };
    let best = Infinity;
    for (let p = 0; p < passes; p++) {
      out.fill(1);
      const t = performance.now();
      this.run('fma_peak', args, threads === 1);
      best = Math.min(best, performance.now() - t);
    }
    if (!Number.isFinite(out[0])) throw new Error('the peak probe diverged');
    return (units * reps * 48 * 2) / (best / 1000);
  }

  close(): void {
    this.pool.close();
  }
}

export async function createWasmKernels(o: WasmKernelsOptions = {}): Promise<WasmKernels> {
  const readWasm = o.readWasm ?? fetchWasm(o.baseUrl);
  const spawn = o.spawnWorker ?? defaultSpawn(o.baseUrl);
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
  const kernels = new WasmKernels(
    exports,
    memory,
    flavor,
    pool,
    shared,
    o.int8Dot ?? true,
    o.q4Sums ?? 'auto',
  );
  if (o.scratch) kernels.reserveScratch(o.scratch);
  return kernels;
}
