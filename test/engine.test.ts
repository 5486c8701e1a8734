// One model shared by many callers: concurrent generations give exactly what they give alone,
// one after another; slots, the queue, aborts and the prompt cache.
import type { Phi } from '../src/engine.js';
import type { GenerateOptions, GenerationResult } from '../src/generation.js';
import { loadPhi } from '../src/node/index.js';
import { fixture, reference } from './helpers.js';

const cases = reference('tiny-phi-f32').cases;
const prompts = cases.map((c) => c.input_ids);
// greedy and seeded sampling, different lengths, so requests finish at different steps
const requests: [number[], GenerateOptions][] = [
  [prompts[0], { maxNewTokens: 9, stopAtEos: false }],
  [prompts[1], { maxNewTokens: 14, temperature: 0.9, topP: 0.9, seed: 3, stopAtEos: false }],
  [prompts[2], { maxNewTokens: 5, temperature: 1.2, topK: 40, seed: 11, stopAtEos: false }],
  [prompts[4], { maxNewTokens: 12, repetitionPenalty: 1.3, stopAtEos: false }],
  [prompts[3], { maxNewTokens: 7, stopAtEos: false }],
];

async function oneByOne(phi: Phi): Promise<number[][]> {
  const out: number[][] = [];
  for (const [ids, o] of requests) out.push((await phi.complete({ ids }, o)).ids);
  return out;
}

async function allAtOnce(phi: Phi): Promise<GenerationResult[]> {
  return Promise.all(requests.map(([ids, o]) => phi.complete({ ids }, o)));
}

describe.each(['js', 'wasm'] as const)('the %s backend', (backend) => {
  let solo: number[][];
  beforeAll(async () => {
    const phi = await loadPhi(fixture('tiny-phi-f32'), { backend, threads: 2 });
    solo = await oneByOne(phi);
    phi.close();
  });

  // the engine is the same for both backends; the js kernels' batch invariance needs fewer
  test.each(backend === 'wasm' ? [1, 2, 3, 8] : [1, 3])(
    'with %i slot(s), concurrent calls give exactly the solo outputs',
    async (parallel) => {
      const phi = await loadPhi(fixture('tiny-phi-f32'), { backend, threads: 2, parallel });
      const results = await allAtOnce(phi);
      expect(results.map((r) => r.ids)).toEqual(solo);
      // and again, now that the slots hold earlier prompts (the prompt cache is exact too)
      expect((await allAtOnce(phi)).map((r) => r.ids)).toEqual(solo);
      phi.close();
    },
  );

  test('prefill in chunks of 5 interleaved with other requests decoding gives the same', async () => {
    const phi = await loadPhi(fixture('tiny-phi-f32'), { backend, parallel: 3, maxBatch: 5 });
    expect((await allAtOnce(phi)).map((r) => r.ids)).toEqual(solo);
    phi.close();
  });
});

describe('slots and the queue', () => {
  let phi: Phi;
  beforeAll(async () => {
    phi = await loadPhi(fixture('tiny-phi-f32'), { parallel: 2 });
  });
  afterAll(() => phi.close());

  test('requests beyond the slots wait their turn, first come first served', async () => {
    const order: number[] = [];
    const runs = [0, 1, 2, 3].map((i) => {
      const g = phi.generate({ ids: prompts[i] }, { maxNewTokens: 3 });
      void g.started.then(() => order.push(i));
      return g;
    });
    // admitted by the engine's next step, not the call: two have a free slot to go to, two
    // wait for one
    expect([phi.active, phi.waiting, phi.freeSlots]).toEqual([0, 2, 0]);
    await Promise.all(runs.map((r) => r.result()));
    expect(order).toEqual([0, 1, 2, 3]);
    expect([phi.active, phi.waiting]).toEqual([0, 0]);
  });

  test('an aborted request leaves the queue; a running one frees its slot within a token', async () => {
    const a = new AbortController();
    const long = phi.generate({ ids: [1, 2, 3] }, { maxNewTokens: 500, stopAtEos: false });
    const other = phi.generate({ ids: [4, 5] }, { maxNewTokens: 500, stopAtEos: false });
    const queued = phi.generate({ ids: [6] }, { maxNewTokens: 3, signal: a.signal });
    a.abort();
    const q = await queued.result();
    expect([q.stopReason, q.ids]).toEqual(['abort', []]);
    let n = 0;
    for await (const _ of long) if (++n === 3) break; // breaking out aborts
    const r = await long.result();
    expect([r.stopReason, r.ids.length]).toEqual(['abort', 3]);
    other.abort();
    expect((await other.result()).stopReason).toBe('abort');
    expect([phi.active, phi.waiting]).toEqual([0, 0]);
  });

  test('logits() needs a free slot: refused while generations hold them all, exact otherwise', async () => {
    const want = phi.logits(prompts[0]);
    const a = phi.generate({ ids: [1] }, { maxNewTokens: 50, stopAtEos: false });
    const b = phi.generate({ ids: [2] }, { maxNewTokens: 50, stopAtEos: false });
    await Promise.all([a.started, b.started]);
    expect(() => phi.logits(prompts[0])).toThrow(/all 2 slots are in use/);
    a.abort();
    await a.result();
    expect(Array.from(phi.logits(prompts[0]))).toEqual(Array.from(want)); // b keeps running
    b.abort();
    await b.result();
  });

  test('a prompt that extends an earlier one reuses its cached positions', async () => {
    const ids = prompts[3].slice(0, 60);
    const first = await phi.complete({ ids }, { maxNewTokens: 4 });
    const longer = [...ids, ...first.ids, 7, 8];
    const again = await phi.complete({ ids: longer }, { maxNewTokens: 6 });
    expect(again.cachedPromptTokens).toBeGreaterThanOrEqual(60);
    const fresh = await loadPhi(fixture('tiny-phi-f32'));
    expect(again.ids).toEqual((await fresh.complete({ ids: longer }, { maxNewTokens: 6 })).ids);
    fresh.close();
  });

  test('a callback that throws fails only its own request', async () => {
    const bad = phi.complete(
      { ids: [1] },
      {
        maxNewTokens: 5,
        onToken: () => {
          throw new Error('boom');
        },
      },
    );
    const good = phi.complete({ ids: [2] }, { maxNewTokens: 5, stopAtEos: false });
    await expect(bad).rejects.toThrow('boom');
    expect((await good).ids).toHaveLength(5);
  });

  test('closing the model fails what is running and waiting', async () => {
    const p = await loadPhi(fixture('tiny-phi-f32'));
    const a = p.complete({ ids: [1] }, { maxNewTokens: 100, stopAtEos: false });
    const b = p.complete({ ids: [2] }, { maxNewTokens: 100 });
    p.close();
    await expect(a).rejects.toThrow(/the model was closed/);
    await expect(b).rejects.toThrow(/the model was closed/);
    expect(() => p.generate({ ids: [1] })).toThrow(/the model was closed/);
  });
});

describe('a fault stays with its request', () => {
  let phi: Phi;
  let solo: number[][];
  beforeAll(async () => {
    phi = await loadPhi(fixture('tiny-phi-f32'), { parallel: 3, threads: 2 });
    solo = await oneByOne(phi);
  });
  afterAll(() => phi.close());

  test('an onToken that throws fails that request; the others in the step and the queue are exact', async () => {
    const bad = phi.complete(
      { ids: prompts[0] },
      {
        maxNewTokens: 6,
        onToken: (_, __) => {
          throw new Error('the callback broke');
        },
      },
    );
    const good = requests.map(([ids, o]) => phi.complete({ ids }, o));
    await expect(bad).rejects.toThrow('the callback broke');
    expect((await Promise.all(good)).map((r) => r.ids)).toEqual(solo);
  });

  test('logits() from onToken is refused, clearly; the other requests in the step are exact', async () => {
    let refused = '';
    const curious = phi.complete(
      { ids: prompts[1] },
      {
        maxNewTokens: 3,
        onToken: () => {
          try {
            phi.logits([1, 2, 3]);
          } catch (e) {
            refused = (e as Error).message;
            throw e;
          }
        },
      },
    );
    const good = requests.map(([ids, o]) => phi.complete({ ids }, o));
    await expect(curious).rejects.toThrow(/cannot run inside onToken/);
    expect(refused).toMatch(
      /logits cannot run inside onToken: the step's logits are still being read/,
    );
    expect((await Promise.all(good)).map((r) => r.ids)).toEqual(solo);
    // and from a microtask after the callback it works
    const l = await new Promise<Float32Array>((resolve) =>
      phi.generate(
        { ids: prompts[2] },
        {
          maxNewTokens: 1,
          onToken: () => queueMicrotask(() => resolve(phi.logits([1, 2, 3]))),
        },
      ),
    );
    expect(l.length).toBe(phi.config.vocabSize);
  });

  test('options of the wrong type are refused when given, naming them', () => {
    expect(() => phi.generate({ ids: [1] }, { onToken: 5 as never })).toThrow(
      'onToken must be a function (id, text) => void, got number',
    );
  });
});

test('slots that do not fit in memory are refused saying what would fit, not "Array buffer allocation failed"', async () => {
  const real = await loadPhi(fixture('tiny-phi-f32'), { backend: 'js' });
  let made = 0;
  const model = new Proxy(real.model, {
    get: (m, k) =>
      k === 'newCache'
        ? () => {
            if (++made > 2) throw new RangeError('Array buffer allocation failed');
            return m.newCache();
          }
        : Reflect.get(m, k),
  });
  const { Phi } = await import('../src/engine.js');
  expect(() => new Phi(model, real.tokenizer, null, 64)).toThrow(
    /^the KV caches of 64 slot\(s\) of 512 positions need 32\.0 MiB \(0\.5 MiB each\), more than this process could allocate \(it stopped at slot 3\); 2 slot\(s\) fit/,
  );
  real.close();
});
