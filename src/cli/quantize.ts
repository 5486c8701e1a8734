// `phi quantize`: save the model with its linear layers quantized to q8 or q4.
import { existsSync, realpathSync } from 'node:fs';
import * as path from 'node:path';
import { loadPhi } from '../node/index.js';
import { saveModel } from '../node/save.js';
import { UsageError, type Values } from './args.js';
import { HELP, MODEL_FILE_FLAGS, modelDir, type Command } from './common.js';

async function quantize(v: Values): Promise<void> {
  if (v.dtype !== 'q8' && v.dtype !== 'q4') throw new UsageError('quantize needs --dtype q8 or q4');
  if (!v.out) throw new UsageError('quantize needs --out DIR');
  const dir = await modelDir(v);
  const real = (p: string) => (existsSync(p) ? realpathSync(p) : path.resolve(p));
  if (real(dir) === real(v.out as string))
    throw new UsageError(
      '--out is the model folder: quantizing in place would overwrite the original with the lossy copy; choose another folder',
    );
  // the TypeScript backend: plain memory, nothing re-encoded, no 4 GiB limit
  const phi = await loadPhi(dir, {
    dtype: v.dtype,
    backend: 'js',
    progress: v.quiet ? null : process.stderr,
  });
  const files = await saveModel(phi, dir, v.out as string);
  process.stderr.write(`wrote ${files.join(', ')} to ${v.out} (${v.dtype})\n`);
}

export const quantizeCommand: Command = {
  usage: 'phi quantize --dtype q8|q4 --out DIR [--model DIR|ID]',
  about: 'Save the model with its linear layers quantized; later loads skip the quantization.',
  flags: [
    { name: 'out', type: 'string', arg: 'DIR', help: 'where to write the quantized model' },
    { name: 'dtype', type: 'string', arg: 'D', help: 'q8 (8-bit) or q4 (4-bit)' },
    ...MODEL_FILE_FLAGS,
    HELP,
  ],
  run: quantize,
};
