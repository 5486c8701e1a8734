// Shared by the constrained-decoding tests: the schema corpus, a JSON Schema validator (ajv,
// the draft 2020-12 build, with formats), and a random walk through a constraint's masks.
import { readdirSync, readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { Constraints, constraintOf, type ConstraintOptions } from '../src/grammar/constraint.js';
import { allows } from '../src/grammar/mask.js';
import { PhiTokenizer } from '../src/tokenizer/tokenizer.js';
import { fixture } from './helpers.js';

const addFormats = addFormatsModule as unknown as (a: Ajv2020) => Ajv2020;

export const ajv = addFormats(new Ajv2020({ strict: false, allErrors: true }));

export type Schema = Record<string, unknown>;

/** test/fixtures/schemas/*.json (or refused/*.json): name -> schema. */
export function corpus(dir = ''): [string, Schema][] {
  const at = fixture('schemas', dir);
  return readdirSync(at)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => [
      f.replace(/\.json$/, ''),
      JSON.parse(readFileSync(`${at}/${f}`, 'utf8')) as Schema,
    ]);
}

/** Why `text` is not valid under `schema`, or null when it is. */
export function invalid(schema: Schema, text: string): string | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return `not JSON: ${(e as Error).message}`;
  }
  const validate = ajv.compile(schema);
  return validate(value) ? null : ajv.errorsText(validate.errors);
}

export const phiTokenizer = () =>
  new PhiTokenizer(
    JSON.parse(readFileSync(fixture('tokenizer', 'tokenizer.json'), 'utf8')) as Record<
      string,
      unknown
    >,
    JSON.parse(readFileSync(fixture('tokenizer', 'tokenizer_config.json'), 'utf8')) as Record<
      string,
      unknown
    >,
  );

export const EOS = 50256;
export const VOCAB = 51200;

/**
 * Random walks through a constraint's masks, with no model: at each step a token the mask
 * allows, leaning towards <|endoftext|> and closing brackets and quotes so that most walks end.
 * Returns each walk's text and whether it ended (<|endoftext|> taken).
 */
export async function walks(
  cs: Constraints,
  tokenizer: PhiTokenizer,
  o: ConstraintOptions,
  n: number,
  seed: number,
  maxSteps = 300,
): Promise<{ text: string; ended: boolean; ids: number[] }[]> {
  let s = seed >>> 0;
  const random = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const closing = new Set([0x22, 0x5d, 0x7d]); // " ] }
  const closers = Array.from({ length: tokenizer.size }, (_, id) => id).filter((id) =>
    tokenizer.tokenBytes(id, true).some((b) => closing.has(b)),
  );
  const out = [];
  for (let k = 0; k < n; k++) {
    const run = await cs.start(constraintOf(o)!);
    const ids: number[] = [];
    while (!run.complete && ids.length < maxSteps) {
      const mask = await run.nextMask();
      const r = random();
      let id = -1;
      if (allows(mask, EOS) && r < 0.5) id = EOS;
      else if (r < 0.8) {
        const c = closers.filter((t) => allows(mask, t));
        if (c.length) id = c[Math.floor(random() * c.length)];
      }
      if (id < 0) {
        const all: number[] = [];
        for (let t = 0; t < VOCAB; t++) if (allows(mask, t)) all.push(t);
        id = all[Math.floor(random() * all.length)];
      }
      run.accept(id);
      ids.push(id);
    }
    out.push({ text: tokenizer.decode(ids, { skipSpecial: true }), ended: run.complete, ids });
    run.dispose();
  }
  return out;
}
