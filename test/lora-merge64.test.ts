// Adapters of every PEFT variant phi-wasm honours, checked against expected values computed
// apart from the code under test: this file's own float64 merge W' = W + s·B·A, following
// PEFT's rules for which module an adapter touches and at what rank and scale, written out
// as a plain checkpoint and run as a model with no adapter. The merge is checked first on the
// shared fixture, whose merged logits were computed in float64 by transformers + PEFT.
// Then: use_rslora, rank_pattern and alpha_pattern, layers_to_transform, a regex
// target_modules, the first revision's Wqkv/out_proj names, and fan_in_fan_out, each loaded
// unmerged and merged.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { loadPhi, type Phi } from '../src/node/index.js';
import { fixture, maxAbsDiff, xorshift } from './helpers.js';

const BASE = fixture('tiny-phi-f32');
const SHARED = fixture('lora', 'tiny-phi-f32-r4');
const REF = JSON.parse(readFileSync(path.join(SHARED, 'lora_reference.json'), 'utf8')) as {
  inference: {
    cases: { input_ids: number[]; logits_last: number[]; max_abs_logit_all_positions: number }[];
  };
};
const IDS = REF.inference.cases.map((c) => c.input_ids);

type Tensors = Map<string, { shape: number[]; data: Float64Array }>;

/** safetensors (F32 only), read by hand: 8-byte header length, JSON header, data. */
function readF32(file: string): Tensors {
  const buf = readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const out: Tensors = new Map();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (t.dtype !== 'F32') throw new Error(`${name}: ${t.dtype}, this reader takes F32`);
    const [a, b] = t.data_offsets;
    const bytes = buf.subarray(8 + n + a, 8 + n + b);
    const f32 = new Float32Array(
      bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length),
    );
    out.set(name, { shape: t.shape, data: Float64Array.from(f32) });
  }
  return out;
}

/** The same, written (F32, rounded from f64 once). */
function writeF32(file: string, tensors: Tensors): void {
  const header: Record<string, object> = {};
  let offset = 0;
  for (const [name, t] of tensors) {
    header[name] = {
      dtype: 'F32',
      shape: t.shape,
      data_offsets: [offset, offset + t.data.length * 4],
    };
    offset += t.data.length * 4;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + json.length) % 8)) % 8);
  const out = Buffer.alloc(8 + json.length + offset);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  out.write(json, 8, 'utf8');
  let at = 8 + json.length;
  for (const t of tensors.values()) {
    Buffer.from(Float32Array.from(t.data).buffer).copy(out, at);
    at += t.data.length * 4;
  }
  writeFileSync(file, out);
}

interface PeftConfig {
  r: number;
  lora_alpha: number;
  target_modules: string[] | string;
  use_rslora?: boolean;
  rank_pattern?: Record<string, number>;
  alpha_pattern?: Record<string, number>;
  layers_to_transform?: number[] | number | null;
  fan_in_fan_out?: boolean;
}

/** PEFT's rule for a pattern key: it names the module path or a dotted suffix of it. */
const patternFor = (patterns: Record<string, number> | undefined, key: string) =>
  Object.keys(patterns ?? {}).find((p) => new RegExp(`^(.*\\.)?(${p})$`).test(key));

/** Is module `key` (e.g. model.layers.1.mlp.fc1) one PEFT wraps under this config? */
function targeted(c: PeftConfig, key: string): boolean {
  const hit =
    typeof c.target_modules === 'string'
      ? new RegExp(`^(?:${c.target_modules})$`).test(key)
      : c.target_modules.some((t) => key === t || key.endsWith(`.${t}`));
  if (!hit || c.layers_to_transform == null) return hit;
  const layer = /.*\.[^.]*\.(\d+)\./.exec(key);
  return layer !== null && [c.layers_to_transform].flat().includes(Number(layer[1]));
}

/** The first revision's module paths, as transformers' current names (B rows for Wqkv: q, k, v). */
function currentNames(key: string, D: number): { name: string; rows: [number, number] }[] {
  const old = /^layers\.(\d+)\.(mixer\.Wqkv|mixer\.out_proj|mlp\.fc1|mlp\.fc2)$/.exec(key);
  if (!old) return [{ name: key, rows: [0, Infinity] }];
  const l = `model.layers.${Number(old[1]) - 1}`; // layers.0 was the embedding
  if (old[2] === 'mixer.Wqkv')
    return ['q_proj', 'k_proj', 'v_proj'].map((p, i) => ({
      name: `${l}.self_attn.${p}`,
      rows: [i * D, (i + 1) * D],
    }));
  const mod = old[2] === 'mixer.out_proj' ? 'self_attn.dense' : old[2];
  return [{ name: `${l}.${mod}`, rows: [0, Infinity] }];
}

/** W' = W + s·B·A for every adapted module, in float64; the base tensors are not changed. */
function merge64(base: Tensors, c: PeftConfig, adapter: Tensors): Tensors {
  const out: Tensors = new Map([...base].map(([k, t]) => [k, { ...t, data: t.data.slice() }]));
  const D = base.get('model.embed_tokens.weight')!.shape[1];
  for (const [name, A] of adapter) {
    if (!name.endsWith('.lora_A.weight')) continue;
    const key = name.slice('base_model.model.'.length, -'.lora_A.weight'.length);
    if (!targeted(c, key)) throw new Error(`fixture bug: ${key} is not targeted`);
    const B = adapter.get(name.replace('lora_A', 'lora_B'))!;
    const rk = patternFor(c.rank_pattern, key);
    const ak = patternFor(c.alpha_pattern, key);
    const r = rk ? c.rank_pattern![rk] : c.r;
    const alpha = ak ? c.alpha_pattern![ak] : c.lora_alpha;
    const s = c.use_rslora ? alpha / Math.sqrt(r) : alpha / r;
    if (A.shape[0] !== r) throw new Error(`fixture bug: ${name} has rank ${A.shape[0]}, not ${r}`);
    const n = A.shape[1];
    for (const { name: target, rows } of currentNames(key, D)) {
      const W = out.get(`${target}.weight`)!;
      const d = W.shape[0];
      // PEFT sets fan_in_fan_out back to false for an nn.Linear: the layout is [out, in] anyway
      for (let o = 0; o < d; o++)
        for (let i = 0; i < n; i++) {
          let acc = 0;
          for (let k = 0; k < r; k++) acc += B.data[(rows[0] + o) * r + k] * A.data[k * n + i];
          W.data[o * n + i] += s * acc;
        }
    }
  }
  return out;
}

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(path.join(tmpdir(), 'lora64-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

let baseTensors: Tensors | undefined;

/** The base checkpoint folder (no reference outputs) with its weights merged by merge64. */
function mergedCheckpoint(c: PeftConfig, adapter: Tensors): string {
  const dir = tmp();
  for (const f of [
    'config.json',
    'generation_config.json',
    'tokenizer.json',
    'tokenizer_config.json',
  ])
    cpSync(path.join(BASE, f), path.join(dir, f));
  baseTensors ??= readF32(path.join(BASE, 'model.safetensors'));
  writeF32(path.join(dir, 'model.safetensors'), merge64(baseTensors, c, adapter));
  return dir;
}

/** A PEFT folder: this config (over the shared fixture's) and these tensors. */
function peftFolder(c: PeftConfig, adapter: Tensors): string {
  const dir = tmp();
  const shared = JSON.parse(readFileSync(path.join(SHARED, 'adapter_config.json'), 'utf8'));
  writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify({ ...shared, ...c }));
  writeF32(path.join(dir, 'adapter_model.safetensors'), adapter);
  return dir;
}

const SHAPES = { D: 64, F: 256 };
const MODULES: Record<string, [string, number, number]> = {
  // name -> [path in a block, in, out]
  q_proj: ['self_attn.q_proj', SHAPES.D, SHAPES.D],
  k_proj: ['self_attn.k_proj', SHAPES.D, SHAPES.D],
  v_proj: ['self_attn.v_proj', SHAPES.D, SHAPES.D],
  dense: ['self_attn.dense', SHAPES.D, SHAPES.D],
  fc1: ['mlp.fc1', SHAPES.D, SHAPES.F],
  fc2: ['mlp.fc2', SHAPES.F, SHAPES.D],
};

/** Random A and B (B nonzero: as trained, not as initialised) for (module path, in, out, r). */
function randomAdapter(seed: number, modules: [string, number, number, number][]): Tensors {
  const rand = xorshift(seed);
  const t = (shape: number[]) => ({
    shape,
    data: Float64Array.from({ length: shape[0] * shape[1] }, () =>
      Math.fround((rand() - 0.5) * 0.3),
    ),
  });
  const out: Tensors = new Map();
  for (const [key, n, d, r] of modules) {
    out.set(`base_model.model.${key}.lora_A.weight`, t([r, n]));
    out.set(`base_model.model.${key}.lora_B.weight`, t([d, r]));
  }
  return out;
}

const everyModule = (r: (layer: number, m: string) => number, names = Object.keys(MODULES)) =>
  [0, 1].flatMap((l) =>
    names.map((m): [string, number, number, number] => {
      const [p, n, d] = MODULES[m];
      return [`model.layers.${l}.${p}`, n, d, r(l, m)];
    }),
  );

/** Every position's logits for each case. */
const allLogits = (phi: Phi, opts: { adapter?: string } = {}) =>
  IDS.map((ids) => phi.logits(ids, true, opts));

/** Largest |a - b| over max |b|, across the cases. */
function relErr(got: Float32Array[], want: Float32Array[]): number {
  let err = 0;
  got.forEach((g, i) => {
    let scale = 0;
    for (const v of want[i]) scale = Math.max(scale, Math.abs(v));
    err = Math.max(err, maxAbsDiff(g, want[i]) / scale);
  });
  return err;
}

/**
 * The adapter unmerged (on these backends) and merged (wasm) against merge64's checkpoint, run
 * with no adapter (on wasm: its f32 path computes what the js one does, faster).
 */
async function expectMatches(
  c: PeftConfig,
  adapter: Tensors,
  backends: readonly ('js' | 'wasm')[] = ['wasm'],
) {
  const expected = await loadPhi(mergedCheckpoint(c, adapter), { backend: 'wasm' });
  const folder = peftFolder(c, adapter);
  try {
    const want = allLogits(expected);
    const greedy = async (phi: Phi, adapter?: string) =>
      (
        await phi.complete(
          { ids: IDS[0] },
          { maxNewTokens: 8, temperature: 0, stopAtEos: false, adapter },
        )
      ).ids;
    const wantTokens = await greedy(expected);
    for (const backend of backends) {
      const phi = await loadPhi(BASE, { backend, adapters: { a: folder } });
      try {
        expect(relErr(allLogits(phi, { adapter: 'a' }), want)).toBeLessThan(1e-5);
        expect(await greedy(phi, 'a')).toEqual(wantTokens);
        // the base is not changed by holding an adapter
        expect(relErr(allLogits(phi), want)).toBeGreaterThan(1e-3);
      } finally {
        phi.close();
      }
    }
    const merged = await loadPhi(BASE, { backend: 'wasm', merge: folder });
    try {
      expect(relErr(allLogits(merged), want)).toBeLessThan(1e-5);
      expect(await greedy(merged)).toEqual(wantTokens);
    } finally {
      merged.close();
    }
  } finally {
    expected.close();
  }
}

describe('LoRA against a float64 merge of its own', () => {
  test('the merge reproduces the shared fixture (transformers + PEFT in float64)', async () => {
    const c = JSON.parse(readFileSync(path.join(SHARED, 'adapter_config.json'), 'utf8'));
    const adapter = readF32(path.join(SHARED, 'adapter_model.safetensors'));
    const phi = await loadPhi(mergedCheckpoint(c, adapter), { backend: 'js' });
    try {
      for (const [i, rc] of REF.inference.cases.entries()) {
        const got = phi.logits(IDS[i], false);
        expect(
          maxAbsDiff(got.subarray(0, rc.logits_last.length), rc.logits_last) /
            rc.max_abs_logit_all_positions,
        ).toBeLessThan(1e-5);
      }
    } finally {
      phi.close();
    }
    await expectMatches(c, adapter, ['js', 'wasm'] as const);
  });

  test('use_rslora: s = alpha / sqrt(r)', async () => {
    const c = { r: 9, lora_alpha: 6, use_rslora: true, target_modules: Object.keys(MODULES) };
    await expectMatches(
      c,
      randomAdapter(
        11,
        everyModule(() => 9),
      ),
    );
  });

  test('rank_pattern and alpha_pattern, by module name and by a dotted path', async () => {
    const c: PeftConfig = {
      r: 4,
      lora_alpha: 8,
      target_modules: Object.keys(MODULES),
      rank_pattern: { fc1: 2, 'layers.1.self_attn.q_proj': 7 },
      alpha_pattern: { dense: 3, 'model.layers.0.mlp.fc2': 1 },
    };
    const r = (l: number, m: string) => (m === 'fc1' ? 2 : m === 'q_proj' && l === 1 ? 7 : 4);
    await expectMatches(c, randomAdapter(12, everyModule(r)));
  });

  test('layers_to_transform: only the listed blocks', async () => {
    const c = {
      r: 3,
      lora_alpha: 5,
      target_modules: Object.keys(MODULES),
      layers_to_transform: [1],
    };
    const modules = everyModule(() => 3).filter(([k]) => k.startsWith('model.layers.1.'));
    await expectMatches(c, randomAdapter(13, modules));
  });

  test('a regex target_modules matches the whole module path', async () => {
    // q_proj in block 0 only, fc2 in both: what the regex names, nothing else
    const c = {
      r: 5,
      lora_alpha: 10,
      target_modules: '.*layers\\.0\\.self_attn\\.q_proj|.*\\.fc2',
    };
    const modules = everyModule(() => 5, ['q_proj', 'fc2']).filter(
      ([k]) => !k.includes('layers.1.self_attn'),
    );
    await expectMatches(c, randomAdapter(14, modules));
  });

  test("the first revision's names: Wqkv (its B split into q, k, v), out_proj, fc1, fc2", async () => {
    const { D, F } = SHAPES;
    const c = { r: 4, lora_alpha: 4, target_modules: ['Wqkv', 'out_proj', 'fc1', 'fc2'] };
    const modules = [1, 2].flatMap((l): [string, number, number, number][] => [
      [`layers.${l}.mixer.Wqkv`, D, 3 * D, 4],
      [`layers.${l}.mixer.out_proj`, D, D, 4],
      [`layers.${l}.mlp.fc1`, D, F, 4],
      [`layers.${l}.mlp.fc2`, F, D, 4],
    ]);
    await expectMatches(c, randomAdapter(15, modules));
  });

  test('fan_in_fan_out: true changes nothing on nn.Linear (PEFT turns it off)', async () => {
    const c = { r: 4, lora_alpha: 8, fan_in_fan_out: true, target_modules: ['v_proj', 'fc1'] };
    await expectMatches(
      c,
      randomAdapter(
        16,
        everyModule(() => 4, ['v_proj', 'fc1']),
      ),
    );
  });
});
