// Generation: sampling options, stop conditions, streaming, and the errors users hit.
import { loadPhi } from '../src/node/index.js';
import { Phi } from '../src/engine.js';
import { Sampler, argmax } from '../src/sample.js';
import { fixture, reference } from './helpers.js';

let phi: Phi;
beforeAll(async () => {
  phi = await loadPhi(fixture('tiny-phi-f32'));
});
const c = () => reference('tiny-phi-f32').cases.find((x) => x.name === 'print_prime')!;

describe('sampling', () => {
  test('same seed, same text; another seed, other text', async () => {
    const opts = { maxNewTokens: 16, temperature: 1.0, topP: 0.95, stopAtEos: false };
    const a = await phi.complete({ ids: c().input_ids }, { ...opts, seed: 7 });
    const b = await phi.complete({ ids: c().input_ids }, { ...opts, seed: 7 });
    const d = await phi.complete({ ids: c().input_ids }, { ...opts, seed: 8 });
    expect(a.ids).toEqual(b.ids);
    expect(a.ids).not.toEqual(d.ids);
  });
  test('top-k 1 is greedy whatever the temperature', async () => {
    const r = await phi.complete(
      { ids: c().input_ids },
      { maxNewTokens: 20, temperature: 2, topK: 1, seed: 3, stopAtEos: false },
    );
    expect(r.ids).toEqual(c().greedy.new_tokens);
  });
  test('top-k and top-p restrict the candidates', () => {
    const logits = Float32Array.from([0, 5, 1, 4.9, -3]);
    const draws = (o: object) =>
      new Set(
        Array.from({ length: 300 }, (_, i) =>
          new Sampler({ temperature: 1, seed: i, ...o }).next(logits, []),
        ),
      );
    expect(draws({ topK: 2 })).toEqual(new Set([1, 3]));
    expect(draws({ topP: 0.5 })).toEqual(new Set([1])); // p(1) ~ 0.49 .. just over half with 3
    expect(draws({}).size).toBeGreaterThan(2);
  });
  test('repetition penalty divides positive and multiplies negative logits of seen tokens', () => {
    const logits = Float32Array.from([2, 1.9, -1, -0.5]);
    expect(new Sampler({ repetitionPenalty: 1.1 }).next(logits, [0])).toBe(1); // 2/1.1 < 1.9
    expect(new Sampler({ repetitionPenalty: 1.1 }).next(Float32Array.from([-1, -1.05]), [0])).toBe(
      1,
    ); // -1.1 < -1.05
    expect(argmax(logits)).toBe(0);
  });
  test('bad sampling options are refused', () => {
    expect(() => new Sampler({ temperature: -1 })).toThrow(/temperature must be >= 0/);
    expect(() => new Sampler({ topP: 1.5 })).toThrow(/top-p must be in \(0, 1\]/);
    expect(() => new Sampler({ topK: 1.5 })).toThrow(/top-k must be an integer/);
  });
});

describe('stopping', () => {
  test('max new tokens', async () => {
    const r = await phi.complete({ ids: [1, 2, 3] }, { maxNewTokens: 3 });
    expect([r.ids.length, r.stopReason]).toEqual([3, 'length']);
  });
  test('stop strings end the text before the stop string, even across tokens', async () => {
    const full = await phi.complete({ ids: c().input_ids }, { maxNewTokens: 20, stopAtEos: false });
    const text = full.text;
    // a stop string spanning the boundary between two generated tokens
    const cut = phi.decode(full.ids.slice(0, 5)).length;
    const stop = text.slice(cut - 2, cut + 2);
    const r = await phi.complete(
      { ids: c().input_ids },
      { maxNewTokens: 20, stopAtEos: false, stop: [stop] },
    );
    expect(r.stopReason).toBe('stop');
    expect(r.text).toBe(text.slice(0, text.indexOf(stop)));
    // streamed pieces add up to the returned text
    const pieces: string[] = [];
    for await (const p of phi.generate(
      { ids: c().input_ids },
      { maxNewTokens: 20, stopAtEos: false, stop: [stop] },
    ))
      pieces.push(p.text);
    expect(pieces.join('')).toBe(r.text);
  });
  test('end of text stops generation (and can be turned off)', async () => {
    // find a prompt whose greedy continuation produces some token, then declare that the EOS
    const first = (await phi.complete({ ids: [11, 12] }, { maxNewTokens: 1 })).ids[0];
    const eosPhi = new Phi(phi.model, phi.tokenizer, first); // as if generation_config.json named it
    const r = await eosPhi.complete({ ids: [11, 12] }, { maxNewTokens: 5 });
    expect([r.ids, r.stopReason]).toEqual([[first], 'eos']);
    const r2 = await eosPhi.complete({ ids: [11, 12] }, { maxNewTokens: 5, stopAtEos: false });
    expect(r2.ids.length).toBe(5);
  });
  test('the context limit stops generation with a clear reason', async () => {
    const small = await loadPhi(fixture('tiny-phi-f32'), { maxPositions: 10 });
    const r = await small.complete({ ids: [1, 2, 3, 4, 5, 6, 7, 8] }, { maxNewTokens: 50 });
    expect(r.stopReason).toBe('context');
    expect(r.ids.length).toBe(3); // positions 8, 9 are filled, the token sampled there is the last
    expect(r.stopMessage).toMatch(/context limit of 10 positions/);
  });
  test('abort between tokens', async () => {
    const ac = new AbortController();
    const run = phi.generate({ ids: [1, 2] }, { maxNewTokens: 50, signal: ac.signal });
    let n = 0;
    for await (const _ of run) if (++n === 2) ac.abort();
    const r = await run.result();
    expect([r.stopReason, r.ids.length]).toEqual(['abort', 2]);
  });
  test('timings are reported', async () => {
    const r = await phi.complete('def print_prime(n):', { maxNewTokens: 4 });
    expect(r.prefillTokensPerS).toBeGreaterThan(0);
    expect(r.decodeSteps).toBe(3);
    expect(r.decodeTokensPerS).toBeGreaterThan(0);
  });
});

describe('bad input', () => {
  test('empty prompt', async () => {
    await expect(phi.complete('')).rejects.toThrow(/the prompt is empty/);
  });
  test('prompt longer than the context', async () => {
    const small = await loadPhi(fixture('tiny-phi-f32'), { maxPositions: 4 });
    await expect(small.complete({ ids: [1, 2, 3, 4, 5] })).rejects.toThrow(
      /the prompt has 5 tokens, longer than the context of 4 positions/,
    );
    await expect(phi.complete({ ids: new Array(513).fill(1) })).rejects.toThrow(
      /longer than the context of 512/,
    );
  });
  test('token id >= vocab', async () => {
    await expect(phi.complete({ ids: [1, 51200] })).rejects.toThrow(
      /token id 51200 at index 1 is out of range: the vocabulary has ids 0\.\.51199/,
    );
    expect(() => phi.logits([-1])).toThrow(/token id -1 at index 0 is out of range/);
  });
  test('a context larger than the model supports', async () => {
    await expect(loadPhi(fixture('tiny-phi-f32'), { maxPositions: 513 })).rejects.toThrow(
      /load option maxPositions must be an integer in 1\.\.512 \(the model's context\), got 513/,
    );
  });
  test('a missing model directory says how to get the weights', async () => {
    await expect(loadPhi('/nonexistent/phi')).rejects.toThrow(/phi download/);
  });
});
