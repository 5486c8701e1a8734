// `npm run bench:kernels`: benny micro-benchmarks of the matmul kernels at phi-1.5 shapes,
// GB/s of weights read and GFLOP/s, for the TypeScript kernels, wasm on one thread and wasm
// on all cores. GEMV is decode (T = 1, the fc1 shape 8192 x 2048); GEMM is prefill (T = 64).
// The wasm cases rotate over 4 copies of the matrix so that it streams from memory.
// The kernels are checked against the TypeScript twin first, as llm.c and ggml do.
import b from 'benny';
import { availableParallelism } from 'node:os';
import { f32ToF16 } from '../src/formats/f16.js';
import { createRefKernels } from '../src/kernels/ref/index.js';
import type { Kernels, Weight } from '../src/kernels/types.js';
import { createWasmKernels } from '../src/kernels/wasm/index.js';
import { readWasm, spawnWorker } from '../src/node/wasm.js';

const D = 8192; // output rows (fc1)
const N = 2048; // inputs
const cores = availableParallelism();

/** Rotate over this many weight copies, so the matrix comes from DRAM, not from the L3. */
const COPIES = 4;

function setup(k: Kernels, dtype: 'f16' | 'f32', T: number, copies = 1) {
  const ws = Array.from({ length: copies }, () => weight(k, dtype));
  const x = k.allocF32(T * N);
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i); // (.map would copy out of wasm memory)
  const out = k.allocF32(T * D);
  const bias = k.allocF32(D).fill(0.01);
  let next = 0;
  return { out, run: () => k.matmul(out, x, ws[next++ % copies], bias, T, N, D) };
}

function weight(k: Kernels, dtype: 'f16' | 'f32'): Weight {
  const w: Weight =
    dtype === 'f16' ? { dtype, data: k.allocU16(D * N) } : { dtype, data: k.allocF32(D * N) };
  let s = 1;
  for (let i = 0; i < D * N; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    const v = ((s / 2 ** 32) * 2 - 1) * 0.05;
    w.data[i] = dtype === 'f16' ? f32ToF16(v) : v;
  }
  return k.prepare ? k.prepare(w) : w;
}

async function main() {
  const ref = createRefKernels();
  const one = await createWasmKernels({ readWasm, reserveBytes: 1200 << 20 });
  const all = await createWasmKernels({
    readWasm,
    spawnWorker,
    threads: cores,
    reserveBytes: 1200 << 20,
  });
  const backends: [string, Kernels][] = [
    ['ts', ref],
    ['wasm', one],
    [`wasm x${cores}`, all],
  ];

  // correctness first: every backend against the TypeScript twin on this shape
  for (const dtype of ['f16', 'f32'] as const) {
    const base = setup(ref, dtype, 1);
    base.run();
    for (const [name, k] of backends.slice(1)) {
      const c = setup(k, dtype, 1);
      c.run();
      let err = 0;
      for (let i = 0; i < D; i++) err = Math.max(err, Math.abs(c.out[i] - base.out[i]));
      if (err > 1e-3)
        throw new Error(`${name} ${dtype} matmul differs from the TypeScript twin by ${err}`);
    }
  }
  console.log('All kernels passed! Starting benchmarks.');

  // the ceiling of the compute-bound cases: multiply-adds from registers, 1 thread and all
  const peaks: Record<string, number> = {
    wasm: one.fmaPeak(1),
    [`wasm x${cores}`]: all.fmaPeak('all'),
  };

  const rows: string[] = [];
  for (const [kind, T] of [
    ['GEMV', 1],
    ['GEMM', 64],
  ] as const) {
    for (const dtype of ['f16', 'f32'] as const) {
      const cases = backends
        // the TypeScript GEMM at T = 64 takes seconds a call: benchmark its GEMV only
        .filter(([name]) => !(name === 'ts' && T > 1))
        .map(([name, k]) => {
          const c = setup(k, dtype, T, name === 'ts' ? 1 : COPIES);
          return b.add(`${kind} ${dtype} ${name}`, () => c.run());
        });
      await b.suite(
        `${kind} ${dtype} (T=${T}, ${D}x${N})`,
        ...cases,
        b.configure({ cases: { minSamples: 5, maxTime: 2 } }),
        b.cycle(),
        b.complete((summary) => {
          for (const r of summary.results) {
            const calls = r.ops;
            const gbs = (calls * D * N * (dtype === 'f16' ? 2 : 4)) / 1e9;
            const gflops = (calls * 2 * D * N * T) / 1e9;
            const peak = peaks[r.name.split(' ').slice(2).join(' ')];
            rows.push(
              `${r.name.padEnd(22)} ${gbs.toFixed(2).padStart(7)} GB/s  ${gflops.toFixed(2).padStart(7)} GFLOP/s` +
                (peak ? `  ${((gflops * 1e9 * 100) / peak).toFixed(0).padStart(3)}% of peak` : ''),
            );
          }
        }),
      );
    }
  }
  console.log('\nweights read and arithmetic rate (one run; compare rows, not machines):');
  for (const r of rows) console.log(r);
  console.log(
    `\nwasm SIMD multiply-add peak (from registers, ${process.version}): ` +
      Object.entries(peaks)
        .map(([name, p]) => `${name} ${(p / 1e9).toFixed(1)} GFLOP/s`)
        .join(', '),
  );
  one.close();
  all.close();
}

await main();
