// The pure-JS tokenizer against the native Rust `tokenizers` binding (the oracle), on the
// reference's 47 strings and a corpus of our own; streaming decode never splits a character.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { PhiTokenizer, safePieces } from '../src/tokenizer/tokenizer.js';
import { TokenStreamDecoder } from '../src/tokenizer/stream.js';
import { fixture } from './helpers.js';

const require = createRequire(import.meta.url);
const native = require('tokenizers') as {
  Tokenizer: {
    fromFile(f: string): {
      encode(s: string): Promise<{ getIds(): number[] }>;
      decode(ids: number[], skip: boolean): Promise<string>;
    };
  };
};
const file = fixture('tokenizer', 'tokenizer.json');
const oracle = native.Tokenizer.fromFile(file);
const tok = new PhiTokenizer(
  JSON.parse(readFileSync(file, 'utf8')),
  JSON.parse(readFileSync(fixture('tokenizer', 'tokenizer_config.json'), 'utf8')),
);
const check = JSON.parse(readFileSync(fixture('tokenizer', 'tokenizer_check.json'), 'utf8')) as {
  cases: { name: string; text: string; ids_tokenizers_rust: number[] }[];
};

const CORPUS: Record<string, string> = {
  python_indent:
    'class A:\n    def f(self, x):\n        if x:\n            return [i * 2 for i in range(x)]\n        return None\n',
  tabs_makefile: 'all:\n\tgcc -O2 main.c\n\t\techo done\n\t\t\t\t\t\t\t\t\t\tdeep\n',
  space_runs:
    'a' + ' '.repeat(2) + 'b' + ' '.repeat(17) + 'c' + ' '.repeat(31) + 'd' + ' '.repeat(45) + 'e',
  unicode: 'naïve café — Größe, 東京タワー, Привет мир, مرحبا, 안녕하세요',
  emoji: 'family 👨‍👩‍👧‍👦 flags 🇯🇵🇫🇷 skin 👍🏽 and 🎉🎉',
  numbers: '3.14159 1,000,000 0x1F 2026-11-28 1e-5 -42',
  mixed_code: 'const s = `${a}\\n`;\r\n\t// TODO: ✓ done\n#include <stdio.h>\n',
  eot: 'end of doc<|endoftext|>next doc',
  qa_prompt: 'What is the meaning of life?\nAnswer:',
  chat_prompt:
    "Alice: I don't know why, I'm struggling to maintain focus while studying. Any suggestions?\nBob:",
};

describe('tokenizer', () => {
  test.each(check.cases.map((c) => [c.name, c] as const))('reference string %s', (_, c) => {
    expect(tok.encode(c.text)).toEqual(c.ids_tokenizers_rust);
  });

  test.each(Object.entries(CORPUS))(
    'our corpus: %s equals the native oracle, and round-trips',
    async (_, text) => {
      const ids = tok.encode(text);
      expect(ids).toEqual((await oracle.encode(text)).getIds());
      expect(tok.decode(ids)).toBe(text);
      expect(tok.decode(ids)).toBe(await oracle.decode(ids, false));
    },
  );

  test('CodeGen whitespace tokens are single ids', () => {
    expect(tok.encode('   ')).toEqual([50285]); // three spaces
    expect(tok.encode('\t\t')).toEqual([50294]); // two tabs
    expect(tok.size).toBe(50295);
    expect(tok.eosId).toBe(50256);
  });

  test('streaming decode never emits a broken character, and equals the full decode', () => {
    for (const text of [CORPUS.emoji, CORPUS.unicode, '🎉', '日本語のテキスト']) {
      const ids = tok.encode(text);
      const stream = new TokenStreamDecoder(tok, false);
      const pieces = ids.map((id) => stream.push(id));
      pieces.push(stream.flush());
      expect(pieces.join('')).toBe(text);
      for (const p of pieces) expect(p).not.toContain('\uFFFD');
    }
    // an emoji really is split across tokens, so the test above exercises the hold-back
    const partyIds = tok.encode('🎉');
    expect(partyIds.length).toBeGreaterThan(1);
    const naive = partyIds.map((id) => new TextDecoder().decode(tok.tokenBytes(id)));
    expect(naive.join('')).toContain('\uFFFD');
  });

  test('encoding in safe pieces (the server tokenizes long text that way) gives the ids of the whole, against the oracle', async () => {
    const texts = [...Object.values(CORPUS), ...check.cases.map((c) => c.text)];
    // and random mixes of the corpus' characters, spaces and words
    const chars = [...new Set([...Object.values(CORPUS).join('')])];
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    for (let k = 0; k < 200; k++)
      texts.push(
        Array.from({ length: 1 + Math.floor(rand() * 120) }, () =>
          rand() < 0.25 ? ' ' : chars[Math.floor(rand() * chars.length)],
        ).join(''),
      );
    let cut = 0;
    for (const text of texts) {
      const pieces = safePieces(text, 5);
      cut += pieces.length - 1;
      expect(pieces.join('')).toBe(text);
      expect([text, pieces.flatMap((p) => tok.encode(p))]).toEqual([
        text,
        (await oracle.encode(text)).getIds(),
      ]);
    }
    expect(cut).toBeGreaterThan(500); // the pieces really were cut
    expect(safePieces('a'.repeat(50), 5)).toEqual(['a'.repeat(50)]); // no safe space: one piece
  });

  test('padding ids (50295..51199) decode to nothing instead of crashing', () => {
    expect(tok.decode([50295, 51199, 15496])).toBe('Hello');
  });
});
