// One benchmark configuration (weight dtype x threads), run in its own process so that its
// peak resident memory is its own. Prints one JSON line: the measurements of every
// requested prompt length. Run by bench/run.ts; usable alone:
//   node dist/bench/measure.js --dtype f16 --threads 2 --prefill 128,512 --decode 128 --runs 3
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { WeightDType } from '../src/kernels/types.js';
import { createWasmKernels } from '../src/kernels/wasm/index.js';
import { PHI_1_5 } from '../src/model/config.js';
import type { PhiForCausalLM } from '../src/model/causal_lm.js';
import { loadPhi } from '../src/node/index.js';
import { readWasm, spawnWorker } from '../src/node/wasm.js';
import { syntheticPhi, weightBytesPerToken } from './synthetic.js';

export interface Measurement {
  prefill_tokens: number;
  prefill_tokens_per_s: number;
  prefill_seconds: number[];
  decode_tokens: number;
  decode_context_tokens: number;
  decode_tokens_per_s: number;
  decode_seconds: number[];
}

export interface ConfigResult {
  dtype: WeightDType;
  threads: number;
  backend: string;
  weights: string;
  weight_bytes_per_token: number;
  bandwidth_gb_per_s: number;
  measurements: Measurement[];
  peak_rss_bytes: number;
  load_seconds: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

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
  return {
    prefill_tokens: prefill,
    prefill_tokens_per_s: prefill / median(prefillSeconds),
    prefill_seconds: prefillSeconds,
    decode_tokens: decode,
    decode_context_tokens: prefill,
    decode_tokens_per_s: decode > 0 ? decode / median(decodeSeconds) : 0,
    decode_seconds: decodeSeconds,
  };
}

async function main() {
  const { values } = parseArgs({
    options: {
      dtype: { type: 'string', default: 'f16' },
      threads: { type: 'string', default: '1' },
      prefill: { type: 'string', default: '128' },
      decode: { type: 'string', default: '128' },
      runs: { type: 'string', default: '3' },
      model: { type: 'string' },
    },
  });
  const dtype = values.dtype as WeightDType;
  const threads = Number(values.threads);
  const prefills = values.prefill!.split(',').map(Number);
  const decodes = values.decode!.split(',').map(Number); // one per prefill, or one for all
  const runs = values.runs!.split(',').map(Number);
  const maxPositions = Math.max(...prefills.map((p, i) => p + (decodes[i] ?? decodes[0]))) + 1;

  const t0 = performance.now();
  let model: PhiForCausalLM;
  let weights = 'synthetic';
  let bandwidth = 0;
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
  const k = model.kernels as { readBandwidth?: (b: Float32Array) => number };
  if (k.readBandwidth) {
    // stream the KV cache region (hundreds of MB, already resident) as the bandwidth probe
    bandwidth = k.readBandwidth(model.newCache().keys) / 1e9;
  }

  // warm-up: compile tiers, fault in pages, wake the workers
  const warm = model.newCache();
  model.forward(promptIds(16), 0, warm);
  for (let i = 0; i < 4; i++) model.forward([i], 16 + i, warm);

  const measurements = prefills.map((p, i) =>
    measure(model, p, decodes[i] ?? decodes[0], runs[i] ?? runs[0]),
  );
  const result: ConfigResult = {
    dtype,
    threads,
    backend: model.kernels.name,
    weights,
    weight_bytes_per_token: weightBytesPerToken(PHI_1_5, dtype),
    bandwidth_gb_per_s: bandwidth,
    measurements,
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
    load_seconds: loadSeconds,
  };
  model.kernels.close?.();
  process.stdout.write(JSON.stringify(result) + '\n');
}

await main();
