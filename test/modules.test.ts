// Each model module against the reference's layer-0 intermediates (tiny-phi-f32, rand_len7):
// the llm.c check_tensor idea, one concept at a time, so a failure points at the module.
import { createRefKernels } from '../src/kernels/ref/index.js';
import { attention } from '../src/model/attention.js';
import { block } from '../src/model/block.js';
import { embedding } from '../src/model/embedding.js';
import { layernorm } from '../src/model/layernorm.js';
import { mlp } from '../src/model/mlp.js';
import { loadPhi } from '../src/node/index.js';
import type { Phi } from '../src/engine.js';
import { fixture, maxAbsDiff, reference } from './helpers.js';

interface Debug {
  input_ids: number[];
  tensors: Record<string, { shape: number[]; data: unknown[] }>;
}
const debug = reference('tiny-phi-f32').debug_layer0 as unknown as Debug;
const ref = (name: string) => (debug.tensors[name].data as unknown[]).flat(Infinity) as number[];

describe('layer 0 of tiny-phi-f32 step by step', () => {
  let phi: Phi;
  beforeAll(async () => {
    phi = await loadPhi(fixture('tiny-phi-f32'));
  });

  test('embedding, layernorm, attention (rotary, probs, heads, dense), mlp, residual', () => {
    const kernels = createRefKernels();
    const cfg = phi.config;
    const { hiddenSize: D, numHeads: H, intermediateSize: F } = cfg;
    const w = phi.model.weights;
    const s = phi.model.state;
    const ids = debug.input_ids;
    const T = ids.length;
    const check = (name: string, got: ArrayLike<number>, tol = 1e-5) => {
      const want = ref(name);
      const err = maxAbsDiff(Array.from(got).slice(0, want.length), want);
      // as llm.c's check_tensor: a failure shows the measured error beside the bound
      const shownErr = `max |diff| ${err.toExponential(2)}, bound ${tol}`;
      expect([name, shownErr, err <= tol]).toEqual([name, shownErr, true]);
    };

    embedding(s.x, w.embed_tokens, ids, D);
    check('embed', s.x.subarray(0, T * D), 1e-9);
    layernorm(s.xNorm, s.x, w.layers[0].input_layernorm, T, D, cfg.layerNormEps, kernels);
    check('ln_out', s.xNorm.subarray(0, T * D));

    const rows = [{ cache: phi.model.newCache(), pos0: 0, row0: 0, T }];
    s.probeLayer = 0; // attention records its probabilities: (H, T, T)
    attention(s, w.layers[0], 0, T, rows, cfg, kernels);
    s.probeLayer = -1;
    check('attn_probs', s.attnProbs.subarray(0, H * T * T));
    check('q_rot', s.q.subarray(0, T * D));
    check('k_rot', s.k.subarray(0, T * D));
    check('v', s.v.subarray(0, T * D));
    check('attn_out_pre_dense', s.attnHeads.subarray(0, T * D));
    check('attn_out', s.attnOut.subarray(0, T * D));

    const fc1 = new Float32Array(T * F);
    kernels.matmul(fc1, s.xNorm, w.layers[0].fc1.weight, w.layers[0].fc1.bias, T, D, F);
    check('mlp_fc1_pre_act', fc1);
    mlp(s, w.layers[0], 0, T, rows, cfg, kernels);
    check('mlp_out', s.mlpOut.subarray(0, T * D));

    // the whole block from the embedding, then layer 1, against the residual after each layer
    embedding(s.x, w.embed_tokens, ids, D);
    const residual: number[] = [];
    for (let l = 0; l < cfg.numLayers; l++) {
      block(s, w.layers[l], l, T, [{ ...rows[0], cache: phi.model.newCache() }], cfg, kernels);
      residual.push(...s.x.subarray(0, T * D));
    }
    check('residual_after_layer', residual);
    layernorm(s.xNorm, s.x, w.final_layernorm, T, D, cfg.layerNormEps, kernels);
    check('final_ln_out', s.xNorm.subarray(0, T * D));
  });
});

describe('inspect (the demo view for learners)', () => {
  test('attention probabilities of every layer-0 head match the reference; logits match forward', async () => {
    const { inspect } = await import('../src/inspect.js');
    for (const backend of ['js', 'wasm'] as const) {
      const phi = await loadPhi(fixture('tiny-phi-f32'), { backend, threads: 1 });
      const ids = debug.input_ids;
      const T = ids.length;
      const want = ref('attn_probs'); // (H, T, T)
      for (let h = 0; h < phi.config.numHeads; h++) {
        const got = inspect(phi, ids, 0, h);
        expect(maxAbsDiff(got.attention, want.slice(h * T * T, (h + 1) * T * T))).toBeLessThan(
          1e-5,
        );
      }
      const last = inspect(phi, ids, 1, 2).logits;
      expect(maxAbsDiff(last, phi.logits(ids))).toBeLessThan(1e-5);
      phi.close();
    }
  });
});
