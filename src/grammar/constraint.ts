// Constrained decoding: a generation that must be JSON, match a JSON Schema, a regex or a
// grammar. At each step the constraint's matcher gives the tokens that keep the text a prefix
// of some valid string (a mask); sampling picks among those only, and <|endoftext|> is allowed
// only where the text may end. Every kind of constraint becomes an EBNF grammar first and is
// compiled the same way (xgrammar.ts); compiled grammars are kept per model, so a client
// sending the same schema again pays for it once.
import type * as XG from '@mlc-ai/web-xgrammar';
import { byteDecoder, type PhiTokenizer } from '../tokenizer/tokenizer.js';
import { allows, type TokenMask } from './mask.js';
import { sentinel, unsupportedSchema, forGrammar } from './schema.js';
import { Utf8Guard } from './utf8.js';
import { CompiledGrammar, GrammarBackend, GrammarError } from './xgrammar.js';

export { GrammarError } from './xgrammar.js';

/** What a generation's text must be; give at most one of the four. */
export interface ConstraintOptions {
  /** A JSON Schema (object, or its JSON text): the text is one JSON value valid under it. */
  jsonSchema?: Record<string, unknown> | boolean | string;
  /** true: the text is one JSON object (OpenAI's json_object). */
  json?: boolean;
  /** An EBNF grammar in GBNF's notation (llama.cpp's), from the rule `root`. */
  grammar?: string;
  /** A regular expression the whole text matches (no flags; anchors are implied). */
  regex?: string;
  /**
   * The constrained text may start with one space. Prompts in the model card's formats end
   * with "Answer:" or "Bob:", after which the model writes a space; the CLI's --format and the
   * server's chat set this. Default false.
   */
  constraintLeadingSpace?: boolean;
}

export type ConstraintKind = 'jsonSchema' | 'json' | 'grammar' | 'regex';

/** A checked constraint: which kind, its text, and the space it may start with. */
export interface Constraint {
  kind: ConstraintKind;
  text: string;
  leadingSpace: boolean;
}

/** A constraint option that is wrong, naming it; `detail` is the reason without the name. */
export class ConstraintError extends Error {
  constructor(
    readonly option: ConstraintKind,
    readonly detail: string,
  ) {
    super(`${option}: ${detail}`);
  }
}

const KINDS: ConstraintKind[] = ['jsonSchema', 'json', 'grammar', 'regex'];

/** The constraint the options ask for, checked, or null for none. Throws ConstraintError. */
export function constraintOf(o: ConstraintOptions): Constraint | null {
  const given = KINDS.filter((k) => o[k] !== undefined && o[k] !== false);
  if (given.length === 0) return null;
  if (given.length > 1)
    throw new ConstraintError(given[1], `give one constraint, not ${given.join(' and ')}`);
  const kind = given[0];
  const leadingSpace = o.constraintLeadingSpace ?? false;
  if (kind === 'json') {
    if (o.json !== true) throw new ConstraintError('json', `must be true, got ${String(o.json)}`);
    return { kind, text: '', leadingSpace };
  }
  if (kind === 'jsonSchema') {
    let schema = o.jsonSchema;
    if (typeof schema === 'string') {
      try {
        schema = JSON.parse(schema) as Record<string, unknown>;
      } catch (e) {
        throw new ConstraintError(kind, `is not valid JSON: ${(e as Error).message}`);
      }
    }
    const bad = unsupportedSchema(schema);
    if (bad) throw new ConstraintError(kind, bad);
    try {
      forGrammar(schema);
    } catch (why) {
      throw new ConstraintError(kind, why as string);
    }
    return { kind, text: JSON.stringify(schema), leadingSpace };
  }
  const text = o[kind];
  if (typeof text !== 'string' || text.length === 0)
    throw new ConstraintError(kind, 'must be a non-empty string');
  if (kind === 'regex') {
    try {
      new RegExp(text, 'u');
    } catch (e) {
      throw new ConstraintError(kind, `is not a valid regular expression: ${(e as Error).message}`);
    }
  }
  return { kind, text, leadingSpace };
}

/** JSON as the model is most used to reading it: one line, `, ` and `: ` (Python's json.dumps). */
const ONE_LINE = { anyWhitespace: false, indent: -1, separators: [', ', ': '] as [string, string] };

/** The EBNF of a constraint, from its rule `root`. */
async function ebnfOf(c: Constraint, backend: GrammarBackend): Promise<string> {
  const { anyWhitespace, indent, separators } = ONE_LINE;
  switch (c.kind) {
    case 'grammar':
      return c.text;
    case 'jsonSchema': {
      // bounded numbers are spelled by numbers.ts, not by XGrammar (it lets some through)
      const { schema, rules } = forGrammar(JSON.parse(c.text));
      // strict: no properties beyond those the schema names (a subset of what it allows)
      let ebnf = await backend.ebnf((x) =>
        x.Grammar.fromJSONSchema(JSON.stringify(schema), anyWhitespace, indent, separators, true),
      );
      for (const [rule, body] of rules) {
        const literal = `"\\"${sentinel(rule)}\\""`;
        if (!ebnf.includes(literal)) throw new Error(`the schema's grammar lost ${rule}`);
        ebnf = ebnf.split(literal).join(rule) + `\n${rule} ::= ${body}\n`;
      }
      return ebnf;
    }
    case 'json':
      return backend.ebnf((x) =>
        x.Grammar.fromJSONSchema('{"type": "object"}', anyWhitespace, indent, separators, false),
      );
    case 'regex':
      return backend.ebnf((x) =>
        x.Grammar.fromStructuralTag({
          type: 'structural_tag',
          format: { type: 'regex', pattern: c.text },
        }),
      );
  }
}

/** Compiled grammars kept per model: a client's schema sent again is not compiled again. */
const KEEP_COMPILED = 64;

/** The constraints of one model: its vocabulary described to XGrammar once, its grammars. */
export class Constraints {
  private backend: Promise<GrammarBackend> | null = null;
  private guard: Utf8Guard | null = null;
  private readonly compiled = new Map<string, Promise<CompiledGrammar>>();
  /** Seconds the last compile took (0 when it came from the cache). */
  lastCompileSeconds = 0;

  constructor(
    private readonly tokenizer: PhiTokenizer,
    private readonly vocabSize: number,
    private readonly eos: number,
  ) {}

  /** XGrammar with this vocabulary, made on first use. */
  ready(): Promise<GrammarBackend> {
    this.backend ??= GrammarBackend.create({
      encodedVocab: encodedVocabulary(this.tokenizer),
      vocabSize: this.vocabSize,
      stopIds: [this.eos],
    });
    this.backend.catch(() => (this.backend = null)); // a failed load is tried again next time
    return this.backend;
  }

  /** The constraint compiled (or from the cache). Throws ConstraintError for a refused one. */
  async compile(c: Constraint): Promise<CompiledGrammar> {
    const key = JSON.stringify(c);
    let hit = this.compiled.get(key);
    if (hit) {
      this.compiled.delete(key); // most recent last
      this.compiled.set(key, hit);
      this.lastCompileSeconds = 0;
      return hit;
    }
    hit = (async () => {
      const backend = await this.ready();
      const t0 = performance.now();
      let ebnf = await ebnfOf(c, backend);
      let root = 'root';
      if (c.leadingSpace) {
        ebnf += `\nphi_leading_space ::= " "? root\n`;
        root = 'phi_leading_space';
      }
      const g = await backend.compile(ebnf, root);
      this.lastCompileSeconds = (performance.now() - t0) / 1000;
      return g;
    })();
    this.compiled.set(key, hit);
    try {
      await hit;
    } catch (e) {
      this.compiled.delete(key);
      if (e instanceof GrammarError) throw new ConstraintError(c.kind, e.message);
      throw e;
    }
    if (this.compiled.size > KEEP_COMPILED)
      this.compiled.delete(this.compiled.keys().next().value!);
    return hit;
  }

  /** A matcher for one generation, at the start of the constraint. */
  async start(c: Constraint): Promise<GrammarRun> {
    const grammar = await this.compile(c);
    this.guard ??= new Utf8Guard(this.tokenizer, this.vocabSize);
    const json = c.kind === 'json' || c.kind === 'jsonSchema';
    return new GrammarRun(await grammar.matcher(), this.guard, json);
  }
}

/**
 * Where one generation stands in its grammar. The mask for the next token is computed once
 * per state: the grammar's, less the tokens that would make the text invalid UTF-8 (utf8.ts).
 * Accepting a token moves both on.
 */
export class GrammarRun {
  private current: TokenMask | null = null;
  private utf8 = 0;

  constructor(
    private readonly matcher: XG.GrammarMatcher,
    private readonly guard: Utf8Guard,
    private readonly json: boolean,
  ) {}

  /** The mask computed for the current state, or null until nextMask() has run. */
  get mask(): TokenMask | null {
    return this.current;
  }

  async nextMask(): Promise<TokenMask> {
    if (!this.current) {
      const mask = await this.matcher.getNextTokenBitmask();
      this.guard.restrict(mask, this.utf8, this.json);
      this.current = mask;
    }
    return this.current;
  }

  /** Take the sampled token; one outside the mask is a bug, never a silent wrong answer. */
  accept(id: number): void {
    if (this.current && !allows(this.current, id))
      throw new Error(`token ${id} was sampled outside the grammar's mask`);
    if (!this.matcher.acceptToken(id)) throw new Error(`the grammar refused token ${id}`);
    this.utf8 = this.guard.next(this.utf8, id);
    this.current = null;
  }

  /** True once the grammar has taken <|endoftext|>: the text is complete and valid. */
  get complete(): boolean {
    return this.matcher.isTerminated();
  }

  dispose(): void {
    this.matcher.dispose();
  }
}

/**
 * Every id's text in GPT-2's byte-level alphabet, which XGrammar decodes back to bytes: the
 * added whitespace tokens are spelled the same way; special tokens and ids with no bytes are ''
 * (XGrammar never allows those as text; <|endoftext|> is its stop id).
 */
export function encodedVocabulary(tokenizer: PhiTokenizer): string[] {
  const spell: string[] = [];
  for (const [ch, b] of byteDecoder()) spell[b] = ch;
  const out: string[] = [];
  for (let id = 0; id < tokenizer.size; id++) {
    const bytes = tokenizer.isSpecial(id) ? new Uint8Array(0) : tokenizer.tokenBytes(id);
    let s = '';
    for (const b of bytes) s += spell[b];
    out.push(s);
  }
  return out;
}
