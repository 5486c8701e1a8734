// The ceiling of batched decoding on this machine (for bench/serve.ts): the tokens a second
// that n streams decoding together could reach if the matmuls were all a step cost.
//   memory roof  = n · bandwidth / weight bytes a token      (a step reads every weight once)
//   compute roof = n / (the step's matmul time at T = n)     (kernels timed with the weights in
//                  cache: the model's mix of 2048- and 8192-input rows)
// The lower one binds. Attention, LayerNorm, sampling and HTTP are left out, so real streams
// stay below it; the roof at n streams over one stream's measured rate is the most that
// batching can give here. Where one stream is already compute-bound, that is little: each
// token's multiply-adds are its own, only the weights' reading and unpacking are shared.
import { allocQuantized, quantizeRows } from '../src/formats/quant.js';
import type { Weight, WeightDType } from '../src/kernels/types.js';
import { createWasmKernels, type WasmKernels } from '../src/kernels/wasm/index.js';
import { PHI_1_5 } from '../src/model/config.js';
import { readWasm, spawnWorker } from '../src/node/wasm.js';
import { weightBytesPerToken, weightsPerToken } from './synthetic.js';

export interface BatchRoof {
  streams: number;
  memory_roof_tokens_per_s: number;
  compute_roof_tokens_per_s: number;
}

/** The median of xs (the mean of the middle two for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Seconds one call of f takes: the best of 5 timings of `reps` calls, after `warm` calls. */
export function bestSeconds(f: () => void, reps: number, warm: number): number {
  for (let i = 0; i < warm; i++) f();
  let t = Infinity;
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) f();
    t = Math.min(t, (performance.now() - t0) / 1000 / reps);
  }
  return t;
}

/** A (d, n) weight of `dtype` with values in the range of real ones, in k's memory. */
export function roofWeight(k: WasmKernels, dtype: WeightDType, d: number, n: number): Weight {
  const src = new Float32Array(d * n);
  for (let i = 0; i < src.length; i++) src[i] = Math.sin(i * 0.37) * 0.05;
  if (dtype === 'q8' || dtype === 'q4') {
    const w = allocQuantized(k, dtype, d, n);
    quantizeRows(src, d, n, w, 0);
    return w;
  }
  if (dtype === 'f32') {
    const data = k.allocF32(d * n);
    data.set(src);
    return { dtype, data };
  }
  const data = k.allocU16(d * n);
  for (let i = 0; i < data.length; i++) data[i] = 0x2000 + (i % 4093); // normal f16 values
  return { dtype, data };
}

/**
 * The memory and compute roofs of 1..n streams decoding together, and the bandwidth used.
 * q4's two forms of integer sums are both timed and the faster kept (the kernels' own pick
 * decides from a few calls and can land on the slower one while the machine stalls).
 */
export async function batchRoof(
  dtype: WeightDType,
  threads: number,
  streams: readonly number[],
): Promise<{ bandwidth_gb_per_s: number; rows: BatchRoof[] }> {
  const forms = dtype === 'q4' ? (['i16', 'i32'] as const) : (['auto'] as const);
  const steps = streams.map(() => Infinity); // seconds of one step's matmuls, at T = streams[i]
  let bandwidth = 0;
  for (const q4Sums of forms) {
    const k = await createWasmKernels({
      threads,
      readWasm,
      spawnWorker,
      reserveBytes: 360 << 20,
      q4Sums,
    });
    matmulSteps(k, dtype, threads, streams).forEach((t, i) => (steps[i] = Math.min(steps[i], t)));
    const buffer = k.allocF32(64 << 20); // 256 MiB, far past the last-level cache
    bandwidth = Math.max(bandwidth, k.readBandwidth(buffer));
    k.close();
  }
  const bytes = weightBytesPerToken(PHI_1_5, dtype);
  return {
    bandwidth_gb_per_s: bandwidth / 1e9,
    rows: streams.map((T, i) => ({
      streams: T,
      memory_roof_tokens_per_s: (T * bandwidth) / bytes,
      compute_roof_tokens_per_s: T / steps[i],
    })),
  };
}

/** One step's matmul time (s) at T = each of `streams`, from the rate of each shape in cache. */
function matmulSteps(
  k: WasmKernels,
  dtype: WeightDType,
  threads: number,
  streams: readonly number[],
): number[] {
  const { hiddenSize: D, intermediateSize: F, numLayers: L, vocabSize: V } = PHI_1_5;
  // about 2 MiB of weights a thread (whole tiles of 256 rows): in cache, and calls long enough
  // that waking the threads does not count (small calls made q4's roof read below its rate)
  const bytesPerWeight = weightBytesPerToken(PHI_1_5, dtype) / weightsPerToken(PHI_1_5);
  const rowsFor = (n: number) =>
    threads * 256 * Math.max(1, Math.floor((2 << 20) / (n * bytesPerWeight) / 256));
  const shapes = [
    { n: D, weights: L * (4 * D * D + F * D) + V * D }, // q, k, v, dense, fc1, lm_head
    { n: F, weights: L * D * F }, // fc2
  ].map((s) => ({ ...s, rows: rowsFor(s.n), w: roofWeight(k, dtype, rowsFor(s.n), s.n) }));
  const x = k.allocF32(Math.max(...streams) * F);
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i);
  const out = k.allocF32(Math.max(...streams) * Math.max(...shapes.map((s) => s.rows)));
  // every weight of the model times T tokens, at each shape's rate
  return streams.map((T) =>
    shapes.reduce((sum, { n, rows, w, weights }) => {
      const call = bestSeconds(() => k.matmul(out, x, w, null, T, n, rows), 20, 8);
      return sum + (call * weights) / (rows * n);
    }, 0),
  );
}
