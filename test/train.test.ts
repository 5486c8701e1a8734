// Training (src/train/): the loss and LoRA gradients of a sequence against transformers +
// PEFT in float64 (test/fixtures/lora/tiny-phi-f32-r4: `gradients`, grads.safetensors), 12
// AdamW steps against torch.optim.AdamW (`adamw`), and central differences in f64 through the
// TypeScript twins: on random coordinates of every kind of parameter, and on the inputs of
// each backward op.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { createRefKernels } from '../src/kernels/ref/index.js';
import type { Kernels, Weight } from '../src/kernels/types.js';
import { PhiForCausalLM } from '../src/model/causal_lm.js';
import type { PhiConfig } from '../src/model/config.js';
import { LORA_MODULES } from '../src/model/lora.js';
import type { Linear, PhiWeights } from '../src/model/weights.js';
import { loadPhi, type Phi } from '../src/node/index.js';
import { memoryFiles } from '../src/io/source.js';
import { readAdapter } from '../src/weights/adapter.js';
import { decodeRow, blocksOf, allocQuantized, quantizeRows } from '../src/formats/quant.js';
import { AdamW, clipGradNorm } from '../src/train/adamw.js';
import { toHeads } from '../src/train/attention.js';
import { attention_backward } from '../src/kernels/ref/attention.js';
import type { Dropout } from '../src/train/block.js';
import { CausalLMTrainer, shifted } from '../src/train/causal_lm.js';
import { crossEntropy, NO_TARGET } from '../src/train/cross_entropy.js';
import { geluBackward } from '../src/train/gelu.js';
import { layernormBackward } from '../src/train/layernorm.js';
import { FrozenInputGrad, loraBackward, loraForward, type TrainTerm } from '../src/train/linear.js';
import { LoraParams } from '../src/train/lora_params.js';
import { Rng } from '../src/train/rng.js';
import { choosePlan, planTraining, type TrainShape } from '../src/train/plan.js';
import { PHI_1_5 } from '../src/model/config.js';
import { learningRate } from '../src/train/schedule.js';
import { fixture, NODE, xorshift } from './helpers.js';
import { createWasmKernels } from '../src/kernels/wasm/index.js';

const BASE = fixture('tiny-phi-f32');
const ADAPTER = fixture('lora', 'tiny-phi-f32-r4');
const REF = JSON.parse(readFileSync(path.join(ADAPTER, 'lora_reference.json'), 'utf8')) as {
  gradients: { train_ids: number[]; loss_value: number };
  adamw: {
    lr: number;
    betas: [number, number];
    eps: number;
    weight_decay: number;
    steps: number;
    losses: number[];
  };
};
const PATHS: Record<string, string> = {
  q_proj: 'self_attn.q_proj',
  k_proj: 'self_attn.k_proj',
  v_proj: 'self_attn.v_proj',
  dense: 'self_attn.dense',
  fc1: 'mlp.fc1',
  fc2: 'mlp.fc2',
};

/** grads.safetensors (F32), read by hand. */
function readGrads(): Map<string, Float32Array> {
  const buf = readFileSync(path.join(ADAPTER, 'grads.safetensors'));
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const out = new Map<string, Float32Array>();
  for (const [name, t] of Object.entries(header) as [string, { data_offsets: number[] }][]) {
    if (name === '__metadata__') continue;
    const b = buf.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]);
    out.set(name, new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length)));
  }
  return out;
}

const adapterFiles = () =>
  memoryFiles(ADAPTER, {
    'adapter_config.json': readFileSync(path.join(ADAPTER, 'adapter_config.json'), 'utf8'),
    'adapter_model.safetensors': new Uint8Array(
      readFileSync(path.join(ADAPTER, 'adapter_model.safetensors')),
    ),
  });

/** The fixture's adapter as trainable parameters on this model's kernels. */
async function fixtureParams(model: PhiForCausalLM): Promise<LoraParams> {
  return LoraParams.from(await readAdapter(adapterFiles(), model.config), model.kernels);
}

/** max |a - b| / max |b| */
function rel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let err = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return err / scale;
}

/** B (out, r) from a term's Bᵀ. */
function bOf(t: TrainTerm): Float64Array {
  const B = new Float64Array(t.d * t.r);
  for (let o = 0; o < t.d; o++) for (let k = 0; k < t.r; k++) B[o * t.r + k] = t.dBt[k * t.d + o];
  return B;
}

/** The worst relative error of every dA, dB against grads.safetensors. */
function worstAgainstReference(params: LoraParams): number {
  const grads = readGrads();
  let worst = 0;
  for (const t of params.terms) {
    const key = `base_model.model.model.layers.${t.layer}.${PATHS[t.module]}`;
    worst = Math.max(
      worst,
      rel(t.dA, grads.get(`${key}.lora_A.weight`)!),
      rel(bOf(t), grads.get(`${key}.lora_B.weight`)!),
    );
  }
  return worst;
}

const SEQ = shifted(REF.gradients.train_ids);

describe('LoRA gradients against transformers + PEFT (float64)', () => {
  const phis: Phi[] = [];
  afterAll(() => phis.forEach((p) => p.close()));

  test.each(['js', 'wasm'] as const)('%s: the loss and every dA, dB', async (backend) => {
    const phi = await loadPhi(BASE, { backend });
    phis.push(phi);
    const params = await fixtureParams(phi.model);
    const trainer = new CausalLMTrainer(phi.model, params, 40, false);
    const N = SEQ.input.length;
    const loss = trainer.run(SEQ.input, SEQ.targets, N, true) / N;
    expect(Math.abs(loss - REF.gradients.loss_value) / REF.gradients.loss_value).toBeLessThan(1e-6);
    const worst = worstAgainstReference(params);
    expect(worst).toBeLessThan(1e-4); // measured: 2e-7 (js), 5e-6 (wasm)
    // a second pass after zeroGrad gives the same gradients (nothing left over in the buffers)
    const first = params.terms.map((t) => Float32Array.from(t.dA));
    params.zeroGrad();
    trainer.run(SEQ.input, SEQ.targets, N, true);
    params.terms.forEach((t, i) => expect(t.dA).toEqual(first[i]));
  });

  test.each(['js', 'wasm'] as const)(
    '%s: AdamW steps follow torch.optim.AdamW (js 6, wasm 12)',
    async (backend) => {
      const phi = await loadPhi(BASE, { backend });
      phis.push(phi);
      const params = await fixtureParams(phi.model);
      const trainer = new CausalLMTrainer(phi.model, params, 40, false);
      const a = REF.adamw;
      const opt = new AdamW(params.tensors(), {
        beta1: a.betas[0],
        beta2: a.betas[1],
        eps: a.eps,
        weightDecay: a.weight_decay,
      });
      const N = SEQ.input.length;
      // js: the first 6 steps (the bound the reference sets); wasm: all 12
      for (let s = 0; s < (backend === 'js' ? 6 : a.steps); s++) {
        params.zeroGrad();
        const loss = trainer.run(SEQ.input, SEQ.targets, N, true) / N;
        const err = Math.abs(loss - a.losses[s]) / a.losses[s];
        expect(err).toBeLessThan(s < 6 ? 1e-4 : 1e-3); // measured: about 1e-9 throughout
        opt.step(a.lr);
      }
      expect(opt.state.step).toBe(backend === 'js' ? 6 : 12);
    },
  );

  test('the same gradients on 1 and 3 threads', async () => {
    const grads: Float32Array[][] = [];
    for (const threads of [1, 3]) {
      const phi = await loadPhi(BASE, { backend: 'wasm', threads });
      try {
        const params = await fixtureParams(phi.model);
        new CausalLMTrainer(phi.model, params, 40, false).run(SEQ.input, SEQ.targets, 32, true);
        grads.push(
          params.terms.flatMap((t) => [Float32Array.from(t.dA), Float32Array.from(t.dBt)]),
        );
      } finally {
        phi.close();
      }
    }
    grads[1].forEach((g, i) => expect(g).toEqual(grads[0][i]));
  });

  // f16: the forward multiplies by the f16 values exactly, so the gradient is that of the
  // widened model. q8 and q4 also quantize the activations on the way in (the int8 dot), a
  // rounding the backward passes straight through: the gradients differ by that rounding's
  // effect (measured about 1e-2), while dy·W itself is exact (the next describe).
  test.each([
    ['f16', 1e-4],
    ['q8', 5e-2],
    ['q4', 5e-2],
  ] as const)('a %s base: the gradient of the model it holds, within %f', async (dtype, tol) => {
    const phi = await loadPhi(BASE, { backend: 'wasm', dtype });
    phis.push(phi);
    const params = await fixtureParams(phi.model);
    new CausalLMTrainer(phi.model, params, 40, false).run(SEQ.input, SEQ.targets, 32, true);
    const k = phi.model.kernels;
    const wide = new PhiForCausalLM(phi.config, widened(phi.model.weights, phi.config, k), k, {
      maxPositions: 64,
    });
    const ref = await fixtureParams(wide);
    new CausalLMTrainer(wide, ref, 40, false).run(SEQ.input, SEQ.targets, 32, true);
    params.terms.forEach((t, i) => {
      expect(rel(t.dA, ref.terms[i].dA)).toBeLessThan(tol);
      expect(rel(t.dBt, ref.terms[i].dBt)).toBeLessThan(tol);
    });
  });
});

describe('kept activations against gradient checkpointing', () => {
  const dropout = (p: number): Dropout => ({
    p,
    stream: (layer, m) => new Rng(7, layer, LORA_MODULES.indexOf(m)),
  });

  test.each(['js', 'wasm'] as const)(
    '%s: the same loss and gradients bit for bit, with dropout and without',
    async (backend) => {
      const phi = await loadPhi(BASE, { backend, threads: 2 });
      try {
        let noDropout = NaN;
        for (const p of [0, 0.3]) {
          const runs: { loss: number[]; grads: Float32Array[] }[] = [];
          for (const mode of ['off', 'on'] as const) {
            const params = await fixtureParams(phi.model);
            const trainer = new CausalLMTrainer(phi.model, params, 40, p > 0, mode);
            expect(trainer.plan.keep).toBe(mode === 'off');
            // two steps: the second starts from buffers the first left behind
            const loss = [0, 1].map(() => {
              params.zeroGrad();
              return trainer.run(SEQ.input, SEQ.targets, 32, true, dropout(p));
            });
            runs.push({
              loss,
              grads: params.terms.flatMap((t) => [
                Float32Array.from(t.dA),
                Float32Array.from(t.dBt),
              ]),
            });
          }
          expect(runs[0].loss).toEqual(runs[1].loss);
          expect(runs[0].loss[0]).toBe(runs[0].loss[1]);
          runs[1].grads.forEach((g, i) => expect(g).toEqual(runs[0].grads[i]));
          // dropout changed the loss (the masks really are applied on both paths)
          if (p > 0) expect(runs[0].loss[0]).not.toBe(noDropout);
          else noDropout = runs[0].loss[0];
        }
      } finally {
        phi.close();
      }
    },
  );

  test('the plan is what the trainer allocates, kept or checkpointed', async () => {
    const phi = await loadPhi(BASE, { backend: 'wasm', threads: 2 });
    try {
      const k = phi.model.kernels;
      for (const [mode, p] of [
        ['off', 0],
        ['on', 0.1],
      ] as const) {
        const before = k.freeBytes!;
        const params = await fixtureParams(phi.model);
        const trainer = new CausalLMTrainer(phi.model, params, 40, p > 0, mode);
        expect(before - k.freeBytes!).toBe(trainer.plan.total);
        expect(trainer.plan.keep).toBe(mode === 'off');
      }
    } finally {
      phi.close();
    }
  });

  const PHI: TrainShape = {
    maxT: 256,
    terms: Array.from({ length: 24 }, () => [
      ...Array.from({ length: 4 }, () => ({ n: 2048, d: 2048, r: 8 })),
      { n: 2048, d: 8192, r: 8 },
      { n: 8192, d: 2048, r: 8 },
    ]).flat(),
    dropout: false,
    dtypes: ['f16'],
  };

  test("phi-1.5 at 256 tokens: keeping costs the blocks' activations, and is chosen when it fits", () => {
    const kept = planTraining(PHI_1_5, PHI, true);
    const recomputed = planTraining(PHI_1_5, PHI, false);
    // per block: xNorm, q, k, v, heads (T, D) and fc1's output (T, F), the u's (T, r) each
    const perBlock = 4 * 256 * (5 * 2048 + 8192 + 6 * 8);
    expect(kept.total - recomputed.total).toBeGreaterThanOrEqual(23 * perBlock);
    expect(kept.total - recomputed.total).toBeLessThan(23 * perBlock + 24 * 7 * 64);
    expect(choosePlan(PHI_1_5, PHI, 'auto', undefined).keep).toBe(true);
    expect(choosePlan(PHI_1_5, PHI, 'auto', kept.total + (64 << 20)).keep).toBe(true);
    expect(choosePlan(PHI_1_5, PHI, 'auto', recomputed.total + (64 << 20)).keep).toBe(false);
    expect(choosePlan(PHI_1_5, PHI, 'on', undefined).keep).toBe(false);
  });

  test('what does not fit is refused, naming what would', () => {
    const recomputed = planTraining(PHI_1_5, PHI, false);
    expect(() => choosePlan(PHI_1_5, PHI, 'off', recomputed.total + (64 << 20))).toThrow(
      /training on sequences of 256 tokens \(every block's activations kept\) needs .* of wasm memory .*with gradient checkpointing it needs .*; sequences of \d+ tokens fit/,
    );
    expect(() => choosePlan(PHI_1_5, PHI, 'auto', 100 << 20)).toThrow(
      /with gradient checkpointing\) needs .* but 100.0 MiB is left after the model: .*q8 or q4 base/,
    );
  });
});

/** A weight's values as f32 (n inputs a row, d rows). */
function widen(w: Weight, d: number, n: number, k: Kernels): Weight {
  const out = k.allocF32(d * n);
  if (w.dtype === 'f32') out.set(w.data);
  else if (w.dtype === 'f16') {
    const s = 2 ** (w.log2Scale ?? 0);
    for (let i = 0; i < d * n; i++) out[i] = f16(w.data[i]) * s;
  } else {
    const q = new Int32Array(n);
    const sc = new Float64Array(blocksOf(n) + 4);
    for (let o = 0; o < d; o++) {
      decodeRow(w, n, o, q, sc);
      for (let i = 0; i < n; i++) out[o * n + i] = q[i] * sc[i >> 5];
    }
  }
  return { dtype: 'f32', data: out };
}

/** IEEE half to a number. */
function f16(h: number): number {
  const e = (h >> 10) & 31;
  const m = h & 1023;
  const v =
    e === 0 ? m * 2 ** -24 : e === 31 ? (m ? NaN : Infinity) : (1 + m / 1024) * 2 ** (e - 15);
  return h & 0x8000 ? -v : v;
}

function widened(w: PhiWeights, cfg: PhiConfig, k: Kernels): PhiWeights {
  const { hiddenSize: D, intermediateSize: F } = cfg;
  const lin = (l: Linear, d: number, n: number): Linear => ({
    weight: widen(l.weight, d, n, k),
    bias: l.bias,
  });
  return {
    embed_tokens: w.embed_tokens,
    final_layernorm: w.final_layernorm,
    lm_head: w.lm_head,
    layers: w.layers.map((l) => ({
      input_layernorm: l.input_layernorm,
      q_proj: lin(l.q_proj, D, D),
      k_proj: lin(l.k_proj, D, D),
      v_proj: lin(l.v_proj, D, D),
      dense: lin(l.dense, D, D),
      fc1: lin(l.fc1, F, D),
      fc2: lin(l.fc2, D, F),
    })),
  };
}

/** The TypeScript kernels computing in f64: every buffer they hand out is a Float64Array. */
function f64Kernels(): Kernels {
  return {
    ...createRefKernels(),
    allocF32: (n: number) => new Float64Array(n) as unknown as Float32Array,
  };
}

describe('central differences in f64 through the TypeScript twins', () => {
  test('every kind of parameter: A and B of each of the six modules, in both layers, with and without dropout', async () => {
    const phi = await loadPhi(BASE, { backend: 'js' });
    try {
      const k = f64Kernels();
      const model = new PhiForCausalLM(phi.config, phi.model.weights, k, { maxPositions: 64 });
      const params = await fixtureParams(model);
      const ids = SEQ.input.slice(0, 8);
      const targets = SEQ.targets.slice(0, 8);
      targets[3] = NO_TARGET; // a position without loss
      for (const p of [0, 0.3]) {
        const dropout: Dropout | null = p
          ? { p, stream: (l, m) => new Rng(5, l, LORA_MODULES.indexOf(m)) }
          : null;
        const trainer = new CausalLMTrainer(model, params, 8, p > 0);
        params.zeroGrad();
        trainer.run(ids, targets, 7, true, dropout);
        const loss = () => trainer.run(ids, targets, 7, false, dropout) / 7;
        const rand = xorshift(3);
        for (const t of params.terms)
          for (const [name, value, grad] of [
            ['A', t.A, t.dA],
            ['Bt', t.Bt, t.dBt],
          ] as const)
            for (let c = 0; c < 1; c++) {
              const i = Math.floor(rand() * value.length);
              const h = 1e-4; // the loss is about 10: smaller steps drown in its rounding
              const v = value[i];
              value[i] = v + h;
              const up = loss();
              value[i] = v - h;
              const down = loss();
              value[i] = v;
              const fd = (up - down) / (2 * h);
              const scale = Math.max(...Array.from(grad, Math.abs));
              expect({
                at: `${t.layer}.${t.module}.${name}[${i}] p=${p}`,
                err: Math.abs(fd - grad[i]) / scale < 1e-6 || [fd, grad[i], scale],
              }).toEqual({ at: `${t.layer}.${t.module}.${name}[${i}] p=${p}`, err: true });
            }
      }
    } finally {
      phi.close();
    }
  });

  // each op alone: a scalar loss Σ dy ⊙ op(x) for a random dy, its gradient by the backward,
  // checked by central differences of an f64 forward on a few inputs
  const checkOp = (
    x: Float64Array,
    forward: (x: Float64Array) => Float64Array,
    backward: (dy: Float64Array) => Float64Array,
    seed: number,
  ) => {
    const rand = xorshift(seed);
    const y0 = forward(x);
    const dy = Float64Array.from(y0, () => rand() - 0.5);
    const dx = backward(dy);
    const L = (xx: Float64Array) => forward(xx).reduce((s, v, i) => s + v * dy[i], 0);
    let scale = 1e-3; // a zero gradient (LayerNorm of one value; one key) is compared absolutely
    for (const v of dx) scale = Math.max(scale, Math.abs(v));
    for (let c = 0; c < Math.min(12, x.length); c++) {
      const i = Math.floor(rand() * x.length);
      const h = 1e-6;
      const v = x[i];
      x[i] = v + h;
      const up = L(x);
      x[i] = v - h;
      const down = L(x);
      x[i] = v;
      expect(Math.abs((up - down) / (2 * h) - dx[i]) / scale).toBeLessThan(1e-6);
    }
  };
  const f32 = (a: Float64Array) => a as unknown as Float32Array;
  const randomIn = (seed: number, n: number, s = 1) => {
    const r = xorshift(seed);
    return Float64Array.from({ length: n }, () => (r() - 0.5) * 2 * s);
  };

  test.each([
    [1, 1],
    [3, 5],
    [2, 67],
  ])('layernorm backward, T=%i D=%i', (T, D) => {
    const w = randomIn(1, D);
    const b = randomIn(2, D);
    const ref = createRefKernels();
    checkOp(
      randomIn(3, T * D, 2),
      (x) => {
        const out = new Float64Array(T * D);
        ref.layernorm(f32(out), f32(x), f32(w), f32(b), T, D, 1e-5);
        return out;
      },
      (dy) => {
        const dx = new Float64Array(T * D);
        layernormBackward(f32(dx), f32(dy), f32(randomIn(3, T * D, 2)), f32(w), T, D, 1e-5);
        return dx;
      },
      4,
    );
  });

  test.each([1, 7, 130])('gelu_new backward, %i values', (n) => {
    const x = randomIn(5, n, 4);
    checkOp(
      x,
      (xx) => {
        const out = Float64Array.from(xx);
        createRefKernels().gelu_new(f32(out), n);
        return out;
      },
      (dy) => {
        const dx = new Float64Array(n);
        geluBackward(f32(dx), f32(dy), f32(randomIn(5, n, 4)), n);
        return dx;
      },
      6,
    );
  });

  test.each([
    [1, 1, 3],
    [5, 2, 7],
    [9, 3, 4],
  ])('attention backward (q, k and v), T=%i H=%i Dh=%i', (T, H, Dh) => {
    const S = H * Dh;
    const scale = 1 / Math.sqrt(Dh);
    const ref = createRefKernels();
    const q0 = randomIn(7, T * S);
    const k0 = randomIn(8, T * S);
    const v0 = randomIn(9, T * S);
    const run = (q: Float64Array, k: Float64Array, v: Float64Array) => {
      const [kH, vH] = [new Float64Array(T * S), new Float64Array(T * S)];
      toHeads(f32(kH), f32(k), T, H, Dh);
      toHeads(f32(vH), f32(v), T, H, Dh);
      const out = new Float64Array(T * S);
      const probs = new Float64Array(H * T * T);
      ref.attention(f32(out), f32(q), f32(kH), f32(vH), T, 0, H, Dh, T, scale, f32(probs));
      return { out, kH, vH, probs };
    };
    const grads = (dy: Float64Array) => {
      const { kH, vH, probs } = run(q0, k0, v0);
      const [dq, dk, dv] = [0, 1, 2].map(() => new Float64Array(T * S));
      attention_backward(
        f32(dq),
        f32(dk),
        f32(dv),
        f32(dy),
        f32(q0),
        f32(kH),
        f32(vH),
        f32(probs),
        T,
        H,
        Dh,
        scale,
      );
      return { dq, dk, dv };
    };
    checkOp(
      q0,
      (q) => run(q, k0, v0).out,
      (dy) => grads(dy).dq,
      10,
    );
    checkOp(
      k0,
      (k) => run(q0, k, v0).out,
      (dy) => grads(dy).dk,
      11,
    );
    checkOp(
      v0,
      (v) => run(q0, k0, v).out,
      (dy) => grads(dy).dv,
      12,
    );
  });

  test.each([
    [1, 3],
    [4, 51],
  ])('cross-entropy, T=%i V=%i, one position without a target', (T, V) => {
    const targets = Array.from({ length: T }, (_, t) => (t === 1 ? NO_TARGET : (t * 7) % V));
    const logits = randomIn(13, T * V, 3);
    const dl = new Float64Array(T * V);
    crossEntropy(f32(dl), f32(logits), targets, T, V, T);
    const rand = xorshift(14);
    for (let c = 0; c < 8; c++) {
      const i = Math.floor(rand() * T * V);
      const h = 1e-6;
      const v = logits[i];
      logits[i] = v + h;
      const up = crossEntropy(null, f32(logits), targets, T, V, T) / T;
      logits[i] = v - h;
      const down = crossEntropy(null, f32(logits), targets, T, V, T) / T;
      logits[i] = v;
      expect(Math.abs((up - down) / (2 * h) - dl[i])).toBeLessThan(1e-8);
    }
  });

  test.each([
    [1, 1, 1, 1],
    [3, 5, 7, 2],
    [2, 67, 13, 4],
  ])('a LoRA term: dx, dA and dB, T=%i n=%i d=%i r=%i', (T, n, d, r) => {
    const k = f64Kernels();
    const term: TrainTerm = {
      layer: 0,
      module: 'fc1',
      r,
      scale: 1.7,
      n,
      d,
      A: f32(randomIn(15, r * n)),
      Bt: f32(randomIn(16, r * d)),
      dA: f32(new Float64Array(r * n)),
      dBt: f32(new Float64Array(r * d)),
    };
    const scratch = { uT: k.allocF32(T * r), du: k.allocF32(T * r), duT: k.allocF32(T * r) };
    const x0 = randomIn(17, T * n);
    const forward = (x: Float64Array) => {
      const y = new Float64Array(T * d);
      loraForward(f32(y), f32(x), k.allocF32(T * r), term, T, k);
      return y;
    };
    const backward = (dy: Float64Array) => {
      const u = k.allocF32(T * r);
      loraForward(k.allocF32(T * d), f32(x0), u, term, T, k);
      const dx = new Float64Array(T * n);
      term.dA.fill(0);
      term.dBt.fill(0);
      loraBackward(f32(dx), f32(dy), f32(x0), u, term, T, scratch, k);
      return dx;
    };
    checkOp(x0, forward, backward, 18);
    // dA and dB: the loss as a function of each
    for (const [name, p, g] of [
      ['A', term.A, term.dA],
      ['Bt', term.Bt, term.dBt],
    ] as const) {
      const pp = p as unknown as Float64Array;
      const copy = Float64Array.from(pp);
      checkOp(
        pp,
        () => forward(x0),
        (dy) => {
          backward(dy);
          return Float64Array.from(g);
        },
        19,
      );
      expect(name && Array.from(pp)).toEqual(Array.from(copy));
    }
  });
});

describe('dy·W through a frozen weight of each dtype', () => {
  // awkward sizes, and a scratch so small that W goes through in several chunks
  test.each([
    ['f32', 1, 1, 1],
    ['f16', 3, 5, 7],
    ['q8', 2, 67, 13],
    ['q4', 5, 33, 130],
  ] as const)('%s, T=%i n=%i d=%i, on js and wasm, in chunks', async (dtype, T, n, d) => {
    const rand = xorshift(21);
    const wasm = await createWasmKernels({ threads: 3, ...NODE.wasm });
    try {
      for (const k of [createRefKernels(), wasm]) {
        const values = Float32Array.from({ length: d * n }, () => rand() - 0.5);
        let w: Weight;
        if (dtype === 'f32') w = { dtype, data: k.allocF32(d * n) };
        else if (dtype === 'f16') w = { dtype, data: k.allocU16(d * n) };
        else w = allocQuantized(k, dtype, d, n);
        if (w.dtype === 'f32') w.data.set(values);
        else if (w.dtype === 'f16')
          values.forEach((v, i) => ((w.data as Uint16Array)[i] = toF16(v)));
        else quantizeRows(values, d, n, w, 0);
        const dense = widen(w, d, n, createRefKernels()).data as Float32Array;
        const dy = k.allocF32(T * d);
        dy.set(Float32Array.from({ length: T * d }, () => rand() - 0.5));
        for (const budget of [1, 1 << 22]) {
          const dx = k.allocF32(T * n);
          dx.fill(0.25);
          new FrozenInputGrad(k, { maxT: T, minN: n, maxN: n, dtypes: [w.dtype] }, budget).apply(
            dx,
            dy,
            w,
            T,
            n,
            d,
          );
          const want = new Float64Array(T * n).fill(0.25);
          for (let t = 0; t < T; t++)
            for (let o = 0; o < d; o++)
              for (let i = 0; i < n; i++) want[t * n + i] += dy[t * d + o] * dense[o * n + i];
          expect(rel(dx, want)).toBeLessThan(1e-6);
        }
      }
    } finally {
      wasm.close();
    }
  });
});

describe('transpose_rows: the wasm kernel against its twin, bit for bit', () => {
  // n over 2 records of 128 (q8/q4 split whole records over the threads), m odd, o0 > 0;
  // f32 and f16 past a tile of 64 columns with whole 4x4 / 8x8 blocks and ragged edges
  test.each([
    ['f32', 1, 0, 1],
    ['f16', 7, 3, 5],
    ['f32', 70, 3, 9],
    ['f16', 150, 2, 19],
    ['f16', 8, 0, 8],
    ['q8', 300, 2, 5],
    ['q4', 300, 1, 3],
    ['q4', 33, 0, 1],
    ['q8', 257, 1, 11],
    ['q4', 130, 0, 4],
  ] as const)('%s, n=%i rows [%i, +%i), on 3 threads', async (dtype, n, o0, m) => {
    const rand = xorshift(n + m);
    const rows = o0 + m + 2;
    const values = Float32Array.from({ length: rows * n }, () => rand() - 0.5);
    const wasm = await createWasmKernels({ threads: 3, ...NODE.wasm });
    try {
      const out = [createRefKernels(), wasm].map((k) => {
        let w: Weight;
        if (dtype === 'f32') (w = { dtype, data: k.allocF32(rows * n) }).data.set(values);
        else if (dtype === 'f16') {
          w = { dtype, data: k.allocU16(rows * n) };
          values.forEach((v, i) => ((w.data as Uint16Array)[i] = toF16(v)));
        } else quantizeRows(values, rows, n, (w = allocQuantized(k, dtype, rows, n)), 0);
        const dst = dtype === 'f16' ? k.allocU16(n * m) : k.allocF32(n * m);
        dst.fill(9);
        k.transpose_rows(dst, w, n, o0, m);
        return Array.from(dst);
      });
      expect(out[1]).toEqual(out[0]);
      expect(out[0]).not.toContain(9);
    } finally {
      wasm.close();
    }
  });
});

describe('layernorm_backward: the wasm kernel against its twin', () => {
  // n = 1 (x̂ = 0: no gradient), n not a multiple of 4, rows not a multiple of the threads; dx
  // starts random (the kernel adds to it), the rows spread out (|x| up to 30, a mean far from 0)
  test.each([
    [1, 1],
    [3, 5],
    [4, 67],
    [7, 2048],
  ])('T=%i n=%i, on 1 and 3 threads', async (T, n) => {
    const rand = xorshift(T * 31 + n);
    const x = Float32Array.from({ length: T * n }, () => 20 * rand() + 10 * (rand() - 0.5));
    const dy = Float32Array.from({ length: T * n }, () => 2 * rand() - 1);
    const w = Float32Array.from({ length: n }, () => 2 * rand() - 1);
    const dx0 = Float32Array.from({ length: T * n }, () => rand() - 0.5);
    const want = Float32Array.from(dx0);
    createRefKernels().layernorm_backward(want, dy, x, w, T, n, 1e-5);
    const grad = want.map((v, i) => v - dx0[i]);
    const big = Math.max(...grad.map(Math.abs));
    const results: number[][] = [];
    for (const threads of [1, 3]) {
      const wasm = await createWasmKernels({ threads, ...NODE.wasm });
      try {
        const [gx, gdy, gw, gdx] = [x, dy, w, dx0].map((a) => {
          const c = wasm.allocF32(a.length);
          c.set(a);
          return c;
        });
        wasm.layernorm_backward(gdx, gdy, gx, gw, T, n, 1e-5);
        gdx.forEach((g, i) => expect(Math.abs(g - want[i])).toBeLessThan(1e-4 * big + 1e-6));
        results.push(Array.from(gdx));
      } finally {
        wasm.close();
      }
    }
    expect(results[1]).toEqual(results[0]);
  });
});

describe('gelu_backward: the wasm kernel against its twin', () => {
  // lengths not a multiple of 4 (the SIMD body and the scalar tail), empty, one; x out to
  // ±12, where σ saturates (gelu' is 0 far left, 1 far right)
  test.each([0, 1, 3, 5, 17, 1001])(
    'len %i, on 1 and 3 threads, dx in place on dy',
    async (len) => {
      const rand = xorshift(len + 5);
      const x = Float32Array.from({ length: len }, () => 24 * rand() - 12);
      const dy = Float32Array.from({ length: len }, () => 2 * rand() - 1);
      const want = new Float32Array(len);
      createRefKernels().gelu_backward(want, dy, x, len);
      const results: number[][] = [];
      for (const threads of [1, 3]) {
        const wasm = await createWasmKernels({ threads, ...NODE.wasm });
        try {
          const [gx, gd] = [x, dy].map((a) => {
            const c = wasm.allocF32(Math.max(1, a.length + 1)).fill(7); // one past the end: left alone
            c.set(a);
            return c;
          });
          wasm.gelu_backward(gd, gd, gx, len);
          const got = Array.from(gd.subarray(0, len));
          expect(gd[len]).toBe(7);
          got.forEach((g, i) =>
            expect(Math.abs(g - want[i])).toBeLessThan(2e-6 * (1 + Math.abs(want[i]))),
          );
          results.push(got);
        } finally {
          wasm.close();
        }
      }
      expect(results[1]).toEqual(results[0]);
    },
  );
});

describe('attention_backward: the wasm kernel against its twin', () => {
  // awkward sizes: one token, Dh not a multiple of 4, heads not a multiple of the threads
  test.each([
    [1, 1, 1],
    [1, 3, 7],
    [5, 2, 13],
    [37, 5, 64],
    [70, 4, 33],
  ])('T=%i H=%i Dh=%i, on 1 and 3 threads', async (T, H, Dh) => {
    const S = H * Dh;
    const scale = 1 / Math.sqrt(Dh);
    const ref = createRefKernels();
    const rand = xorshift(T * 131 + H * 17 + Dh);
    const [q, k, v, dO] = [0, 1, 2, 3].map(() =>
      Float32Array.from({ length: T * S }, () => 2 * rand() - 1),
    );
    const [kH, vH] = [new Float32Array(T * S), new Float32Array(T * S)];
    toHeads(kH, k, T, H, Dh);
    toHeads(vH, v, T, H, Dh);
    const probs = new Float32Array(H * T * T);
    ref.attention(new Float32Array(T * S), q, kH, vH, T, 0, H, Dh, T, scale, probs);
    const want = [0, 1, 2].map(() => new Float32Array(T * S));
    ref.attention_backward(want[0], want[1], want[2], dO, q, kH, vH, probs, T, H, Dh, scale);
    const results: Float32Array[][] = [];
    for (const threads of [1, 3]) {
      const wasm = await createWasmKernels({ threads, ...NODE.wasm });
      try {
        const inputs = [dO, q, kH, vH, probs].map((a) => {
          const c = wasm.allocF32(Math.max(1, a.length));
          c.set(a);
          return c;
        });
        // garbage in the outputs: the kernel must zero them itself
        const got = [0, 1, 2].map(() => wasm.allocF32(T * S).fill(7));
        const [gdO, gq, gkH, gvH, gp] = inputs;
        wasm.attention_backward(got[0], got[1], got[2], gdO, gq, gkH, gvH, gp, T, H, Dh, scale);
        // (one key: softmax has nothing to trade, dq and dk are exactly 0)
        got.forEach((g, i) => {
          const big = Math.max(...want[i].map(Math.abs));
          expect(big ? rel(g, want[i]) : Math.max(...g.map(Math.abs))).toBeLessThan(1e-5);
        });
        results.push(got.map((g) => Float32Array.from(g)));
      } finally {
        wasm.close();
      }
    }
    // the thread split changes nothing
    results[1].forEach((g, i) => expect(Array.from(g)).toEqual(Array.from(results[0][i])));
  });
});

function toF16(v: number): number {
  const b = new Float32Array([v]);
  const u = new Uint32Array(b.buffer)[0];
  const sign = (u >> 16) & 0x8000;
  const e = ((u >> 23) & 255) - 127 + 15;
  if (e <= 0) return sign;
  return sign | (e << 10) | ((u >> 13) & 1023); // truncated: any f16 value will do
}

describe('the optimizer and the schedule', () => {
  test('clipping by global norm, as torch.nn.utils.clip_grad_norm_', () => {
    const g = [Float32Array.from([3, 0]), Float32Array.from([4])];
    expect(clipGradNorm(g, 10)).toBeCloseTo(5);
    expect(Array.from(g[0])).toEqual([3, 0]);
    expect(clipGradNorm(g, 1)).toBeCloseTo(5);
    expect(g[0][0]).toBeCloseTo(0.6, 5);
    expect(g[1][0]).toBeCloseTo(0.8, 5);
  });

  test('linear warm-up, then cosine, constant or linear decay', () => {
    expect(learningRate('cosine', 1, 0, 4, 14)).toBe(0);
    expect(learningRate('cosine', 1, 2, 4, 14)).toBe(0.5);
    expect(learningRate('cosine', 1, 4, 4, 14)).toBe(1);
    expect(learningRate('cosine', 1, 9, 4, 14)).toBeCloseTo(0.5);
    expect(learningRate('cosine', 1, 14, 4, 14)).toBeCloseTo(0);
    expect(learningRate('constant', 2, 9, 4, 14)).toBe(2);
    expect(learningRate('linear', 1, 9, 4, 14)).toBeCloseTo(0.5);
    expect(learningRate('constant', 2, 0, 0, 14)).toBe(2);
  });

  test('the rng repeats from its seed and labels, and streams differ', () => {
    const a = new Rng(1, 2, 3);
    const b = new Rng(1, 2, 3);
    const c = new Rng(1, 2, 4);
    const draw = (r: Rng) => Array.from({ length: 5 }, () => r.u32());
    const [x, y, z] = [draw(a), draw(b), draw(c)];
    expect(x).toEqual(y);
    expect(x).not.toEqual(z);
    expect(new Set(x).size).toBe(5);
  });
});
