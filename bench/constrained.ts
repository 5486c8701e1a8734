// Constrained decoding's cost, one dtype in its own process (run by `npm run bench --
// --constrained`; usable alone):
//   node dist/bench/constrained.js --dtype q4 --threads 2 --tokens 48 --rounds 5
// Decode on phi-1.5 shapes (synthetic weights, the real tokenizer) under a mid-size JSON
// Schema (bench/fixtures/order-schema.json) against the same model unconstrained, in
// interleaved rounds. Rates are wall-clock, first token to last, so the masks' time counts
// (the engine's own decodeTokensPerS times the forward steps only). Also: the one-off costs,
// describing the vocabulary to XGrammar and compiling the schema, and the mask's own time per
// token, replayed without the model. Prints one JSON line.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Phi } from '../src/engine.js';
import type { GenerateOptions } from '../src/generation.js';
import { Constraints, constraintOf } from '../src/grammar/constraint.js';
import { applyMask } from '../src/grammar/mask.js';
import type { WeightDType } from '../src/kernels/types.js';
import { createWasmKernels } from '../src/kernels/wasm/index.js';
import { loadTokenizer } from '../src/load.js';
import { dirFiles } from '../src/node/files.js';
import { TOKENIZER_DIR } from '../src/node/synth.js';
import { readWasm, spawnWorker } from '../src/node/wasm.js';
import { median } from './batch-roof.js';
import { syntheticPhi } from './synthetic.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SCHEMA = 'bench/fixtures/order-schema.json';
const SCHEMA_FILE = path.join(HERE, '..', '..', SCHEMA);

export interface ConstrainedRow {
  /** the schema file, from the repository's root */
  schema: string;
  dtype: string;
  threads: number;
  /** wall-clock decode tokens/s, median of the rounds */
  decode_tokens_per_s_free: number;
  decode_tokens_per_s_constrained: number;
  /** median over rounds of constrained / free, each round's pair run back to back */
  ratio: number;
  ratios: number[];
  /** tokens each constrained round decoded (it stops when the schema is complete) */
  constrained_tokens: number[];
  tokenizer_info_seconds: number;
  compile_seconds_first: number;
  compile_seconds_cached: number;
  /** the mask per token without the model: XGrammar's bitmask, the UTF-8 guard, applying it */
  mask_ms_per_token: number;
  node: string;
}

async function main() {
  const { values } = parseArgs({
    options: {
      dtype: { type: 'string', default: 'q4' },
      threads: { type: 'string', default: '2' },
      tokens: { type: 'string', default: '48' },
      rounds: { type: 'string', default: '5' },
    },
  });
  const dtype = values.dtype as WeightDType;
  const threads = Number(values.threads);
  const tokens = Number(values.tokens);
  const kernels = await createWasmKernels({ threads, readWasm, spawnWorker, reserveBytes: 3.4e9 });
  const model = syntheticPhi(kernels, dtype, { maxPositions: 256 });
  const tokenizer = (await loadTokenizer(dirFiles(TOKENIZER_DIR)))!;
  const phi = new Phi(model, tokenizer, tokenizer.eosId, 1);
  const schema = readFileSync(SCHEMA_FILE, 'utf8');

  const tokenizerInfoSeconds = await phi.grammarSetupSeconds();
  const compileFirst = await phi.prepareConstraint({ jsonSchema: schema });
  const compileCached = await phi.prepareConstraint({ jsonSchema: schema });

  const prompt = 'Alice: Give me the order as JSON.\nBob:';
  /** Wall-clock tokens/s from the first token to the last, and the ids. */
  const decode = async (o: GenerateOptions) => {
    const times: number[] = [];
    const r = await phi.complete(prompt, { ...o, onToken: () => times.push(performance.now()) });
    const n = times.length - 1;
    return { rate: n > 0 ? n / ((times[n] - times[0]) / 1000) : 0, ids: r.ids };
  };
  const constrained: GenerateOptions = {
    jsonSchema: schema,
    constraintLeadingSpace: true,
    maxNewTokens: tokens,
  };
  await decode({ maxNewTokens: 4 }); // warm-up
  const free: number[] = [];
  const held: number[] = [];
  const counts: number[] = [];
  let lastIds: number[] = [];
  for (let round = 0; round < Number(values.rounds); round++) {
    // a seed per round: the constrained text (and its length) differs between rounds
    const c = await decode({ ...constrained, temperature: 1, seed: round + 1 });
    const f = await decode({ maxNewTokens: c.ids.length, temperature: 1, seed: round + 1 });
    held.push(c.rate);
    free.push(f.rate);
    counts.push(c.ids.length);
    lastIds = c.ids;
    process.stderr.write(
      `  ${dtype} round ${round + 1}: ${f.rate.toFixed(2)} free, ${c.rate.toFixed(2)} constrained (${c.ids.length} tokens)\n`,
    );
  }
  const ratios = held.map((h, i) => h / free[i]);

  // the mask alone, replaying the last constrained output without the model
  const cs = new Constraints(tokenizer, model.config.vocabSize, tokenizer.eosId);
  const c = constraintOf({ jsonSchema: schema, constraintLeadingSpace: true })!;
  const logits = new Float32Array(model.config.vocabSize);
  let maskSeconds = 0;
  let masked = 0;
  for (let rep = 0; rep < 5; rep++) {
    const run = await cs.start(c);
    for (const id of lastIds) {
      const t0 = performance.now();
      applyMask(logits, await run.nextMask());
      run.accept(id);
      maskSeconds += (performance.now() - t0) / 1000;
      masked++;
    }
    run.dispose();
  }
  phi.close();
  const row: ConstrainedRow = {
    schema: SCHEMA,
    dtype,
    threads,
    decode_tokens_per_s_free: median(free),
    decode_tokens_per_s_constrained: median(held),
    ratio: median(ratios),
    ratios,
    constrained_tokens: counts,
    tokenizer_info_seconds: tokenizerInfoSeconds,
    compile_seconds_first: compileFirst,
    compile_seconds_cached: compileCached,
    mask_ms_per_token: (maskSeconds / masked) * 1000,
    node: process.version,
  };
  process.stdout.write(JSON.stringify(row) + '\n');
}

await main();
