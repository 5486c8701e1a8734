// A guard that keeps constrained text valid UTF-8 (and JSON free of raw control characters). XGrammar matches bytes and lets through
// some sequences that are not UTF-8 (a lead byte 0xF5 and its continuations: the text then
// decodes to U+FFFD and breaks a maxLength or a pattern). We follow the UTF-8 state of the text
// written so far and allow only tokens whose bytes continue it validly (RFC 3629's table:
// no overlong forms, no surrogates, nothing past U+10FFFF).
import type { PhiTokenizer } from '../tokenizer/tokenizer.js';
import type { TokenMask } from './mask.js';

/** Where the text stands: how many continuation bytes it still needs, the next one's range. */
interface State {
  need: number;
  lo: number;
  hi: number;
}

const STATES: State[] = [
  { need: 0, lo: 0, hi: 0 }, // between characters
  { need: 1, lo: 0x80, hi: 0xbf },
  { need: 2, lo: 0x80, hi: 0xbf },
  { need: 2, lo: 0xa0, hi: 0xbf }, // after E0: no overlong forms
  { need: 2, lo: 0x80, hi: 0x9f }, // after ED: no surrogates
  { need: 3, lo: 0x80, hi: 0xbf },
  { need: 3, lo: 0x90, hi: 0xbf }, // after F0: no overlong forms
  { need: 3, lo: 0x80, hi: 0x8f }, // after F4: nothing past U+10FFFF
];

/** The state after `byte` in state `s`, or -1 when the byte cannot come there. */
export function utf8Step(s: number, byte: number): number {
  const st = STATES[s];
  if (st.need > 0) {
    if (byte < st.lo || byte > st.hi) return -1;
    return st.need === 1 ? 0 : st.need === 2 ? 1 : 2;
  }
  if (byte < 0x80) return 0;
  if (byte >= 0xc2 && byte <= 0xdf) return 1;
  if (byte === 0xe0) return 3;
  if (byte === 0xed) return 4;
  if (byte >= 0xe1 && byte <= 0xef) return 2;
  if (byte === 0xf0) return 6;
  if (byte === 0xf4) return 7;
  if (byte >= 0xf1 && byte <= 0xf3) return 5;
  return -1; // 80-C1 (a continuation or an overlong lead), F5-FF: never a start
}

/** For every state, which tokens may follow, and the state each leaves the text in. */
export class Utf8Guard {
  /** allowed[s]: a mask of the tokens valid from state s (ends of text only from state 0). */
  readonly allowed: TokenMask[];
  /**
   * The tokens with no byte below 0x20. JSON written on one line has no place for them: inside
   * a string they must be escaped, and XGrammar's rule for a string with a maxLength lets them
   * through raw (which JSON.parse refuses).
   */
  readonly noControl: TokenMask;
  /** after[s * V + id]: the state token id leaves; -1 where it is not allowed. */
  private readonly after: Int8Array;

  constructor(
    tokenizer: PhiTokenizer,
    readonly vocabSize: number,
  ) {
    const V = vocabSize;
    const words = Math.ceil(V / 32);
    this.allowed = STATES.map(() => new Int32Array(words));
    this.after = new Int8Array(STATES.length * V).fill(-1);
    this.noControl = new Int32Array(words);
    for (let id = 0; id < V; id++) {
      const bytes = id < tokenizer.size ? tokenizer.tokenBytes(id, true) : new Uint8Array(0);
      if (bytes.every((b) => b >= 0x20)) this.noControl[id >>> 5] |= 1 << (id & 31);
      for (let s0 = 0; s0 < STATES.length; s0++) {
        let s = s0;
        // a token with no bytes (<|endoftext|>, padding) ends the text: only between characters
        if (bytes.length === 0 && s0 !== 0) continue;
        for (let i = 0; i < bytes.length && s >= 0; i++) s = utf8Step(s, bytes[i]);
        if (s < 0) continue;
        this.after[s0 * V + id] = s;
        this.allowed[s0][id >>> 5] |= 1 << (id & 31);
      }
    }
  }

  /** The state after token `id` from state `s` (-1: not allowed). */
  next(s: number, id: number): number {
    return this.after[s * this.vocabSize + id];
  }

  /** mask &= the tokens allowed from state s (and without control bytes, for JSON), in place. */
  restrict(mask: TokenMask, s: number, json: boolean): void {
    const ok = this.allowed[s];
    if (json) {
      const plain = this.noControl;
      for (let w = 0; w < mask.length; w++) mask[w] &= ok[w] & plain[w];
    } else for (let w = 0; w < mask.length; w++) mask[w] &= ok[w];
  }
}
