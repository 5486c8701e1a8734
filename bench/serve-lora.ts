// `npm run bench -- --adapter --serve`: phi serve with 4 rank-8 adapters (random, unmerged) on
// phi-1.5 shapes, 4 concurrent streams: all on one adapter, against each on its own adapter
// (one batched step: the base matmul once for all rows, then each row's own low-rank term),
// and on none. Rounds interleave the three; the ratio is taken within a round. Also checks
// that every stream equals its solo run on the same adapter.
//   node dist/bench/serve-lora.js --dtype q4 --threads 2 --tokens 48 --rank 8
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Phi } from '../src/engine.js';
import type { WeightDType } from '../src/kernels/types.js';
import { createWasmKernels } from '../src/kernels/wasm/index.js';
import { serve } from '../src/node/serve.js';
import { TOKENIZER_DIR } from '../src/node/synth.js';
import { readWasm, spawnWorker } from '../src/node/wasm.js';
import { PhiTokenizer } from '../src/tokenizer/tokenizer.js';
import { median } from './batch-roof.js';
import { PROMPTS, aggregateRate, clients } from './serve.js';
import { randomAdapter, syntheticPhi } from './synthetic.js';

export interface ServeLoraRow {
  dtype: string;
  threads: number;
  rank: number;
  streams: number;
  tokens_each: number;
  /** aggregate decode tok/s, median of the rounds */
  no_adapter: number;
  one_adapter: number;
  different_adapters: number;
  /** median over rounds of different / one, each pair back to back */
  ratio: number;
  ratios: number[];
  streams_equal_solo: boolean;
}

async function main() {
  const { values } = parseArgs({
    options: {
      dtype: { type: 'string', default: 'q4' },
      threads: { type: 'string', default: '2' },
      tokens: { type: 'string', default: '48' },
      rank: { type: 'string', default: '8' },
      rounds: { type: 'string', default: '3' },
    },
  });
  const dtype = values.dtype as WeightDType;
  const threads = Number(values.threads);
  const tokens = Number(values.tokens);
  const rank = Number(values.rank);
  const n = 4;
  const kernels = await createWasmKernels({ threads, readWasm, spawnWorker, reserveBytes: 3.8e9 });
  const model = syntheticPhi(kernels, dtype, { maxPositions: 256 });
  const json = (f: string) => JSON.parse(readFileSync(`${TOKENIZER_DIR}/${f}`, 'utf8'));
  const tokenizer = new PhiTokenizer(json('tokenizer.json'), json('tokenizer_config.json'));
  const phi = new Phi(model, tokenizer, null, n);
  const names = Array.from({ length: n }, (_, i) => `lora-${i}`);
  names.forEach((name, i) => phi.addAdapter(name, randomAdapter(model.config, rank, i + 1)));
  const server = await serve(phi, { port: 0, queue: 64 });

  const prompts = PROMPTS.slice(0, n);
  const layouts: Record<'none' | 'one' | 'different', string[] | undefined> = {
    none: undefined,
    one: names.map(() => names[0]),
    different: names,
  };
  // each prompt's solo text on each adapter it meets (also the warm-up)
  const solo = new Map<string, string>();
  const key = (p: string, m?: string) => `${m ?? ''}\u0000${p}`;
  for (const models of Object.values(layouts))
    for (let i = 0; i < n; i++)
      if (!solo.has(key(prompts[i], models?.[i]))) {
        const m = models ? [models[i]] : undefined;
        const [r] = await clients(server.url, [prompts[i]], tokens, m);
        solo.set(key(prompts[i], models?.[i]), r.text);
      }

  const rates: Record<string, number[]> = { none: [], one: [], different: [] };
  let equal = true;
  for (let round = 0; round < Number(values.rounds); round++)
    for (const [layout, models] of Object.entries(layouts)) {
      const runs = await clients(server.url, prompts, tokens, models);
      rates[layout].push(aggregateRate(runs));
      equal &&= runs.every((r, i) => r.text === solo.get(key(prompts[i], models?.[i])));
    }
  await server.close();
  phi.close();
  const ratios = rates.different.map((d, i) => d / rates.one[i]);
  const row: ServeLoraRow = {
    dtype,
    threads,
    rank,
    streams: n,
    tokens_each: tokens,
    no_adapter: median(rates.none),
    one_adapter: median(rates.one),
    different_adapters: median(rates.different),
    ratio: median(ratios),
    ratios,
    streams_equal_solo: equal,
  };
  process.stdout.write(JSON.stringify([row]) + '\n');
}

await main();
