// `phi merge`: a model with LoRA adapters merged into its weights (W + s·B·A), written as a
// plain checkpoint with transformers' names that PhiForCausalLM loads like the original.
import { existsSync, realpathSync } from 'node:fs';
import * as path from 'node:path';
import { loadPhi } from '../node/index.js';
import { saveModel } from '../node/save.js';
import { UsageError, type Values } from './args.js';
import { asFlagError, HELP, MODEL_FILE_FLAGS, modelDir, type Command } from './common.js';

async function merge(v: Values): Promise<void> {
  const adapters = (v.adapter as string[] | undefined) ?? [];
  if (!adapters.length) throw new UsageError('merge needs --adapter DIR|ID');
  if (!v.out) throw new UsageError('merge needs --out DIR');
  const dtype = (v.dtype as string | undefined) ?? 'auto';
  if (!['auto', 'f16', 'f32'].includes(dtype))
    throw new UsageError(`--dtype must be auto (as stored), f16 or f32 for merge, got "${dtype}"`);
  const dir = await modelDir(v);
  const real = (p: string) => (existsSync(p) ? realpathSync(p) : path.resolve(p));
  if (real(dir) === real(v.out as string))
    throw new UsageError('--out is the model folder: choose another folder for the merged model');
  // the TypeScript backend: plain memory, weights as they are (no f16 re-encoding), no 4 GiB limit
  let phi;
  try {
    phi = await loadPhi(dir, {
      dtype: dtype as 'auto' | 'f16' | 'f32',
      backend: 'js',
      merge: adapters,
      offline: v.offline === true,
      progress: v.quiet ? null : process.stderr,
    });
  } catch (e) {
    throw asFlagError(e);
  }
  const files = await saveModel(phi, dir, v.out as string);
  phi.close();
  process.stderr.write(
    `wrote ${files.join(', ')} to ${v.out} (${adapters.length} adapter(s) merged, ${phi.model.weights.lm_head.weight.dtype})\n`,
  );
}

export const mergeCommand: Command = {
  usage: 'phi merge --adapter DIR|ID --out DIR [--model DIR|ID] [--dtype auto|f16|f32]',
  about:
    'Merge LoRA adapters into the weights and save a plain checkpoint (transformers loads it).',
  flags: [
    {
      name: 'adapter',
      type: 'string',
      arg: 'DIR|ID',
      multiple: true,
      help: 'a PEFT LoRA adapter to merge (repeatable: merged in order)',
    },
    { name: 'out', type: 'string', arg: 'DIR', help: 'where to write the merged model' },
    { name: 'dtype', type: 'string', arg: 'D', help: 'auto (as stored, default), f16 or f32' },
    ...MODEL_FILE_FLAGS,
    HELP,
  ],
  run: merge,
};
