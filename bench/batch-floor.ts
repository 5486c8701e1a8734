// `npm run bench:floor`: how fast 4 streams could decode q4 and q8 weights on this machine,
// whatever the kernel. Times assembly/batch_floor.ts (the least work an exact int8-dot
// kernel must do to multiply 4 tokens, from L1) on one thread, then bounds 4 streams:
//   tokens/s at most = threads · token-weights/s / weights a token
// The bound leaves out memory, attention and every other step cost, so batched decoding stays
// below it; `npm run bench -- --serve` reports what the kernels and the server reach.
//   node dist/bench/batch-floor.js [--threads N] [--json]
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PHI_1_5 } from '../src/model/config.js';
import { weightsPerToken } from './synthetic.js';

const WASM = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../build/batch-floor.wasm',
);

type Probe = (w: number, x: number, scales: number, records: number, reps: number) => number;

export interface FloorRow {
  probe: 'q4_int16' | 'q4_int32' | 'q8';
  /** one thread, all operands in L1 */
  token_weights_per_s: number;
  /** threads · that rate / weights a token */
  four_streams_tokens_per_s_at_most: number;
}

async function main() {
  const { values } = parseArgs({
    options: { threads: { type: 'string' }, json: { type: 'boolean' } },
  });
  const threads = Number(values.threads ?? availableParallelism());
  const bytes = readFileSync(WASM);
  if (!WebAssembly.validate(bytes)) {
    throw new Error(
      `this runtime cannot run relaxed SIMD (Node ${process.version}: use Node 22 or later)`,
    );
  }
  const memory = new WebAssembly.Memory({ initial: 4, maximum: 65536 });
  const { instance } = await WebAssembly.instantiate(bytes, { env: { memory, abort() {} } });
  const probes = instance.exports as unknown as Record<FloorRow['probe'], Probe>;

  // phi's rows of 2048 inputs: 16 records; weights, 4 tokens' values and scales: 11 KB, in L1
  const records = 16;
  const [w, x, scales] = [65536, 81920, 98304];
  const mem = new Uint8Array(memory.buffer);
  for (let i = 0; i < records * 128; i++) mem[w + i] = (i * 37) & 0x7f;
  for (let i = 0; i < 4 * records * 128; i++) mem[x + i] = (((i * 91) % 255) - 127) & 0xff;
  new Float32Array(memory.buffer, scales, 4 * records * 4).fill(1e-3);

  const reps = 20_000;
  const rows: FloorRow[] = (['q4_int16', 'q4_int32', 'q8'] as const).map((probe) => {
    const f = probes[probe];
    f(w, x, scales, records, 200); // past the engine's first tier
    let best = Infinity;
    for (let r = 0; r < 7; r++) {
      const t0 = performance.now();
      f(w, x, scales, records, reps);
      best = Math.min(best, (performance.now() - t0) / 1000);
    }
    const rate = (reps * records * 128 * 4) / best;
    return {
      probe,
      token_weights_per_s: rate,
      four_streams_tokens_per_s_at_most: (threads * rate) / weightsPerToken(PHI_1_5),
    };
  });
  if (values.json) {
    process.stdout.write(JSON.stringify({ node: process.version, threads, rows }) + '\n');
    return;
  }
  console.log(`least work of an exact kernel, 4 tokens, from L1 (Node ${process.version}):`);
  console.log(
    'probe      G token-weights/s (1 thread)   4 streams at most (tok/s, ' + threads + ' threads)',
  );
  for (const r of rows)
    console.log(
      `${r.probe.padEnd(9)}  ${(r.token_weights_per_s / 1e9).toFixed(1).padStart(8)}                     ${r.four_streams_tokens_per_s_at_most.toFixed(1).padStart(7)}`,
    );
}

await main();
