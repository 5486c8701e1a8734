// The phi-1.5 tokenizer: GPT-2 byte-level BPE plus CodeGen's added whitespace tokens
// (runs of 2-31 spaces, 2-9 tabs) and <|endoftext|> = 50256. Encoding goes through
// @huggingface/tokenizers (pure JS, so it runs in every runtime). Decoding is done here
// byte by byte, so text can be streamed without ever splitting a UTF-8 character.
import { Tokenizer } from '@huggingface/tokenizers';

/** GPT-2's bytes_to_unicode(): every byte gets a printable character; invert it. */
function byteDecoder(): Map<string, number> {
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
  private readonly tok: Tokenizer;
  /** id -> the bytes it stands for; special tokens map to their text, padding ids to none. */
  private readonly bytes: Uint8Array[];
  private readonly special: Set<number>;

  constructor(
    tokenizerJson: Record<string, unknown>,
    tokenizerConfig: Record<string, unknown> = {},
  ) {
    const model = tokenizerJson.model as
      { type?: string; vocab?: Record<string, number> } | undefined;
    if (!model || model.type !== 'BPE' || typeof model.vocab !== 'object') {
      throw new Error(
        'tokenizer.json: expected a BPE model with a vocab (GPT-2 / CodeGen tokenizer)',
      );
    }
    this.tok = new Tokenizer(tokenizerJson, tokenizerConfig);
    const added = (tokenizerJson.added_tokens ?? []) as AddedTokenJson[];
    const dec = byteDecoder();
    const enc = new TextEncoder();
    this.bytes = [];
    for (const [token, id] of Object.entries(model.vocab)) {
      const b = new Uint8Array(token.length);
      for (let i = 0; i < token.length; i++) {
        const v = dec.get(token[i]);
        if (v === undefined)
          throw new Error(`tokenizer.json: token ${id} has a non byte-level character`);
        b[i] = v;
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
