// One training configuration (base dtype x threads): LoRA steps on phi-1.5 shapes with
// synthetic weights, forward + backward + AdamW, in its own process so that its peak resident
// memory is its own. Prints one JSON line. Run by `npm run bench -- --train`; usable alone:
//   node dist/bench/train.js --dtype q4 --threads 2 --seq 256 --rank 8 --steps 3 [--layers 24]
//     [--gradient-checkpointing auto|on|off]   (auto: activations kept when they fit, as phi finetune)
// --profile also times each kernel call of one step (matmuls by use, the LoRA products,
// attention, the elementwise kernels); what the step took beyond them is TypeScript.
import { parseArgs } from 'node:util';
import type { WeightDType } from '../src/kernels/types.js';
import { createWasmKernels } from '../src/kernels/wasm/index.js';
import { PhiForCausalLM } from '../src/model/causal_lm.js';
import { PHI_1_5 } from '../src/model/config.js';
import { LORA_MODULES } from '../src/model/lora.js';
import { readWasm, spawnWorker } from '../src/node/wasm.js';
import { ADAMW_DEFAULTS, AdamW } from '../src/train/adamw.js';
import { CausalLMTrainer } from '../src/train/causal_lm.js';
import { LoraParams } from '../src/train/lora_params.js';
import type { Checkpointing } from '../src/train/plan.js';
import { Rng } from '../src/train/rng.js';
import { median } from './batch-roof.js';
import { syntheticWeights } from './synthetic.js';

export interface TrainResult {
  dtype: WeightDType;
  threads: number;
  seq: number;
  rank: number;
  layers: number;
  backend: string;
  /** each block's activations kept from the forward, or recomputed in the backward */
  activations: 'kept' | 'recomputed';
  /** the Node that ran it */
  node: string;
  /** trained tokens (positions with a target) a second, forward + backward + optimizer */
  train_tokens_per_s: number;
  train_tokens_per_s_best: number;
  step_seconds: number[];
  peak_rss_bytes: number;
  /** the wasm memory the kernels hold (weights, training buffers, scratch) */
  wasm_bytes: number;
  trainable_parameters: number;
  load_seconds: number;
  /** ms of one step by kernel call; "TypeScript" is the step minus them */
  profile?: Record<string, number>;
}

const USAGE =
  'usage: node dist/bench/train.js [--dtype f16|f32|q8|q4] [--threads N] [--seq T] [--rank R] ' +
  '[--steps N] [--layers L] [--profile] [--gradient-checkpointing auto|on|off]   (one JSON line on stdout)';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      dtype: { type: 'string', default: 'f16' },
      threads: { type: 'string', default: '1' },
      seq: { type: 'string', default: '256' },
      rank: { type: 'string', default: '8' },
      steps: { type: 'string', default: '3' },
      layers: { type: 'string', default: String(PHI_1_5.numLayers) },
      profile: { type: 'boolean' },
      'gradient-checkpointing': { type: 'string', default: 'auto' },
    },
  });
  const dtype = values.dtype as WeightDType;
  const checkpointing = values['gradient-checkpointing'] as Checkpointing;
  if (!['auto', 'on', 'off'].includes(checkpointing))
    throw new Error(`--gradient-checkpointing ${checkpointing}?`);
  if (!['f16', 'f32', 'q8', 'q4'].includes(dtype)) throw new Error(`--dtype ${dtype}?`);
  const [threads, T, rank, steps, layers] = [
    values.threads,
    values.seq,
    values.rank,
    values.steps,
    values.layers,
  ].map(Number);
  const cfg = { ...PHI_1_5, numLayers: layers };

  const t0 = performance.now();
  const kernels = await createWasmKernels({ threads, readWasm, spawnWorker, reserveBytes: 3.6e9 });
  const model = new PhiForCausalLM(cfg, syntheticWeights(cfg, kernels, dtype), kernels, {
    maxPositions: T + 1,
  });
  const shape = { rank, alpha: 2 * rank, targets: LORA_MODULES };
  const params = LoraParams.init(cfg, shape, new Rng(0), kernels);
  // B starts at zero; give it values so every product is a real one
  const rng = new Rng(1);
  for (const t of params.terms) for (let i = 0; i < t.Bt.length; i++) t.Bt[i] = rng.next() * 0.01;
  const trainer = new CausalLMTrainer(model, params, T, false, checkpointing);
  const opt = new AdamW(params.tensors(), ADAMW_DEFAULTS);
  const loadSeconds = (performance.now() - t0) / 1000;

  const ids = Array.from({ length: T + 1 }, () => Math.floor(rng.next() * 50257));
  const step = () => {
    params.zeroGrad();
    trainer.run(ids.slice(0, T), ids.slice(1), T, true);
    opt.step(1e-4);
  };
  step(); // warm-up: compile tiers, fault in pages, wake the workers
  const seconds: number[] = [];
  for (let s = 0; s < steps; s++) {
    const t = performance.now();
    step();
    seconds.push((performance.now() - t) / 1000);
  }
  const result: TrainResult = {
    dtype,
    threads,
    seq: T,
    rank,
    layers,
    backend: kernels.name,
    activations: trainer.plan.keep ? 'kept' : 'recomputed',
    node: process.version,
    train_tokens_per_s: T / median(seconds),
    train_tokens_per_s_best: T / Math.min(...seconds),
    step_seconds: seconds,
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
    wasm_bytes: kernels.usedBytes,
    trainable_parameters: params.count(),
    load_seconds: loadSeconds,
    profile: values.profile ? profileStep(kernels, cfg, step) : undefined,
  };
  kernels.close?.();
  process.stdout.write(JSON.stringify(result) + '\n');
}

/** ms of one step in each kernel, by what the call does. */
function profileStep(kernels: object, cfg: typeof PHI_1_5, step: () => void) {
  const k = kernels as Record<string, (...a: unknown[]) => void>;
  const times: Record<string, number> = {};
  const original: [string, (...a: unknown[]) => void][] = [];
  const { hiddenSize: D, vocabSize: V } = cfg;
  const wrap = (name: string, key: (a: unknown[]) => string) => {
    const f = k[name].bind(kernels);
    original.push([name, k[name]]);
    k[name] = (...a: unknown[]) => {
      const t = performance.now();
      f(...a);
      const id = key(a);
      times[id] = (times[id] ?? 0) + performance.now() - t;
    };
  };
  // matmul(y, x, w, b, T, n, d): the frozen weights' forward, their dy·W (through a transposed
  // chunk, so n is the layer's output width), and the LoRA down-projections (d = r)
  wrap('matmul', (a) => {
    const [n, d] = [a[5] as number, a[6] as number];
    if (d < 64 || n < 64) return 'LoRA products (matmul)';
    if (d === V || n === V) return 'lm_head';
    return d === D && n === D ? 'matmul D x D' : 'matmul D x F';
  });
  wrap('lora_add', () => 'LoRA products (lora_add)');
  wrap('attention', () => 'attention forward');
  wrap('gelu_new', () => 'gelu_new');
  wrap('layernorm', () => 'layernorm');
  wrap('rotary', () => 'rotary');
  wrap('attention_backward', () => 'attention_backward');
  wrap('gelu_backward', () => 'gelu_backward');
  wrap('transpose_rows', () => 'transpose_rows');
  const t0 = performance.now();
  step();
  const total = performance.now() - t0;
  for (const [name, f] of original) k[name] = f;
  const inKernels = Object.values(times).reduce((a, b) => a + b, 0);
  times['TypeScript (the rest)'] = total - inKernels;
  times['step'] = total;
  return Object.fromEntries(Object.entries(times).map(([n, ms]) => [n, Math.round(ms)]));
}

await main().catch((e: Error) => {
  console.error(`train: ${e.message}\n${USAGE}`);
  process.exitCode = 1;
});
