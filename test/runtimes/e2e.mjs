// The same end-to-end check in every JavaScript runtime: load a fixture checkpoint through the
// portable core (no Node API: bytes come from the runtime's own file reader), greedy-generate,
// and compare the ids with the float64 reference; then fine-tune a LoRA adapter a few steps
// (phi.finetune, dropout on) on 1 and 2 threads, which must agree bit for bit and learn.
// run-all.mjs checks that every runtime's losses agree to 1e-6. And greedy output under a JSON
// Schema and a regex (XGrammar's wasm in this runtime), the same texts everywhere. Prints one JSON line;
// exit code 1 on mismatch.
//   node test/runtimes/e2e.mjs | deno run -A test/runtimes/e2e.mjs | bun test/runtimes/e2e.mjs
import { loadPhiFrom, memoryFiles } from '../../dist/src/index.js';
import { constrainedCase } from './constrained-case.mjs';
import { trainLosses } from './train-case.mjs';

const runtime = globalThis.Deno
  ? `deno ${Deno.version.deno}`
  : globalThis.Bun
    ? `bun ${Bun.version}`
    : `node ${process.version}`;
const root = new URL('../fixtures/tiny-phi-f16/', import.meta.url);

async function read(name) {
  const url = new URL(name, root);
  if (globalThis.Deno) return Deno.readFile(url);
  if (globalThis.Bun) return new Uint8Array(await Bun.file(url).arrayBuffer());
  const { readFile } = await import('node:fs/promises'); // Node: the adapter lives outside the core
  return new Uint8Array(await readFile(url));
}

const names = [
  'config.json',
  'model.safetensors',
  'tokenizer.json',
  'tokenizer_config.json',
  'reference.json',
];
const files = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await read(n)])));
const reference = JSON.parse(new TextDecoder().decode(files['reference.json']));
const c = reference.cases.find((x) => x.name === 'print_prime');

// Node has no Web Worker API: its adapter (worker_threads) comes from phi-wasm/node
const wasm =
  globalThis.Deno || globalThis.Bun ? undefined : await import('../../dist/src/node/wasm.js');

const results = [];
const train = []; // the fine-tune on the same model, after generating (1 and 2 threads)
let constrained = null; // on 2 threads
let ok = true;
for (const threads of [1, 2]) {
  const started = performance.now();
  const phi = await loadPhiFrom(memoryFiles('tiny-phi-f16', files), {
    backend: 'wasm',
    threads,
    wasm: wasm && { spawnWorker: wasm.spawnWorker, readWasm: wasm.readWasm },
  });
  const r = await phi.complete({ ids: c.input_ids }, { maxNewTokens: 20, stopAtEos: false });
  const text = await phi.complete('def print_prime(n):', { maxNewTokens: 8 });
  const same = JSON.stringify(r.ids) === JSON.stringify(c.greedy.new_tokens);
  ok &&= same;
  results.push({
    threads,
    backend: phi.model.kernels.name,
    ids_match: same,
    text: text.text,
    ms: Math.round(performance.now() - started),
  });
  if (threads === 2) {
    constrained = await constrainedCase(phi);
    ok &&= constrained.valid;
  }
  const trainStarted = performance.now();
  train.push({
    threads,
    ...(await trainLosses(phi)),
    ms: Math.round(performance.now() - trainStarted),
  });
  phi.close();
}
const sameBits = JSON.stringify(train[0].losses) === JSON.stringify(train[1].losses);
const learns = train[0].learns;
ok &&= sameBits && learns;
const training = {
  same_on_1_and_2_threads: sameBits,
  learns,
  losses: train[0].losses,
  ms: train.map((t) => t.ms),
};
console.log(JSON.stringify({ runtime, ok, results, training, constrained }));
if (!ok) {
  if (globalThis.Deno) Deno.exit(1);
  else process.exit(1);
}
if (globalThis.Deno)
  Deno.exit(0); // (worker threads would otherwise keep Deno alive)
else process.exit(0);
