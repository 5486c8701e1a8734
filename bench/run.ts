// `npm run bench`: how fast phi-1.5 runs here, which limit binds it (memory or the kernels'
// arithmetic), and how it compares with the recorded CUDA baseline.
//
//   npm run bench                  default matrix (f16 on 1 and all threads, q8 and q4 on all), ~5 minutes
//   npm run bench -- --full        every thread count, prompts of 128 and 512, more runs
//   npm run bench -- --json        one JSON object on stdout (the table goes to stderr)
//   npm run bench -- --threads 2   only these thread counts
//   npm run bench -- --serve       also the HTTP server with 1, 2 and 4 concurrent streams
//   npm run bench -- --vs-llama DIR  only the same-sitting comparison with llama.cpp's llama-bench
//                                  (bench/vs-llama.ts; with --gguf DIR, --node PATH,PATH, --rounds N)
//   npm run bench -- --adapter     only LoRA: decode with random rank-8 and rank-16 adapters on all
//                                  six targets, unmerged, against none (merged runs the base kernels);
//                                  with --serve, also phi serve: 4 streams on 4 adapters against one
//   npm run bench -- --constrained only constrained decoding: decode under a mid-size JSON Schema
//                                  against unconstrained, f16 and q4 (or --dtype), interleaved rounds
//                                  (bench/constrained.ts; --tokens, --rounds), with the grammar's
//                                  compile time and the tokenizer-info build time
//   npm run bench -- --train       only training: LoRA rank 8 on all six targets, seq 256, f16 and q4
//                                  bases (bench/train.ts; --seq, --rank, --steps, --layers, --dtype,
//                                  --gradient-checkpointing auto,on and --node A,B: one row each),
//                                  and PyTorch's f32 step on the same shapes when /usr/bin/python3
//                                  has torch (../shared/anchors/torch-lora/lora_step.py, or --anchor FILE)
//
// Weights: microsoft/phi-1_5 when it is in the Hugging Face cache (or weights/phi-1_5), else
// synthetic weights of the exact phi-1.5 shapes (speed does not depend on values); every
// output says which. Each configuration runs in a child process, so its peak resident memory
// is its own.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createWasmKernels } from '../src/kernels/wasm/index.js';
import { WASM32_BYTES } from '../src/memory.js';
import { PHI_1_5 } from '../src/model/config.js';
import { cachedSnapshot, DEFAULT_MODEL, parseModelRef } from '../src/node/hub.js';
import { readWasm, spawnWorker } from '../src/node/wasm.js';
import { chart } from './chart.js';
import type { ConstrainedRow } from './constrained.js';
import type { ConfigResult, Profile } from './measure.js';
import type { ServeLoraRow } from './serve-lora.js';
import type { ServeRow } from './serve.js';
import type { TrainResult } from './train.js';
import { weightBytesPerToken } from './synthetic.js';
import { GGUF_TYPE, type VsDType, vsLlama, vsTable } from './vs-llama.js';

const HERE = path.dirname(fileURLToPath(import.meta.url)); // dist/bench
const ROOT = path.resolve(HERE, '..', '..');
const BASELINE = path.join(ROOT, 'bench', 'fixtures', 'cuda-baseline.json');
const RESULTS = path.join(ROOT, 'bench', 'results');

export interface BenchRow {
  dtype: string;
  threads: number;
  prefill_tokens: number;
  /** median of the runs */
  prefill_tokens_per_s: number;
  decode_tokens: number;
  /** median of the runs */
  decode_tokens_per_s: number;
  /** decode GB/s of weights over the measured read bandwidth */
  roofline_fraction: number;
  peak_rss_bytes: number;
  // extensions
  backend: string;
  /** q4 on the int8 dot: the integer sums picked (i32 or i16 lanes), else null */
  q4_sums: string | null;
  decode_context_tokens: number;
  decode_gb_per_s: number;
  prefill_runs: number;
  decode_runs: number;
  prefill_tokens_per_s_best: number;
  decode_tokens_per_s_best: number;
  /** bandwidth / weight bytes per token: decode if reading the weights were all it did */
  memory_roof_tokens_per_s: number;
  /** the decode kernel's from-cache rate / weights per token: decode if memory were free */
  compute_roof_tokens_per_s: number;
  /** which roof is lower, so binds decode */
  decode_bound: 'memory' | 'compute';
  /** decode (median) over the lower roof */
  decode_fraction_of_roof: number;
  /** the prefill kernel's from-cache rate (64 tokens a step) / weights per token */
  prefill_roof_tokens_per_s: number;
  /** prefill (median) over its roof */
  prefill_fraction_of_roof: number;
  /**
   * f16/f32 prefill (median) flops a second (2 a weight a token) over the wasm SIMD f32
   * multiply-add peak; null for q8/q4, whose integer dot products are not bound by that peak
   */
  prefill_fraction_of_peak: number | null;
}

interface CudaBaseline {
  gpu: string;
  dtype: string;
  prefill_tokens: number;
  prefill_tokens_per_s: number;
  decode_tokens: number;
  decode_tokens_per_s: number;
  [k: string]: unknown;
}

function log(s: string) {
  process.stderr.write(s + '\n');
}

/** The real weights if this machine has them: the Hugging Face cache, or weights/phi-1_5. */
function realModel(): string | null {
  const cached = cachedSnapshot(parseModelRef(DEFAULT_MODEL)!);
  if (cached) return cached;
  const dir = path.join(ROOT, 'weights', 'phi-1_5');
  return existsSync(path.join(dir, 'config.json')) ? dir : null;
}

/**
 * Memory-read bandwidth from WebAssembly with t threads, GB/s: the median of 7 passes over
 * 1 GiB, 32 times this machine's last-level cache, so the figure is memory's, not a cache's.
 */
async function bandwidth(threads: number): Promise<number> {
  const k = await createWasmKernels({
    threads,
    readWasm,
    spawnWorker,
    reserveBytes: 2 ** 30 + (8 << 20),
  });
  const buf = k.allocF32(2 ** 28).fill(1);
  const bw = k.readBandwidth(buf) / 1e9;
  k.close();
  return bw;
}

/** Run one child process (measure.js or serve.js) and parse its last line of JSON. */
function child<T>(script: string, args: string[], node = process.execPath): T {
  const out = execFileSync(node, [path.join(HERE, script), ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return JSON.parse(out.trim().split('\n').pop()!) as T;
}

/** The rows of one measured configuration, with its roofs. */
function rowsOf(r: ConfigResult, bw: number): BenchRow[] {
  return r.measurements.map((m) => {
    const gbs = (r.weight_bytes_per_token * m.decode_tokens_per_s) / 1e9;
    const memoryRoof = (bw * 1e9) / r.weight_bytes_per_token;
    const computeRoof = r.compute_roof.decode_weights_per_s / r.weights_per_token;
    const prefillRoof = r.compute_roof.prefill_macs_per_s / r.prefill_macs_per_token;
    return {
      dtype: r.dtype,
      threads: r.threads,
      prefill_tokens: m.prefill_tokens,
      prefill_tokens_per_s: m.prefill_tokens_per_s,
      decode_tokens: m.decode_tokens,
      decode_tokens_per_s: m.decode_tokens_per_s,
      roofline_fraction: gbs / bw,
      peak_rss_bytes: r.peak_rss_bytes,
      backend: r.backend,
      q4_sums: r.q4_sums,
      decode_context_tokens: m.decode_context_tokens,
      decode_gb_per_s: gbs,
      prefill_runs: m.prefill_seconds.length,
      decode_runs: m.decode_seconds.length,
      prefill_tokens_per_s_best: m.prefill_tokens_per_s_best,
      decode_tokens_per_s_best: m.decode_tokens_per_s_best,
      memory_roof_tokens_per_s: memoryRoof,
      compute_roof_tokens_per_s: computeRoof,
      decode_bound: memoryRoof <= computeRoof ? 'memory' : 'compute',
      decode_fraction_of_roof: m.decode_tokens_per_s / Math.min(memoryRoof, computeRoof),
      prefill_roof_tokens_per_s: prefillRoof,
      prefill_fraction_of_roof: m.prefill_tokens_per_s / prefillRoof,
      prefill_fraction_of_peak:
        r.dtype === 'q8' || r.dtype === 'q4'
          ? null
          : (2 * r.prefill_macs_per_token * m.prefill_tokens_per_s) /
            r.compute_roof.fma_peak_flops_per_s,
    };
  });
}

/** The table people read (the report is for machines). */
function table(
  rows: BenchRow[],
  serve: ServeRow[],
  bw: Record<number, number>,
  label: string,
  cuda: CudaBaseline | null,
): string {
  const threads = Object.keys(bw).map(Number);
  const f = (v: number, w: number, d = 1) => v.toFixed(d).padStart(w);
  const lines = [
    '',
    `phi-1.5 on ${label}, batch 1, node ${process.version}. Read bandwidth from wasm: ` +
      threads.map((t) => `${bw[t].toFixed(1)} GB/s (${t} thread${t > 1 ? 's' : ''})`).join(', '),
    cuda
      ? `CUDA baseline: ${cuda.gpu}, ${cuda.dtype}, prefill ${cuda.prefill_tokens_per_s.toFixed(0)} tok/s, decode ${cuda.decode_tokens_per_s.toFixed(1)} tok/s (${path.relative(ROOT, BASELINE)})`
      : `CUDA baseline: missing (${path.relative(ROOT, BASELINE)} not found; run bench/cuda/record_baseline.py on a GPU)`,
    'tok/s: best of the runs (median); roofs in tok/s: memory = bandwidth / bytes a token,',
    'compute = the kernel from cache / weights a token; the lower one binds; % = median / roof;',
    'peak % (f16, f32) = prefill flops / the f32 multiply-add peak of wasm SIMD on those threads.',
    '',
    'dtype thr  prefill (n)          roof  % peak% | decode (after n)     memory compute bound    %   GB/s  x CUDA  RSS GiB',
  ];
  for (const r of rows) {
    const vsCuda = cuda
      ? (r.decode_tokens_per_s_best / cuda.decode_tokens_per_s).toFixed(3)
      : 'n/a';
    lines.push(
      `${r.dtype.padEnd(5)} ${String(r.threads).padStart(3)}  ` +
        `${f(r.prefill_tokens_per_s_best, 5)} (${f(r.prefill_tokens_per_s, 5)}) ${String(r.prefill_tokens).padStart(3)}  ` +
        `${f(r.prefill_roof_tokens_per_s, 5)} ${f(r.prefill_fraction_of_roof * 100, 3, 0)} ${r.prefill_fraction_of_peak === null ? '    -' : f(r.prefill_fraction_of_peak * 100, 5, 0)} | ` +
        `${f(r.decode_tokens_per_s_best, 5, 2)} (${f(r.decode_tokens_per_s, 5, 2)}) ${String(r.decode_context_tokens).padStart(3)}  ` +
        `${f(r.memory_roof_tokens_per_s, 6)} ${f(r.compute_roof_tokens_per_s, 7)} ${r.decode_bound.padEnd(7)} ` +
        `${f(r.decode_fraction_of_roof * 100, 3, 0)}  ${f(r.decode_gb_per_s, 5)}  ${vsCuda.padStart(6)}  ${(r.peak_rss_bytes / 2 ** 30).toFixed(2)}`,
    );
  }
  if (cuda) {
    const top = (key: 'decode_tokens_per_s_best' | 'prefill_tokens_per_s_best', rs: BenchRow[]) =>
      rs.reduce((a, b) => (b[key] > a[key] ? b : a), rs[0]);
    const best = top('decode_tokens_per_s_best', rows);
    const bestPre = top(
      'prefill_tokens_per_s_best',
      rows.filter((r) => r.prefill_tokens === cuda.prefill_tokens),
    );
    lines.push(
      '',
      `best decode ${best.decode_tokens_per_s_best.toFixed(2)} tok/s (${best.dtype}) = ${(best.decode_tokens_per_s_best / cuda.decode_tokens_per_s).toFixed(3)}x the CUDA baseline; ` +
        `best prefill (${cuda.prefill_tokens}) ${bestPre.prefill_tokens_per_s_best.toFixed(1)} tok/s (${bestPre.dtype}) = ${(bestPre.prefill_tokens_per_s_best / cuda.prefill_tokens_per_s).toFixed(4)}x`,
    );
  }
  if (serve.length) {
    lines.push(
      '',
      'server (phi serve, --parallel 4): concurrent streams, aggregate decode tok/s, time to first token',
    );
    lines.push(
      'roof: the most these streams can decode here (memory: bandwidth / bytes a step; compute: the',
      'matmuls from cache at that many tokens); ceiling = roof / one stream: the most batching can give.',
    );
    lines.push(
      'dtype clients  tok/s   x one   ttft ms (median, max)  each = solo |  roof  bound    %  ceiling',
    );
    for (const r of serve)
      lines.push(
        `${r.dtype.padEnd(5)} ${String(r.clients).padStart(7)}  ${f(r.aggregate_decode_tokens_per_s, 5)}  ${f(r.speedup, 5, 2)}   ${f(r.time_to_first_token_ms_median, 6, 0)} ${f(r.time_to_first_token_ms_max, 6, 0)}         ${String(r.streams_equal_solo).padEnd(5)} | ` +
          `${f(Math.min(r.memory_roof_tokens_per_s, r.compute_roof_tokens_per_s), 5)}  ${r.roof_bound.padEnd(7)} ${f(r.fraction_of_roof * 100, 3, 0)}  ${f(r.speedup_ceiling, 6, 2)}x`,
      );
  }
  return lines.join('\n');
}

async function main() {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean' },
      full: { type: 'boolean' },
      threads: { type: 'string' },
      serve: { type: 'boolean' },
      'vs-llama': { type: 'string' },
      gguf: { type: 'string' },
      node: { type: 'string' },
      rounds: { type: 'string' },
      dtype: { type: 'string' },
      adapter: { type: 'boolean' },
      train: { type: 'boolean' },
      constrained: { type: 'boolean' },
      tokens: { type: 'string', default: '48' },
      seq: { type: 'string', default: '256' },
      rank: { type: 'string', default: '8' },
      steps: { type: 'string', default: '3' },
      layers: { type: 'string', default: String(PHI_1_5.numLayers) },
      anchor: { type: 'string' },
      'gradient-checkpointing': { type: 'string', default: 'auto' },
    },
  });
  const cores = availableParallelism();
  const threadList = values.threads
    ? values.threads.split(',').map(Number)
    : values.full
      ? Array.from({ length: cores }, (_, i) => i + 1)
      : [...new Set([1, cores])];
  const top = Math.max(...threadList);
  if (values['vs-llama'] !== undefined) return compareWithLlama(values, top);
  if (values.adapter) return adapterCost(values, top);
  if (values.train) return trainCost(values, top);
  if (values.constrained) return constrainedCost(values, top);
  const model = realModel();
  log(
    `phi-wasm bench: phi-1.5 (${model ? `weights from ${model}` : 'SYNTHETIC weights of the exact phi-1.5 shapes'}), node ${process.version}, ${cores} cores`,
  );

  // dtypes that fit in wasm32 memory (f32 phi-1.5 is 5.7 GB: it does not)
  const dtypes = (['f16', 'f32', 'q8', 'q4'] as const).filter((d) => {
    const embedding = PHI_1_5.vocabSize * PHI_1_5.hiddenSize * (d === 'f32' ? 4 : 2);
    const bytes = weightBytesPerToken(PHI_1_5, d) + embedding;
    if (bytes >= WASM32_BYTES)
      log(
        `${d}: skipped, ${(bytes / 1e9).toFixed(2)} GB of weights do not fit in 4 GiB of wasm32 memory`,
      );
    return bytes < WASM32_BYTES;
  });

  const bw: Record<number, number> = {};
  for (const t of threadList) {
    bw[t] = await bandwidth(t);
    log(
      `memory-read bandwidth from wasm, ${t} thread${t > 1 ? 's' : ''}: ${bw[t].toFixed(1)} GB/s`,
    );
  }

  const rows: BenchRow[] = [];
  let profile:
    (Profile & { dtype: string; backend: string; node: string; command: string }) | null = null;
  for (const dtype of dtypes) {
    // default: f16 on 1 and all threads; the quantized types on all threads only
    const threadsFor = values.full || dtype === 'f16' ? threadList : [top];
    for (const threads of threadsFor) {
      const withLong = threads === top && dtype === 'f16';
      // default: a 128-token prompt + 64 decoded, and the 512 prompt for f16 at the top thread count
      const prefill = values.full || withLong ? [128, 512] : [128];
      const decode = values.full ? [128, 128] : [64, 32];
      const runs = values.full ? [5, 3] : [3, 1];
      log(`running ${dtype}, ${threads} thread${threads > 1 ? 's' : ''} ...`);
      const r = child<ConfigResult>('measure.js', [
        '--dtype',
        dtype,
        '--threads',
        String(threads),
        '--prefill',
        prefill.join(','),
        '--decode',
        decode.slice(0, prefill.length).join(','),
        '--runs',
        runs.slice(0, prefill.length).join(','),
        ...(model ? ['--model', model] : []),
        ...(withLong ? ['--profile'] : []),
      ]);
      rows.push(...rowsOf(r, bw[threads]));
      if (r.profile)
        profile = {
          ...r.profile,
          dtype,
          backend: r.backend,
          node: process.version,
          command: 'npm run bench',
        };
    }
  }

  const serve: ServeRow[] = [];
  if (values.serve) {
    for (const dtype of ['f16', 'q8', 'q4']) {
      log(`running phi serve, ${dtype}, 1, 2 and 4 concurrent streams ...`);
      serve.push(...child<ServeRow[]>('serve.js', ['--dtype', dtype, '--threads', String(top)]));
    }
  }

  const cuda: CudaBaseline | null = existsSync(BASELINE)
    ? JSON.parse(readFileSync(BASELINE, 'utf8'))
    : null;
  const report = {
    weights: model ?? 'synthetic',
    bandwidth_gb_per_s: Math.max(...Object.values(bw)),
    bandwidth_gb_per_s_by_threads: bw,
    weight_bytes_per_token: Object.fromEntries(
      dtypes.map((d) => [d, weightBytesPerToken(PHI_1_5, d)]),
    ),
    results: rows,
    serve,
    profile,
    cuda_baseline: cuda,
    node: process.version,
    cores,
    date: new Date().toISOString(),
    command: `npm run bench${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`,
  };
  const text = table(rows, serve, bw, model ? model : 'synthetic weights', cuda);
  (values.json ? log : (s: string) => process.stdout.write(s + '\n'))(text);

  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(path.join(RESULTS, 'latest.json'), JSON.stringify(report, null, 2) + '\n');
  writeFileSync(path.join(RESULTS, 'bench.svg'), chart(report));
  log(
    `\nwrote ${path.relative(ROOT, path.join(RESULTS, 'latest.json'))} and ${path.relative(ROOT, path.join(RESULTS, 'bench.svg'))}` +
      ' (copy them to bench/results/reference-DATE.* to keep them)',
  );
  if (values.json) process.stdout.write(JSON.stringify(report) + '\n');
}

/** --vs-llama DIR: only the comparison, alternating with llama-bench (bench/vs-llama.ts). */
function compareWithLlama(
  values: {
    'vs-llama'?: string;
    gguf?: string;
    node?: string;
    rounds?: string;
    dtype?: string;
    threads?: string;
    json?: boolean;
  },
  top: number,
) {
  const dtypes = (values.dtype ?? 'f16,q8,q4').split(',') as VsDType[];
  for (const d of dtypes)
    if (!(d in GGUF_TYPE))
      throw new Error(`--dtype ${d}: the comparison runs ${Object.keys(GGUF_TYPE).join(', ')}`);
  const rounds = Number(values.rounds ?? 2);
  if (!Number.isInteger(rounds) || rounds < 1)
    throw new Error(`--rounds ${values.rounds}: expected a whole number of at least 1`);
  const report = vsLlama({
    dir: values['vs-llama']!,
    ggufDir: values.gguf,
    dtypes,
    // the comparison is on all cores unless asked: that is how each is run for speed
    threads: values.threads ? values.threads.split(',').map(Number) : [top],
    nodes: values.node ? values.node.split(',') : [process.execPath],
    rounds,
    prefill: 128,
    decode: 64,
    runs: 3,
    measure: (node, args) => child<ConfigResult>('measure.js', args, node),
    log,
  });
  const text = vsTable(report);
  (values.json ? log : (s: string) => process.stdout.write(s + '\n'))(text);
  mkdirSync(RESULTS, { recursive: true });
  const out = path.join(RESULTS, 'vs-llama.json');
  const full = {
    ...report,
    date: new Date().toISOString(),
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`,
  };
  writeFileSync(out, JSON.stringify(full, null, 2) + '\n');
  log(`\nwrote ${path.relative(ROOT, out)}`);
  if (values.json) process.stdout.write(JSON.stringify(full) + '\n');
}

/** --train: LoRA training steps on f16 and q4 bases, and PyTorch's on the same shapes. */
function trainCost(
  values: {
    dtype?: string;
    json?: boolean;
    seq?: string;
    rank?: string;
    steps?: string;
    layers?: string;
    anchor?: string;
    'gradient-checkpointing'?: string;
    node?: string;
  },
  threads: number,
) {
  const { seq, rank, steps, layers } = values as Record<string, string>;
  const shape = ['--seq', seq, '--rank', rank, '--steps', steps, '--layers', layers];
  const torch = torchAnchor(values.anchor, threads, shape);
  const rows: TrainResult[] = [];
  const modes = (values['gradient-checkpointing'] ?? 'auto').split(',');
  const nodes = values.node ? values.node.split(',') : [process.execPath];
  for (const node of nodes)
    for (const dtype of (values.dtype ?? 'f16,q4').split(','))
      for (const mode of modes) {
        log(
          `training ${dtype}, ${threads} threads, seq ${seq}, rank ${rank}, ${layers} layers, checkpointing ${mode} ...`,
        );
        rows.push(
          child<TrainResult>(
            'train.js',
            [
              '--dtype',
              dtype,
              '--threads',
              String(threads),
              ...shape,
              '--gradient-checkpointing',
              mode,
              '--profile',
            ],
            node,
          ),
        );
      }
  const f = (v: number, w: number, p = 2) => v.toFixed(p).padStart(w);
  const gib = (b: number) => b / 2 ** 30;
  log(
    [
      `LoRA training, phi-1.5 shapes (${layers} layers, synthetic weights), rank ${rank} on q, k, v, dense, fc1, fc2, seq ${seq}, batch 1`,
      'tok/s: trained tokens a second, forward + backward + AdamW; median of the steps (best); x torch: best over best',
      "activations: each block's kept from the forward, or recomputed in the backward (gradient checkpointing)",
      torch.row
        ? `PyTorch ${torch.row.torch} f32, ${threads} threads, no recomputation: ${f(torch.row.train_tokens_per_s, 0)} tok/s, peak RSS ${f(torch.row.peak_rss_gib, 0)} GiB`
        : `PyTorch: not run (${torch.why})`,
      'node     dtype thr activations  tok/s (best)     x torch  peak RSS GiB  wasm GiB',
      ...rows.map(
        (r) =>
          `${r.node.padEnd(8)} ${r.dtype.padEnd(5)} ${String(r.threads).padStart(3)} ${r.activations.padEnd(11)} ${f(r.train_tokens_per_s, 6)} (${f(r.train_tokens_per_s_best, 6)}) ${torch.row ? f(r.train_tokens_per_s_best / torch.row.train_tokens_per_s, 9, 3) : '        -'} ${f(gib(r.peak_rss_bytes), 13)} ${f(gib(r.wasm_bytes), 9)}`,
      ),
      'ms of one step (kernel calls; "TypeScript" is the rest: the backward ops still in TypeScript):',
      ...rows.map((r) => `${r.node} ${r.dtype} ${r.activations}: ${JSON.stringify(r.profile)}`),
    ].join('\n'),
  );
  const out = {
    train: rows,
    torch: torch.row ?? null,
    torch_skipped: torch.why ?? null,
    node: process.version,
  };
  if (values.json) process.stdout.write(JSON.stringify(out) + '\n');
}

interface TorchRow {
  train_tokens_per_s: number;
  peak_rss_gib: number;
  torch: string;
}

/** The PyTorch anchor's JSON line, or why it did not run. */
function torchAnchor(
  file: string | undefined,
  threads: number,
  shape: string[],
): { row?: TorchRow; why?: string } {
  const script =
    file ?? path.resolve(ROOT, '..', 'shared', 'anchors', 'torch-lora', 'lora_step.py');
  if (!existsSync(script)) return { why: `no ${script}` };
  const python = '/usr/bin/python3';
  try {
    const version = execFileSync(python, ['-c', 'import torch; print(torch.__version__)'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    log(`PyTorch ${version}: ${path.basename(script)}, ${threads} threads ...`);
    const out = execFileSync(python, [script, '--threads', String(threads), ...shape], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const row = JSON.parse(out.trim().split('\n').pop()!) as TorchRow;
    return { row: { ...row, torch: version } };
  } catch (e) {
    return {
      why: `${python} has no torch or the anchor failed (${(e as Error).message.split('\n')[0]}); apt-get install python3-torch libopenblas0-pthread`,
    };
  }
}

/** --adapter: decode with unmerged adapters of rank 8 and 16 against none, interleaved in one process. */
function adapterCost(values: { dtype?: string; json?: boolean; serve?: boolean }, threads: number) {
  const dtypes = (values.dtype ?? 'f16,q8,q4').split(',');
  const rows: Record<string, number | string>[] = [];
  for (const dtype of dtypes) {
    log(`running ${dtype}, ${threads} threads: no adapter, rank 8, rank 16, in turn, 5 rounds ...`);
    const result = child<ConfigResult>('measure.js', [
      ...['--dtype', dtype, '--threads', String(threads), '--prefill', '16'],
      ...['--decode', '64', '--runs', '5', '--lora', '8,16'],
    ]);
    for (const l of result.lora!)
      rows.push({
        dtype,
        threads,
        rank: l.rank,
        decode_tokens_per_s: l.decode_tokens_per_s,
        decode_tokens_per_s_no_adapter: l.decode_tokens_per_s_no_adapter,
        ratio: l.ratio,
        ratio_min: Math.min(...l.ratios),
        ratio_max: Math.max(...l.ratios),
        upload_seconds: l.upload_seconds,
        adapter_mib: l.bytes / 2 ** 20,
      });
  }
  const served: ServeLoraRow[] = [];
  if (values.serve)
    for (const dtype of dtypes) {
      log(`running phi serve, ${dtype}: 4 streams on none, one and 4 different adapters ...`);
      served.push(
        ...child<ServeLoraRow[]>('serve-lora.js', ['--dtype', dtype, '--threads', String(threads)]),
      );
    }
  const f = (x: number | string, w: number, d = 2) => (x as number).toFixed(d).padStart(w);
  const text = [
    '',
    `LoRA unmerged, random adapters on q, k, v, dense, fc1, fc2; decode tok/s (median of 5 x 64 tokens), node ${process.version}`,
    'ratio: median of the rounds (no adapter / adapter, run back to back), and its range',
    'dtype thr rank  tok/s  no adapter  ratio  range        upload s  MiB',
    ...rows.map(
      (r) =>
        `${String(r.dtype).padEnd(5)} ${String(r.threads).padStart(3)} ${String(r.rank).padStart(4)} ${f(r.decode_tokens_per_s, 6)} ${f(r.decode_tokens_per_s_no_adapter, 11)} ${f(r.ratio, 6, 3)}  ${f(r.ratio_min, 5, 3)}-${f(r.ratio_max, 5, 3)} ${f(r.upload_seconds, 8)} ${f(r.adapter_mib, 5, 0)}`,
    ),
    ...(served.length
      ? [
          '',
          'phi serve, 4 concurrent streams, rank-8 adapters unmerged: aggregate decode tok/s (median of 3 rounds)',
          'ratio: 4 different adapters / all 4 on one, per round (median, range); each = solo: every stream equals its solo run',
          'dtype thr  none   one  four  ratio  range        each = solo',
          ...served.map(
            (r) =>
              `${r.dtype.padEnd(5)} ${String(r.threads).padStart(3)} ${f(r.no_adapter, 5, 1)} ${f(r.one_adapter, 5, 1)} ${f(r.different_adapters, 5, 1)} ${f(r.ratio, 6, 3)}  ${f(Math.min(...r.ratios), 5, 3)}-${f(Math.max(...r.ratios), 5, 3)} ${r.streams_equal_solo}`,
          ),
        ]
      : []),
  ].join('\n');
  (values.json ? log : (x: string) => process.stdout.write(x + '\n'))(text);
  if (values.json)
    process.stdout.write(
      JSON.stringify({ adapter: rows, serve: served, node: process.version }) + '\n',
    );
}

/** --constrained: decode under a JSON Schema against unconstrained, per dtype (bench/constrained.ts). */
function constrainedCost(
  values: { dtype?: string; json?: boolean; tokens?: string; rounds?: string },
  threads: number,
) {
  const rows: ConstrainedRow[] = [];
  for (const dtype of (values.dtype ?? 'f16,q4').split(',')) {
    log(`running ${dtype}, ${threads} threads: constrained and free decode in turn ...`);
    rows.push(
      child<ConstrainedRow>('constrained.js', [
        ...['--dtype', dtype, '--threads', String(threads)],
        ...['--tokens', values.tokens ?? '48', '--rounds', values.rounds ?? '5'],
      ]),
    );
  }
  const f = (x: number, w: number, d = 2) => x.toFixed(d).padStart(w);
  const text = [
    '',
    `Constrained decoding, phi-1.5 shapes (synthetic weights, the real tokenizer), ${rows[0]?.schema ?? ''}, node ${process.version}`,
    'tok/s: wall clock from the first token to the last, median of the rounds; ratio: constrained / free per round (median, range)',
    'dtype thr   free  constrained  ratio  range        mask ms/token  compile s (first, cached)  tokenizer info s',
    ...rows.map(
      (r) =>
        `${r.dtype.padEnd(5)} ${String(r.threads).padStart(3)} ${f(r.decode_tokens_per_s_free, 6)} ${f(r.decode_tokens_per_s_constrained, 12)} ${f(r.ratio, 6, 3)}  ${f(Math.min(...r.ratios), 5, 3)}-${f(Math.max(...r.ratios), 5, 3)} ${f(r.mask_ms_per_token, 14, 3)}  ${f(r.compile_seconds_first, 10, 3)} ${f(r.compile_seconds_cached, 7, 3)}          ${f(r.tokenizer_info_seconds, 7, 3)}`,
    ),
  ].join('\n');
  (values.json ? log : (x: string) => process.stdout.write(x + '\n'))(text);
  if (values.json)
    process.stdout.write(JSON.stringify({ constrained: rows, node: process.version }) + '\n');
}

await main();
