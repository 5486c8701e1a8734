// The memory plan (src/memory.ts) is what loading really allocates, and it decides what fits
// in wasm32 memory before a byte of the weights is read.
import { readFileSync } from 'node:fs';
import { loadPhiFrom } from '../src/load.js';
import type { WasmKernels } from '../src/kernels/wasm/index.js';
import type { ByteSource, ModelFiles } from '../src/io/source.js';
import { planMemory } from '../src/memory.js';
import { parseConfig, PHI_1_5 } from '../src/model/config.js';
import { dirFiles } from '../src/node/files.js';
import { Checkpoint } from '../src/weights/load.js';
import { fixture, NODE } from './helpers.js';

describe('the plan equals what loading allocates', () => {
  test.each([
    ['tiny-phi-f16', 'auto', 1, 1, 512, 64],
    ['tiny-phi-f16', 'f32', 2, 3, 100, 7],
    ['tiny-phi-f32', 'q8', 1, 2, 33, 64],
    ['tiny-phi-f32', 'q4', 3, 1, 512, 16],
    ['tiny-phi-f32-hot', 'f16', 2, 4, 9, 3],
  ] as const)(
    '%s as %s, %i thread(s), %i slot(s), context %i, batch %i',
    async (name, dtype, threads, parallel, maxPositions, maxBatch) => {
      const files = dirFiles(fixture(name));
      const cfg = parseConfig(readFileSync(fixture(name, 'config.json'), 'utf8'));
      const ck = await Checkpoint.open(files);
      const plan = planMemory(ck, cfg, { dtype, threads, parallel, maxPositions, maxBatch });
      await ck.close();
      const phi = await loadPhiFrom(files, {
        ...NODE,
        dtype,
        threads,
        parallel,
        maxPositions,
        maxBatch,
      });
      expect((phi.model.kernels as WasmKernels).usedBytes).toBe(plan.total);
      // and a step of every slot, a full batch, a prompt as long as the context: nothing more
      await Promise.all(
        Array.from({ length: parallel }, (_, i) =>
          phi.complete(
            { ids: Array.from({ length: maxPositions - 1 }, (_, t) => (t * 7 + i) % 500) },
            { maxNewTokens: 1 },
          ),
        ),
      );
      expect((phi.model.kernels as WasmKernels).usedBytes).toBe(plan.total);
      phi.close();
    },
  );

  test('what each dtype costs, per tensor kind', async () => {
    const ck = await Checkpoint.open(dirFiles(fixture('tiny-phi-f16')));
    const cfg = parseConfig(readFileSync(fixture('tiny-phi-f16', 'config.json'), 'utf8'));
    const w = (dtype: 'f32' | 'f16' | 'q8' | 'q4') =>
      planMemory(ck, cfg, { dtype, threads: 1, parallel: 1, maxPositions: 16, maxBatch: 4 })
        .weights;
    // linear weights: 2 layers of 4·64·64 + 2·64·256, and lm_head 51200·64; embedding 51200·64
    const linear = 2 * (4 * 64 * 64 + 2 * 64 * 256) + 51200 * 64;
    const embedding = 51200 * 64;
    expect(w('f32') - w('f16')).toBe(2 * (linear + embedding));
    // quantized in records of 128 weights (4 scales + values): per layer 4·64 + 256 rows of 64
    // (one record each, half padding) and 64 rows of 256 (two); lm_head 51200 rows of 64
    const records = 2 * (4 * 64 + 256 + 64 * 2) + 51200;
    expect(w('f16') - w('q8')).toBe(2 * linear - records * (16 + 128)); // the embedding stays f16
    expect(w('q8') - w('q4')).toBe(records * 64);
    await ck.close();
  });
});

/**
 * phi-1.5's files without its 2.8 GB of data: a real header and config, reads of the data
 * answered with zeros. Enough to load until the weights would be read.
 */
function phi15Files(): ModelFiles {
  const names: [string, number[]][] = [['model.embed_tokens.weight', [51200, 2048]]];
  for (let l = 0; l < 24; l++) {
    const p = `model.layers.${l}`;
    for (const s of ['weight', 'bias']) names.push([`${p}.input_layernorm.${s}`, [2048]]);
    for (const q of ['q_proj', 'k_proj', 'v_proj', 'dense']) {
      names.push(
        [`${p}.self_attn.${q}.weight`, [2048, 2048]],
        [`${p}.self_attn.${q}.bias`, [2048]],
      );
    }
    names.push([`${p}.mlp.fc1.weight`, [8192, 2048]], [`${p}.mlp.fc1.bias`, [8192]]);
    names.push([`${p}.mlp.fc2.weight`, [2048, 8192]], [`${p}.mlp.fc2.bias`, [2048]]);
  }
  for (const s of ['weight', 'bias']) names.push([`model.final_layernorm.${s}`, [2048]]);
  names.push(['lm_head.weight', [51200, 2048]], ['lm_head.bias', [51200]]);
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let off = 0;
  for (const [name, shape] of names) {
    const bytes = shape.reduce((a, b) => a * b, 2);
    header[name] = { dtype: 'F16', shape, data_offsets: [off, off + bytes] };
    off += bytes;
  }
  const head = new TextEncoder().encode(JSON.stringify(header));
  const size = 8 + head.length + off;
  const source: ByteSource = {
    name: 'phi-1_5/model.safetensors',
    size,
    async read(offset, into) {
      into.fill(0);
      const prefix = new Uint8Array(8 + head.length);
      new DataView(prefix.buffer).setBigUint64(0, BigInt(head.length), true);
      prefix.set(head, 8);
      if (offset < prefix.length) into.set(prefix.subarray(offset, offset + into.length));
    },
  };
  const config = JSON.stringify({
    model_type: 'phi',
    vocab_size: PHI_1_5.vocabSize,
    hidden_size: 2048,
    intermediate_size: 8192,
    num_hidden_layers: 24,
    num_attention_heads: 32,
    partial_rotary_factor: 0.5,
    rope_theta: 10000,
    layer_norm_eps: 1e-5,
    max_position_embeddings: 2048,
    hidden_act: 'gelu_new',
  });
  return {
    name: 'phi-1_5',
    exists: async (f) => f === 'config.json' || f === 'model.safetensors',
    readText: async () => config,
    open: async () => source,
  };
}

describe('phi-1.5 against the 4 GiB of wasm32', () => {
  test('f16 with 2048 positions fits; the plan counts weights, caches and scratch', async () => {
    const files = phi15Files();
    const ck = await Checkpoint.open(files);
    const plan = planMemory(ck, PHI_1_5, {
      dtype: 'auto',
      threads: 2,
      parallel: 1,
      maxPositions: 2048,
      maxBatch: 64,
    });
    expect(plan.weights).toBeGreaterThan(2.8e9);
    expect(plan.caches).toBe(2 * 24 * 2048 * 2048 * 4);
    expect(plan.total).toBeLessThan(4 * 2 ** 30);
    await ck.close();
  });

  test('too large is refused at once, naming what would fit', async () => {
    await expect(loadPhiFrom(phi15Files(), { ...NODE, threads: 1, parallel: 4 })).rejects.toThrow(
      /needs 5\.\d\d GiB as stored \(4 slot\(s\) of 2048 positions\), more than the 4 GiB of wasm32 memory; it fits with --dtype q4 or --context 512 or --parallel 1 \(or use --backend js\)/,
    );
    await expect(loadPhiFrom(phi15Files(), { ...NODE, dtype: 'f32' })).rejects.toThrow(
      /needs 6\.\d\d GiB as f32 .* it fits with --dtype f16 or --dtype q8 or --dtype q4/,
    );
  });
});
