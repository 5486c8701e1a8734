// `npm run bench -- --vs-llama DIR`: phi-wasm against llama.cpp's own benchmark in one sitting.
//
// llama-bench runs on GGUFs of phi-1.5's exact shapes (random weights: speed does not depend
// on values), alternating with phi-wasm's measure.js on the same thread count, one dtype at a
// time, round after round, so both see the same host in the same minutes. A VM's speed swings
// 2x within minutes: a ratio is only worth something when both sides were measured together.
//
// The GGUFs and the build: ../shared/anchors/llamacpp/README.md in this project's workspace,
// or, anywhere, a llama.cpp build (cmake --target llama-bench llama-quantize) and a phi-1.5
// GGUF converted and quantized with llama.cpp's own tools.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { median } from './batch-roof.js';
import type { ConfigResult } from './measure.js';

/** phi-wasm's dtype and the GGUF type llama.cpp runs for it. */
export const GGUF_TYPE = { f16: 'F16', q8: 'Q8_0', q4: 'Q4_0' } as const;
export type VsDType = keyof typeof GGUF_TYPE;

/** phi-1.5's parameter count: a GGUF of other shapes would compare different work. */
export const PHI_1_5_PARAMS = 1_418_270_720;

/** What one llama-bench run says about one test (pp or tg), in the fields we use. */
export interface LlamaTest {
  n_prompt: number;
  n_gen: number;
  n_threads: number;
  model_n_params: number;
  model_type: string;
  build_commit: string;
  cpu_info: string;
  avg_ts: number;
  samples_ts: number[];
}

export interface LlamaRun {
  prefill_tokens_per_s: number; // median of the samples
  decode_tokens_per_s: number;
  prefill_samples: number[];
  decode_samples: number[];
  model_type: string;
  build_commit: string;
  cpu_info: string;
}

export interface VsRow {
  dtype: VsDType;
  gguf: string;
  threads: number;
  node: string;
  round: number;
  llama_prefill_tokens_per_s: number;
  llama_decode_tokens_per_s: number;
  phi_prefill_tokens_per_s: number;
  phi_decode_tokens_per_s: number;
  /** phi-wasm over llama.cpp, both medians of their runs in this round */
  prefill_ratio: number;
  decode_ratio: number;
  /** the f32 multiply-add peak of wasm SIMD on these threads, flops a second (measure.js) */
  phi_fma_peak_flops_per_s: number;
  /** f16 prefill flops over that peak; null for q8/q4 (integer dots, not bound by it) */
  phi_prefill_fraction_of_peak: number | null;
  /**
   * f16: the prefill ratio phi-wasm would have at that peak, the most any wasm SIMD GEMM can
   * give against llama.cpp on this host (native code has wider vectors where the CPU has them)
   */
  prefill_ratio_at_peak: number | null;
}

export interface VsOptions {
  /** a llama.cpp folder: its build/bin/llama-bench (or bin/, or the folder itself) is run */
  dir: string;
  /** where the GGUFs are; default DIR/models, then DIR/../models */
  ggufDir?: string;
  dtypes: VsDType[];
  threads: number[];
  /** node executables to run phi-wasm with; each is measured in every round */
  nodes: string[];
  rounds: number;
  prefill: number;
  decode: number;
  runs: number;
  /** runs measure.js with these arguments under a node executable; returns its result */
  measure: (node: string, args: string[]) => ConfigResult;
  log: (s: string) => void;
}

/** llama-bench inside a llama.cpp folder, wherever its build put it. */
export function findLlamaBench(dir: string): string {
  const tried = ['build/bin', 'bin', '.', 'src/build/bin'].map((d) =>
    path.resolve(dir, d, 'llama-bench'),
  );
  const found = tried.find((p) => existsSync(p) && statSync(p).isFile());
  if (!found)
    throw new Error(
      `--vs-llama ${dir}: no llama-bench found (looked for ${tried.join(', ')}); build it with ` +
        '`cmake --build build --target llama-bench`',
    );
  return found;
}

/**
 * The GGUF for a dtype: a `.gguf` whose name carries the type (f16, q8_0, q4_0), not a vocab
 * file; with several, the one whose name says phi. Null when there is none.
 */
export function findGguf(dirs: string[], dtype: VsDType): string | null {
  const tag = GGUF_TYPE[dtype].toLowerCase();
  for (const dir of dirs) {
    if (!existsSync(dir)) continue;
    const names = readdirSync(dir).filter((n) => {
      const l = n.toLowerCase();
      return l.endsWith('.gguf') && !l.includes('vocab') && l.split(/[^a-z0-9_]/).includes(tag);
    });
    const best = names.find((n) => n.toLowerCase().includes('phi')) ?? names.sort()[0];
    if (best) return path.join(dir, best);
  }
  return null;
}

/** Parse llama-bench's `-o json` output: the prefill and decode tests of one model. */
export function parseLlamaBench(json: string, gguf: string): LlamaRun {
  let tests: LlamaTest[];
  try {
    tests = JSON.parse(json);
  } catch (e) {
    throw new Error(`llama-bench on ${gguf}: its output is not JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(tests)) throw new Error(`llama-bench on ${gguf}: expected a JSON array`);
  const pp = tests.find((t) => t.n_prompt > 0 && t.n_gen === 0);
  const tg = tests.find((t) => t.n_gen > 0 && t.n_prompt === 0);
  if (!pp || !tg)
    throw new Error(
      `llama-bench on ${gguf}: expected a prompt test and a generation test, found ${tests.length} test(s)`,
    );
  // 1% either way: a GGUF converted from the real checkpoint counts the same tensors
  if (Math.abs(pp.model_n_params - PHI_1_5_PARAMS) > PHI_1_5_PARAMS * 0.01)
    throw new Error(
      `${gguf}: ${pp.model_n_params} parameters, phi-1.5 has ${PHI_1_5_PARAMS}; ` +
        'the comparison needs a GGUF of phi-1.5 shapes',
    );
  for (const t of [pp, tg])
    if (!Array.isArray(t.samples_ts) || !t.samples_ts.length)
      throw new Error(`llama-bench on ${gguf}: a test without samples_ts`);
  return {
    prefill_tokens_per_s: median(pp.samples_ts),
    decode_tokens_per_s: median(tg.samples_ts),
    prefill_samples: pp.samples_ts,
    decode_samples: tg.samples_ts,
    model_type: pp.model_type,
    build_commit: pp.build_commit,
    cpu_info: pp.cpu_info,
  };
}

/** One llama-bench run: `-p PREFILL -n DECODE -t THREADS -r RUNS -o json`. */
export function runLlamaBench(
  bench: string,
  gguf: string,
  threads: number,
  prefill: number,
  decode: number,
  runs: number,
): LlamaRun {
  const args = ['-m', gguf, '-p', String(prefill), '-n', String(decode)];
  args.push('-t', String(threads), '-r', String(runs), '-o', 'json');
  let out: string;
  try {
    out = execFileSync(bench, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    const tail = (err.stderr ?? '').trim().split('\n').slice(-3).join(' | ');
    throw new Error(`${bench} ${args.join(' ')} failed: ${tail || err.message}`);
  }
  return parseLlamaBench(out, gguf);
}

export interface VsReport {
  llama_bench: string;
  llama_build_commit: string;
  llama_cpu_info: string;
  rows: VsRow[];
  skipped: string[];
  command_llama: string;
  command_phi: string;
}

/** Alternate llama-bench and phi-wasm, dtype by dtype, for the rounds asked. */
export function vsLlama(o: VsOptions): VsReport {
  const bench = findLlamaBench(o.dir);
  const ggufDirs = o.ggufDir
    ? [o.ggufDir]
    : [path.join(o.dir, 'models'), path.join(o.dir, '..', 'models')];
  const skipped: string[] = [];
  const ggufs = new Map<VsDType, string>();
  for (const d of o.dtypes) {
    const g = findGguf(ggufDirs, d);
    if (g) ggufs.set(d, g);
    else
      skipped.push(
        `${d}: no ${GGUF_TYPE[d]} GGUF in ${ggufDirs.join(' or ')} (a .gguf named with ${GGUF_TYPE[d].toLowerCase()}; make it with llama-quantize)`,
      );
  }
  for (const s of skipped) o.log(`skipped ${s}`);
  if (!ggufs.size) throw new Error(`--vs-llama: no GGUF to compare with (${skipped.join('; ')})`);

  const versions = new Map(
    o.nodes.map((n) => [n, execFileSync(n, ['--version'], { encoding: 'utf8' }).trim()]),
  );
  const rows: VsRow[] = [];
  let info = { build: 'unknown', cpu: 'unknown' };
  for (let round = 1; round <= o.rounds; round++)
    for (const [dtype, gguf] of ggufs)
      for (const threads of o.threads) {
        o.log(`round ${round}: llama.cpp ${GGUF_TYPE[dtype]}, ${threads} threads ...`);
        const l = runLlamaBench(bench, gguf, threads, o.prefill, o.decode, o.runs);
        info = { build: l.build_commit, cpu: l.cpu_info };
        for (const node of o.nodes) {
          o.log(
            `round ${round}: phi-wasm ${dtype}, ${threads} threads, node ${versions.get(node)} ...`,
          );
          const r = o.measure(node, [
            '--dtype',
            dtype,
            '--threads',
            String(threads),
            '--prefill',
            String(o.prefill),
            '--decode',
            String(o.decode),
            '--runs',
            String(o.runs),
          ]);
          const m = r.measurements[0];
          const peak = r.compute_roof.fma_peak_flops_per_s;
          const atPeak = dtype === 'f16' ? peak / (2 * r.prefill_macs_per_token) : null;
          rows.push({
            dtype,
            gguf,
            threads,
            node: versions.get(node)!,
            round,
            llama_prefill_tokens_per_s: l.prefill_tokens_per_s,
            llama_decode_tokens_per_s: l.decode_tokens_per_s,
            phi_prefill_tokens_per_s: m.prefill_tokens_per_s,
            phi_decode_tokens_per_s: m.decode_tokens_per_s,
            prefill_ratio: m.prefill_tokens_per_s / l.prefill_tokens_per_s,
            decode_ratio: m.decode_tokens_per_s / l.decode_tokens_per_s,
            phi_fma_peak_flops_per_s: peak,
            phi_prefill_fraction_of_peak: atPeak === null ? null : m.prefill_tokens_per_s / atPeak,
            prefill_ratio_at_peak: atPeak === null ? null : atPeak / l.prefill_tokens_per_s,
          });
        }
      }
  return {
    llama_bench: bench,
    llama_build_commit: info.build,
    llama_cpu_info: info.cpu,
    rows,
    skipped,
    command_llama: `llama-bench -m GGUF -p ${o.prefill} -n ${o.decode} -t THREADS -r ${o.runs} -o json`,
    command_phi: `node dist/bench/measure.js --dtype D --threads THREADS --prefill ${o.prefill} --decode ${o.decode} --runs ${o.runs}`,
  };
}

/** The table people read: every round, then each configuration's range over the rounds. */
export function vsTable(r: VsReport): string {
  const f = (v: number, w: number, d = 1) => v.toFixed(d).padStart(w);
  const lines = [
    '',
    `phi-wasm against llama.cpp (${r.llama_bench}, build ${r.llama_build_commit}, ${r.llama_cpu_info}), same sitting, alternating.`,
    `tok/s are medians of each side's runs; ratio = phi-wasm / llama.cpp in the same round.`,
    `llama.cpp: ${r.command_llama}`,
    `phi-wasm:  ${r.command_phi}`,
    '',
    'peak% = f16 prefill flops / the wasm SIMD multiply-add peak; at peak = the prefill ratio at that peak.',
    '',
    'round dtype thr node      | llama.cpp prefill decode | phi-wasm prefill decode peak% | ratio prefill decode | at peak',
  ];
  for (const x of r.rows)
    lines.push(
      `${String(x.round).padStart(5)} ${x.dtype.padEnd(5)} ${String(x.threads).padStart(3)} ${x.node.padEnd(9)} | ` +
        `${f(x.llama_prefill_tokens_per_s, 17)} ${f(x.llama_decode_tokens_per_s, 6, 2)} | ` +
        `${f(x.phi_prefill_tokens_per_s, 16)} ${f(x.phi_decode_tokens_per_s, 6, 2)} ` +
        `${x.phi_prefill_fraction_of_peak === null ? '    -' : f(x.phi_prefill_fraction_of_peak * 100, 5, 0)} | ` +
        `${f(x.prefill_ratio, 13, 2)}x ${f(x.decode_ratio, 5, 2)}x | ` +
        `${x.prefill_ratio_at_peak === null ? '      -' : f(x.prefill_ratio_at_peak, 6, 2) + 'x'}`,
    );
  const groups = new Map<string, VsRow[]>();
  for (const x of r.rows) {
    const k = `${x.dtype} ${x.threads} ${x.node}`;
    groups.set(k, [...(groups.get(k) ?? []), x]);
  }
  lines.push('', 'over the rounds (lowest - highest ratio):');
  for (const [k, xs] of groups) {
    const span = (key: 'prefill_ratio' | 'decode_ratio' | 'prefill_ratio_at_peak') => {
      const v = xs.map((x) => x[key] ?? NaN);
      return `${Math.min(...v).toFixed(2)}-${Math.max(...v).toFixed(2)}x`;
    };
    const atPeak =
      xs[0].prefill_ratio_at_peak === null
        ? ''
        : `; at the wasm peak prefill would be ${span('prefill_ratio_at_peak')}`;
    lines.push(
      `  ${k.padEnd(22)} prefill ${span('prefill_ratio')}, decode ${span('decode_ratio')}${atPeak}`,
    );
  }
  for (const s of r.skipped) lines.push(`  skipped ${s}`);
  return lines.join('\n');
}
