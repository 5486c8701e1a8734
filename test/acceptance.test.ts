// The real microsoft/phi-1_5, when weights/phi-1_5 is present (phi download). Skipped otherwise.
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { loadPhi } from '../src/node/index.js';
import { ROOT } from './helpers.js';

const DIR = path.join(ROOT, 'weights', 'phi-1_5');
const present = existsSync(path.join(DIR, 'config.json'));
if (!present) {
  console.log(
    `acceptance tests skipped: ${DIR} not found (run \`phi download\` to get microsoft/phi-1_5)`,
  );
}
const maybe = present ? describe : describe.skip;

maybe('microsoft/phi-1_5 (real weights)', () => {
  test('Code prompt: greedy writes the print_prime body', async () => {
    const phi = await loadPhi(DIR, { maxPositions: 512 });
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
    const phi = await loadPhi(DIR, { maxPositions: 512 });
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
