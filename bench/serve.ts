// `npm run bench -- --serve`: the OpenAI-compatible server under concurrent load, phi-1.5 shapes
// (synthetic weights), batch decoding across slots. For 1, 2 and 4 concurrent streaming
// requests: aggregate decode tokens/s while all of them decode (from the last first token to
// the first last token), time to first token, whether every stream equals its solo run, and
// the roof of that many streams on this machine (bench/batch-roof.ts).
// The clients run in a process of their own (bench/serve-clients.ts), as real ones do.
// One configuration per process (the model's memory is its own):
//   node dist/bench/serve.js --dtype q4 --threads 2 --clients 1,2,4 --tokens 48
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { Phi } from '../src/engine.js';
import type { WeightDType } from '../src/kernels/types.js';
import { createWasmKernels } from '../src/kernels/wasm/index.js';
import { serve } from '../src/node/serve.js';
import { TOKENIZER_DIR } from '../src/node/synth.js';
import { readWasm, spawnWorker } from '../src/node/wasm.js';
import { PhiTokenizer } from '../src/tokenizer/tokenizer.js';
import type { StreamResult } from './serve-clients.js';
import { batchRoof } from './batch-roof.js';
import { syntheticPhi } from './synthetic.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const execFileP = promisify(execFile);

export interface ServeRow {
  dtype: string;
  threads: number;
  clients: number;
  tokens_each: number;
  aggregate_decode_tokens_per_s: number;
  /** over one client's rate in the same run */
  speedup: number;
  time_to_first_token_ms_median: number;
  time_to_first_token_ms_max: number;
  streams_equal_solo: boolean;
  backend: string;
  /** The most n streams decode here if memory binds (bench/batch-roof.ts): n · bandwidth / weight bytes a token */
  memory_roof_tokens_per_s: number;
  /** ... if arithmetic binds: n / the matmuls' time for a step of n tokens, weights in cache */
  compute_roof_tokens_per_s: number;
  /** which roof is lower */
  roof_bound: 'memory' | 'compute';
  /** aggregate over the lower roof */
  fraction_of_roof: number;
  /** the lower roof over one stream's measured rate: the most "speedup" this machine allows */
  speedup_ceiling: number;
}

export const PROMPTS = [
  'def print_prime(n):\n   """\n   Print all primes between 1 and n\n   """',
  'Alice: I am struggling to focus while studying. Any suggestions?\nBob:',
  'Write a detailed analogy between mathematics and a lighthouse.\nAnswer:',
  'The history of the printing press begins in',
];

/** Run n streaming requests at once from another process, as real clients are: the client's
 * SSE parsing would otherwise share this process' main thread with the engine. `models`: each
 * request's model (an adapter's name), or the server's default. */
export async function clients(
  url: string,
  prompts: string[],
  tokens: number,
  models?: string[],
): Promise<StreamResult[]> {
  const { stdout } = await execFileP(process.execPath, [
    path.join(HERE, 'serve-clients.js'),
    JSON.stringify({ url, prompts, tokens, models }),
  ]);
  return JSON.parse(stdout) as StreamResult[];
}

/**
 * Aggregate decode tokens/s of concurrent streams, in the window in which all of them decode:
 * from the last first token to the first last token (before it, some prompts are still
 * prefilling; after it, fewer streams remain), each stream counted at its own average rate.
 */
export function aggregateRate(runs: StreamResult[]): number {
  const start = Math.max(...runs.map((r) => r.first));
  const end = Math.min(...runs.map((r) => r.last));
  const decoded = runs.reduce(
    (sum, r) => sum + ((r.tokens - 1) * (end - start)) / Math.max(1e-9, r.last - r.first),
    0,
  );
  return decoded / ((end - start) / 1000);
}

async function main() {
  const { values } = parseArgs({
    options: {
      dtype: { type: 'string', default: 'q4' },
      threads: { type: 'string', default: '2' },
      clients: { type: 'string', default: '1,2,4' },
      tokens: { type: 'string', default: '48' },
      context: { type: 'string', default: '256' },
    },
  });
  const dtype = values.dtype as WeightDType;
  const threads = Number(values.threads);
  const clientList = values.clients!.split(',').map(Number);
  const tokens = Number(values.tokens);
  const parallel = Math.max(...clientList);
  // what these stream counts could reach here at most, measured before the server and after
  // each round, the best kept: this machine's speed drifts by the minute
  const roofs = [await batchRoof(dtype, threads, clientList)];
  const kernels = await createWasmKernels({ threads, readWasm, spawnWorker, reserveBytes: 3.6e9 });
  const model = syntheticPhi(kernels, dtype, { maxPositions: Number(values.context) });
  const json = (f: string) => JSON.parse(readFileSync(`${TOKENIZER_DIR}/${f}`, 'utf8'));
  const tokenizer = new PhiTokenizer(json('tokenizer.json'), json('tokenizer_config.json'));
  const phi = new Phi(model, tokenizer, null, parallel);
  const server = await serve(phi, { port: 0, queue: 64 });

  // warm-up, and each prompt's solo text (what every concurrent stream must equal)
  const solo = new Map<string, string>();
  for (const p of PROMPTS) solo.set(p, (await clients(server.url, [p], tokens))[0].text);

  // best of 3 rounds, the client counts interleaved within each round: the machine's speed
  // drifts by the minute, and a slow phase should not fall on one count only
  const best = new Map<number, ServeRow>();
  const allEqual = new Map<number, boolean>();
  for (let round = 0; round < 3; round++) {
    for (const n of clientList) {
      const prompts = Array.from({ length: n }, (_, i) => PROMPTS[i % PROMPTS.length]);
      const runs = await clients(server.url, prompts, tokens);
      const ttft = runs.map((r) => r.first - r.sent).sort((a, b) => a - b);
      const equal = runs.every((r, i) => r.text === solo.get(PROMPTS[i % PROMPTS.length]));
      allEqual.set(n, (allEqual.get(n) ?? true) && equal);
      const row: ServeRow = {
        dtype,
        threads,
        clients: n,
        tokens_each: tokens,
        aggregate_decode_tokens_per_s: aggregateRate(runs),
        speedup: 0,
        time_to_first_token_ms_median: ttft[ttft.length >> 1],
        time_to_first_token_ms_max: ttft[ttft.length - 1],
        streams_equal_solo: false,
        backend: kernels.name,
        memory_roof_tokens_per_s: 0,
        compute_roof_tokens_per_s: 0,
        roof_bound: 'memory',
        fraction_of_roof: 0,
        speedup_ceiling: 0,
      };
      const b = best.get(n);
      if (!b || row.aggregate_decode_tokens_per_s > b.aggregate_decode_tokens_per_s)
        best.set(n, row);
    }
    roofs.push(await batchRoof(dtype, threads, clientList));
  }
  await server.close();
  phi.close();
  const roof = clientList.map((_, i) => ({
    memory_roof_tokens_per_s: Math.max(...roofs.map((r) => r.rows[i].memory_roof_tokens_per_s)),
    compute_roof_tokens_per_s: Math.max(...roofs.map((r) => r.rows[i].compute_roof_tokens_per_s)),
  }));
  const rows = clientList.map((n) => best.get(n)!);
  const one = best.get(1)?.aggregate_decode_tokens_per_s ?? rows[0].aggregate_decode_tokens_per_s;
  rows.forEach((r, i) => {
    const { memory_roof_tokens_per_s: memory, compute_roof_tokens_per_s: compute } = roof[i];
    r.speedup = r.aggregate_decode_tokens_per_s / one;
    r.streams_equal_solo = allEqual.get(r.clients)!; // in every round
    r.memory_roof_tokens_per_s = memory;
    r.compute_roof_tokens_per_s = compute;
    r.roof_bound = memory <= compute ? 'memory' : 'compute';
    r.fraction_of_roof = r.aggregate_decode_tokens_per_s / Math.min(memory, compute);
    r.speedup_ceiling = Math.min(memory, compute) / one;
  });
  process.stdout.write(JSON.stringify(rows) + '\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
