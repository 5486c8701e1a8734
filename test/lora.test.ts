// LoRA adapters in PEFT's layout (src/weights/adapter.ts), merged at load and unmerged
// (src/model/lora.ts), against the float64 logits of the merged model
// (test/fixtures/lora/tiny-phi-f32-r4: rank 4, alpha 8, all six targets, B nonzero).
import { mkdtempSync, readFileSync, writeFileSync, cpSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { loadPhi, type Phi } from '../src/node/index.js';
import { memoryFiles } from '../src/io/source.js';
import { readAdapter, parseAdapterConfig } from '../src/weights/adapter.js';
import { parseConfig } from '../src/model/config.js';
import { writeSafetensors, type DType } from '../src/weights/safetensors.js';
import { fixture, maxAbsDiff, reference, xorshift } from './helpers.js';

const ADAPTER = fixture('lora', 'tiny-phi-f32-r4');
const BASE = fixture('tiny-phi-f32');
interface LoraCase {
  name: string;
  input_ids: number[];
  logits_last: number[];
  max_abs_logit_all_positions: number;
  argmax: number[];
  greedy_new_tokens: number[];
}
const REF = JSON.parse(readFileSync(path.join(ADAPTER, 'lora_reference.json'), 'utf8')) as {
  inference: { cases: LoraCase[] };
};
const CASES = REF.inference.cases;
const CONFIG = JSON.parse(readFileSync(path.join(ADAPTER, 'adapter_config.json'), 'utf8'));
const cfg = parseConfig(readFileSync(path.join(BASE, 'config.json'), 'utf8'), 'config.json');

/** max |got - want| over the scale of the logits, as the reference README compares. */
const relErr = (got: Float32Array, want: number[], scale: number) =>
  maxAbsDiff(got.subarray(0, want.length), want) / scale;

function argmaxRows(all: Float32Array, V: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < all.length / V; r++) {
    let best = 0;
    for (let i = 1; i < V; i++) if (all[r * V + i] > all[r * V + best]) best = i;
    out.push(best);
  }
  return out;
}

/** The merged model's references: last logits to 1e-4, every argmax, the first 6 greedy tokens. */
async function expectReference(phi: Phi, adapter?: string) {
  const V = phi.config.vocabSize;
  for (const c of CASES) {
    const last = phi.logits(c.input_ids, false, { adapter });
    expect(relErr(last, c.logits_last, c.max_abs_logit_all_positions)).toBeLessThan(1e-4);
    expect(argmaxRows(phi.logits(c.input_ids, true, { adapter }), V)).toEqual(c.argmax);
    const g = await phi.complete(
      { ids: c.input_ids },
      { maxNewTokens: 6, temperature: 0, stopAtEos: false, adapter },
    );
    expect(g.ids).toEqual(c.greedy_new_tokens.slice(0, 6));
  }
}

/** A PEFT folder with this config and these tensors (F32), in a fresh temp dir. */
function writeAdapter(
  config: object,
  tensors: Record<string, { shape: number[]; data: Float32Array }>,
  dtype: DType = 'F32',
): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'lora-'));
  writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify(config));
  const list = Object.entries(tensors).map(([name, t]) => ({
    name,
    dtype,
    shape: t.shape,
    data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
  }));
  writeFileSync(path.join(dir, 'adapter_model.safetensors'), writeSafetensors(list));
  return dir;
}

/** The fixture adapter's tensors, by name. */
async function fixtureTensors() {
  const a = await readAdapter(
    memoryFiles('fx', {
      'adapter_config.json': readFileSync(path.join(ADAPTER, 'adapter_config.json'), 'utf8'),
      'adapter_model.safetensors': new Uint8Array(
        readFileSync(path.join(ADAPTER, 'adapter_model.safetensors')),
      ),
    }),
    cfg,
  );
  return a;
}

describe('LoRA adapters (PEFT layout)', () => {
  test.each(['js', 'wasm'] as const)(
    'merged at load (%s, f32) matches the merged reference',
    async (backend) => {
      const phi = await loadPhi(BASE, { backend, merge: ADAPTER });
      try {
        await expectReference(phi);
      } finally {
        phi.close();
      }
    },
  );

  test.each(['js', 'wasm'] as const)(
    'unmerged (%s): the adapter by name matches the reference; no adapter is the base model',
    async (backend) => {
      const phi = await loadPhi(BASE, {
        backend,
        adapters: { r4: ADAPTER },
        threads: backend === 'wasm' ? 2 : 1,
      });
      try {
        expect(phi.adapters).toEqual(['r4']);
        expect(phi.adapterInfo('r4')).toMatchObject({
          r: 4,
          lora_alpha: 8,
          targets: ['q_proj', 'k_proj', 'v_proj', 'dense', 'fc1', 'fc2'],
        });
        await expectReference(phi, 'r4');
        const base = reference('tiny-phi-f32').cases.find((c) => c.name === 'rand_len7')!;
        const got = phi.logits(base.input_ids);
        expect(relErr(got, base.logits_last, base.max_abs_logit_all_positions)).toBeLessThan(1e-4);
        expect(() => phi.logits(base.input_ids, false, { adapter: 'nope' })).toThrow(
          /adapter "nope" is not loaded \(loaded: r4\)/,
        );
      } finally {
        phi.close();
      }
    },
  );

  test('requests with and without the adapter, batched in one step, equal each alone', async () => {
    const phi = await loadPhi(BASE, { backend: 'wasm', adapters: { r4: ADAPTER }, parallel: 3 });
    try {
      const ids = CASES[1].input_ids;
      const opts = { maxNewTokens: 8, temperature: 0, stopAtEos: false };
      const alone = [];
      for (const adapter of ['r4', undefined, 'r4'])
        alone.push((await phi.complete({ ids }, { ...opts, adapter })).ids);
      const together = await Promise.all(
        (['r4', undefined, 'r4'] as const).map((adapter) =>
          phi.complete({ ids }, { ...opts, adapter }),
        ),
      );
      expect(together.map((g) => g.ids)).toEqual(alone);
      expect(alone[0]).not.toEqual(alone[1]);
      // a slot's cached prompt is not reused across adapters: the base answer is the base one
      const again = await phi.complete({ ids }, opts);
      expect(again.ids).toEqual(alone[1]);
    } finally {
      phi.close();
    }
  });

  test('adapterScale multiplies the trained scale: 2 is lora_alpha doubled, 0 the base model', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'lora-'));
    cpSync(ADAPTER, dir, { recursive: true });
    writeFileSync(
      path.join(dir, 'adapter_config.json'),
      JSON.stringify({ ...CONFIG, lora_alpha: 16 }),
    );
    const phi = await loadPhi(BASE, { backend: 'wasm', adapters: { r4: ADAPTER, doubled: dir } });
    try {
      const ids = CASES[1].input_ids;
      const twice = Array.from(phi.logits(ids, false, { adapter: 'r4', adapterScale: 2 }));
      expect(twice).toEqual(Array.from(phi.logits(ids, false, { adapter: 'doubled' })));
      const none = Array.from(phi.logits(ids, false, { adapter: 'r4', adapterScale: 0 }));
      expect(none).toEqual(Array.from(phi.logits(ids)));
      expect(() => phi.logits(ids, false, { adapterScale: 1 })).toThrow(
        /adapter scale needs an adapter/,
      );
    } finally {
      phi.close();
      rmSync(dir, { recursive: true });
    }
  });

  test('loaded and unloaded at run time; unloading one in use is refused', async () => {
    const phi = await loadPhi(BASE, { backend: 'js' });
    try {
      const files = memoryFiles('mem', {
        'adapter_config.json': readFileSync(path.join(ADAPTER, 'adapter_config.json'), 'utf8'),
        'adapter_model.safetensors': new Uint8Array(
          readFileSync(path.join(ADAPTER, 'adapter_model.safetensors')),
        ),
      });
      await phi.loadAdapter('mine', files);
      const c = CASES[0];
      expect(
        relErr(
          phi.logits(c.input_ids, false, { adapter: 'mine' }),
          c.logits_last,
          c.max_abs_logit_all_positions,
        ),
      ).toBeLessThan(1e-4);
      await expect(phi.loadAdapter('mine', files)).rejects.toThrow(/already loaded/);
      const g = phi.generate({ ids: c.input_ids }, { maxNewTokens: 50, adapter: 'mine' });
      expect(() => phi.unloadAdapter('mine')).toThrow(/in use by 1 request/);
      await g.result();
      phi.unloadAdapter('mine');
      expect(phi.adapters).toEqual([]);
      expect(() => phi.generate({ ids: c.input_ids }, { adapter: 'mine' })).toThrow(
        /not loaded \(none is loaded\)/,
      );
    } finally {
      phi.close();
    }
  });

  test('a fused Wqkv adapter (the first revision) splits its B into q, k and v', async () => {
    const { hiddenSize: D, intermediateSize: F, numLayers: L } = cfg;
    const rand = xorshift(7);
    const r = 3;
    const m = (rows: number, cols: number) => ({
      shape: [rows, cols],
      data: Float32Array.from({ length: rows * cols }, () => rand() * 0.2),
    });
    const fused: Record<string, { shape: number[]; data: Float32Array }> = {};
    const split: typeof fused = {};
    for (let l = 0; l < L; l++) {
      const A = m(r, D);
      const B = m(3 * D, r);
      fused[`base_model.model.layers.${l + 1}.mixer.Wqkv.lora_A.weight`] = A;
      fused[`base_model.model.layers.${l + 1}.mixer.Wqkv.lora_B.weight`] = B;
      ['q_proj', 'k_proj', 'v_proj'].forEach((p, i) => {
        split[`base_model.model.model.layers.${l}.self_attn.${p}.lora_A.weight`] = A;
        split[`base_model.model.model.layers.${l}.self_attn.${p}.lora_B.weight`] = {
          shape: [D, r],
          data: B.data.slice(i * D * r, (i + 1) * D * r),
        };
      });
      const A2 = m(r, F);
      fused[`base_model.model.layers.${l + 1}.mlp.fc2.lora_A.weight`] = A2;
      split[`base_model.model.model.layers.${l}.mlp.fc2.lora_A.weight`] = A2;
      const B2 = m(D, r);
      fused[`base_model.model.layers.${l + 1}.mlp.fc2.lora_B.weight`] = B2;
      split[`base_model.model.model.layers.${l}.mlp.fc2.lora_B.weight`] = B2;
    }
    const base = { ...CONFIG, r, lora_alpha: 6 };
    const a = writeAdapter({ ...base, target_modules: ['Wqkv', 'fc2'] }, fused);
    const b = writeAdapter(
      { ...base, target_modules: ['q_proj', 'k_proj', 'v_proj', 'fc2'] },
      split,
    );
    const phi = await loadPhi(BASE, { backend: 'js', adapters: { fused: a, split: b } });
    try {
      const ids = CASES[0].input_ids;
      expect(Array.from(phi.logits(ids, false, { adapter: 'fused' }))).toEqual(
        Array.from(phi.logits(ids, false, { adapter: 'split' })),
      );
      expect(phi.adapterInfo('fused').targets).toEqual(['q_proj', 'k_proj', 'v_proj', 'fc2']);
    } finally {
      phi.close();
      for (const d of [a, b]) rmSync(d, { recursive: true });
    }
  });

  test('rank_pattern, alpha_pattern, use_rslora, layers_to_transform and a regex target_modules are honoured', async () => {
    const ref = await fixtureTensors();
    const term = (l: number, mod: 'q_proj' | 'fc1') => ref.layers[l][mod]!;
    // scale: alpha / r, or alpha / sqrt(r); patterns by module name
    const p = parseAdapterConfig({ ...CONFIG, use_rslora: true }, 'x');
    expect(p.rslora).toBe(true);
    const dir = mkdtempSync(path.join(tmpdir(), 'lora-'));
    cpSync(ADAPTER, dir, { recursive: true });
    const write = (c: object) =>
      writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify({ ...CONFIG, ...c }));
    const files = () =>
      memoryFiles(dir, {
        'adapter_config.json': readFileSync(path.join(dir, 'adapter_config.json'), 'utf8'),
        'adapter_model.safetensors': new Uint8Array(
          readFileSync(path.join(dir, 'adapter_model.safetensors')),
        ),
      });
    try {
      write({ use_rslora: true });
      expect((await readAdapter(files(), cfg)).layers[0].q_proj!.scale).toBeCloseTo(8 / 2);
      write({ alpha_pattern: { fc1: 2 } });
      let a = await readAdapter(files(), cfg);
      expect(a.layers[1].fc1!.scale).toBeCloseTo(0.5);
      expect(a.layers[1].q_proj!.scale).toBeCloseTo(2);
      write({ target_modules: '.*\\.(q_proj|k_proj|v_proj|dense|fc1|fc2)' });
      a = await readAdapter(files(), cfg);
      expect(a.layers[0].fc2!.B).toEqual(ref.layers[0].fc2!.B);
      // the file has every layer's tensors: a config for layer 0 only does not describe them
      write({ layers_to_transform: [0] });
      await expect(readAdapter(files(), cfg)).rejects.toThrow(
        /tensor "base_model.model.model.layers.1\.[\w.]+" \(and 11 more\) is not one adapter_config.json describes/,
      );
      // rank_pattern: a rank the tensors do not have is a shape error naming the tensor
      write({ rank_pattern: { 'layers.1.mlp.fc1': 2 } });
      await expect(readAdapter(files(), cfg)).rejects.toThrow(
        /"base_model.model.model.layers.1.mlp.fc1.lora_A.weight" has shape \[4, 64\], expected \[2, 64\]/,
      );
      expect(term(0, 'q_proj').r).toBe(4);
      expect(term(1, 'fc1').in).toBe(64);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  test.each([
    [{ peft_type: 'IA3' }, /"peft_type" is "IA3": phi-wasm runs LoRA adapters \("LORA"\) only/],
    [{ use_dora: true }, /"use_dora" is true: DoRA adapters are not supported/],
    [{ bias: 'lora_only' }, /"bias" is "lora_only": only "none" is supported/],
    [
      { modules_to_save: ['lm_head'] },
      /"modules_to_save" is \["lm_head"\]: fully trained modules are not supported/,
    ],
    [{ r: 0 }, /"r" must be a positive integer, got 0/],
    [{ target_modules: 5 }, /"target_modules" must be a list of module names or a regex string/],
    [{ target_modules: ['lm_head'] }, /is not one adapter_config.json describes/],
    [
      { layers_to_transform: 'all' },
      /"layers_to_transform" must be a layer index or a list of them/,
    ],
  ])('refuses %j, naming the field', async (change, message) => {
    const files = memoryFiles('bad', {
      'adapter_config.json': JSON.stringify({ ...CONFIG, ...change }),
      'adapter_model.safetensors': new Uint8Array(
        readFileSync(path.join(ADAPTER, 'adapter_model.safetensors')),
      ),
    });
    await expect(readAdapter(files, cfg)).rejects.toThrow(message);
  });

  test('refuses a pickled adapter, a missing tensor, and an adapter for other shapes', async () => {
    await expect(
      readAdapter(
        memoryFiles('pk', {
          'adapter_config.json': JSON.stringify(CONFIG),
          'adapter_model.bin': new Uint8Array(4),
        }),
        cfg,
      ),
    ).rejects.toThrow(/adapter_model.bin is a pickle, which phi-wasm does not read/);
    const ref = await fixtureTensors();
    const some: Record<string, { shape: number[]; data: Float32Array }> = {};
    const t = ref.layers[0].q_proj!;
    some['base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'] = {
      shape: [4, 64],
      data: t.A,
    };
    some['base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight'] = {
      shape: [64, 4],
      data: t.B,
    };
    const dir = writeAdapter(CONFIG, some);
    try {
      await expect(loadPhi(BASE, { backend: 'js', merge: dir })).rejects.toThrow(
        /missing tensor "base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight" \(and \d+ more\), which adapter_config.json targets/,
      );
    } finally {
      rmSync(dir, { recursive: true });
    }
    const wide = writeAdapter(
      { ...CONFIG, target_modules: ['q_proj'], layers_to_transform: [0] },
      {
        'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight': {
          shape: [4, 128],
          data: new Float32Array(512),
        },
        'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight': {
          shape: [128, 4],
          data: new Float32Array(512),
        },
      },
    );
    try {
      await expect(loadPhi(BASE, { backend: 'js', adapters: { w: wide } })).rejects.toThrow(
        /lora_A.weight" has shape \[4, 128\], expected \[4, 64\] for the base model/,
      );
    } finally {
      rmSync(wide, { recursive: true });
    }
    await expect(
      loadPhi(BASE, { backend: 'js', adapters: { 'bad name!': ADAPTER } }),
    ).rejects.toThrow(/an adapter name must be/);
    await expect(loadPhi(BASE, { backend: 'js', adapters: { a: '/nowhere/x' } })).rejects.toThrow(
      /adapter folder \/nowhere\/x not found/,
    );
  });

  // q4: the bound quantized.test.ts holds q4 to without an adapter (max error 0.3 of max |logit|)
  test('merged into f16, q8 and q4 weights, and unmerged on those bases, stay near the reference', async () => {
    for (const [dtype, tol] of [
      ['f16', 5e-3],
      ['q8', 3e-2],
      ['q4', 0.3],
    ] as const) {
      const merged = await loadPhi(BASE, { backend: 'wasm', dtype, merge: ADAPTER });
      const unmerged = await loadPhi(BASE, { backend: 'wasm', dtype, adapters: { r4: ADAPTER } });
      try {
        for (const c of CASES) {
          expect(
            relErr(merged.logits(c.input_ids), c.logits_last, c.max_abs_logit_all_positions),
          ).toBeLessThan(tol);
          expect(
            relErr(
              unmerged.logits(c.input_ids, false, { adapter: 'r4' }),
              c.logits_last,
              c.max_abs_logit_all_positions,
            ),
          ).toBeLessThan(tol);
        }
      } finally {
        merged.close();
        unmerged.close();
      }
    }
  });
});
