// Loading a Phi from any ModelFiles (a directory in Node, URLs, in-memory buffers).
import type { ModelFiles } from './io/source.js';
import { createRefKernels } from './kernels/ref/index.js';
import type { Kernels } from './kernels/types.js';
import { parseConfig } from './model/config.js';
import { PhiForCausalLM } from './model/phi.js';
import { Phi } from './phi.js';
import { PhiTokenizer } from './tokenizer/tokenizer.js';
import { Checkpoint, loadWeights, type LoadWeightsOptions } from './weights/load.js';

export interface LoadOptions extends LoadWeightsOptions {
  /** Kernel backend (default: the readable TypeScript kernels). */
  kernels?: Kernels;
  /** Positions of KV cache to allocate (default: the model's full context). */
  maxPositions?: number;
  /** Most tokens per forward step during prefill (default 64). */
  maxBatch?: number;
}

async function readJson(files: ModelFiles, file: string): Promise<Record<string, unknown>> {
  const text = await files.readText(file);
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${files.name}/${file}: not valid JSON (${(e as Error).message})`);
  }
}

export async function loadTokenizer(files: ModelFiles): Promise<PhiTokenizer | null> {
  if (!(await files.exists('tokenizer.json'))) return null;
  const json = await readJson(files, 'tokenizer.json');
  const config = (await files.exists('tokenizer_config.json'))
    ? await readJson(files, 'tokenizer_config.json')
    : {};
  return new PhiTokenizer(json, config);
}

export async function loadPhiFrom(files: ModelFiles, options: LoadOptions = {}): Promise<Phi> {
  if (!(await files.exists('config.json'))) throw new Error(`${files.name}: no config.json`);
  const config = parseConfig(await files.readText('config.json'), `${files.name}/config.json`);
  const kernels = options.kernels ?? createRefKernels();
  const checkpoint = await Checkpoint.open(files);
  try {
    const weights = await loadWeights(checkpoint, config, kernels, options);
    const model = new PhiForCausalLM(config, weights, kernels, options);
    return new Phi(model, await loadTokenizer(files));
  } finally {
    await checkpoint.close();
  }
}
