// The kernel op table: one entry per wasm export the thread pool runs, and the one function
// (runShare) that turns an entry and its packed arguments into a thread's call. Adding a kernel
// is one assembly function, one entry here and one TypeScript twin.
//
// An entry's `params` is the export's parameter list, in order, as assembly/ declares it.
// Each name is an argument the host passes, except three the pool fills in per thread:
//   from, to   the thread's share [from, to) of the argument named by `split`, cut in multiples
//              of `align` (the kernels' tiles), so every thread gets whole tiles;
//   scratch    the thread's own part of the scratch region named by `scratch` (scratch.ts).
// The host passes the `split` argument even where the kernel only needs its share.
// Arguments travel in the pool's Int32 slots; those named in `f32` travel as their bits.
import { STREAM_ROWS } from './exports.js';
import type { ScratchRegion } from './scratch.js';

/** Int32 argument slots the pool's control block has (the most an op may use). */
export const MAX_SLOTS = 16;

interface OpEntry {
  readonly params: readonly string[];
  readonly split: string;
  readonly align: number;
  readonly f32?: readonly string[];
  readonly scratch?: ScratchRegion;
}

const matmulF32 = ['out', 'x', 'w', 'bias', 'T', 'n', 'd', 'from', 'to'] as const;
/** q8/q4: xq, xs, xsum the quantized activations (quantize_act), nr the records of a row. */
const matmulQ = ['out', 'xq', 'xs', 'xsum', 'w', 'bias', 'T', 'nr', 'd', 'from', 'to'] as const;
/** The quantized kernels split whole tiles of 4 streams of STREAM_ROWS rows (assembly/matmul_q.ts). */
const TILE_ROWS = 4 * STREAM_ROWS;

export const OPS = {
  matmul_f32: { params: matmulF32, split: 'd', align: 2 },
  /** x is the activations times 2^112; scratch: WIDE_ROWS·n f32 for the widened rows */
  matmul_f16: { params: [...matmulF32, 'scratch'], split: 'd', align: 2, scratch: 'wide' },
  matmul_q8: { params: matmulQ, split: 'd', align: TILE_ROWS },
  matmul_q4: { params: matmulQ, split: 'd', align: TILE_ROWS },
  /** The same with relaxed SIMD's int8 dot product (only where the self-test passed). */
  matmul_q8_dot: { params: [...matmulQ, 'scratch'], split: 'd', align: TILE_ROWS, scratch: 'wide' },
  matmul_q4_dot: { params: [...matmulQ, 'scratch'], split: 'd', align: TILE_ROWS, scratch: 'wide' },
  /** matmul_q4_dot with the sums in int16 lanes: the same results, faster on some engines. */
  matmul_q4_dot16: {
    params: [...matmulQ, 'scratch'],
    split: 'd',
    align: TILE_ROWS,
    scratch: 'wide',
  },
  /** Activations to int8 blocks (twin: src/kernels/ref/quant.ts quantize_act). */
  quantize_act: {
    params: ['x', 'n', 'nbp', 'xq', 'xs', 'xsum', 'from', 'to'],
    split: 'T',
    align: 1,
  },
  /** scratch: one row of scores */
  attention: {
    params: [
      ...['out', 'q', 'k', 'v', 'T', 'pos0', 'H', 'Dh', 'maxPos', 'scale'],
      ...['scratch', 'probs', 'from', 'to'],
    ] as const,
    split: 'H',
    align: 1,
    f32: ['scale'],
    scratch: 'scores',
  },
  /** Training: a weight's rows transposed (twin: src/kernels/ref/transpose.ts), W's columns split */
  transpose_f32: { params: ['dst', 'w', 'n', 'o0', 'm', 'from', 'to'], split: 'n', align: 1 },
  transpose_f16: { params: ['dst', 'w', 'n', 'o0', 'm', 'from', 'to'], split: 'n', align: 1 },
  /** q8/q4 (bits 8 or 4): whole records of 128 columns a thread */
  transpose_q: {
    params: ['dst', 'w', 'bits', 'n', 'o0', 'm', 'from', 'to'],
    split: 'n',
    align: 128,
  },
  /** Training (twin: src/kernels/ref/attention.ts attention_backward); scratch: a row of dP */
  attention_backward: {
    params: [
      ...['dq', 'dk', 'dv', 'dO', 'q', 'kH', 'vH', 'probs', 'T', 'H', 'Dh', 'scale'],
      ...['scratch', 'from', 'to'],
    ] as const,
    split: 'H',
    align: 1,
    f32: ['scale'],
    scratch: 'scores',
  },
  layernorm: {
    params: ['out', 'x', 'weight', 'bias', 'n', 'eps', 'from', 'to'],
    split: 'T',
    align: 1,
    f32: ['eps'],
  },
  /** Training: LayerNorm's input gradient (twin: src/kernels/ref/layernorm.ts). */
  layernorm_backward: {
    params: ['dx', 'dy', 'x', 'weight', 'n', 'eps', 'from', 'to'],
    split: 'T',
    align: 1,
    f32: ['eps'],
  },
  gelu_new: { params: ['x', 'from', 'to'], split: 'len', align: 4 },
  /** Training: gelu_new's gradient (twin: src/kernels/ref/gelu.ts). */
  gelu_backward: { params: ['dx', 'dy', 'x', 'from', 'to'], split: 'len', align: 4 },
  /** A LoRA term's up-projection and the merge (twin: src/kernels/ref/lora.ts). */
  lora_add: {
    params: ['out', 'u', 'v', 'scale', 'T', 'r', 'd', 'from', 'to'],
    split: 'd',
    align: 4,
    f32: ['scale'],
  },
  /** The bench's bandwidth probe: bytes [from, to) of ptr, in whole cache lines. */
  stream_sum: { params: ['ptr', 'from', 'to'], split: 'bytes', align: 64 },
  /** The bench's arithmetic peak: units [from, to) of `reps` rounds of 48 multiply-adds. */
  fma_peak: { params: ['out', 'reps', 'from', 'to'], split: 'units', align: 1 },
} as const satisfies Record<string, OpEntry>;

export type OpName = keyof typeof OPS;

/**
 * What assembly/index.ts exports: the kernels of the table above, with pointers as plain numbers
 * (byte offsets into the shared memory), the probes the backend runs once, and the constants.
 */
export type KernelExports = Readonly<Record<OpName, (...params: number[]) => unknown>> & {
  heap_base(): number;
  /** The module's own values of the constants below (a test checks they agree). */
  WIDE_ROWS: WebAssembly.Global;
  STREAM_ROWS: WebAssembly.Global;
  FEW_X_BYTES: WebAssembly.Global;
  /** out = relaxed_dot_i8x16_i7x16_add_s(a, b, c), all pointers; 0 without relaxed SIMD. */
  dot_probe(a: number, b: number, c: number, out: number): number;
  /** out (i16x8) = relaxed_dot_i8x16_i7x16_s(a, b); 0 without relaxed SIMD. */
  dot16_probe(a: number, b: number, out: number): number;
};

const FILLED = ['from', 'to', 'scratch'] as const;
type Filled = (typeof FILLED)[number];

/** The arguments the host passes to op N, by name. */
export type OpArgs<N extends OpName> = Record<
  Exclude<(typeof OPS)[N]['params'][number], Filled> | (typeof OPS)[N]['split'],
  number
>;

/** An entry with what dispatch needs worked out once. */
export interface Op {
  readonly id: number;
  readonly name: OpName;
  /** The host's arguments in slot order (then, with scratch, the region's base and stride). */
  readonly args: readonly string[];
  /** Whether each of args is an f32. */
  readonly argIsF32: readonly boolean[];
  /** Per parameter: its slot, or FROM / TO / SCRATCH. */
  readonly source: Int32Array;
  /** Per parameter: whether it is an f32 (its slot holds the bits). */
  readonly isF32: Uint8Array;
  readonly splitSlot: number;
  readonly align: number;
  readonly scratch: ScratchRegion | null;
}

const FROM = -1;
const TO = -2;
const SCRATCH = -3;

/** Op ids start at 1; 0 tells the workers to exit. */
export const EXIT = 0;

function compile(name: OpName, id: number): Op {
  const e: OpEntry = OPS[name];
  const args = e.params.filter((p) => !(FILLED as readonly string[]).includes(p));
  if (!args.includes(e.split)) args.push(e.split);
  const slots = args.length + (e.scratch ? 2 : 0);
  if (slots > MAX_SLOTS)
    throw new Error(`kernel op ${name} needs ${slots} slots, the pool has ${MAX_SLOTS}`);
  if (e.params.includes('scratch') !== Boolean(e.scratch))
    throw new Error(`kernel op ${name}: a scratch parameter needs a scratch region, and back`);
  const special: Record<string, number> = { from: FROM, to: TO, scratch: SCRATCH };
  const f32 = (p: string) => e.f32?.includes(p) ?? false;
  return {
    id,
    name,
    args,
    argIsF32: args.map(f32),
    source: Int32Array.from(e.params, (p) => special[p] ?? args.indexOf(p)),
    isF32: Uint8Array.from(e.params, (p) => Number(f32(p))),
    splitSlot: args.indexOf(e.split),
    align: e.align,
    scratch: e.scratch ?? null,
  };
}

/** Every op, by name; BY_ID[id] the same entries by id. */
export const OP = Object.fromEntries(
  (Object.keys(OPS) as OpName[]).map((name, i) => [name, compile(name, i + 1)]),
) as { readonly [N in OpName]: Op };
const BY_ID: (Op | undefined)[] = [undefined, ...Object.values(OP)];

/** An op's name for messages ("op 42" for an id the table does not have). */
export const opName = (id: number): string => BY_ID[id]?.name ?? `op ${id}`;

const bits = new Int32Array(1);
const asF32 = new Float32Array(bits.buffer);

/** The bits of an f32, to pass through an Int32 slot. */
export function f32Bits(v: number): number {
  asF32[0] = v;
  return bits[0];
}
function fromBits(b: number): number {
  bits[0] = b;
  return asF32[0];
}

/**
 * Pack op's named arguments into `slots` (scratch: the region's base and per-thread stride),
 * returning how many slots it used.
 */
export function pack(
  op: Op,
  args: Readonly<Record<string, number>>,
  slots: Int32Array,
  scratch?: { base: number; stride: number },
): number {
  for (let i = 0; i < op.args.length; i++) {
    const v = args[op.args[i]];
    if (v === undefined) throw new Error(`kernel op ${op.name}: no argument ${op.args[i]}`);
    slots[i] = op.argIsF32[i] ? f32Bits(v) : v;
  }
  if (!op.scratch) return op.args.length;
  if (!scratch) throw new Error(`kernel op ${op.name}: no scratch given`);
  slots[op.args.length] = scratch.base;
  slots[op.args.length + 1] = scratch.stride;
  return op.args.length + 2;
}

/** Split [0, total) into nth parts whose bounds are multiples of `align`; part ith. */
export function split(total: number, ith: number, nth: number, align = 1): [number, number] {
  const chunk = Math.ceil(total / nth / align) * align;
  const a = Math.min(total, ith * chunk);
  return [a, Math.min(total, a + chunk)];
}

type Export = (...params: number[]) => unknown;

/** Run thread ith's share of op `id` with the packed arguments `a` (nothing if its share is empty). */
export function runShare(
  k: Readonly<Record<OpName, Export>>,
  id: number,
  a: Int32Array,
  ith: number,
  nth: number,
): void {
  const op = BY_ID[id];
  if (!op) throw new Error(`unknown kernel op ${id}`);
  const [from, to] = split(a[op.splitSlot], ith, nth, op.align);
  if (from >= to) return;
  const { source, isF32 } = op;
  const params = new Array<number>(source.length);
  for (let i = 0; i < source.length; i++) {
    const s = source[i];
    if (s === FROM) params[i] = from;
    else if (s === TO) params[i] = to;
    else if (s === SCRATCH) params[i] = a[op.args.length] + ith * a[op.args.length + 1];
    else params[i] = isF32[i] ? fromBits(a[s]) : a[s];
  }
  k[op.name](...params);
}
