// Constrained decoding without a model: masks, the exact number rules, the UTF-8 guard, and
// random walks through every constraint kind, each walk's text checked by a validator, a
// regex or a parser of its own.
import {
  Constraints,
  constraintOf,
  ConstraintError,
  encodedVocabulary,
} from '../src/grammar/constraint.js';
import { allowedCount, allows, applyMask, onlyAllowed } from '../src/grammar/mask.js';
import { boundedNumber } from '../src/grammar/numbers.js';
import { unsupportedSchema } from '../src/grammar/schema.js';
import { Utf8Guard, utf8Step } from '../src/grammar/utf8.js';
import { byteDecoder } from '../src/tokenizer/tokenizer.js';
import { corpus, EOS, invalid, phiTokenizer, VOCAB, walks, type Schema } from './constraints.js';
import { mulberry32 } from '../src/sample.js';

const tokenizer = phiTokenizer();
const cs = new Constraints(tokenizer, VOCAB, EOS);

describe('token masks', () => {
  const random = mulberry32(5);
  test.each([1, 5, 31, 32, 33, 100, 1027])('apply, count and only on V = %i', (V) => {
    const mask = new Int32Array(Math.ceil(V / 32)).map(() => (random() * 2 ** 32) | 0);
    if (V > 40) mask[1] = -1; // a word of all ones is skipped, not mistaken
    const logits = Float32Array.from({ length: V }, () => random());
    const x = logits.slice();
    applyMask(x, mask);
    let n = 0;
    for (let i = 0; i < V; i++) {
      const ok = ((mask[i >> 5] >>> (i & 31)) & 1) === 1;
      expect(allows(mask, i)).toBe(ok);
      expect(x[i]).toBe(ok ? logits[i] : -Infinity);
      n += ok ? 1 : 0;
    }
    expect(allowedCount(mask, V)).toBe(n);
    const one = new Int32Array(mask.length);
    const id = V - 1;
    one[id >> 5] = 1 << (id & 31);
    expect(onlyAllowed(one, V)).toBe(id);
    expect(onlyAllowed(new Int32Array(mask.length), V)).toBe(-1);
    if (V > 1) {
      one[0] |= 1;
      expect(onlyAllowed(one, V)).toBe(-1);
    }
  });
  test('a mask too short for the logits is an error', () => {
    expect(() => applyMask(new Float32Array(33), new Int32Array(1))).toThrow(/cannot cover 33/);
  });
});

describe("phi's vocabulary as XGrammar reads it", () => {
  test('every id spelled in the byte-level alphabet decodes to its bytes; special ids are empty', () => {
    const vocab = encodedVocabulary(tokenizer);
    const dec = byteDecoder();
    expect(vocab.length).toBe(tokenizer.size);
    for (let id = 0; id < vocab.length; id++) {
      const bytes = Uint8Array.from([...vocab[id]].map((ch) => dec.get(ch)!));
      expect(bytes).toEqual(tokenizer.isSpecial(id) ? new Uint8Array(0) : tokenizer.tokenBytes(id));
    }
    expect(vocab[EOS]).toBe('');
    expect(vocab[50257]).toBe('Ġ'.repeat(31)); // CodeGen's whitespace tokens, as bytes
  });
  test('<|endoftext|> only where the text may end; ids past the tokenizer never', async () => {
    const [w] = await walks(cs, tokenizer, { grammar: 'root ::= "a" "b"?' }, 1, 1);
    expect(w.ended).toBe(true);
    const run = await cs.start(constraintOf({ grammar: 'root ::= "a" "b"?' })!);
    let mask = await run.nextMask();
    expect(allows(mask, EOS)).toBe(false);
    for (let id = tokenizer.size; id < VOCAB; id++) expect(allows(mask, id)).toBe(false);
    run.accept(tokenizer.encode('a')[0]);
    mask = await run.nextMask();
    expect(allows(mask, EOS)).toBe(true);
    expect(allowedCount(mask, VOCAB)).toBe(2); // "b" or the end
    run.dispose();
  });
});

describe('UTF-8 guard', () => {
  test('the state machine takes exactly the valid sequences (against TextDecoder, fatal)', () => {
    const fatal = new TextDecoder('utf-8', { fatal: true });
    const random = mulberry32(9);
    const valid = (b: Uint8Array) => {
      try {
        fatal.decode(b);
        return true;
      } catch {
        return false;
      }
    };
    for (let k = 0; k < 20000; k++) {
      const n = 1 + Math.floor(random() * 4);
      const b = Uint8Array.from({ length: n }, () =>
        random() < 0.5 ? 0x80 + Math.floor(random() * 0x80) : Math.floor(random() * 256),
      );
      let s = 0;
      for (const x of b) if (s >= 0) s = utf8Step(s, x);
      expect(s === 0).toBe(valid(b));
    }
  });
  test('a token that would break the text is masked from each state', () => {
    const guard = new Utf8Guard(tokenizer, VOCAB);
    const lone = tokenizer.encode('é').length === 1 ? -1 : 0;
    expect(lone).toBe(-1);
    // byte 0xF5 can start nothing: its single-byte token is never allowed
    const f5 = [...Array(tokenizer.size).keys()].find((id) => {
      const b = tokenizer.tokenBytes(id);
      return b.length === 1 && b[0] === 0xf5;
    })!;
    for (const m of guard.allowed) expect(allows(m, f5)).toBe(false);
    // <|endoftext|> only between characters
    expect(allows(guard.allowed[0], EOS)).toBe(true);
    for (let s = 1; s < guard.allowed.length; s++)
      expect(allows(guard.allowed[s], EOS)).toBe(false);
    // a raw control byte is kept out of JSON only
    const tab = tokenizer.encode('\t')[0];
    expect(allows(guard.noControl, tab)).toBe(false);
    expect(allows(guard.allowed[0], tab)).toBe(true);
  });
});

describe('bounded numbers are exact', () => {
  // every integer in -130..130 and a spread of decimals, against the bounds themselves
  const values = [
    ...Array.from({ length: 261 }, (_, i) => String(i - 130)),
    ...[
      '0.5',
      '-0.5',
      '1.0',
      '1.00',
      '2.999',
      '3.0',
      '3.01',
      '-1.0',
      '-1.5',
      '0.001',
      '99.9',
      '100.0',
      '-0.0',
    ],
  ];
  const cases: [string, { lo: number; loExcluded: boolean; hi: number; hiExcluded: boolean }][] = [
    ['0 <= x <= 120', { lo: 0, loExcluded: false, hi: 120, hiExcluded: false }],
    ['5 <= x', { lo: 5, loExcluded: false, hi: Infinity, hiExcluded: false }],
    ['x <= -3', { lo: -Infinity, loExcluded: false, hi: -3, hiExcluded: false }],
    ['-1 <= x <= 1', { lo: -1, loExcluded: false, hi: 1, hiExcluded: false }],
    ['0 < x <= 3', { lo: 0, loExcluded: true, hi: 3, hiExcluded: false }],
    ['-100 < x < 100', { lo: -100, loExcluded: true, hi: 100, hiExcluded: true }],
    ['-7 <= x < 0', { lo: -7, loExcluded: false, hi: 0, hiExcluded: true }],
    ['x = 42', { lo: 42, loExcluded: false, hi: 42, hiExcluded: false }],
  ];
  // and bounds drawn at random, either end open or missing
  const draw = mulberry32(21);
  for (let k = 0; k < 12; k++) {
    const a = Math.floor(draw() * 260) - 130;
    const b = a + Math.floor(draw() * 150);
    const bounds = {
      lo: draw() < 0.2 ? -Infinity : a,
      loExcluded: draw() < 0.5,
      hi: draw() < 0.2 ? Infinity : b,
      hiExcluded: draw() < 0.5,
    };
    cases.push([JSON.stringify(bounds), bounds]);
  }
  test.each(cases)('%s', async (_, b) => {
    for (const integer of [true, false]) {
      const body = boundedNumber(b, integer)!;
      const g = await cs.start(constraintOf({ grammar: `root ::= ${body}` })!);
      for (const v of values) {
        const x = Number(v);
        const inBounds =
          (b.loExcluded ? x > b.lo : x >= b.lo) && (b.hiExcluded ? x < b.hi : x <= b.hi);
        // the grammar writes no leading zeros, no "-0", and integers without a fraction
        const canonical =
          /^-?(0|[1-9][0-9]*)(\.[0-9]+)?$/.test(v) &&
          !/^-0(\.0*)?$/.test(v) &&
          (!integer || !v.includes('.'));
        expect([v, acceptsString(g, v)]).toEqual([v, inBounds && canonical]);
      }
      g.dispose();
    }
  });
  test('no value in the bounds: null', () => {
    expect(boundedNumber({ lo: 3, loExcluded: true, hi: 4, hiExcluded: true }, true)).toBeNull();
    expect(boundedNumber({ lo: 3, loExcluded: true, hi: 3, hiExcluded: false }, false)).toBeNull();
  });
});

/** Whether the grammar at its start takes all of `text` and may end there (no model). */
function acceptsString(g: Awaited<ReturnType<Constraints['start']>>, text: string): boolean {
  type Matcher = {
    _acceptString(s: string): boolean;
    acceptToken(id: number): boolean;
    reset(): void;
  };
  const m = (g as unknown as { matcher: Matcher }).matcher;
  m.reset();
  const ok = m._acceptString(text);
  const ends = ok && m.acceptToken(EOS);
  m.reset();
  return ends;
}

describe('JSON Schema: the corpus, walked', () => {
  test.each(corpus())('%s: every walk that ends is valid', async (name, schema) => {
    const ws = await walks(cs, tokenizer, { jsonSchema: schema }, 25, name.length);
    const ended = ws.filter((w) => w.ended);
    expect(ended.length).toBeGreaterThanOrEqual(15);
    for (const w of ended) expect([w.text, invalid(schema, w.text)]).toEqual([w.text, null]);
  });

  const formats: [string, Schema][] = [
    ['date', { type: 'string', format: 'date' }],
    ['time', { type: 'string', format: 'time' }],
    ['date-time', { type: 'string', format: 'date-time' }],
    ['uuid', { type: 'string', format: 'uuid' }],
    ['ipv4', { type: 'string', format: 'ipv4' }],
    ['ipv6', { type: 'string', format: 'ipv6' }],
    ['hostname', { type: 'string', format: 'hostname' }],
    ['duration', { type: 'string', format: 'duration' }],
  ];
  test.each(formats)('format %s: every walk that ends is valid', async (name, schema) => {
    const ws = await walks(cs, tokenizer, { jsonSchema: schema }, 60, 7, 120);
    const ended = ws.filter((w) => w.ended);
    expect(ended.length).toBeGreaterThanOrEqual(10);
    for (const w of ended) expect([w.text, invalid(schema, w.text)]).toEqual([w.text, null]);
  });

  test('json mode: a JSON object', async () => {
    const ws = await walks(cs, tokenizer, { json: true }, 30, 3);
    const ended = ws.filter((w) => w.ended);
    expect(ended.length).toBeGreaterThanOrEqual(15);
    for (const w of ended) expect(invalid({ type: 'object' }, w.text)).toBeNull();
  });
});

describe('JSON Schema: what cannot be honoured is refused, naming it', () => {
  test.each(corpus('refused'))('%s', (name, schema) => {
    expect(() => constraintOf({ jsonSchema: schema })).toThrow(ConstraintError);
  });
  test.each([
    [
      { type: 'array', uniqueItems: true },
      '/uniqueItems: the keyword "uniqueItems" is not supported',
    ],
    [{ properties: { a: { not: {} } } }, '/properties/a/not: the keyword "not"'],
    [{ $defs: { 'a/b': { if: {} } } }, '/$defs/a~1b/if'],
    [{ anyOf: [{}, { type: 'decimal' }] }, '/anyOf/1/type: "decimal" is not a JSON Schema type'],
    [{ type: 'string', format: 'ftp' }, '/format: the format "ftp" is not supported'],
    [{ type: 'string', format: 'email' }, '/format: the format "email" is not supported'],
    [{ type: 'string', pattern: 'a', maxLength: 3 }, '"pattern" with "maxLength" is not supported'],
    [{ $ref: 'other.json' }, 'only references inside the schema'],
    [{ minimum: 3 }, 'numeric bounds need "type"'],
    [{ type: 'integer', maximum: 1e16 }, 'bounds beyond'],
    [{ type: 'number', minimum: 0.2, maximum: 0.8 }, 'no number lies within the bounds'],
    [[1], 'a schema must be an object or a boolean'],
  ])('%j', (schema, message) => {
    expect(() => constraintOf({ jsonSchema: schema as Schema })).toThrow(message);
  });
  test('unsupportedSchema passes the corpus', () => {
    for (const [, schema] of corpus()) expect(unsupportedSchema(schema)).toBeNull();
  });
  test('a schema that is not JSON, two constraints at once, an empty grammar', () => {
    expect(() => constraintOf({ jsonSchema: '{bad' })).toThrow(/jsonSchema: is not valid JSON/);
    expect(() => constraintOf({ json: true, regex: 'a' })).toThrow(
      /give one constraint, not json and regex/,
    );
    expect(() => constraintOf({ grammar: '' })).toThrow(/grammar: must be a non-empty string/);
    expect(() => constraintOf({ regex: '(' })).toThrow(/regex: is not a valid regular expression/);
    expect(constraintOf({})).toBeNull();
    expect(constraintOf({ json: false })).toBeNull();
  });
});

describe('regexes and grammars, walked', () => {
  test.each([
    ['[0-9]{3}-[a-z]{2,5}'],
    ['(yes|no|maybe)'],
    ['[A-Z][a-z]+ [A-Z][a-z]+'],
    ['\\d{1,3}(\\.\\d+)?'],
    ['(ab|c)*d'],
  ])('regex %s: the whole text matches', async (re) => {
    const ws = await walks(cs, tokenizer, { regex: re }, 30, 11, 60);
    const ended = ws.filter((w) => w.ended);
    expect(ended.length).toBeGreaterThanOrEqual(10);
    for (const w of ended) expect(w.text).toMatch(new RegExp(`^(?:${re})$`, 'u'));
  });

  // arithmetic in GBNF's notation (llama.cpp's grammars/arithmetic.gbnf, in its own words)
  const ARITH = `
# an expression: terms joined by + and -
root   ::= expr
expr   ::= term (("+" | "-") term)*
term   ::= factor (("*" | "/") factor)*
factor ::= number | "(" expr ")"
number ::= [0-9]{1,3}
`;
  /** A parser of the same language, by hand: does `s` parse whole? */
  function parsesArith(s: string): boolean {
    let i = 0;
    const number = () => {
      const m = /^[0-9]{1,3}/.exec(s.slice(i));
      if (!m) return false;
      i += m[0].length;
      return true;
    };
    const factor = (): boolean => {
      if (s[i] === '(') {
        i++;
        if (!expr() || s[i] !== ')') return false;
        i++;
        return true;
      }
      return number();
    };
    const term = (): boolean => {
      if (!factor()) return false;
      while (s[i] === '*' || s[i] === '/') {
        i++;
        if (!factor()) return false;
      }
      return true;
    };
    const expr = (): boolean => {
      if (!term()) return false;
      while (s[i] === '+' || s[i] === '-') {
        i++;
        if (!term()) return false;
      }
      return true;
    };
    return expr() && i === s.length;
  }
  test('a GBNF grammar: every walk that ends parses', async () => {
    const ws = await walks(cs, tokenizer, { grammar: ARITH }, 40, 5, 80);
    const ended = ws.filter((w) => w.ended);
    expect(ended.length).toBeGreaterThanOrEqual(20);
    for (const w of ended) expect([w.text, parsesArith(w.text)]).toEqual([w.text, true]);
    expect(parsesArith('1+(2*3')).toBe(false); // the parser can fail
  });
  test('a grammar of lines: key=value, newline-separated', async () => {
    const g = 'root ::= line ("\\n" line){0,3}\nline ::= [a-z]{1,8} "=" [0-9]{1,4}';
    const ws = await walks(cs, tokenizer, { grammar: g }, 30, 8, 80);
    const ended = ws.filter((w) => w.ended);
    expect(ended.length).toBeGreaterThanOrEqual(10);
    for (const w of ended)
      expect(w.text).toMatch(/^[a-z]{1,8}=[0-9]{1,4}(\n[a-z]{1,8}=[0-9]{1,4}){0,3}$/);
  });
  test('a leading space, when asked, and only one', async () => {
    const ws = await walks(
      cs,
      tokenizer,
      { regex: '[a-c]{2}', constraintLeadingSpace: true },
      40,
      2,
      20,
    );
    const ended = ws.filter((w) => w.ended);
    expect(ended.some((w) => w.text.startsWith(' '))).toBe(true);
    for (const w of ended) expect(w.text).toMatch(/^ ?[a-c]{2}$/);
  });
  test("a grammar that does not parse: the library's reason, and the next compile works", async () => {
    const bad = constraintOf({ grammar: 'root ::= foo' })!;
    await expect(cs.compile(bad)).rejects.toThrow(
      'grammar: EBNF parser error at line 1, column 10: Rule "foo" is not defined',
    );
    await expect(cs.compile(constraintOf({ regex: '[xy]' })!)).resolves.toBeDefined();
    const [w] = await walks(cs, tokenizer, { regex: 'x|y' }, 1, 1);
    expect(w.text).toMatch(/^[xy]$/);
  });
  test('a compiled constraint is cached: the second compile takes no time', async () => {
    const c = constraintOf({ jsonSchema: corpus()[0][1] })!;
    await cs.compile(c);
    await cs.compile(c);
    expect(cs.lastCompileSeconds).toBe(0);
  });
});
