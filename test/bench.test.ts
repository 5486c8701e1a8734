// The same-sitting comparison with llama.cpp (bench/vs-llama.ts), against a stand-in
// llama-bench that prints what the real one prints with -o json.
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { ConfigResult } from '../bench/measure.js';
import {
  findGguf,
  findLlamaBench,
  PHI_1_5_PARAMS,
  parseLlamaBench,
  runLlamaBench,
  vsLlama,
  vsTable,
} from '../bench/vs-llama.js';

function llamaJson(params = PHI_1_5_PARAMS, pp = [40, 50, 45], tg = [8, 9, 7]) {
  const common = {
    build_commit: 'abc1234',
    cpu_info: 'Test CPU',
    model_type: 'phi2 1B F16',
    model_n_params: params,
    n_threads: 2,
  };
  return JSON.stringify([
    { ...common, n_prompt: 128, n_gen: 0, avg_ts: 45, samples_ts: pp },
    { ...common, n_prompt: 0, n_gen: 64, avg_ts: 8, samples_ts: tg },
  ]);
}

/** A llama.cpp folder: build/bin/llama-bench (a script) and models/ with the GGUF names. */
function fakeLlama(script: string, models: string[]): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'vs-llama-'));
  mkdirSync(path.join(dir, 'build', 'bin'), { recursive: true });
  mkdirSync(path.join(dir, 'models'));
  const bench = path.join(dir, 'build', 'bin', 'llama-bench');
  writeFileSync(bench, `#!/bin/sh\n${script}\n`);
  chmodSync(bench, 0o755);
  for (const m of models) writeFileSync(path.join(dir, 'models', m), '');
  return dir;
}

function configResult(prefill: number, decode: number): ConfigResult {
  return {
    measurements: [{ prefill_tokens_per_s: prefill, decode_tokens_per_s: decode }],
    compute_roof: { fma_peak_flops_per_s: 90e9 },
    prefill_macs_per_token: 1e9,
  } as ConfigResult;
}

describe('bench --vs-llama', () => {
  const models = [
    'ggml-vocab-gpt-2.gguf',
    'phi15-rand-f16.gguf',
    'phi15-rand-q8_0.gguf',
    'other-q8_0.gguf',
  ];

  test('finds llama-bench in the build folder, and says where it looked when it is not there', () => {
    const dir = fakeLlama('true', []);
    expect(findLlamaBench(dir)).toBe(path.join(dir, 'build', 'bin', 'llama-bench'));
    expect(() => findLlamaBench(path.join(dir, 'models'))).toThrow(
      /no llama-bench found.*models\/build\/bin\/llama-bench/,
    );
  });

  test('picks each dtype by the GGUF type in its name, never a vocab file, phi first', () => {
    const dir = fakeLlama('true', models);
    const m = path.join(dir, 'models');
    expect(findGguf([m], 'f16')).toBe(path.join(m, 'phi15-rand-f16.gguf'));
    expect(findGguf([m], 'q8')).toBe(path.join(m, 'phi15-rand-q8_0.gguf'));
    expect(findGguf([path.join(dir, 'nowhere'), m], 'q4')).toBeNull();
  });

  test('reads the medians of the samples, and refuses a GGUF of other shapes', () => {
    const r = parseLlamaBench(llamaJson(), 'x.gguf');
    expect(r.prefill_tokens_per_s).toBe(45);
    expect(r.decode_tokens_per_s).toBe(8);
    expect(r.build_commit).toBe('abc1234');
    expect(() => parseLlamaBench(llamaJson(124_000_000), 'gpt2.gguf')).toThrow(
      /gpt2.gguf: 124000000 parameters, phi-1.5 has 1418270720/,
    );
    expect(() => parseLlamaBench('main: error', 'x.gguf')).toThrow(/not JSON/);
    expect(() => parseLlamaBench('[]', 'x.gguf')).toThrow(/found 0 test/);
  });

  test('a failing llama-bench is reported with the end of what it wrote', () => {
    const dir = fakeLlama('echo "error: failed to load model" >&2; exit 1', models);
    expect(() =>
      runLlamaBench(
        findLlamaBench(dir),
        path.join(dir, 'models', 'phi15-rand-f16.gguf'),
        2,
        128,
        64,
        3,
      ),
    ).toThrow(/-p 128 -n 64 -t 2 -r 3 -o json failed: error: failed to load model/);
  });

  test('alternates the two, round by round, and gives phi-wasm over llama.cpp per round', () => {
    const calls: string[] = [];
    const dir = fakeLlama(`echo '${llamaJson()}'`, models);
    const report = vsLlama({
      dir,
      dtypes: ['f16', 'q8', 'q4'],
      threads: [2],
      nodes: [process.execPath],
      rounds: 2,
      prefill: 128,
      decode: 64,
      runs: 3,
      measure: (_node, args) => {
        calls.push(args.join(' '));
        return configResult(22.5, 6);
      },
      log: () => {},
    });
    expect(calls).toEqual([
      '--dtype f16 --threads 2 --prefill 128 --decode 64 --runs 3',
      '--dtype q8 --threads 2 --prefill 128 --decode 64 --runs 3',
      '--dtype f16 --threads 2 --prefill 128 --decode 64 --runs 3',
      '--dtype q8 --threads 2 --prefill 128 --decode 64 --runs 3',
    ]);
    expect(report.rows.map((r) => [r.round, r.dtype, r.prefill_ratio, r.decode_ratio])).toEqual([
      [1, 'f16', 0.5, 0.75],
      [1, 'q8', 0.5, 0.75],
      [2, 'f16', 0.5, 0.75],
      [2, 'q8', 0.5, 0.75],
    ]);
    // 22.5 tok/s of 2 GFLOP each against a 90 GFLOP/s peak, which allows 45 tok/s = 1.0x
    expect(report.rows[0].phi_prefill_fraction_of_peak).toBeCloseTo(0.5);
    expect(report.rows[0].prefill_ratio_at_peak).toBeCloseTo(1.0);
    expect(report.rows[1].phi_prefill_fraction_of_peak).toBeNull();
    expect(report.skipped).toEqual([expect.stringMatching(/^q4: no Q4_0 GGUF/)]);
    const text = vsTable(report);
    expect(text).toMatch(/f16 2 v\d+.* prefill 0.50-0.50x, decode 0.75-0.75x/);
    expect(text).toMatch(/skipped q4/);
  });

  test('with no GGUF at all it stops and says why', () => {
    const dir = fakeLlama('true', ['ggml-vocab-gpt-2.gguf']);
    expect(() =>
      vsLlama({
        dir,
        dtypes: ['f16'],
        threads: [2],
        nodes: [process.execPath],
        rounds: 1,
        prefill: 128,
        decode: 64,
        runs: 3,
        measure: () => configResult(1, 1),
        log: () => {},
      }),
    ).toThrow(/no GGUF to compare with \(f16: no F16 GGUF/);
  });
});
