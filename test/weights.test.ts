// The safetensors reader and checkpoint loading: every kind of bad input gets its own
// clear message; old tensor names, shards and dtype conversion load the same model.
import { readFileSync } from 'node:fs';
import { memoryFiles } from '../src/io/source.js';
import { f16ToF32, f32ToF16 } from '../src/formats/f16.js';
import { loadPhiFrom } from '../src/load.js';
import { parseConfig } from '../src/model/config.js';
import { loadPhi } from '../src/node/index.js';
import { openSafetensors, writeSafetensors, type DType } from '../src/weights/safetensors.js';
import { bufferSource } from '../src/io/source.js';
import { NODE, fixture, maxAbsDiff, reference } from './helpers.js';

const enc = new TextEncoder();

/** A safetensors file from a header object and a data section of `dataBytes` bytes. */
function rawFile(header: unknown, dataBytes: number, headerText?: string): Uint8Array {
  const h = enc.encode(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  return out;
}
const open = (bytes: Uint8Array) => openSafetensors(bufferSource('bad.safetensors', bytes));
const t = (dtype: string, shape: number[], a: number, b: number) => ({
  dtype,
  shape,
  data_offsets: [a, b],
});

describe('safetensors reader rejects bad files with a clear message', () => {
  test('a good file parses', async () => {
    const f = await open(
      rawFile(
        { __metadata__: { format: 'pt' }, a: t('F32', [2, 3], 0, 24), b: t('F16', [4], 24, 32) },
        32,
      ),
    );
    expect([...f.tensors.keys()].sort()).toEqual(['a', 'b']);
    expect(f.tensors.get('a')!.shape).toEqual([2, 3]);
    expect(f.metadata.format).toBe('pt');
  });
  test('truncated: shorter than the length field', async () => {
    await expect(open(new Uint8Array(5))).rejects.toThrow(
      /bad\.safetensors: truncated .*5 bytes.*8-byte header length/,
    );
  });
  test('header length past the end of the file', async () => {
    const f = rawFile({ a: t('F32', [1], 0, 4) }, 4);
    new DataView(f.buffer).setBigUint64(0, 10_000n, true);
    await expect(open(f)).rejects.toThrow(/header length 10000 runs past the end of the file/);
  });
  test('invalid JSON', async () => {
    await expect(open(rawFile(null, 0, '{"a": [1, 2'))).rejects.toThrow(/header is not valid JSON/);
  });
  test('header that is not an object', async () => {
    await expect(open(rawFile([1, 2], 0))).rejects.toThrow(/header must be a JSON object/);
  });
  test('unknown dtype', async () => {
    await expect(open(rawFile({ w: t('F17', [1], 0, 4) }, 4))).rejects.toThrow(
      /tensor "w": unknown dtype "F17"/,
    );
  });
  test('known but unsupported dtype', async () => {
    await expect(open(rawFile({ w: t('I64', [1], 0, 8) }, 8))).rejects.toThrow(
      /tensor "w": unsupported dtype "I64" \(supported: F32, F16, BF16, and U8 for phi-wasm's quantized files\)/,
    );
  });
  test('shape that disagrees with the byte range', async () => {
    await expect(open(rawFile({ w: t('F32', [2, 3], 0, 20) }, 20))).rejects.toThrow(
      /tensor "w": shape \[2, 3\] of F32 needs 24 bytes but data_offsets \[0, 20\] span 20/,
    );
  });
  test('overlapping offsets', async () => {
    await expect(
      open(rawFile({ a: t('F32', [2], 0, 8), b: t('F32', [2], 4, 12) }, 12)),
    ).rejects.toThrow(/tensors "a" and "b" overlap/);
  });
  test('a gap between tensors', async () => {
    await expect(
      open(rawFile({ a: t('F32', [1], 0, 4), b: t('F32', [1], 8, 12) }, 12)),
    ).rejects.toThrow(/gap in the data section before tensor "b"/);
  });
  test('offsets past the end of the data (truncated file)', async () => {
    await expect(open(rawFile({ a: t('F32', [4], 0, 16) }, 8))).rejects.toThrow(
      /tensor "a" data_offsets \[0, 16\] run past the end of the data section \(8 bytes\)/,
    );
  });
  test('trailing bytes no tensor owns', async () => {
    await expect(open(rawFile({ a: t('F32', [1], 0, 4) }, 8))).rejects.toThrow(
      /data section is 8 bytes but the tensors cover 4/,
    );
  });
  test('duplicate tensor names', async () => {
    const text =
      '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}';
    await expect(open(rawFile(null, 4, text))).rejects.toThrow(/duplicate tensor name "a"/);
  });
  test('negative or fractional shapes and bad offsets', async () => {
    await expect(open(rawFile({ a: t('F32', [-1], 0, 4) }, 4))).rejects.toThrow(
      /shape must be an array of non-negative integers/,
    );
    await expect(
      open(rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, 4)),
    ).rejects.toThrow(/data_offsets must be \[begin, end\]/);
  });
  test('a real fixture truncated in the middle of its data', async () => {
    const bytes = readFileSync(fixture('tiny-phi-f16', 'model.safetensors'));
    await expect(open(bytes.subarray(0, bytes.length - 1000))).rejects.toThrow(
      /run past the end of the data section.*truncated file/,
    );
  });
});

describe('config.json validation', () => {
  const base = JSON.parse(readFileSync(fixture('tiny-phi-f32', 'config.json'), 'utf8'));
  const bad = (patch: Record<string, unknown>) => () => parseConfig({ ...base, ...patch });
  test('the fixture parses to the expected shapes', () => {
    const c = parseConfig(base);
    expect([c.hiddenSize, c.numHeads, c.headDim, c.rotaryDim, c.numLayers, c.vocabSize]).toEqual([
      64, 4, 16, 8, 2, 51200,
    ]);
  });
  test('each inconsistency names its field', () => {
    expect(bad({ hidden_size: 66 })).toThrow(
      /hidden_size \(66\) must be divisible by num_attention_heads \(4\)/,
    );
    expect(bad({ num_key_value_heads: 2 })).toThrow(
      /num_key_value_heads is 2 but must equal num_attention_heads \(4\)/,
    );
    expect(bad({ hidden_act: 'relu' })).toThrow(/hidden_act must be "gelu_new"/);
    expect(bad({ partial_rotary_factor: 0.2 })).toThrow(
      /partial_rotary_factor gives 3 rotary dims for head dim 16: need an even number/,
    );
    expect(bad({ vocab_size: 0 })).toThrow(/vocab_size must be a positive integer, found 0/);
    expect(bad({ num_hidden_layers: undefined })).toThrow(/num_hidden_layers is missing/);
    expect(bad({ model_type: 'llama' })).toThrow(/model_type must be "phi"/);
    expect(bad({ rope_scaling: { type: 'linear' } })).toThrow(/rope_scaling/);
    expect(() => parseConfig('{oops')).toThrow(/config\.json: not valid JSON/);
  });
  test('the old phi-msft config gives the same numbers', () => {
    const old = parseConfig({
      model_type: 'phi-msft',
      n_embd: 64,
      n_head: 4,
      n_layer: 2,
      n_inner: null,
      rotary_dim: 8,
      vocab_size: 51200,
      n_positions: 512,
      layer_norm_epsilon: 1e-5,
      activation_function: 'gelu_new',
    });
    expect(old).toEqual({ ...parseConfig(base), intermediateSize: 256 });
  });
});

describe('checkpoint loading', () => {
  const files = (dir: string) => {
    const names = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
    return Object.fromEntries(names.map((n) => [n, new Uint8Array(readFileSync(fixture(dir, n)))]));
  };
  async function tensors(dir: string) {
    const f = await openSafetensors(bufferSource('m', files(dir)['model.safetensors']));
    const out = new Map<string, { dtype: DType; shape: number[]; data: Uint8Array }>();
    for (const [name, info] of f.tensors) {
      const data = new Uint8Array(info.byteLength);
      await f.source.read(info.offset, data);
      out.set(name, { dtype: info.dtype, shape: [...info.shape], data });
    }
    return out;
  }
  const ids = reference('tiny-phi-f32').cases[2].input_ids;

  test('generation_config.json eos_token_id is the stop token', async () => {
    const base = files('tiny-phi-f32');
    const a = await loadPhiFrom(
      memoryFiles('m', { ...base, 'generation_config.json': '{"eos_token_id": 123}' }),
      { backend: 'js' },
    );
    const b = await loadPhiFrom(
      memoryFiles('m', { ...base, 'generation_config.json': '{"eos_token_id": [7, 8]}' }),
      { backend: 'js' },
    );
    const c = await loadPhiFrom(memoryFiles('m', base), { backend: 'js' });
    expect([a.eosId, b.eosId, c.eosId, c.tokenizer!.eosId]).toEqual([123, 7, null, 50256]);
  });

  test('a U8 matrix in a file without phi-wasm quantization metadata is refused', async () => {
    const ts = await tensors('tiny-phi-f32');
    const fc1 = ts.get('model.layers.0.mlp.fc1.weight')!;
    ts.set('model.layers.0.mlp.fc1.weight', {
      dtype: 'U8',
      shape: [fc1.data.length],
      data: fc1.data,
    });
    const bytes = writeSafetensors([...ts].map(([name, v]) => ({ name, ...v })));
    const m = memoryFiles('mem', { ...files('tiny-phi-f32'), 'model.safetensors': bytes });
    await expect(loadPhiFrom(m, { backend: 'js' })).rejects.toThrow(
      /tensor "model\.layers\.0\.mlp\.fc1\.weight" is U8, but the file's metadata names no phi-wasm quantization/,
    );
  });

  test('missing tensor', async () => {
    const ts = await tensors('tiny-phi-f32');
    ts.delete('model.layers.1.mlp.fc2.bias');
    const bytes = writeSafetensors([...ts].map(([name, v]) => ({ name, ...v })));
    const m = memoryFiles('mem', { ...files('tiny-phi-f32'), 'model.safetensors': bytes });
    await expect(loadPhiFrom(m, NODE)).rejects.toThrow(
      /mem: missing tensor "model\.layers\.1\.mlp\.fc2\.bias"/,
    );
  });
  test('wrong tensor shape', async () => {
    const ts = await tensors('tiny-phi-f32');
    const fc1 = ts.get('model.layers.0.mlp.fc1.weight')!;
    ts.set('model.layers.0.mlp.fc1.weight', { ...fc1, shape: [128, 128] });
    const bytes = writeSafetensors([...ts].map(([name, v]) => ({ name, ...v })));
    const m = memoryFiles('mem', { ...files('tiny-phi-f32'), 'model.safetensors': bytes });
    await expect(loadPhiFrom(m, NODE)).rejects.toThrow(
      /tensor "model\.layers\.0\.mlp\.fc1\.weight" has shape \[128, 128\], expected \[256, 64\]/,
    );
  });
  test('config that disagrees with the weights', async () => {
    const cfg = JSON.parse(readFileSync(fixture('tiny-phi-f32', 'config.json'), 'utf8'));
    const m = memoryFiles('mem', {
      ...files('tiny-phi-f32'),
      'config.json': JSON.stringify({ ...cfg, intermediate_size: 512 }),
    });
    await expect(loadPhiFrom(m, NODE)).rejects.toThrow(
      /fc1\.weight" has shape \[256, 64\], expected \[512, 64\]/,
    );
  });
  test('the first phi-1_5 revision (layers.N.mixer.Wqkv ...) loads to identical logits', async () => {
    const ts = await tensors('tiny-phi-f32');
    const L = 2;
    const renamed: { name: string; dtype: DType; shape: number[]; data: Uint8Array }[] = [];
    const put = (name: string, from: string) => renamed.push({ name, ...ts.get(from)! });
    put('layers.0.wte.weight', 'model.embed_tokens.weight');
    for (let l = 0; l < L; l++) {
      const p = `model.layers.${l}`;
      const o = `layers.${l + 1}`;
      for (const s of ['weight', 'bias']) {
        put(`${o}.ln.${s}`, `${p}.input_layernorm.${s}`);
        put(`${o}.mixer.out_proj.${s}`, `${p}.self_attn.dense.${s}`);
        put(`${o}.mlp.fc1.${s}`, `${p}.mlp.fc1.${s}`);
        put(`${o}.mlp.fc2.${s}`, `${p}.mlp.fc2.${s}`);
        const parts = ['q_proj', 'k_proj', 'v_proj'].map((q) =>
          ts.get(`${p}.self_attn.${q}.${s}`)!,
        );
        const data = new Uint8Array(parts.reduce((n, x) => n + x.data.length, 0));
        parts.reduce((off, x) => (data.set(x.data, off), off + x.data.length), 0);
        const shape = [parts[0].shape[0] * 3, ...parts[0].shape.slice(1)];
        renamed.push({ name: `${o}.mixer.Wqkv.${s}`, dtype: parts[0].dtype, shape, data });
        put(`layers.${L + 1}.ln.${s}`, `model.final_layernorm.${s}`);
        put(`layers.${L + 1}.linear.${s}`, `lm_head.${s}`);
      }
    }
    const uniq = [...new Map(renamed.map((r) => [r.name, r])).values()];
    const m = memoryFiles('old', {
      ...files('tiny-phi-f32'),
      'model.safetensors': writeSafetensors(uniq),
    });
    const [oldPhi, newPhi] = [await loadPhiFrom(m, NODE), await loadPhi(fixture('tiny-phi-f32'))];
    expect(maxAbsDiff(oldPhi.logits(ids), newPhi.logits(ids))).toBe(0);
  });
  test('a sharded checkpoint (model.safetensors.index.json) loads to identical logits', async () => {
    const ts = [...(await tensors('tiny-phi-f16'))].map(([name, v]) => ({ name, ...v }));
    const a = ts.filter((x) => x.name < 'model.layers.1');
    const b = ts.filter((x) => x.name >= 'model.layers.1');
    const weight_map = Object.fromEntries([
      ...a.map((x) => [x.name, 'model-00001-of-00002.safetensors']),
      ...b.map((x) => [x.name, 'model-00002-of-00002.safetensors']),
    ]);
    const { ['model.safetensors']: _, ...rest } = files('tiny-phi-f16');
    const m = memoryFiles('sharded', {
      ...rest,
      'model.safetensors.index.json': JSON.stringify({ metadata: {}, weight_map }),
      'model-00001-of-00002.safetensors': writeSafetensors(a),
      'model-00002-of-00002.safetensors': writeSafetensors(b),
    });
    const [sharded, single] = [await loadPhiFrom(m, NODE), await loadPhi(fixture('tiny-phi-f16'))];
    expect(maxAbsDiff(sharded.logits(ids), single.logits(ids))).toBe(0);
  });
  test('f16 weights stay f16 in memory; f32 -> f16 and f16 -> f32 conversions on load', async () => {
    const f16 = await loadPhi(fixture('tiny-phi-f16'));
    expect(f16.model.weights.layers[0].fc1.weight.dtype).toBe('f16');
    expect(f16.model.weights.layers[0].fc1.weight.data).toBeInstanceOf(Uint16Array);
    const widened = await loadPhi(fixture('tiny-phi-f16'), { dtype: 'f32' });
    expect(widened.model.weights.layers[0].fc1.weight.dtype).toBe('f32');
    expect(maxAbsDiff(widened.logits(ids), f16.logits(ids))).toBeLessThan(1e-5);
    // f32 checkpoint rounded to f16: close to the f32 reference at f16 precision
    const c = reference('tiny-phi-f32').cases[2];
    const halved = await loadPhi(fixture('tiny-phi-f32'), { dtype: 'f16' });
    expect(
      maxAbsDiff(halved.logits(c.input_ids), c.logits_last) / c.max_abs_logit_all_positions,
    ).toBeLessThan(5e-3);
  });
  test('BF16 checkpoints load (widened to f32)', async () => {
    // bf16 = top 16 bits of f32: build one from the f32 fixture, truncating
    const ts = [...(await tensors('tiny-phi-f32'))].map(([name, v]) => {
      const f = new Uint32Array(
        v.data.buffer.slice(v.data.byteOffset, v.data.byteOffset + v.data.length),
      );
      const b = Uint16Array.from(f, (x) => x >>> 16);
      return { name, dtype: 'BF16' as DType, shape: v.shape, data: new Uint8Array(b.buffer) };
    });
    const m = memoryFiles('bf16', {
      ...files('tiny-phi-f32'),
      'model.safetensors': writeSafetensors(ts),
    });
    const phi = await loadPhiFrom(m, NODE);
    expect(phi.model.weights.lm_head.weight.dtype).toBe('f32');
    const c = reference('tiny-phi-f32').cases[2];
    expect(
      maxAbsDiff(phi.logits(c.input_ids), c.logits_last) / c.max_abs_logit_all_positions,
    ).toBeLessThan(5e-2);
  });
});

describe('f16 conversion', () => {
  test('every f16 bit pattern survives f16 -> f32 -> f16 (subnormals included)', () => {
    for (let h = 0; h < 65536; h++) {
      const v = f16ToF32(h);
      if (Number.isNaN(v)) continue;
      if (f32ToF16(v) !== h)
        throw new Error(`0x${h.toString(16)} -> ${v} -> 0x${f32ToF16(v).toString(16)}`);
    }
  });
  test('known values', () => {
    expect([f16ToF32(0x3c00), f16ToF32(0xc000), f16ToF32(0x0001), f16ToF32(0x7bff)]).toEqual([
      1,
      -2,
      2 ** -24,
      65504,
    ]);
    expect(f32ToF16(1 + 2 ** -11)).toBe(0x3c00); // tie rounds to even
    expect(f32ToF16(1e6)).toBe(0x7c00); // overflow to inf
  });
});
