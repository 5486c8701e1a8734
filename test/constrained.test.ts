// Constrained generation through the model (tiny random-weight phi, the real tokenizer):
// sampled at temperature 1 with several seeds, every output that ends with `stop` is valid;
// every token was in its step's mask and every prefix can still be completed; greedy is the
// allowed argmax; batched rows equal solo runs.
import { loadPhi } from '../src/node/index.js';
import type { Phi } from '../src/engine.js';
import {
  Constraints,
  constraintOf,
  ConstraintError,
  GrammarRun,
} from '../src/grammar/constraint.js';
import { allows, applyMask } from '../src/grammar/mask.js';
import { argmax, mulberry32, Sampler } from '../src/sample.js';
import { corpus, EOS, invalid, VOCAB, type Schema } from './constraints.js';
import { fixture } from './helpers.js';

let phi: Phi;
let cs: Constraints;
beforeAll(async () => {
  phi = await loadPhi(fixture('tiny-phi-f32'), { parallel: 3, progress: null });
  cs = new Constraints(phi.tokenizer!, VOCAB, EOS);
});
afterAll(() => phi.close());

const SEEDS = [1, 2, 3, 4, 5, 6];
const PROMPT = 'Alice: Give me the record as JSON.\nBob:';

describe('the schema corpus, sampled at temperature 1', () => {
  test.each(corpus())('%s: 100%% of the outputs that stop are valid', async (name, schema) => {
    const runs = await Promise.all(
      SEEDS.map((seed) =>
        phi.complete(PROMPT, {
          jsonSchema: schema,
          temperature: 1,
          seed,
          maxNewTokens: 160,
          constraintLeadingSpace: true,
        }),
      ),
    );
    const stopped = runs.filter((r) => r.stopReason === 'eos');
    expect(stopped.length).toBeGreaterThanOrEqual(2);
    for (const r of stopped) {
      expect(r.stopMessage).toBe('end of text: the constraint is complete');
      expect([r.text, invalid(schema, r.text)]).toEqual([r.text, null]);
    }
    for (const r of runs.filter((x) => x.stopReason !== 'eos')) expect(r.stopReason).toBe('length');
  });

  test('JSON mode: objects', async () => {
    for (const seed of SEEDS) {
      const r = await phi.complete(PROMPT, { json: true, temperature: 1, seed, maxNewTokens: 60 });
      if (r.stopReason === 'eos') expect(invalid({ type: 'object' }, r.text)).toBeNull();
      else expect(r.stopReason).toBe('length');
    }
  });

  test('regex and grammar', async () => {
    for (const seed of SEEDS) {
      const re = await phi.complete('Code:', {
        regex: '[A-Z]{3}-[0-9]{2,4}',
        temperature: 1,
        seed,
      });
      expect(re.stopReason).toBe('eos');
      expect(re.text).toMatch(/^[A-Z]{3}-[0-9]{2,4}$/);
      const g = await phi.complete('Answer:', {
        grammar: 'root ::= " "? ("yes" | "no") ("." | "!")',
        temperature: 1,
        seed,
      });
      expect(g.text).toMatch(/^ ?(yes|no)[.!]$/);
    }
  });
});

describe('property: every token in its mask, every prefix completable', () => {
  const schema = corpus().find(([n]) => n === 'person')![1];

  /** Replay `ids` through a fresh matcher: each must be in its step's mask. */
  async function replay(
    o: Parameters<typeof constraintOf>[0],
    ids: number[],
  ): Promise<GrammarRun[]> {
    const states: GrammarRun[] = [];
    const run = await cs.start(constraintOf(o)!);
    for (const id of ids) {
      const mask = await run.nextMask();
      expect(allows(mask, id)).toBe(true);
      run.accept(id);
    }
    states.push(run);
    return states;
  }

  /** Finish the text from the matcher's state by the shortest closing tokens, then validate. */
  async function completes(prefixIds: number[], o: { jsonSchema: Schema }): Promise<string> {
    const run = await cs.start(constraintOf(o)!);
    const ids = [...prefixIds];
    for (const id of prefixIds) {
      await run.nextMask();
      run.accept(id);
    }
    // prefer the end, then closers, then digits and short letters: a finite way out
    const prefer = [
      '"',
      '}',
      ']',
      '0',
      '1',
      'a',
      ', ',
      ',',
      ': ',
      ' "',
      'true',
      'false',
      'null',
    ].map((t) => phi.tokenizer!.encode(t)[0]);
    while (!run.complete && ids.length < prefixIds.length + 200) {
      const mask = await run.nextMask();
      let id = allows(mask, EOS) ? EOS : prefer.find((t) => allows(mask, t));
      if (id === undefined) for (id = 0; !allows(mask, id); id++);
      run.accept(id);
      ids.push(id);
    }
    expect(run.complete).toBe(true);
    run.dispose();
    return phi.tokenizer!.decode(ids, { skipSpecial: true });
  }

  test.each([7, 8, 9])('seed %i', async (seed) => {
    const o = { jsonSchema: schema };
    const seen: number[] = [];
    const r = await phi.complete(PROMPT, {
      ...o,
      temperature: 1.3,
      topK: 40,
      repetitionPenalty: 1.2,
      seed,
      maxNewTokens: 40,
      onToken: (id) => seen.push(id),
    });
    expect(seen).toEqual(r.ids);
    (await replay(o, r.ids)).forEach((s) => s.dispose());
    const body = r.ids.filter((id) => id !== EOS);
    for (let n = 0; n <= body.length; n += 3) {
      const text = await completes(body.slice(0, n), o);
      expect([text, invalid(schema, text)]).toEqual([text, null]);
    }
  });
});

describe('sampling under a mask', () => {
  const random = mulberry32(4);
  test.each([
    [{ temperature: 0 }],
    [{ temperature: 1 }],
    [{ temperature: 0.7, topK: 3 }],
    [{ temperature: 1, topP: 0.5 }],
    [{ temperature: 1.5, repetitionPenalty: 1.3 }],
  ])('%j only ever picks allowed tokens', (o) => {
    const V = 77;
    for (let k = 0; k < 200; k++) {
      const logits = Float32Array.from({ length: V }, () => random() * 10 - 5);
      const mask = new Int32Array(3);
      const n = 1 + Math.floor(random() * 5);
      for (let j = 0; j < n; j++) {
        const id = Math.floor(random() * V);
        mask[id >> 5] |= 1 << (id & 31);
      }
      const id = new Sampler({ ...o, seed: k }).next(logits, [1, 2, 3], mask);
      expect(allows(mask, id)).toBe(true);
      if (!o.temperature) {
        const x = logits.slice();
        applyMask(x, mask);
        expect(id).toBe(argmax(x));
      }
    }
  });
  test('a mask that allows nothing is an error, not a token', () => {
    expect(() => new Sampler().next(new Float32Array(40), [], new Int32Array(2))).toThrow(
      'the constraint allows no token here',
    );
  });
});

describe('the engine', () => {
  const o = { jsonSchema: corpus().find(([n]) => n === 'enums')![1] };

  test('greedy is the argmax of the allowed logits, step by step', async () => {
    const prompt = phi.encode(PROMPT);
    const r = await phi.complete({ ids: prompt }, { ...o, maxNewTokens: 40 });
    expect(r.stopReason).toBe('eos');
    const run = await cs.start(constraintOf(o)!);
    for (let i = 0; i < r.ids.length; i++) {
      const mask = await run.nextMask();
      const logits = phi.logits([...prompt, ...r.ids.slice(0, i)]).slice();
      applyMask(logits, mask);
      expect([i, r.ids[i]]).toEqual([i, argmax(logits)]);
      run.accept(r.ids[i]);
    }
    run.dispose();
  });

  test('a complete grammar ends without another forward step; with logprobs it takes one', async () => {
    const g = { grammar: 'root ::= "yes"' };
    const r = await phi.complete('Q:', g);
    expect(r.text).toBe('yes');
    expect(r.ids[r.ids.length - 1]).toBe(EOS);
    expect(r.decodeSteps).toBe(r.ids.length - 2); // the first token from the prefill, EOS forced
    const l = await phi.complete('Q:', { ...g, topLogprobs: 2 });
    expect(l.ids).toEqual(r.ids);
    expect(l.decodeSteps).toBe(r.ids.length - 1);
  });

  test('max_tokens cuts first: length', async () => {
    const r = await phi.complete(PROMPT, { ...o, maxNewTokens: 3 });
    expect(r.stopReason).toBe('length');
    expect(r.ids.length).toBe(3);
  });

  test('rows of one batch, each with its own constraint, equal their solo runs', async () => {
    const options = [
      { ...o, temperature: 1, seed: 3 },
      { regex: '[a-z]{4,9}', temperature: 1, seed: 4 },
      { temperature: 1, seed: 5, maxNewTokens: 20 },
    ];
    const solo = [];
    for (const x of options) solo.push(await phi.complete(PROMPT, x));
    const together = await Promise.all(options.map((x) => phi.complete(PROMPT, x)));
    expect(together.map((r) => r.ids)).toEqual(solo.map((r) => r.ids));
  });

  test('stopAtEos off: the grammar still ends the text', async () => {
    const r = await phi.complete('Q:', { grammar: 'root ::= "ok"', stopAtEos: false });
    expect(r.text).toBe('ok');
    expect(r.stopReason).toBe('eos');
  });

  test('a refused constraint fails the generation, naming the option; prepareConstraint says it first', async () => {
    await expect(phi.prepareConstraint({ grammar: 'root ::= nothing' })).rejects.toThrow(
      ConstraintError,
    );
    await expect(phi.complete('Q:', { grammar: 'root ::= nothing' })).rejects.toThrow(
      /^grammar: EBNF parser error .*Rule "nothing" is not defined/,
    );
    expect(() => phi.generate('Q:', { jsonSchema: { not: {} } })).toThrow(/jsonSchema: \/not/);
    // and the model goes on serving
    expect((await phi.complete('Q:', { grammar: 'root ::= "a"' })).text).toBe('a');
  });
});
