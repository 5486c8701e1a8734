// Faults end in one clear error, quickly: a dead or stuck kernel worker, an abort during a
// long prefill, input that must be refused (and says which field), hostile sizes, and the
// demo server's URLs.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { WasmKernels } from '../src/kernels/wasm/index.js';
import { createWasmKernels } from '../src/kernels/wasm/index.js';
import { loadPhiFrom } from '../src/load.js';
import { memoryFiles } from '../src/io/source.js';
import { loadPhi } from '../src/node/index.js';
import { readWasm } from '../src/node/wasm.js';
import { Sampler } from '../src/sample.js';
import { fixture, NODE, ROOT } from './helpers.js';

const MODEL = fixture('tiny-phi-f32');
const files = (name: string) =>
  Object.fromEntries(
    [
      'config.json',
      'model.safetensors',
      'tokenizer.json',
      'tokenizer_config.json',
      'generation_config.json',
    ].map((f) => [f, new Uint8Array(readFileSync(fixture(name, f)))]),
  );

describe('kernel workers that go away', () => {
  test('a worker that exits: the next step fails within seconds, naming it, and the model says so after', async () => {
    const phi = await loadPhi(MODEL, { threads: 2 });
    const pool = (phi.model.kernels as WasmKernels).pool as unknown as { workers: Worker[] };
    const run = phi.generate({ ids: [1, 2, 3] }, { maxNewTokens: 400, stopAtEos: false });
    let n = 0;
    const t0 = { at: 0 };
    const consumed = (async () => {
      for await (const _ of run) {
        if (++n === 3) {
          await pool.workers[0].terminate(); // as if it crashed
          t0.at = Date.now();
        }
      }
    })();
    // reported by its exit event, or, when that cannot arrive in time (the step already waits
    // for the worker), by the wait giving up on it
    const gone =
      /kernel worker 1 died \(exited with code \d+\)|a kernel worker did not finish \w+ \d+ ms after/;
    await expect(consumed).rejects.toThrow(gone);
    // the pool's wait gives up after 4 s at most; the bound leaves room for a loaded machine
    expect(Date.now() - t0.at).toBeLessThan(15_000);
    await expect(run.result()).rejects.toThrow(gone);
    await expect(phi.complete({ ids: [1] })).rejects.toThrow(/the thread pool was closed/);
    phi.close();
  });

  test('a worker that exited while the model was idle: the next call fails at once, saying so', async () => {
    const phi = await loadPhi(MODEL, { threads: 3 });
    const pool = (phi.model.kernels as WasmKernels).pool as unknown as { workers: Worker[] };
    await pool.workers[1].terminate(); // its exit event arrives before the next call
    const t0 = Date.now();
    expect(() => phi.logits([1, 2])).toThrow(
      /kernel worker 2 died \(exited with code 1\); load the model again/,
    );
    expect(Date.now() - t0).toBeLessThan(2000); // no wait for it at all: the exit was seen
    phi.close();
  });

  test('a worker that never finishes an op is given up on within seconds, not two minutes', async () => {
    // a "worker" that says it started and then never runs an op
    const stuck = (data: { control: SharedArrayBuffer }) => {
      const w = new Worker(
        `const { workerData } = require('node:worker_threads');
         const c = new Int32Array(workerData.control);
         Atomics.add(c, 4, 1); // READY
         setInterval(() => {}, 1000);`,
        { eval: true, workerData: { control: data.control } },
      );
      w.unref();
      return w;
    };
    const k = await createWasmKernels({
      readWasm,
      spawnWorker: stuck,
      threads: 2,
      reserveBytes: 1 << 20,
    });
    const t0 = Date.now();
    expect(() => k.gelu_new(k.allocF32(64), 64)).toThrow(
      /a kernel worker did not finish gelu_new \d+ ms after this thread finished its share/,
    );
    expect(Date.now() - t0).toBeLessThan(15_000);
    k.close();
  });
});

test('an abort stops a long prefill between chunks', async () => {
  const phi = await loadPhi(MODEL, { backend: 'js', maxBatch: 4 });
  const ids = Array.from({ length: 480 }, (_, i) => (i * 13) % 1000);
  const full = Date.now();
  await phi.complete({ ids }, { maxNewTokens: 1 });
  const fullMs = Date.now() - full;
  const ac = new AbortController();
  const t0 = Date.now();
  setTimeout(() => ac.abort(), fullMs / 10);
  const r = await phi.complete(
    { ids: ids.map((x) => x + 1) },
    { maxNewTokens: 1, signal: ac.signal },
  );
  expect(r.stopReason).toBe('abort');
  expect(r.ids).toEqual([]);
  // measured against the same prefill in this test, so a loaded machine slows both
  expect(Date.now() - t0).toBeLessThan(fullMs * 0.8);
});

describe('input that is refused, naming the field', () => {
  test('a config with fewer layers than the checkpoint', async () => {
    const f = files('tiny-phi-f32');
    const cfg = JSON.parse(new TextDecoder().decode(f['config.json']));
    f['config.json'] = new TextEncoder().encode(JSON.stringify({ ...cfg, num_hidden_layers: 1 }));
    await expect(loadPhiFrom(memoryFiles('m', f), NODE)).rejects.toThrow(
      /m\/model\.safetensors: tensor "model\.layers\.1\.[^"]+" \(and \d+ more\) is not part of the model config\.json describes \(1 layers, hidden 64\)/,
    );
  });

  test('eos_token_id -1 in generation_config.json', async () => {
    const f = files('tiny-phi-f32');
    f['generation_config.json'] = new TextEncoder().encode('{"eos_token_id": -1}');
    await expect(loadPhiFrom(memoryFiles('m', f), NODE)).rejects.toThrow(
      /m\/generation_config\.json: eos_token_id must be a token id in 0\.\.51199, got -1/,
    );
  });

  test('tokenizer.json without merges, or with an empty vocabulary', async () => {
    const f = files('tiny-phi-f32');
    const tok = JSON.parse(new TextDecoder().decode(f['tokenizer.json']));
    const bad = (t: object) =>
      loadPhiFrom(memoryFiles('m', { ...f, 'tokenizer.json': JSON.stringify(t) }), NODE);
    await expect(bad({ ...tok, model: { ...tok.model, merges: undefined } })).rejects.toThrow(
      /m\/tokenizer\.json: model\.merges must be an array of merges/,
    );
    await expect(bad({ ...tok, model: { ...tok.model, vocab: {} } })).rejects.toThrow(
      /m\/tokenizer\.json: model\.vocab is empty/,
    );
  });

  test.each([
    [{ maxBatch: 0 }, /load option maxBatch must be an integer in 1\.\.4096, got 0/],
    [{ maxBatch: 1.5 }, /load option maxBatch must be an integer in 1\.\.4096, got 1\.5/],
    [{ backend: 'cuda' }, /load option backend must be "wasm" or "js", got "cuda"/],
    [{ threads: 1000 }, /load option threads must be an integer in 1\.\.256, got 1000/],
    [{ dtype: 'int3' }, /load option dtype must be/],
  ])('load options %j', async (o, message) => {
    await expect(loadPhi(MODEL, o as object)).rejects.toThrow(message);
  });

  test('phi quantize --out equal to --model is refused: it would overwrite the original', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'phi-q-'));
    cpSync(MODEL, dir, { recursive: true });
    const before = readFileSync(path.join(dir, 'model.safetensors'));
    const r = spawnSync(
      process.execPath,
      [
        path.join(ROOT, 'bin', 'phi.js'),
        'quantize',
        '--model',
        dir,
        '--dtype',
        'q8',
        '--out',
        dir + '/',
      ],
      { encoding: 'utf8' },
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /^phi: --out is the model folder: quantizing in place would overwrite the original with the lossy copy/m,
    );
    expect(readFileSync(path.join(dir, 'model.safetensors')).equals(before)).toBe(true);
  });
});

describe('sampling that could go wrong silently', () => {
  test('a tiny temperature samples the top token, not a padding id', () => {
    const logits = Float32Array.from([0.5, 3, 1, -2]);
    for (const t of [1e-310, 1e-30, 1e-8])
      expect(new Sampler({ temperature: t, seed: 1 }).next(logits, [])).toBe(1);
  });
  test('non-finite logits are an error, not an answer', () => {
    expect(() => new Sampler({ temperature: 0 }).next(Float32Array.from([0, NaN, 1]), [])).toThrow(
      /the model produced a non-finite logit \(NaN for token 1\)/,
    );
  });
});

test('a 5 MB prompt is refused at once, before tokenizing', async () => {
  const phi = await loadPhi(MODEL, { threads: 1 });
  const t0 = Date.now();
  expect(() => phi.generate('x'.repeat(5e6))).toThrow(
    /the prompt has 5000000 characters, more than the context of 512 positions can hold/,
  );
  expect(Date.now() - t0).toBeLessThan(3000); // tokenizing it would take tens of seconds
  phi.close();
});

describe('the demo server serves its files and nothing else', () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    const { startServer } = (await import(path.join(ROOT, 'demo', 'server.mjs'))) as {
      startServer: (port: number) => Promise<Server>;
    };
    server = await startServer(0);
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  test.each([
    ['/demo/index.html', 200],
    ['/test/fixtures/tiny-phi-f16/config.json', 200],
    ['/%E0%A4%A', 400], // malformed percent-encoding
    ['/demo/..%2F..%2Fpackage.json', 404],
    ['/demo/%2e%2e/%2e%2e/etc/passwd', 404],
    ['/.git/config', 404],
    ['/package.json', 404],
    ['/src/engine.ts', 404],
    ['/demo/%00', 400],
  ])('%s -> %i', async (url, status) => {
    const r = await fetch(base + url);
    expect(r.status).toBe(status);
    await r.arrayBuffer();
  });

  test('it lists and serves the models of weights/ and the Hugging Face cache (by Hub id)', async () => {
    const cache = mkdtempSync(path.join(tmpdir(), 'phi-demo-hub-'));
    const repo = path.join(cache, 'models--someone--tiny');
    const commit = 'a'.repeat(40);
    cpSync(fixture('tiny-phi-f16'), path.join(repo, 'snapshots', commit), { recursive: true });
    mkdirSync(path.join(repo, 'refs'));
    writeFileSync(path.join(repo, 'refs', 'main'), commit);
    const before = process.env.HF_HUB_CACHE;
    process.env.HF_HUB_CACHE = cache;
    try {
      const models = (await (await fetch(`${base}/models.json`)).json()) as {
        name: string;
        url: string;
      }[];
      expect(models).toContainEqual({ name: 'someone/tiny', url: '/hub/someone/tiny' });
      const cfg = await fetch(`${base}/hub/someone/tiny/config.json`);
      expect(cfg.status).toBe(200);
      expect(((await cfg.json()) as { model_type: string }).model_type).toBe('phi');
      for (const bad of [
        '/hub/someone/tiny/../../refs/main',
        '/hub/someone/none/config.json',
        '/hub/x',
      ])
        expect([bad, (await fetch(base + bad)).status]).toEqual([bad, 404]);
    } finally {
      if (before === undefined) delete process.env.HF_HUB_CACHE;
      else process.env.HF_HUB_CACHE = before;
    }
  });

  test('a flood of bad requests does not bring it down', async () => {
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        fetch(`${base}/%${i.toString(16)}`).then((r) => r.arrayBuffer()),
      ),
    );
    expect((await fetch(`${base}/demo/index.html`)).status).toBe(200);
  });
});
