// The real microsoft/phi-1_5, when this machine has it: in the Hugging Face cache (phi download)
// or in weights/phi-1_5. Skipped otherwise, and the skipped tests' names say why.
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import {
  cachedSnapshot,
  DEFAULT_MODEL,
  hubCacheDir,
  loadPhi,
  parseModelRef,
} from '../src/node/index.js';
import { ROOT } from './helpers.js';

const local = path.join(ROOT, 'weights', 'phi-1_5');
const DIR =
  cachedSnapshot(parseModelRef(DEFAULT_MODEL)!) ??
  (existsSync(path.join(local, 'config.json')) ? local : null);
const maybe = DIR ? describe : describe.skip;
const title = DIR
  ? `microsoft/phi-1_5 (real weights, ${DIR})`
  : `microsoft/phi-1_5 (real weights): skipped, not in the Hugging Face cache (${hubCacheDir()}) nor in weights/phi-1_5; \`phi download\` gets it`;

maybe(title, () => {
  test('Code prompt: greedy writes the print_prime body', async () => {
    const phi = await loadPhi(DIR!, { maxPositions: 512 });
    const prompt =
      '```python\ndef print_prime(n):\n   """\n   Print all primes between 1 and n\n   """';
    const { text } = await phi.complete(prompt, { maxNewTokens: 80, temperature: 0 });
    for (const line of [
      'primes = []',
      'for num in range(2, n+1):',
      'is_prime = True',
      'print(primes)',
    ]) {
      expect(text).toContain(line);
    }
  }, 1_800_000);
  test('QA prompt: the meaning of life', async () => {
    const phi = await loadPhi(DIR!, { maxPositions: 512 });
    const { text } = await phi.complete('What is the meaning of life?\nAnswer:', {
      maxNewTokens: 24,
      temperature: 0,
    });
    expect(
      text.startsWith(
        ' The meaning of life is a philosophical question that has puzzled humans for centuries.',
      ),
    ).toBe(true);
  }, 1_800_000);
});
