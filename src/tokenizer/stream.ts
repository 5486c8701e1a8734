// Streaming detokenisation. Byte-level BPE splits multi-byte UTF-8 characters (emoji, CJK)
// across tokens; decoding token by token would print U+FFFD. One TextDecoder in stream mode
// holds back the incomplete tail until the next token completes it.
import type { PhiTokenizer } from './tokenizer.js';

export class TokenStreamDecoder {
  private readonly decoder = new TextDecoder('utf-8');

  constructor(
    private readonly tokenizer: PhiTokenizer,
    private readonly skipSpecial = true,
  ) {}

  /** The text that token `id` completes (may be '' while a character is incomplete). */
  push(id: number): string {
    return this.decoder.decode(this.tokenizer.tokenBytes(id, this.skipSpecial), { stream: true });
  }

  /** Whatever is still held back (an incomplete character becomes U+FFFD). */
  flush(): string {
    return this.decoder.decode();
  }
}
