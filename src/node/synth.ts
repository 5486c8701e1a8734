// `phi synth`: write a random-weight checkpoint in the Hugging Face layout (config.json,
// generation_config.json, model.safetensors with transformers' names, and the real phi-1.5
// tokenizer files, which this package ships), so the CLI, the library, the server and the
// bench can be tried with no network. q8 / q4 are written as `phi quantize` writes them.
import { copyFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { quantizedBytes } from '../formats/quant.js';
import type { PhiConfig } from '../model/config.js';
import { configJson, SYNTH_SIZES, SyntheticValues } from '../synth.js';
import { QUANT_KEY, QUANT_LAYOUT, QUANT_LAYOUT_KEY } from '../weights/checkpoint.js';
import { parameterList, TRANSFORMERS_NAMES } from '../weights/names.js';
import { writeSafetensorsFile, type TensorOut } from './save.js';
import { writeFolderAtomically } from './atomic.js';

/** The tokenizer files shipped in the package (assets/tokenizer). */
export const TOKENIZER_DIR = fileURLToPath(new URL('../../../assets/tokenizer/', import.meta.url));

export interface SynthOptions {
  size?: keyof typeof SYNTH_SIZES;
  dtype?: 'f16' | 'q8' | 'q4';
  seed?: number;
}

export async function synthesize(
  out: string,
  o: SynthOptions = {},
): Promise<{ config: PhiConfig; bytes: number }> {
  const size = o.size ?? 'tiny';
  const cfg = SYNTH_SIZES[size];
  if (!cfg)
    throw new Error(`--size must be ${Object.keys(SYNTH_SIZES).join(' or ')}, got "${size}"`);
  const dtype = o.dtype ?? 'f16';
  const values = new SyntheticValues(o.seed ?? 1);
  const tensors: TensorOut[] = parameterList(TRANSFORMERS_NAMES, cfg).map((p) => {
    if (p.role === 'vector') {
      const n = p.shape[0];
      // LayerNorm weights near 1 (as trained ones are), everything else from the pool
      const ln = /layernorm\.weight$/.test(p.name);
      return {
        name: p.name,
        dtype: 'F32',
        shape: p.shape,
        byteLength: 4 * n,
        bytes: () => {
          const v = values.fill(new Float32Array(n));
          if (ln) for (let i = 0; i < n; i++) v[i] += 1;
          return new Uint8Array(v.buffer);
        },
      };
    }
    const [rows, cols] = p.shape;
    if (dtype !== 'f16' && p.role === 'linear') {
      const bytes = quantizedBytes(dtype, rows, cols);
      return {
        name: p.name,
        dtype: 'U8',
        shape: [bytes],
        byteLength: bytes,
        bytes: () => values.fillQuantized(new Uint8Array(bytes), dtype, cols),
      };
    }
    return {
      name: p.name,
      dtype: 'F16',
      shape: p.shape,
      byteLength: 2 * rows * cols,
      bytes: () => new Uint8Array(values.fill(new Uint16Array(rows * cols)).buffer),
    };
  });
  return writeFolderAtomically(out, async (dir) => {
    await writeSynth(dir, tensors, dtype, cfg, o.seed);
    return { config: cfg, bytes: tensors.reduce((n, t) => n + t.byteLength, 0) };
  });
}

async function writeSynth(
  out: string,
  tensors: TensorOut[],
  dtype: string,
  cfg: PhiConfig,
  seed: number | undefined,
): Promise<void> {
  const metadata: Record<string, string> = {
    format: 'pt',
    phi_wasm_synthetic: `seed ${seed ?? 1}`,
  };
  if (dtype !== 'f16')
    Object.assign(metadata, { [QUANT_KEY]: dtype, [QUANT_LAYOUT_KEY]: QUANT_LAYOUT });
  await writeSafetensorsFile(path.join(out, 'model.safetensors'), tensors, metadata);
  await writeFile(path.join(out, 'config.json'), JSON.stringify(configJson(cfg), null, 2) + '\n');
  await writeFile(
    path.join(out, 'generation_config.json'),
    JSON.stringify({ bos_token_id: 50256, eos_token_id: 50256 }, null, 2) + '\n',
  );
  for (const f of ['tokenizer.json', 'tokenizer_config.json'])
    await copyFile(path.join(TOKENIZER_DIR, f), path.join(out, f));
}
