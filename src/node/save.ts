// `phi quantize`: write a loaded model, its linear layers quantized, as a Hugging Face style
// folder (model.safetensors with transformers' names, config and tokenizer files copied), so
// that later loads skip the quantization. Quantized matrices are stored as U8 tensors in the
// kernels' layout (src/formats/quant.ts), named by the metadata key QUANT_KEY.
import { copyFile, open } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { writeFolderAtomically } from './atomic.js';
import type { Weight } from '../kernels/types.js';
import type { Phi } from '../engine.js';
import { QUANT_KEY, QUANT_LAYOUT, QUANT_LAYOUT_KEY } from '../weights/checkpoint.js';
import { safetensorsHeader, type DType } from '../weights/safetensors.js';

interface Out {
  name: string;
  dtype: DType;
  shape: number[];
  bytes: Uint8Array;
}

/** A tensor to write: its bytes, or their length and a producer called when its turn comes. */
export interface TensorOut {
  name: string;
  dtype: DType;
  shape: number[];
  byteLength: number;
  bytes: () => Uint8Array;
}

/**
 * Write a safetensors file tensor by tensor (sorted by name, as transformers saves them): the
 * header, then each tensor's bytes as its producer makes them, so a model of gigabytes never
 * sits in memory twice.
 */
export async function writeSafetensorsFile(
  file: string,
  tensors: TensorOut[],
  metadata: Record<string, string>,
): Promise<void> {
  const { head, order } = safetensorsHeader(tensors, metadata);
  const fh = await open(file, 'w');
  try {
    await fh.write(head);
    for (const t of order) {
      const bytes = t.bytes();
      if (bytes.length !== t.byteLength)
        throw new Error(`${t.name}: ${bytes.length} bytes made, ${t.byteLength} announced`);
      await fh.write(bytes);
    }
  } finally {
    await fh.close();
  }
}

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function matrix(name: string, w: Weight, rows: number, cols: number): Out {
  if (w.dtype === 'q8' || w.dtype === 'q4')
    return { name, dtype: 'U8', shape: [w.data.length], bytes: w.data };
  if (w.dtype === 'f16' && w.log2Scale) {
    throw new Error(
      `${name}: re-encoded f16 weights cannot be saved; load with --backend js to save`,
    );
  }
  return {
    name,
    dtype: w.dtype === 'f16' ? 'F16' : 'F32',
    shape: [rows, cols],
    bytes: bytesOf(w.data),
  };
}

const vector = (name: string, v: Float32Array): Out => ({
  name,
  dtype: 'F32',
  shape: [v.length],
  bytes: bytesOf(v),
});

/**
 * Write a loaded model (`phi quantize`: its linear layers quantized; `phi merge`: f16 or f32
 * with adapters merged in) with transformers' names, atomically.
 */
export async function saveModel(phi: Phi, sourceDir: string, outDir: string): Promise<string[]> {
  const { config: cfg } = phi;
  const w = phi.model.weights;
  const q = w.layers[0].fc1.weight.dtype;
  const { vocabSize: V, hiddenSize: D, intermediateSize: F } = cfg;
  const tensors: Out[] = [matrix('model.embed_tokens.weight', w.embed_tokens, V, D)];
  w.layers.forEach((l, i) => {
    const p = `model.layers.${i}`;
    tensors.push(vector(`${p}.input_layernorm.weight`, l.input_layernorm.weight));
    tensors.push(vector(`${p}.input_layernorm.bias`, l.input_layernorm.bias));
    for (const [name, lin, rows, cols] of [
      ['self_attn.q_proj', l.q_proj, D, D],
      ['self_attn.k_proj', l.k_proj, D, D],
      ['self_attn.v_proj', l.v_proj, D, D],
      ['self_attn.dense', l.dense, D, D],
      ['mlp.fc1', l.fc1, F, D],
      ['mlp.fc2', l.fc2, D, F],
    ] as const) {
      tensors.push(matrix(`${p}.${name}.weight`, lin.weight, rows, cols));
      tensors.push(vector(`${p}.${name}.bias`, lin.bias));
    }
  });
  tensors.push(vector('model.final_layernorm.weight', w.final_layernorm.weight));
  tensors.push(vector('model.final_layernorm.bias', w.final_layernorm.bias));
  tensors.push(matrix('lm_head.weight', w.lm_head.weight, V, D));
  tensors.push(vector('lm_head.bias', w.lm_head.bias));
  tensors.sort((a, b) => (a.name < b.name ? -1 : 1));

  return writeFolderAtomically(outDir, (dir) => writeSaved(dir, sourceDir, tensors, q));
}

async function writeSaved(
  outDir: string,
  sourceDir: string,
  tensors: Out[],
  q: string,
): Promise<string[]> {
  // each tensor straight from memory: no second copy of the model
  const quantized = q === 'q8' || q === 'q4';
  await writeSafetensorsFile(
    path.join(outDir, 'model.safetensors'),
    tensors.map((t) => ({ ...t, byteLength: t.bytes.length, bytes: () => t.bytes })),
    quantized
      ? { format: 'pt', [QUANT_KEY]: q, [QUANT_LAYOUT_KEY]: QUANT_LAYOUT }
      : { format: 'pt' },
  );
  const copied = ['model.safetensors'];
  for (const f of [
    'config.json',
    'generation_config.json',
    'tokenizer.json',
    'tokenizer_config.json',
  ]) {
    if (existsSync(path.join(sourceDir, f))) {
      await copyFile(path.join(sourceDir, f), path.join(outDir, f));
      copied.push(f);
    }
  }
  return copied;
}
