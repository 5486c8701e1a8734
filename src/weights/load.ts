// Load a phi checkpoint (weights/checkpoint.ts) into PhiWeights, tensor by tensor, straight
// into buffers the kernel backend allocated: no second full copy of the file is ever held.
// What each parameter is called and held as: weights/names.ts.
import { Merger, mergeStaging, termsFor, type PlacedTerm } from './merge.js';
import type { LoraAdapter, LoraModule } from '../model/lora.js';
import { f32ToF16, widenHalf } from '../formats/f16.js';
import {
  allocQuantized,
  QUANT_LAYOUT,
  quantizedBytes,
  quantizedFault,
  quantizedRows,
  quantizeRows,
} from '../formats/quant.js';
import type { Kernels, Weight, WeightDType } from '../kernels/types.js';
import type { PhiConfig } from '../model/config.js';
import type { LayerNormParams, LayerWeights, Linear, PhiWeights } from '../model/weights.js';
import { QUANT_KEY, QUANT_LAYOUT_KEY, type Checkpoint, type Entry } from './checkpoint.js';
import { detectNames, heldAs, type Names } from './names.js';
import { numel } from './safetensors.js';

export interface LoadWeightsOptions {
  /**
   * In-memory dtype of the matrices: the checkpoint's (default; BF16 becomes f32), f32, f16, or
   * block-quantized q8 / q4 (linear layers only; the embedding keeps the checkpoint's dtype).
   */
  dtype?: WeightDType | 'auto';
  /**
   * Called as bytes arrive: the weights as they are read (stage 'load'), and in Node the files
   * of a model being downloaded first (stage 'download', with the file's name), as
   * transformers.js's progress_callback reports both.
   */
  onProgress?: (loadedBytes: number, totalBytes: number, info?: ProgressInfo) => void;
}

export interface ProgressInfo {
  stage: 'download' | 'load';
  /** The file being downloaded (stage 'download'). */
  file?: string;
}

/**
 * Read every parameter of the model described by `config` from `ck`, with the LoRA adapters
 * `merge` merged into their linear layers (weights/merge.ts).
 */
export async function loadWeights(
  ck: Checkpoint,
  cfg: PhiConfig,
  kernels: Kernels,
  options: LoadWeightsOptions = {},
  merge: readonly LoraAdapter[] = [],
): Promise<PhiWeights> {
  const { vocabSize: V, hiddenSize: D, numLayers: L } = cfg;
  const loader = new WeightLoader(ck, kernels, options, merge);
  const names = detectNames(ck, L);
  const embed_tokens = await loader.matrix(`${names.embed}.weight`, V, D, 'embedding');
  const layers: LayerWeights[] = [];
  for (let l = 0; l < L; l++) layers.push(await loader.layer(names, l, cfg));
  const final_layernorm = await loader.layerNorm(names.finalLn, D);
  const lm_head = await loader.linear(names.lmHead, V, D);
  return { embed_tokens, layers, final_layernorm, lm_head };
}

/** Reads tensors into the kernels' memory, in the dtype heldAs() says, counting progress. */
class WeightLoader {
  private readonly want: WeightDType | 'auto';
  private loaded = 0;
  private readonly merger: Merger;

  constructor(
    private readonly ck: Checkpoint,
    private readonly kernels: Kernels,
    private readonly options: LoadWeightsOptions,
    private readonly merge: readonly LoraAdapter[],
  ) {
    this.want = options.dtype ?? 'auto';
    this.merger = new Merger(kernels, mergeStaging(merge, CHUNK_ELEMENTS));
  }

  /** The merged adapters' terms for a matrix holding `modules` of layer l, rowsEach rows each. */
  private terms(l: number, modules: LoraModule[], rowsEach: number): PlacedTerm[] {
    return termsFor(this.merge, l, modules, rowsEach);
  }

  private progress = (bytes: number) => {
    this.loaded += bytes;
    this.options.onProgress?.(this.loaded, this.ck.totalBytes, { stage: 'load' });
  };

  /** One decoder layer's parameters. */
  async layer(names: Names, l: number, cfg: PhiConfig): Promise<LayerWeights> {
    const { hiddenSize: D, intermediateSize: F } = cfg;
    const input_layernorm = await this.layerNorm(names.ln(l), D);
    const qkv = names.qkv(l);
    let q_proj: Linear, k_proj: Linear, v_proj: Linear;
    if ('fused' in qkv) {
      // Wqkv (3D, D): rows [0, D) are q, [D, 2D) k, [2D, 3D) v; views, not copies.
      const terms = this.terms(l, ['q_proj', 'k_proj', 'v_proj'], D);
      const fused = await this.linear(qkv.fused, 3 * D, D, terms);
      const part = (i: number): Linear => ({
        weight: sliceRows(fused.weight, i * D, D, D),
        bias: fused.bias.subarray(i * D, (i + 1) * D),
      });
      [q_proj, k_proj, v_proj] = [part(0), part(1), part(2)];
    } else {
      q_proj = await this.linear(qkv.q, D, D, this.terms(l, ['q_proj'], D));
      k_proj = await this.linear(qkv.k, D, D, this.terms(l, ['k_proj'], D));
      v_proj = await this.linear(qkv.v, D, D, this.terms(l, ['v_proj'], D));
    }
    return {
      input_layernorm,
      q_proj,
      k_proj,
      v_proj,
      dense: await this.linear(names.dense(l), D, D, this.terms(l, ['dense'], D)),
      fc1: await this.linear(names.fc1(l), F, D, this.terms(l, ['fc1'], F)),
      fc2: await this.linear(names.fc2(l), D, F, this.terms(l, ['fc2'], D)),
    };
  }

  /**
   * A linear layer: its weight, with `terms` merged in (W + s·B·A), re-encoded once if the
   * backend wants (Kernels.prepare); and its bias.
   */
  async linear(name: string, out: number, inp: number, terms: PlacedTerm[] = []): Promise<Linear> {
    const w = await this.matrix(`${name}.weight`, out, inp, 'linear', terms);
    return {
      weight: this.kernels.prepare ? this.kernels.prepare(w) : w,
      bias: await this.vector(`${name}.bias`, out),
    };
  }

  async layerNorm(name: string, D: number): Promise<LayerNormParams> {
    return { weight: await this.vector(`${name}.weight`, D), bias: await this.vector(`${name}.bias`, D) };
  }

  async matrix(
    name: string,
    rows: number,
    cols: number,
    role: 'linear' | 'embedding',
    terms: PlacedTerm[] = [],
  ): Promise<Weight> {
    const { ck, kernels } = this;
    const stored8 = ck.entries.get(name);
    if (stored8?.info.dtype === 'U8') {
      if (terms.length)
        throw new Error(
          `${stored8.file.source.name}: tensor "${name}" is stored quantized; an adapter merges into the original weights (load the adapter unmerged, or merge before quantizing)`,
        );
      return this.readQuantized(stored8, name, rows, cols);
    }
    const e = ck.entry(name, [rows, cols]);
    const { dtype } = heldAs(ck, { name, shape: [rows, cols], role }, this.want);
    // rows as f32, with the merged terms added; identity when there are none
    const merged = (slab: Float32Array, row0: number, count: number) =>
      terms.length ? this.merger.apply(slab, row0, count, cols, terms) : slab;
    if (dtype === 'q8' || dtype === 'q4') {
      const w = allocQuantized(kernels, dtype, rows, cols);
      await readRowsF32(e, rows, cols, this.progress, (slab, row0, count) =>
        quantizeRows(merged(slab, row0, count), count, cols, w, row0),
      );
      return w;
    }
    const w: Weight =
      dtype === 'f16'
        ? { dtype, data: kernels.allocU16(rows * cols) }
        : { dtype: 'f32', data: kernels.allocF32(rows * cols) };
    if (!terms.length) await readInto(e, w, this.progress);
    else
      await readRowsF32(e, rows, cols, this.progress, (slab, row0, count) => {
        const m = merged(slab, row0, count);
        const start = row0 * cols;
        if (w.dtype === 'f32') w.data.set(m, start);
        else for (let i = 0; i < count * cols; i++) w.data[start + i] = f32ToF16(m[i]);
      });
    return w;
  }

  /** A matrix saved quantized by `phi quantize`: the bytes are already in the kernel layout. */
  private async readQuantized(e: Entry, name: string, rows: number, cols: number): Promise<Weight> {
    const where = `${e.file.source.name}: tensor "${name}"`;
    const q = e.file.metadata[QUANT_KEY];
    if (q !== 'q8' && q !== 'q4') {
      throw new Error(`${where} is U8, but the file's metadata names no phi-wasm quantization (${QUANT_KEY})`);
    }
    const layout = e.file.metadata[QUANT_LAYOUT_KEY] ?? '1';
    if (layout !== QUANT_LAYOUT) {
      throw new Error(
        `${where} is quantized in layout ${layout} (${QUANT_LAYOUT_KEY}); this phi-wasm reads layout ${QUANT_LAYOUT}: run phi quantize on the original checkpoint again`,
      );
    }
    if (this.want !== 'auto' && this.want !== q) {
      throw new Error(`${where} is stored quantized as ${q}: load it with dtype ${q} (or auto), not ${this.want}`);
    }
    this.ck.entry(name, [quantizedBytes(q, rows, cols)]);
    const w = allocQuantized(this.kernels, q, rows, cols);
    await e.file.source.read(e.info.offset, w.data);
    const fault = quantizedFault(q, w.data);
    if (fault) throw new Error(`${where} (${q}) is corrupt: ${fault}`);
    this.progress(e.info.byteLength);
    return w;
  }

  async vector(name: string, n: number): Promise<Float32Array> {
    const e = this.ck.entry(name, [n]);
    if (e.info.dtype === 'U8')
      throw new Error(`${e.file.source.name}: tensor "${name}" is U8; a vector must be F32, F16 or BF16`);
    const w = { dtype: 'f32' as const, data: this.kernels.allocF32(n) };
    await readInto(e, w, this.progress);
    return w.data;
  }
}

function sliceRows(w: Weight, row0: number, rows: number, cols: number): Weight {
  if (w.dtype === 'q8' || w.dtype === 'q4') return quantizedRows(w, cols, row0, rows);
  const a = row0 * cols;
  const b = a + rows * cols;
  return w.dtype === 'f16'
    ? { dtype: 'f16', data: w.data.subarray(a, b), log2Scale: w.log2Scale }
    : { dtype: 'f32', data: w.data.subarray(a, b) };
}

/** Conversions go through a window of this many elements, never a full copy of a tensor. */
export const CHUNK_ELEMENTS = 1 << 22;

/** Read a (rows, cols) tensor as f32, a slab of rows at a time, into `use(slab, row0, count)`. */
async function readRowsF32(
  e: Entry,
  rows: number,
  cols: number,
  progress: (bytes: number) => void,
  use: (slab: Float32Array, row0: number, count: number) => void,
): Promise<void> {
  const { info, file } = e;
  const inSize = info.dtype === 'F32' ? 4 : 2;
  const slabRows = Math.max(1, Math.floor(CHUNK_ELEMENTS / cols));
  for (let row0 = 0; row0 < rows; row0 += slabRows) {
    const count = Math.min(slabRows, rows - row0);
    const raw = new Uint8Array(count * cols * inSize);
    await file.source.read(info.offset + row0 * cols * inSize, raw);
    const slab =
      info.dtype === 'F32'
        ? new Float32Array(raw.buffer)
        : widenHalf(new Uint16Array(raw.buffer), info.dtype === 'F16' ? 'f16' : 'bf16');
    checkFinite(e, slab, row0 * cols);
    use(slab, row0, count);
    progress(raw.length);
  }
}

/**
 * Throw if a tensor holds NaN or ±Infinity: such weights load but every answer computed with
 * them is garbage. values: f32, or f16 bits (all-ones exponent = not finite).
 */
function checkFinite(e: Entry, values: Float32Array | Uint16Array, start = 0): void {
  let bad = -1;
  if (values instanceof Uint16Array) {
    for (let i = 0; i < values.length; i++)
      if ((values[i] & 0x7c00) === 0x7c00) {
        bad = i;
        break;
      }
  } else {
    for (let i = 0; i < values.length; i++)
      if (values[i] - values[i] !== 0) {
        bad = i; // NaN - NaN and Inf - Inf are NaN
        break;
      }
  }
  if (bad >= 0) {
    throw new Error(
      `${e.file.source.name}: tensor "${e.info.name}" holds a non-finite value (NaN or Infinity) at index ${start + bad}: the checkpoint is corrupt`,
    );
  }
}

/** Read a tensor into `dst`, converting dtype on the way if they differ. */
async function readInto(
  e: Entry,
  dst: { dtype: 'f32'; data: Float32Array } | { dtype: 'f16'; data: Uint16Array },
  progress: (bytes: number) => void,
): Promise<void> {
  const { info, file } = e;
  const n = numel(info.shape);
  const direct =
    (info.dtype === 'F32' && dst.dtype === 'f32') || (info.dtype === 'F16' && dst.dtype === 'f16');
  if (direct) {
    // Same representation: bytes go straight into the destination (little-endian hosts).
    await file.source.read(info.offset, new Uint8Array(dst.data.buffer, dst.data.byteOffset, info.byteLength));
    checkFinite(e, dst.data);
    progress(info.byteLength);
    return;
  }
  if (n === 0) return;
  // convert through readRowsF32's bounded slabs, viewing the tensor as (rows, last dim)
  const cols = info.shape[info.shape.length - 1] ?? 1;
  await readRowsF32(e, n / cols, cols, progress, (slab, row0) => {
    const start = row0 * cols;
    if (dst.dtype === 'f32') dst.data.set(slab, start);
    else for (let i = 0; i < slab.length; i++) dst.data[start + i] = f32ToF16(slab[i]);
  });
}

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error('phi-wasm needs a little-endian host (safetensors data is little-endian)');
}

