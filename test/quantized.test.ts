// Quantized models (--dtype q8 / q4) against the float64 reference: accuracy thresholds per
// dtype, measured over every position of every reference sequence, on both backends.
import { loadPhi } from '../src/node/index.js';
import { argmax } from '../src/sample.js';
import { CHECKPOINTS, fixture, reference } from './helpers.js';

// Thresholds, with what was measured when they were set (README, "Quantized weights"):
//   q8: top-1 agreement 96.6-97.3%, max rel. error 1.1e-2..2.1e-2, mean 1.7e-3..2.6e-3
//   q4: top-1 agreement 64-72%,     max rel. error 0.17..0.19,     mean 2.1e-2..2.8e-2
// (random-weight checkpoints have many near-ties, so top-1 agreement is a harsh measure here)
// a module binding: a global looked up in this loop of V = 51200 is slow in jest's vm context
const abs = Math.abs;

const LIMITS = {
  q8: { top1: 0.93, maxRel: 4e-2, meanRel: 5e-3 },
  q4: { top1: 0.55, maxRel: 0.3, meanRel: 4e-2 },
} as const;

describe.each(['q8', 'q4'] as const)('%s', (dtype) => {
  // every checkpoint on wasm; the js twin on one (it runs the same quantized arithmetic, and
  // the kernel twin tests hold the two backends to each other)
  test.each([...CHECKPOINTS.map((c) => [c, 'wasm'] as const), ['tiny-phi-f16', 'js'] as const])(
    '%s on the %s backend stays within the limits',
    async (name, backend) => {
      const phi = await loadPhi(fixture(name), { dtype, backend, threads: 2 });
      const V = phi.config.vocabSize;
      let agree = 0;
      let positions = 0;
      let maxRel = 0;
      let sumRel = 0;
      let n = 0;
      for (const c of reference(name).cases) {
        const all = phi.logits(c.input_ids, true);
        for (let t = 0; t < c.length; t++) {
          agree += argmax(all.subarray(t * V, (t + 1) * V)) === c.argmax[t] ? 1 : 0;
          positions++;
        }
        const rows: [number, number[]][] = [
          [0, c.logits_first],
          [c.length - 1, c.logits_last],
        ];
        for (const [t, want] of rows) {
          for (let i = 0; i < V; i++) {
            const e = abs(all[t * V + i] - want[i]) / c.max_abs_logit_all_positions;
            if (e > maxRel) maxRel = e;
            sumRel += e;
            n++;
          }
        }
      }
      phi.close();
      const got = { top1: agree / positions, maxRel, meanRel: sumRel / n };
      const lim = LIMITS[dtype];
      expect(got.top1).toBeGreaterThanOrEqual(lim.top1);
      expect(got.maxRel).toBeLessThanOrEqual(lim.maxRel);
      expect(got.meanRel).toBeLessThanOrEqual(lim.meanRel);
      // and they are quantized: far from the f32 result, i.e. the test can tell
      expect(got.meanRel).toBeGreaterThan(1e-5);
    },
  );

  test('linear weights are quantized, the embedding keeps its dtype, memory shrinks', async () => {
    const phi = await loadPhi(fixture('tiny-phi-f16'), { dtype });
    const w = phi.model.weights;
    expect(w.layers[0].fc1.weight.dtype).toBe(dtype);
    expect(w.lm_head.weight.dtype).toBe(dtype);
    expect(w.embed_tokens.dtype).toBe('f16');
    const bytes = w.layers[0].fc1.weight.data.byteLength;
    // a row of 64 weights is one record: 4 scales and 4 blocks of values, 2 of them padding
    expect(bytes).toBe(256 * (4 * 4 + 4 * (dtype === 'q8' ? 32 : 16)));
    phi.close();
  });
});

describe('phi quantize: saved quantized models load without re-quantizing', () => {
  test.each(['q8', 'q4'] as const)('%s: the saved file gives identical logits', async (dtype) => {
    const { mkdtempSync, readFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    const { spawnSync } = await import('node:child_process');
    const { ROOT } = await import('./helpers.js');
    const out = mkdtempSync(path.join(tmpdir(), 'phi-q-'));
    const r = spawnSync(
      process.execPath,
      [
        path.join(ROOT, 'bin', 'phi.js'),
        'quantize',
        '--model',
        fixture('tiny-phi-f16'),
        '--dtype',
        dtype,
        '--out',
        out,
      ],
      { encoding: 'utf8' },
    );
    expect(r.stderr).toMatch(
      new RegExp(
        `wrote model\\.safetensors, config\\.json, generation_config\\.json, tokenizer\\.json, tokenizer_config\\.json to .* \\(${dtype}\\)`,
      ),
    );
    expect(r.status).toBe(0);
    const header = readFileSync(path.join(out, 'model.safetensors'));
    const json = JSON.parse(header.subarray(8, 8 + Number(header.readBigUInt64LE(0))).toString());
    expect(json.__metadata__['phi_wasm.quantization']).toBe(dtype);
    expect(json['model.layers.0.mlp.fc1.weight'].dtype).toBe('U8');
    expect(json['model.embed_tokens.weight'].dtype).toBe('F16');

    const ids = reference('tiny-phi-f16').cases[2].input_ids;
    for (const backend of ['js', 'wasm'] as const) {
      const saved = await loadPhi(out, { backend });
      const fresh = await loadPhi(fixture('tiny-phi-f16'), { backend, dtype });
      expect(saved.model.weights.layers[1].fc2.weight.dtype).toBe(dtype);
      expect(Array.from(saved.logits(ids))).toEqual(Array.from(fresh.logits(ids)));
      saved.close();
      fresh.close();
    }
    await expect(loadPhi(out, { dtype: dtype === 'q8' ? 'q4' : 'q8' })).rejects.toThrow(
      new RegExp(`is stored quantized as ${dtype}: load it with dtype ${dtype} \\(or auto\\)`),
    );
    expect(json.__metadata__['phi_wasm.quant_layout']).toBe('3');

    // a file of an earlier layout is refused, not read as garbage: same
    // header length, the layout key's value changed
    const { writeFileSync } = await import('node:fs');
    const bytes = readFileSync(path.join(out, 'model.safetensors'));
    const restored = Buffer.from(bytes);
    const len = Number(bytes.readBigUInt64LE(0));
    const text = bytes.subarray(8, 8 + len).toString();
    const patched = text.replace(',"phi_wasm.quant_layout":"3"', ',"phi_wasm.quant_layout":"2"');
    bytes.write(patched + ' '.repeat(len - patched.length), 8);
    writeFileSync(path.join(out, 'model.safetensors'), bytes);
    await expect(loadPhi(out)).rejects.toThrow(
      /is quantized in layout 2 \(phi_wasm\.quant_layout\); this phi-wasm reads layout 3: run phi quantize/,
    );

    // values outside the format are refused by name: a q8 value of -128 (the dot kernels move
    // signs by negation) and a scale that is not finite
    const fc1 = json['model.layers.1.mlp.fc1.weight'].data_offsets[0] + 8 + len;
    const corrupt = Buffer.from(restored);
    if (dtype === 'q8') {
      corrupt[fc1 + 144 + 16 + 5] = 0x80; // record 1, a value byte
      writeFileSync(path.join(out, 'model.safetensors'), corrupt);
      await expect(loadPhi(out)).rejects.toThrow(
        /tensor "model\.layers\.1\.mlp\.fc1\.weight" \(q8\) is corrupt: record 1: a value of -128 \(q8 values are -127\.\.127\)/,
      );
    }
    const nan = Buffer.from(restored);
    nan.writeFloatLE(NaN, fc1 + 8); // record 0, scale 2
    writeFileSync(path.join(out, 'model.safetensors'), nan);
    await expect(loadPhi(out)).rejects.toThrow(
      new RegExp(`fc1\\.weight" \\(${dtype}\\) is corrupt: record 0: block scale 2 is NaN`),
    );
    writeFileSync(path.join(out, 'model.safetensors'), restored);
    expect((await loadPhi(out)).model.weights.layers[1].fc1.weight.dtype).toBe(dtype);
  });
});
