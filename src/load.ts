// Loading a Phi from any ModelFiles (a directory in Node, URLs, in-memory buffers).
import { OptionError } from './defaults.js';
import type { ModelFiles } from './io/source.js';
import { createRefKernels } from './kernels/ref/index.js';
import type { Kernels } from './kernels/types.js';
import { createWasmKernels, type WasmKernelsOptions } from './kernels/wasm/index.js';
import {
  formatBytes,
  planMemory,
  scratchSizes,
  WASM32_BYTES,
  type MemoryOptions,
  type TrainingOptions,
} from './memory.js';
import { parseConfig, type PhiConfig } from './model/config.js';
import { DEFAULT_MAX_BATCH, PhiForCausalLM } from './model/causal_lm.js';
import { stepRows } from './model/state.js';
import type { LoraAdapter } from './model/lora.js';
import { badAdapterName, readAdapter } from './weights/adapter.js';
import { Phi } from './engine.js';
import { PhiTokenizer } from './tokenizer/tokenizer.js';
import { Checkpoint } from './weights/checkpoint.js';
import { loadWeights, type LoadWeightsOptions } from './weights/load.js';
import { checkTensors } from './weights/names.js';

export type Backend = 'js' | 'wasm';

export interface LoadOptions extends LoadWeightsOptions {
  /** 'wasm' (SIMD kernels, default) or 'js' (the readable TypeScript kernels). */
  backend?: Backend;
  /** Threads for the wasm backend, the calling one included (default 1 here; the CLI uses all cores). */
  threads?: number;
  /** Runtime adapters for the wasm backend (worker start, .wasm reading). */
  wasm?: Omit<WasmKernelsOptions, 'threads' | 'reserveBytes' | 'scratch'>;
  /** A ready kernel backend (overrides backend/threads). */
  kernels?: Kernels;
  /** Positions of KV cache to allocate (default: the model's full context). */
  maxPositions?: number;
  /** Most tokens per forward step during prefill (default 64). */
  maxBatch?: number;
  /** Requests served at the same time, each with a KV cache of its own (default 1). */
  parallel?: number;
  /**
   * LoRA adapters (PEFT folders) to hold unmerged, by name: each request picks one with
   * GenerateOptions.adapter, or none for the base model.
   */
  adapters?: Record<string, ModelFiles>;
  /** LoRA adapters to merge into the weights as they load (W + s·B·A): every request runs with them. */
  merge?: ModelFiles | ModelFiles[];
  /** Make room for a fine-tune of this shape (phi.finetune), or refuse to load (memory.ts). */
  training?: TrainingOptions;
}

function parseJsonObject(text: string, where: string): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${where}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new Error(`${where}: must be a JSON object`);
  return json as Record<string, unknown>;
}

async function readJson(files: ModelFiles, file: string): Promise<Record<string, unknown>> {
  return parseJsonObject(await files.readText(file), `${files.name}/${file}`);
}

/** eos_token_id of generation_config.json, when it names one (a number or the first of a list). */
async function eosFromGenerationConfig(files: ModelFiles, vocab: number): Promise<number | null> {
  if (!(await files.exists('generation_config.json'))) return null;
  const where = `${files.name}/generation_config.json`;
  const json = await readJson(files, 'generation_config.json');
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new Error(`${where}: must be a JSON object`);
  const eos = json.eos_token_id;
  if (eos === undefined || eos === null) return null;
  const id = Array.isArray(eos) ? eos[0] : eos;
  if (!Number.isInteger(id) || id < 0 || id >= vocab)
    throw new Error(
      `${where}: eos_token_id must be a token id in 0..${vocab - 1}, got ${JSON.stringify(eos)}`,
    );
  return id as number;
}

/** Load options of the wrong type or range are refused, naming the option: the one check of them. */
function validateLoadOptions(o: LoadOptions, config: PhiConfig): void {
  const bad = (name: string, want: string, got: unknown) => {
    throw new OptionError(name, `must be ${want}, got ${JSON.stringify(got)}`);
  };
  const int = (name: keyof LoadOptions, lo: number, hi: number) => {
    const v = o[name];
    if (v !== undefined && !(Number.isSafeInteger(v) && (v as number) >= lo && (v as number) <= hi))
      bad(name, `an integer in ${lo}..${hi}`, v);
  };
  if (o.backend !== undefined && o.backend !== 'wasm' && o.backend !== 'js')
    bad('backend', '"wasm" or "js"', o.backend);
  if (o.dtype !== undefined && !['auto', 'f32', 'f16', 'q8', 'q4'].includes(o.dtype))
    bad('dtype', '"auto", "f32", "f16", "q8" or "q4"', o.dtype);
  int('threads', 1, MAX_THREADS);
  int('maxBatch', 1, 4096);
  if (
    o.maxPositions !== undefined &&
    !(
      Number.isSafeInteger(o.maxPositions) &&
      o.maxPositions >= 1 &&
      o.maxPositions <= config.maxPositions
    )
  )
    bad(
      'maxPositions',
      `an integer in 1..${config.maxPositions} (the model's context)`,
      o.maxPositions,
    );
  int('parallel', 1, 256);
  const a = o.adapters;
  if (a !== undefined) {
    if (typeof a !== 'object' || a === null || Array.isArray(a))
      bad('adapters', 'an object {name: adapter files}', a);
    for (const name of Object.keys(a)) {
      const why = badAdapterName(name);
      if (why) throw new OptionError('adapters', why);
    }
  }
}

/** More kernel threads than this is a typo, not a machine (and each costs scratch memory). */
export const MAX_THREADS = 256;

/**
 * Tokenizers built lately, by the text of their two files: building one from its 2 MB of JSON
 * takes a quarter of a second, and a process that loads the same model again (a test suite, a
 * server reloading, several slots' configs) needs the same immutable object.
 */
const builtTokenizers = new Map<string, Map<string, PhiTokenizer>>();
const TOKENIZER_CACHE = 4;

export async function loadTokenizer(files: ModelFiles): Promise<PhiTokenizer | null> {
  if (!(await files.exists('tokenizer.json'))) return null;
  const text = await files.readText('tokenizer.json');
  const configText = (await files.exists('tokenizer_config.json'))
    ? await files.readText('tokenizer_config.json')
    : '{}';
  const known = builtTokenizers.get(text)?.get(configText);
  if (known) return known;
  const parse = (t: string, file: string) => parseJsonObject(t, `${files.name}/${file}`);
  const tok = new PhiTokenizer(
    parse(text, 'tokenizer.json'),
    parse(configText, 'tokenizer_config.json'),
    `${files.name}/tokenizer.json`,
  );
  tok.source = { tokenizerJson: text, configJson: configText };
  if (!builtTokenizers.has(text)) {
    if (builtTokenizers.size >= TOKENIZER_CACHE)
      builtTokenizers.delete(builtTokenizers.keys().next().value!);
    builtTokenizers.set(text, new Map());
  }
  builtTokenizers.get(text)!.set(configText, tok);
  return tok;
}

/** The memory plan's options for a config and load options (the kernels' threads aside). */
function memoryOptions(config: PhiConfig, o: LoadOptions): Omit<MemoryOptions, 'threads'> {
  const maxPositions = o.maxPositions ?? config.maxPositions;
  return {
    dtype: o.dtype ?? 'auto',
    maxPositions,
    maxBatch: stepRows(o.maxBatch ?? DEFAULT_MAX_BATCH, maxPositions),
    parallel: o.parallel ?? 1,
    training: o.training,
  };
}

/** Why a model cannot load into wasm32 memory, and what would fit. */
function tooLarge(ck: Checkpoint, cfg: PhiConfig, o: MemoryOptions, need: number): string {
  const fits = (p: Partial<MemoryOptions>) =>
    planMemory(ck, cfg, { ...o, ...p }).total <= WASM32_BYTES - (1 << 20);
  const hints: string[] = [];
  for (const dtype of ['f16', 'q8', 'q4'] as const)
    if (dtype !== o.dtype && fits({ dtype })) hints.push(`--dtype ${dtype}`);
  let ctx = o.maxPositions;
  while (ctx > 1 && !fits({ maxPositions: ctx })) ctx = Math.floor(ctx / 2);
  // (a training sequence needs its positions: no shorter context than --seq)
  const trainable = ctx >= (o.training?.seq ?? 0);
  if (ctx < o.maxPositions && trainable && fits({ maxPositions: ctx }))
    hints.push(`--context ${ctx}`);
  if (o.parallel > 1 && fits({ parallel: 1 })) hints.push('--parallel 1');
  const t = o.training;
  if (t && t.checkpointing === 'off' && fits({ training: { ...t, checkpointing: 'on' } }))
    hints.push('--gradient-checkpointing on');
  if (t) {
    let seq = t.seq;
    // a KV cache sized to the sequence (phi finetune's default) shrinks with it
    const contextFor = (s: number) => (o.maxPositions === t.seq ? s : o.maxPositions);
    const at = (s: number) => fits({ training: { ...t, seq: s }, maxPositions: contextFor(s) });
    while (seq > 1 && !at(seq)) seq = Math.floor(seq / 2);
    if (seq < t.seq && at(seq)) hints.push(`--seq ${seq}`);
  }
  return (
    `this model needs ${formatBytes(need)} as ${o.dtype === 'auto' ? 'stored' : o.dtype}` +
    ` (${o.parallel} slot(s) of ${o.maxPositions} positions` +
    (o.training ? `, training on ${o.training.seq} tokens` : '') +
    `), more than the 4 GiB of wasm32 memory` +
    (hints.length ? `; it fits with ${hints.join(' or ')}` : '') +
    ' (or use --backend js)'
  );
}

export async function loadPhiFrom(files: ModelFiles, options: LoadOptions = {}): Promise<Phi> {
  if (!(await files.exists('config.json'))) throw new Error(`${files.name}: no config.json`);
  const config = parseConfig(await files.readText('config.json'), `${files.name}/config.json`);
  validateLoadOptions(options, config);
  // adapters first: a bad one fails before the weights are read
  const unmerged = new Map<string, LoraAdapter>();
  for (const [name, a] of Object.entries(options.adapters ?? {}))
    unmerged.set(name, await readAdapter(a, config));
  const merged: LoraAdapter[] = [];
  for (const a of [options.merge ?? []].flat()) merged.push(await readAdapter(a, config));
  const adapters = { unmerged: [...unmerged.values()], merged };
  const checkpoint = await Checkpoint.open(files);
  try {
    checkTensors(checkpoint, config);
    let kernels = options.kernels;
    if (!kernels && (options.backend ?? 'wasm') === 'wasm') {
      const threads = options.threads ?? 1;
      const plan = { ...memoryOptions(config, options), threads, adapters };
      const need = planMemory(checkpoint, config, plan).total;
      if (need > WASM32_BYTES - (1 << 20))
        throw new Error(tooLarge(checkpoint, config, plan, need));
      kernels = await createWasmKernels({
        ...options.wasm,
        threads,
        reserveBytes: need,
        scratch: scratchSizes(config, plan),
      });
    }
    kernels ??= createRefKernels();
    try {
      const weights = await loadWeights(checkpoint, config, kernels, options, merged);
      const model = new PhiForCausalLM(config, weights, kernels, options);
      const tokenizer = await loadTokenizer(files);
      const eos = await eosFromGenerationConfig(files, config.vocabSize);
      const phi = new Phi(model, tokenizer, eos, options.parallel);
      for (const [name, a] of unmerged) phi.addAdapter(name, a);
      return phi;
    } catch (e) {
      kernels.close?.();
      throw e;
    }
  } finally {
    await checkpoint.close();
  }
}
