// The memory plan (src/memory.ts) is what loading really allocates, and it decides what fits
// in wasm32 memory before a byte of the weights is read.
import { readFileSync } from 'node:fs';
import { loadPhiFrom } from '../src/load.js';
import type { WasmKernels } from '../src/kernels/wasm/index.js';
import { planMemory } from '../src/memory.js';
import { parseConfig, PHI_1_5 } from '../src/model/config.js';
import { LORA_MODULES } from '../src/model/lora.js';
import { dirFiles } from '../src/node/files.js';
import { readAdapter } from '../src/weights/adapter.js';
import { Checkpoint } from '../src/weights/checkpoint.js';
import { fixture, NODE } from './helpers.js';
import { phi15Files } from './phi15.js';

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

  test('with a LoRA adapter unmerged, and one merged as it loads', async () => {
    const files = dirFiles(fixture('tiny-phi-f32'));
    const cfg = parseConfig(readFileSync(fixture('tiny-phi-f32', 'config.json'), 'utf8'));
    const adapter = await readAdapter(dirFiles(fixture('lora', 'tiny-phi-f32-r4')), cfg);
    const ck = await Checkpoint.open(files);
    const o = { dtype: 'q8', threads: 2, parallel: 2, maxPositions: 64, maxBatch: 8 } as const;
    const plan = planMemory(ck, cfg, {
      ...o,
      adapters: { unmerged: [adapter], merged: [adapter] },
    });
    await ck.close();
    expect(plan.adapters).toBeGreaterThan(0);
    const lora = dirFiles(fixture('lora', 'tiny-phi-f32-r4'));
    const phi = await loadPhiFrom(files, { ...NODE, ...o, adapters: { a: lora }, merge: lora });
    expect((phi.model.kernels as WasmKernels).usedBytes).toBe(plan.total);
    await phi.complete({ ids: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }, { maxNewTokens: 2, adapter: 'a' });
    expect((phi.model.kernels as WasmKernels).usedBytes).toBe(plan.total);
    phi.close();
  });

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
  // phi finetune's load: a KV cache of one sequence, and room for the training (train/plan.ts)
  const training = (seq: number, checkpointing: 'auto' | 'on' | 'off' = 'auto') => ({
    maxPositions: seq,
    training: { seq, rank: 8, targets: LORA_MODULES, dropout: false, checkpointing },
  });

  test('a fine-tune is planned: activations kept at 256 tokens, recomputed at 512', async () => {
    const ck = await Checkpoint.open(phi15Files());
    const o = { dtype: 'auto' as const, threads: 2, parallel: 1, maxBatch: 64 };
    const at256 = planMemory(ck, PHI_1_5, { ...o, ...training(256) });
    const at512 = planMemory(ck, PHI_1_5, { ...o, ...training(512) });
    expect(at256.keepActivations).toBe(true);
    expect(at512.keepActivations).toBe(false);
    expect(at256.training).toBeGreaterThan(700 * 2 ** 20); // 741 MiB and the scratch's bound
    expect(at512.total).toBeLessThan(4 * 2 ** 30);
    await ck.close();
  });

  test('a fine-tune that cannot fit is refused at once, naming what would', async () => {
    const load = (o: object) => loadPhiFrom(phi15Files(), { ...NODE, threads: 1, ...o });
    await expect(load(training(2048))).rejects.toThrow(
      /as stored \(1 slot\(s\) of 2048 positions, training on 2048 tokens\), more than the 4 GiB of wasm32 memory; it fits with --seq 512 \(/,
    );
    await expect(load({ ...training(2048), dtype: 'q4' })).rejects.toThrow(
      /as q4 .*; it fits with --seq 1024 \(/,
    );
    await expect(load(training(1024, 'off'))).rejects.toThrow(/it fits with --seq 256 \(/);
  });
});
