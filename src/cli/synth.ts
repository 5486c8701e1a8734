// `phi synth`: write a random-weight model in the Hugging Face layout, no network needed.
import { synthesize } from '../node/synth.js';
import { UsageError } from './args.js';
import { HELP, QUIET, type Command } from './common.js';

export const synthCommand: Command = {
  usage: 'phi synth --out DIR [--size tiny|phi-1_5] [--dtype f16|q8|q4] [--seed S]',
  about:
    'Write a random-weight model in the Hugging Face layout (with the real tokenizer): no network needed.',
  flags: [
    { name: 'out', type: 'string', arg: 'DIR', help: 'the folder to write' },
    {
      name: 'size',
      type: 'string',
      arg: 'SIZE',
      help: 'tiny (2 layers of 64, 13 MB) or phi-1_5 (the real shapes, 2.8 GB as f16)',
    },
    { name: 'dtype', type: 'string', arg: 'D', help: 'f16 (default), q8 or q4' },
    { name: 'seed', type: 'integer', arg: 'S', help: 'seed of the weights (default 1)' },
    QUIET,
    HELP,
  ],
  run: async (v) => {
    if (!v.out) throw new UsageError('synth needs --out DIR');
    const size = (v.size as string) ?? 'tiny';
    if (size !== 'tiny' && size !== 'phi-1_5')
      throw new UsageError(`--size must be tiny or phi-1_5, got "${size}"`);
    const dtype = (v.dtype as string) ?? 'f16';
    if (dtype !== 'f16' && dtype !== 'q8' && dtype !== 'q4')
      throw new UsageError(`--dtype must be f16, q8 or q4, got "${dtype}"`);
    const t0 = Date.now();
    const r = await synthesize(v.out as string, {
      size,
      dtype,
      seed: v.seed as number | undefined,
    });
    process.stderr.write(
      `wrote a random ${size} model (${dtype}, ${(r.bytes / 1e9).toFixed(2)} GB of tensors) to ${v.out} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
    );
  },
};
