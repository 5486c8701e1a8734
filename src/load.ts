// Loading a Phi from any ModelFiles (a directory in Node, URLs, in-memory buffers).
import { quantizedBytes } from './kernels/ref/quant.js';
import type { ModelFiles } from './io/source.js';
import { createRefKernels } from './kernels/ref/index.js';
import type { Kernels, WeightDType } from './kernels/types.js';
import { WIDE_ROWS } from './kernels/wasm/exports.js';
import { createWasmKernels, formatBytes, type WasmKernelsOptions } from './kernels/wasm/index.js';
import { parseConfig, type PhiConfig } from './model/config.js';
import { DEFAULT_MAX_BATCH, PhiForCausalLM } from './model/causal_lm.js';
import { KVCache } from './model/kv_cache.js';
import { runStateLayout } from './model/state.js';
import { Phi } from './engine.js';
import { PhiTokenizer } from './tokenizer/tokenizer.js';
import { Checkpoint, loadWeights, type LoadWeightsOptions } from './weights/load.js';
import { numel } from './weights/safetensors.js';

export type Backend = 'js' | 'wasm';

export interface LoadOptions extends LoadWeightsOptions {
  /** 'wasm' (SIMD kernels, default) or 'js' (the readable TypeScript kernels). */
  backend?: Backend;
  /** Threads for the wasm backend, the calling one included (default 1 here; the CLI uses all cores). */
  threads?: number;
  /** Runtime adapters for the wasm backend (worker start, .wasm reading). */
  wasm?: Omit<WasmKernelsOptions, 'threads' | 'reserveBytes'>;
  /** A ready kernel backend (overrides backend/threads). */
  kernels?: Kernels;
  /** Positions of KV cache to allocate (default: the model's full context). */
  maxPositions?: number;
  /** Most tokens per forward step during prefill (default 64). */
  maxBatch?: number;
  /** Requests served at the same time, each with a KV cache of its own (default 1). */
  parallel?: number;
}

async function readJson(files: ModelFiles, file: string): Promise<Record<string, unknown>> {
  const text = await files.readText(file);
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${files.name}/${file}: not valid JSON (${(e as Error).message})`);
  }
}

/** eos_token_id of generation_config.json, when it names one (a number or the first of a list). */
async function eosFromGenerationConfig(files: ModelFiles): Promise<number | null> {
  if (!(await files.exists('generation_config.json'))) return null;
  const eos = (await readJson(files, 'generation_config.json')).eos_token_id;
  const id = Array.isArray(eos) ? eos[0] : eos;
  return Number.isInteger(id) ? (id as number) : null;
}

export async function loadTokenizer(files: ModelFiles): Promise<PhiTokenizer | null> {
  if (!(await files.exists('tokenizer.json'))) return null;
  const json = await readJson(files, 'tokenizer.json');
  const config = (await files.exists('tokenizer_config.json'))
    ? await readJson(files, 'tokenizer_config.json')
    : {};
  return new PhiTokenizer(json, config);
}

/** Bytes the model needs in memory: weights in `dtype` (matrices) and f32 (vectors), plus state. */
export function modelBytes(
  ck: Checkpoint,
  cfg: PhiConfig,
  dtype: WeightDType | 'auto',
  maxPositions: number,
  maxBatch: number,
  parallel = 1,
): number {
  let bytes = 0;
  for (const [name, { info }] of ck.entries) {
    const isMatrix = info.shape.length === 2;
    const stored = info.dtype === 'F16' ? 2 : 4;
    const embedding = /embed_tokens|wte/.test(name);
    if (info.dtype === 'U8') {
      bytes += numel(info.shape); // saved by phi quantize: already in the kernels' layout
    } else if (isMatrix && (dtype === 'q8' || dtype === 'q4') && !embedding) {
      // quantized as it loads (the embedding keeps its stored dtype)
      bytes += quantizedBytes(dtype, info.shape[0], info.shape[1]);
    } else {
      const perWeight = { auto: stored, f16: 2, f32: 4, q8: stored, q4: stored }[dtype];
      bytes += numel(info.shape) * (isMatrix ? perWeight : 4);
    }
    bytes += 1024; // alignment
  }
  const state = runStateLayout(cfg, maxPositions, maxBatch).reduce((n, [, len]) => n + 4 * len, 0);
  return bytes + state + parallel * KVCache.bytes(cfg, maxPositions);
}

export async function loadPhiFrom(files: ModelFiles, options: LoadOptions = {}): Promise<Phi> {
  if (!(await files.exists('config.json'))) throw new Error(`${files.name}: no config.json`);
  const config = parseConfig(await files.readText('config.json'), `${files.name}/config.json`);
  const checkpoint = await Checkpoint.open(files);
  try {
    let kernels = options.kernels;
    if (!kernels && (options.backend ?? 'wasm') === 'wasm') {
      const maxPositions = options.maxPositions ?? config.maxPositions;
      const maxBatch = Math.min(options.maxBatch ?? DEFAULT_MAX_BATCH, maxPositions);
      const dtype = options.dtype ?? 'auto';
      const threads = options.threads ?? 1;
      // activations scratch: f16 or quantized matmul inputs, one attention row per thread, and
      // the rows each thread widens for the f16 prefill GEMM
      const scratch =
        8 * maxBatch * config.intermediateSize +
        4 * threads * maxPositions +
        4 * threads * WIDE_ROWS * config.intermediateSize +
        (1 << 20);
      const parallel = options.parallel ?? 1;
      const need =
        modelBytes(checkpoint, config, dtype, maxPositions, maxBatch, parallel) + scratch;
      if (need > 4 * 2 ** 30 - (1 << 20)) {
        const f16 =
          modelBytes(checkpoint, config, 'f16', maxPositions, maxBatch, parallel) + scratch;
        throw new Error(
          `this model needs ${formatBytes(need)} as ${dtype === 'auto' ? 'stored' : dtype}, more than the 4 GiB of wasm32 memory` +
            (dtype !== 'f16' && f16 < 4 * 2 ** 30
              ? `; with --dtype f16 it needs ${formatBytes(f16)}`
              : '') +
            ' (or use --backend js)',
        );
      }
      kernels = await createWasmKernels({ ...options.wasm, threads, reserveBytes: need });
    }
    kernels ??= createRefKernels();
    try {
      const weights = await loadWeights(checkpoint, config, kernels, options);
      const model = new PhiForCausalLM(config, weights, kernels, options);
      const tokenizer = await loadTokenizer(files);
      return new Phi(model, tokenizer, await eosFromGenerationConfig(files), options.parallel);
    } catch (e) {
      kernels.close?.();
      throw e;
    }
  } finally {
    await checkpoint.close();
  }
}
