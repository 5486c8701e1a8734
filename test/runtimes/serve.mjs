// The server's fetch handler (phi-wasm/server) under this runtime's own HTTP server: Deno.serve
// or Bun.serve. Loads the tiny checkpoint, serves it on a free port, asks for a greedy
// completion (plain and streamed) and compares with the engine's own answer. One JSON line.
import { loadPhiFrom, memoryFiles } from '../../dist/src/index.js';
import { createServer } from '../../dist/src/server/index.js';

const runtime = globalThis.Deno ? `deno ${Deno.version.deno}` : `bun ${Bun.version}`;
const root = new URL('../fixtures/tiny-phi-f16/', import.meta.url);
const read = (n) =>
  globalThis.Deno ? Deno.readFile(new URL(n, root)) : Bun.file(new URL(n, root)).bytes();
const names = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
const files = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await read(n)])));
const phi = await loadPhiFrom(memoryFiles('tiny-phi-f16', files), { threads: 1 });
const want = (await phi.complete('def f(x):', { maxNewTokens: 8, temperature: 0 })).text;

const handler = createServer(phi);
let port;
let stop;
if (globalThis.Deno) {
  const s = Deno.serve({ port: 0, hostname: '127.0.0.1', onListen: () => {} }, handler.fetch);
  port = s.addr.port;
  stop = () => s.shutdown();
} else {
  const s = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: handler.fetch });
  port = s.port;
  stop = () => s.stop(true);
}
const post = (body) =>
  fetch(`http://127.0.0.1:${port}/v1/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
const plain = await (await post({ prompt: 'def f(x):', max_tokens: 8, temperature: 0 })).json();
const events = await (
  await post({ prompt: 'def f(x):', max_tokens: 8, temperature: 0, stream: true })
).text();
const streamed = events
  .split('\n')
  .filter((l) => l.startsWith('data: {'))
  .map((l) => JSON.parse(l.slice(6)).choices[0]?.text ?? '')
  .join('');
const health = (await fetch(`http://127.0.0.1:${port}/health`)).status;
await stop();
phi.close();
const ok =
  plain.choices?.[0]?.text === want &&
  streamed === want &&
  health === 200 &&
  events.trimEnd().endsWith('data: [DONE]');
console.log(JSON.stringify({ ok, runtime, text: plain.choices?.[0]?.text, want }));
if (!ok) process.exit(1);
