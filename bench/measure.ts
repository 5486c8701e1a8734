// One benchmark configuration (weight dtype x threads), run in its own process so that its
// peak resident memory is its own. Prints one JSON line: the measurements of every
// requested prompt length, and this configuration's compute roofs. Run by bench/run.ts;
// usable alone:
//   node dist/bench/measure.js --dtype f16 --threads 2 --prefill 128,512 --decode 128 --runs 3
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { WeightDType } from '../src/kernels/types.js';
import { createWasmKernels, type WasmKernels } from '../src/kernels/wasm/index.js';
import type { PhiForCausalLM } from '../src/model/causal_lm.js';
import { PHI_1_5 } from '../src/model/config.js';
import { uploadAdapter, type AdapterUse, type LoraWeights } from '../src/model/lora.js';
import { loadPhi } from '../src/node/index.js';
import { readWasm, spawnWorker } from '../src/node/wasm.js';
import { bestSeconds, median, roofWeight } from './batch-roof.js';
import {
  blockWeights,
  randomAdapter,
  syntheticPhi,
  weightBytesPerToken,
  weightsPerToken,
} from './synthetic.js';

export interface Measurement {
  prefill_tokens: number;
  /** median of the runs */
  prefill_tokens_per_s: number;
  prefill_tokens_per_s_best: number;
  prefill_seconds: number[];
  decode_tokens: number;
  decode_context_tokens: number;
  /** median of the runs */
  decode_tokens_per_s: number;
  decode_tokens_per_s_best: number;
  decode_seconds: number[];
}

/** What the matmul kernels of this configuration do from cache, where memory cannot limit them. */
export interface ComputeRoof {
  /** Decode (one token): weights a second, the matrix resident in each thread's L2. */
  decode_weights_per_s: number;
  /** Prefill (64 tokens a step): multiply-adds a second, from cache. */
  prefill_macs_per_s: number;
  /**
   * The f32 arithmetic peak of wasm SIMD on these threads: flops a second of multiply-adds
   * from registers (WasmKernels.fmaPeak), what a compute-bound GEMM can at most reach.
   */
  fma_peak_flops_per_s: number;
}

/** Where one decoded token's time goes, per kernel call kind (ms a token). */
export interface Profile {
  ms_per_token: Record<string, number>;
  tokens: number;
  context: number;
}

export interface ConfigResult {
  dtype: WeightDType;
  threads: number;
  backend: string;
  /** q4 with the int8 dot: the integer sums the kernels picked: "i32", "i16", or "i16 for 9 of 11 shapes" (else null) */
  q4_sums: string | null;
  weights: string;
  weight_bytes_per_token: number;
  weights_per_token: number;
  /** multiply-adds a prompt token costs (the blocks' matrices; lm_head for the last one only) */
  prefill_macs_per_token: number;
  compute_roof: ComputeRoof;
  measurements: Measurement[];
  peak_rss_bytes: number;
  load_seconds: number;
  /** --lora R[,R..]: decode with random adapters of these ranks, unmerged, against none */
  lora?: LoraResult[];
  profile?: Profile;
}

/** Decode with one unmerged adapter against none, the runs interleaved in one process. */
export interface LoraResult {
  rank: number;
  /** median of the runs */
  decode_tokens_per_s: number;
  /** the no-adapter runs interleaved with these (median) */
  decode_tokens_per_s_no_adapter: number;
  /** median over the rounds of (no adapter's seconds / this one's), each pair run back to back */
  ratio: number;
  ratios: number[];
  /** copying the adapter into the kernels' memory (B transposed) */
  upload_seconds: number;
  /** its f32 terms */
  bytes: number;
}

/** Which integer sums the q4 matmuls ran with (src/kernels/wasm/pick.ts), where there was a choice. */
function q4Sums(k: unknown): ConfigResult['q4_sums'] {
  const w = k as Partial<WasmKernels>;
  if (!w.int8Dot || !w.q4Pick) return null;
  if (w.q4Sums !== 'auto') return w.q4Sums ?? null;
  const picks = Object.values(w.q4Pick.choices);
  const i16 = picks.filter((v) => v === 1).length;
  if (!picks.length) return null;
  return i16 === picks.length
    ? 'i16'
    : i16 === 0
      ? 'i32'
      : `i16 for ${i16} of ${picks.length} shapes`;
}

/** Deterministic prompt ids (values do not change speed). */
const promptIds = (n: number) => Array.from({ length: n }, (_, i) => (i * 7919 + 11) % 50000);

function measure(
  model: PhiForCausalLM,
  prefill: number,
  decode: number,
  runs: number,
): Measurement {
  const prompt = promptIds(prefill);
  const cache = model.newCache();
  const prefillSeconds: number[] = [];
  const decodeSeconds: number[] = [];
  for (let r = 0; r < runs; r++) {
    let t = performance.now();
    let logits = model.forward(prompt, 0, cache);
    prefillSeconds.push((performance.now() - t) / 1000);
    if (decode > 0) {
      t = performance.now();
      for (let i = 0; i < decode; i++) {
        let next = 0;
        for (let v = 1; v < logits.length; v++) if (logits[v] > logits[next]) next = v; // greedy
        logits = model.forward([next], prefill + i, cache);
      }
      decodeSeconds.push((performance.now() - t) / 1000);
    }
  }
  const rate = (n: number, s: number[], f: (x: number[]) => number) => (s.length ? n / f(s) : 0);
  return {
    prefill_tokens: prefill,
    prefill_tokens_per_s: rate(prefill, prefillSeconds, median),
    prefill_tokens_per_s_best: rate(prefill, prefillSeconds, (s) => Math.min(...s)),
    prefill_seconds: prefillSeconds,
    decode_tokens: decode,
    decode_context_tokens: prefill,
    decode_tokens_per_s: rate(decode, decodeSeconds, median),
    decode_tokens_per_s_best: rate(decode, decodeSeconds, (s) => Math.min(...s)),
    decode_seconds: decodeSeconds,
  };
}

/** Seconds to decode `decode` greedy tokens after a `prefill`-token prompt, with `use` or none. */
function decodeSeconds(
  model: PhiForCausalLM,
  use: AdapterUse | null,
  prefill: number,
  decode: number,
): number {
  const cache = model.newCache();
  if (use) cache.useAdapter(use);
  let logits = model.forward(promptIds(prefill), 0, cache);
  const t = performance.now();
  for (let i = 0; i < decode; i++) {
    let next = 0;
    for (let v = 1; v < logits.length; v++) if (logits[v] > logits[next]) next = v;
    logits = model.forward([next], prefill + i, cache);
  }
  return (performance.now() - t) / 1000;
}

/**
 * Each round decodes with no adapter, then with each one: a ratio is taken within a round,
 * seconds apart, since this machine's speed drifts by the minute.
 */
function adapterRounds(
  model: PhiForCausalLM,
  uploads: { r: number; lora: LoraWeights; seconds: number }[],
  prefill: number,
  decode: number,
  rounds: number,
): LoraResult[] {
  const none: number[] = [];
  const each = uploads.map(() => [] as number[]);
  for (let round = 0; round < Math.max(3, rounds); round++) {
    none.push(decodeSeconds(model, null, prefill, decode));
    uploads.forEach((u, i) =>
      each[i].push(decodeSeconds(model, { lora: u.lora, scale: 1 }, prefill, decode)),
    );
  }
  return uploads.map((u, i) => {
    const ratios = each[i].map((s, k) => none[k] / s);
    let bytes = 0;
    for (const terms of u.lora.layers)
      for (const t of Object.values(terms)) bytes += (t.A.data.length + t.Bt.length) * 4;
    return {
      rank: u.r,
      decode_tokens_per_s: decode / median(each[i]),
      decode_tokens_per_s_no_adapter: decode / median(none),
      ratio: median(ratios),
      ratios,
      upload_seconds: u.seconds,
      bytes,
    };
  });
}

/**
 * The matmul kernels' own rate with the weights in cache, called over and over, best of 5
 * timings: decode on 256 rows of 2048 weights a thread (at most 1 MiB: inside each core's
 * L2); prefill, 64 tokens a step, on 2048 rows a thread (each row block stays in cache
 * while the 64 tokens pass over it, as in the model).
 */
async function computeRoof(dtype: WeightDType, threads: number): Promise<ComputeRoof> {
  const k = await createWasmKernels({ threads, readWasm, spawnWorker, reserveBytes: 96 << 20 });
  const [n, T] = [2048, 64];
  const d = 256 * threads;
  const w = roofWeight(k, dtype, d, n);
  const D = 2048 * threads;
  const big = roofWeight(k, dtype, D, n);
  const x = k.allocF32(T * n);
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i);
  const out = k.allocF32(T * D);
  // enough calls first for the kernels' timing picks (q4's integer sums) to settle
  const settle = 2 * (k.q4Pick.warm + k.q4Pick.trials);
  const best = (f: () => void, reps: number) => bestSeconds(f, reps, settle);
  const decode = best(() => k.matmul(out, x, w, null, 1, n, d), 200);
  const prefill = best(() => k.matmul(out, x, big, null, T, n, D), 2);
  const peak = k.fmaPeak('all');
  k.close();
  return {
    decode_weights_per_s: (d * n) / decode,
    prefill_macs_per_s: (T * D * n) / prefill,
    fma_peak_flops_per_s: peak,
  };
}

/**
 * Time each kernel call of `tokens` decode steps after a 128-token prompt: matmuls by shape,
 * attention, the elementwise kernels; the rest (embedding, residual adds, sampling-free
 * bookkeeping in TypeScript) is what the step took beyond them.
 */
function profile(model: PhiForCausalLM, tokens = 16): Profile {
  const k = model.kernels as unknown as Record<string, (...a: unknown[]) => void>;
  const times: Record<string, number> = {};
  const original: [string, (...a: unknown[]) => void][] = [];
  const D = model.config.hiddenSize;
  const names: Record<string, string> = {
    [`${D}x${D}`]: 'q, k, v, dense',
    [`${model.config.intermediateSize}x${D}`]: 'fc1',
    [`${D}x${model.config.intermediateSize}`]: 'fc2',
    [`${model.config.vocabSize}x${D}`]: 'lm_head',
  };
  const wrap = (name: string, key: (a: unknown[]) => string) => {
    const f = k[name].bind(model.kernels);
    original.push([name, k[name]]);
    k[name] = (...a: unknown[]) => {
      const t = performance.now();
      f(...a);
      const id = key(a);
      times[id] = (times[id] ?? 0) + performance.now() - t;
    };
  };
  wrap('matmul', (a) => names[`${a[6]}x${a[5]}`] ?? `matmul ${a[6]}x${a[5]}`);
  wrap('attention', () => 'attention');
  wrap('gelu_new', () => 'gelu_new');
  wrap('layernorm', () => 'layernorm');
  wrap('rotary', () => 'rotary');
  const cache = model.newCache();
  model.forward(promptIds(128), 0, cache);
  for (const key of Object.keys(times)) delete times[key];
  const t0 = performance.now();
  for (let i = 0; i < tokens; i++) model.forward([i + 1], 128 + i, cache);
  const total = performance.now() - t0;
  for (const [name, f] of original) k[name] = f;
  const kernels = Object.values(times).reduce((a, b) => a + b, 0);
  times['the rest (TypeScript)'] = total - kernels;
  return {
    ms_per_token: Object.fromEntries(Object.entries(times).map(([n, ms]) => [n, ms / tokens])),
    tokens,
    context: 128,
  };
}

const USAGE =
  'usage: node dist/bench/measure.js [--dtype f16|f32|q8|q4] [--threads N] [--prefill N[,N..]] ' +
  '[--decode N[,N..]] [--runs N] [--model DIR] [--profile] [--lora R[,R..]]   (one JSON line on stdout)';

async function main() {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    console.log(USAGE);
    return;
  }
  const { values } = parseArgs({
    options: {
      dtype: { type: 'string', default: 'f16' },
      threads: { type: 'string', default: '1' },
      prefill: { type: 'string', default: '128' },
      decode: { type: 'string', default: '128' },
      runs: { type: 'string', default: '3' },
      model: { type: 'string' },
      profile: { type: 'boolean' },
      lora: { type: 'string', default: '0' },
    },
  });
  const dtype = values.dtype as WeightDType;
  const threads = Number(values.threads);
  const prefills = values.prefill!.split(',').map(Number);
  const decodes = values.decode!.split(',').map(Number); // one per prefill, or one for all
  const runs = values.runs!.split(',').map(Number);
  const maxPositions = Math.max(160, ...prefills.map((p, i) => p + (decodes[i] ?? decodes[0]))) + 1;

  const compute = await computeRoof(dtype, threads);
  const t0 = performance.now();
  let model: PhiForCausalLM;
  let weights = 'synthetic';
  if (values.model && existsSync(values.model)) {
    weights = values.model;
    const phi = await loadPhi(values.model, { dtype, threads, maxPositions });
    model = phi.model;
  } else {
    const kernels = await createWasmKernels({
      threads,
      readWasm,
      spawnWorker,
      reserveBytes: 3.4e9,
    });
    model = syntheticPhi(kernels, dtype, { maxPositions });
  }
  const loadSeconds = (performance.now() - t0) / 1000;
  // --lora R[,R..]: random adapters of these ranks on all six targets, applied unmerged
  const loraRanks = values
    .lora!.split(',')
    .map(Number)
    .filter((r) => r > 0);
  const uploads = loraRanks.map((r) => {
    const t1 = performance.now();
    const lora = uploadAdapter(`r${r}`, randomAdapter(model.config, r), model.kernels, 1);
    return { r, lora, seconds: (performance.now() - t1) / 1000 };
  });
  // warm-up: compile tiers, fault in pages, wake the workers
  const warm = model.newCache();
  model.forward(promptIds(16), 0, warm);
  for (let i = 0; i < 4; i++) model.forward([i], 16 + i, warm);

  const measurements = prefills.map((p, i) =>
    measure(model, p, decodes[i] ?? decodes[0], runs[i] ?? runs[0]),
  );
  const lora = uploads.length
    ? adapterRounds(model, uploads, prefills[0], decodes[0], runs[0])
    : undefined;
  const result: ConfigResult = {
    dtype,
    threads,
    backend: model.kernels.name,
    q4_sums: dtype === 'q4' ? q4Sums(model.kernels) : null,
    weights,
    weight_bytes_per_token: weightBytesPerToken(PHI_1_5, dtype),
    weights_per_token: weightsPerToken(PHI_1_5),
    prefill_macs_per_token: blockWeights(PHI_1_5),
    compute_roof: compute,
    measurements,
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
    load_seconds: loadSeconds,
    lora,
    profile: values.profile ? profile(model) : undefined,
  };
  model.kernels.close?.();
  process.stdout.write(JSON.stringify(result) + '\n');
}

await main().catch((e: Error) => {
  // a wrong flag is a line and the usage, not a stack trace
  console.error(`measure: ${e.message}\n${USAGE}`);
  process.exitCode = 1;
});
