// The parameters of a phi model: their names under each naming scheme a checkpoint may use,
// their shapes, and the dtype and bytes each is held in (the memory plan counts these, the
// loader reads them).
//   transformers ("phi"):  model.embed_tokens.weight, model.layers.N.self_attn.q_proj.weight, ...
//   the first phi-1_5 revision (remote code): layers.0.wte.weight, layers.N+1.mixer.Wqkv.weight
//   (q, k, v fused as rows [q; k; v]), layers.N+1.mixer.out_proj, layers.N+1.ln, layers.N+1.mlp.fc1,
//   layers.L+1.ln, layers.L+1.linear -- and its "phi-msft" variant transformer.h.N.* / lm_head.linear.
import { quantizedBytes } from '../formats/quant.js';
import type { WeightDType } from '../kernels/types.js';
import type { PhiConfig } from '../model/config.js';
import { QUANT_KEY, type Checkpoint } from './checkpoint.js';

/** Which naming scheme a checkpoint uses, as functions from logical to stored names. */
export interface Names {
  embed: string;
  /** q/k/v stored separately (transformers) or fused (Wqkv). */
  qkv: (l: number) => { q: string; k: string; v: string } | { fused: string };
  dense: (l: number) => string;
  ln: (l: number) => string;
  fc1: (l: number) => string;
  fc2: (l: number) => string;
  finalLn: string;
  lmHead: string;
}

/** transformers' names (microsoft/phi-1_5 today, and what phi-wasm writes). */
export const TRANSFORMERS_NAMES: Names = {
  embed: 'model.embed_tokens',
  qkv: (l) => ({
    q: `model.layers.${l}.self_attn.q_proj`,
    k: `model.layers.${l}.self_attn.k_proj`,
    v: `model.layers.${l}.self_attn.v_proj`,
  }),
  dense: (l) => `model.layers.${l}.self_attn.dense`,
  ln: (l) => `model.layers.${l}.input_layernorm`,
  fc1: (l) => `model.layers.${l}.mlp.fc1`,
  fc2: (l) => `model.layers.${l}.mlp.fc2`,
  finalLn: 'model.final_layernorm',
  lmHead: 'lm_head',
};

export function detectNames(ck: Checkpoint, L: number): Names {
  if (ck.has('model.embed_tokens.weight')) return TRANSFORMERS_NAMES;
  if (ck.has('layers.0.wte.weight')) {
    const p = (l: number) => `layers.${l + 1}`; // layers.0 is the embedding
    return {
      embed: 'layers.0.wte',
      qkv: (l) => ({ fused: `${p(l)}.mixer.Wqkv` }),
      dense: (l) => `${p(l)}.mixer.out_proj`,
      ln: (l) => `${p(l)}.ln`,
      fc1: (l) => `${p(l)}.mlp.fc1`,
      fc2: (l) => `${p(l)}.mlp.fc2`,
      finalLn: `layers.${L + 1}.ln`,
      lmHead: `layers.${L + 1}.linear`,
    };
  }
  if (ck.has('transformer.embd.wte.weight')) {
    const p = (l: number) => `transformer.h.${l}`;
    return {
      embed: 'transformer.embd.wte',
      qkv: (l) => ({ fused: `${p(l)}.mixer.Wqkv` }),
      dense: (l) => `${p(l)}.mixer.out_proj`,
      ln: (l) => `${p(l)}.ln`,
      fc1: (l) => `${p(l)}.mlp.fc1`,
      fc2: (l) => `${p(l)}.mlp.fc2`,
      finalLn: 'lm_head.ln',
      lmHead: 'lm_head.linear',
    };
  }
  throw new Error(
    `${ck.name}: missing tensor "model.embed_tokens.weight" (nor the older "layers.0.wte.weight"): not a phi checkpoint`,
  );
}

/** A parameter as stored: its name in the checkpoint, its shape, and what it is. */
export interface Param {
  name: string;
  shape: number[];
  /** 'linear': a linear layer's weight (quantizable); 'embedding' and 'vector' are never quantized. */
  role: 'embedding' | 'linear' | 'vector';
}

/** Every parameter the model reads from `ck`, with the shape `cfg` implies, in loading order. */
export function parameters(ck: Checkpoint, cfg: PhiConfig): Param[] {
  return parameterList(detectNames(ck, cfg.numLayers), cfg);
}

/** The parameters of a model of `cfg` under a naming scheme. */
export function parameterList(names: Names, cfg: PhiConfig): Param[] {
  const { vocabSize: V, hiddenSize: D, intermediateSize: F, numLayers: L } = cfg;
  const out: Param[] = [{ name: `${names.embed}.weight`, shape: [V, D], role: 'embedding' }];
  const vector = (name: string, n: number) => out.push({ name, shape: [n], role: 'vector' });
  const linear = (name: string, rows: number, cols: number) => {
    out.push({ name: `${name}.weight`, shape: [rows, cols], role: 'linear' });
    vector(`${name}.bias`, rows);
  };
  for (let l = 0; l < L; l++) {
    vector(`${names.ln(l)}.weight`, D);
    vector(`${names.ln(l)}.bias`, D);
    const qkv = names.qkv(l);
    if ('fused' in qkv) linear(qkv.fused, 3 * D, D);
    else for (const p of [qkv.q, qkv.k, qkv.v]) linear(p, D, D);
    linear(names.dense(l), D, D);
    linear(names.fc1(l), F, D);
    linear(names.fc2(l), D, F);
  }
  vector(`${names.finalLn}.weight`, D);
  vector(`${names.finalLn}.bias`, D);
  linear(names.lmHead, V, D);
  return out;
}

/**
 * How the loader holds a parameter in memory, and its bytes: vectors as f32; matrices as the
 * checkpoint stores them (auto; BF16 becomes f32) or as asked, except that only linear layers
 * are quantized (the embedding is a lookup table: it keeps its stored dtype); matrices saved
 * quantized by `phi quantize` (U8) as they are.
 */
export function heldAs(
  ck: Checkpoint,
  p: Param,
  want: WeightDType | 'auto',
): { dtype: WeightDType; bytes: number } {
  const stored = ck.entries.get(p.name);
  const [rows, cols] = p.shape;
  if (p.role === 'vector') return { dtype: 'f32', bytes: 4 * rows };
  if (stored?.info.dtype === 'U8') {
    const q = stored.file.metadata[QUANT_KEY] === 'q4' ? 'q4' : 'q8';
    return { dtype: q, bytes: quantizedBytes(q, rows, cols) };
  }
  const storedAs: WeightDType = stored?.info.dtype === 'F16' ? 'f16' : 'f32';
  const quantize = want === 'q8' || want === 'q4';
  const dtype = want === 'auto' || (quantize && p.role !== 'linear') ? storedAs : want;
  const bytes =
    dtype === 'q8' || dtype === 'q4'
      ? quantizedBytes(dtype, rows, cols)
      : rows * cols * (dtype === 'f16' ? 2 : 4);
  return { dtype, bytes };
}

/**
 * Every tensor of the checkpoint must be one the config's model reads: a config with fewer
 * layers than the checkpoint (or another naming) would otherwise load and compute
 * something else. Buffers some exports keep (rotary inv_freq, attention masks) are ignored.
 */
export function checkTensors(ck: Checkpoint, cfg: PhiConfig): void {
  const wanted = new Set(parameters(ck, cfg).map((p) => p.name));
  const ignored = /(^|\.)(inv_freq|masked_bias|attn\.bias|rotary_emb\.\w+)$/;
  const extra = [...ck.entries.keys()].filter((n) => !wanted.has(n) && !ignored.test(n));
  if (extra.length > 0) {
    const e = ck.entries.get(extra[0])!;
    throw new Error(
      `${e.file.source.name}: tensor "${extra[0]}"${extra.length > 1 ? ` (and ${extra.length - 1} more)` : ''} ` +
        `is not part of the model config.json describes (${cfg.numLayers} layers, hidden ${cfg.hiddenSize}): the config and the checkpoint disagree`,
    );
  }
}
