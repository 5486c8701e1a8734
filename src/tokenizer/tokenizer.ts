// The phi-1.5 tokenizer: GPT-2 byte-level BPE plus CodeGen's added whitespace tokens
// (runs of 2-31 spaces, 2-9 tabs) and <|endoftext|> = 50256. Encoding goes through
// @huggingface/tokenizers (pure JS, so it runs in every runtime). Decoding is done here
// byte by byte, so text can be streamed without ever splitting a UTF-8 character.
import { Tokenizer } from '@huggingface/tokenizers';

/** GPT-2's bytes_to_unicode(): every byte gets a printable character; invert it. */
export function byteDecoder(): Map<string, number> {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b); // '!'..'~'
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b); // '¡'..'¬'
  for (let b = 0xae; b <= 0xff; b++) printable.push(b); // '®'..'ÿ'
  const map = new Map<string, number>();
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    if (printable.includes(b)) map.set(String.fromCharCode(b), b);
    else map.set(String.fromCharCode(256 + shifted++), b);
  }
  return map;
}

/**
 * `text` cut into pieces of about `size` characters, each cut at a space that has a non-space on
 * both sides. GPT-2's pre-tokenizer starts a new word at such a space whatever follows (its
 * patterns take a space only as a word's first character, and runs of whitespace only from a
 * whitespace character), and no added token holds a lone space, so encoding the pieces one by
 * one gives exactly the ids of the whole. A run with no such space stays one piece.
 */
export function safePieces(text: string, size = 4096): string[] {
  const pieces: string[] = [];
  let start = 0;
  while (text.length - start > size) {
    let cut = -1;
    for (let i = start + size; i < text.length - 1 && cut < 0; i++)
      if (text[i] === ' ' && /\S/.test(text[i - 1]) && /\S/.test(text[i + 1])) cut = i;
    if (cut < 0) break;
    pieces.push(text.slice(start, cut));
    start = cut;
  }
  pieces.push(text.slice(start));
  return pieces;
}

interface AddedTokenJson {
  id: number;
  content: string;
  special: boolean;
}

export class PhiTokenizer {
  /** <|endoftext|>: phi-1.5 ends a document with it. */
  readonly eosId: number;
  /** Ids the tokenizer knows (50295 for phi-1.5; the model's vocab of 51200 is padded). */
  readonly size: number;
  private readonly tok!: Tokenizer;
  /** id -> the bytes it stands for; special tokens map to their text, padding ids to none. */
  private readonly bytes: Uint8Array[];
  private readonly special: Set<number>;
  /** The files' text it was built from, when known: enough to build it again elsewhere (a worker). */
  source?: { tokenizerJson: string; configJson: string };

  constructor(
    tokenizerJson: Record<string, unknown>,
    tokenizerConfig: Record<string, unknown> = {},
    where = 'tokenizer.json',
  ) {
    const bad = (what: string): never => {
      throw new Error(`${where}: ${what}`);
    };
    const model = tokenizerJson.model as
      { type?: string; vocab?: unknown; merges?: unknown } | null | undefined;
    if (typeof model !== 'object' || model === null || model.type !== 'BPE')
      bad('expected "model" to be a BPE model (GPT-2 / CodeGen tokenizer)');
    const vocab = model!.vocab;
    if (typeof vocab !== 'object' || vocab === null || Array.isArray(vocab))
      bad('model.vocab must be an object {token: id}');
    const entries = Object.entries(vocab as Record<string, unknown>);
    if (entries.length === 0) bad('model.vocab is empty');
    for (const [token, id] of entries)
      if (!Number.isSafeInteger(id) || (id as number) < 0)
        bad(
          `model.vocab["${token}"] must be a token id (an integer >= 0), got ${JSON.stringify(id)}`,
        );
    if (!Array.isArray(model!.merges)) bad('model.merges must be an array of merges');
    (model!.merges as unknown[]).forEach((m, i) => {
      const pair = typeof m === 'string' ? m.split(' ') : m;
      if (!Array.isArray(pair) || pair.length !== 2 || pair.some((x) => typeof x !== 'string'))
        bad(`model.merges[${i}] must be "a b" or ["a", "b"], got ${JSON.stringify(m)}`);
    });
    const addedJson = tokenizerJson.added_tokens;
    if (!Array.isArray(addedJson))
      bad('added_tokens must be an array (it lists <|endoftext|> and the whitespace tokens)');
    (addedJson as unknown[]).forEach((a, i) => {
      const t = a as Partial<AddedTokenJson> | null;
      if (
        typeof t !== 'object' ||
        t === null ||
        !Number.isSafeInteger(t.id) ||
        typeof t.content !== 'string'
      )
        bad(`added_tokens[${i}] must be {id: integer, content: string, ...}`);
    });
    try {
      this.tok = new Tokenizer(tokenizerJson, tokenizerConfig);
    } catch (e) {
      bad(`the tokenizer library refused it: ${(e as Error).message}`);
    }
    const added = addedJson as AddedTokenJson[];
    const dec = byteDecoder();
    const enc = new TextEncoder();
    this.bytes = [];
    for (const [token, id] of entries as [string, number][]) {
      const b = new Uint8Array(token.length);
      for (let i = 0; i < token.length; i++) {
        const v = dec.get(token[i]);
        if (v === undefined) bad(`token ${id} has a non byte-level character`);
        b[i] = v!;
      }
      this.bytes[id] = b;
    }
    this.special = new Set();
    for (const a of added) {
      this.bytes[a.id] = enc.encode(a.content);
      if (a.special) this.special.add(a.id);
    }
    this.size = this.bytes.length;
    const eos = added.find((a) => a.content === '<|endoftext|>');
    this.eosId = eos ? eos.id : 50256;
  }

  encode(text: string): number[] {
    return this.tok.encode(text, { add_special_tokens: false }).ids;
  }

  /**
   * ids -> text, exactly the bytes the tokens stand for (no clean-up of spaces before
   * punctuation, which would corrupt code). Ids the tokenizer does not know give nothing.
   */
  decode(ids: readonly number[], { skipSpecial = false } = {}): string {
    const dec = new TextDecoder();
    let s = '';
    for (const id of ids) s += dec.decode(this.tokenBytes(id, skipSpecial), { stream: true });
    return s + dec.decode();
  }

  /** The bytes token `id` stands for (empty for padding ids and, if asked, special tokens). */
  tokenBytes(id: number, skipSpecial = false): Uint8Array {
    if (skipSpecial && this.special.has(id)) return EMPTY;
    return this.bytes[id] ?? EMPTY;
  }

  isSpecial(id: number): boolean {
    return this.special.has(id);
  }

  /** Reference decode through @huggingface/tokenizers, for tests. */
  decodeWithLibrary(ids: number[]): string {
    return this.tok.decode(ids, {
      skip_special_tokens: false,
      clean_up_tokenization_spaces: false,
    });
  }
}

const EMPTY = new Uint8Array(0);
