// PhiConfig: the numbers that shape the model, parsed and checked from config.json.
// Accepts transformers' "phi" config (microsoft/phi-1_5 today) and the older remote-code
// "phi-msft" / "mixformer-sequential" one (n_embd, n_layer, ...), which the first revision
// of the checkpoint shipped.

export interface PhiConfig {
  /** V: rows of the embedding and lm_head (51200 for phi-1.5; the tokenizer uses 50295). */
  vocabSize: number;
  /** D: width of the residual stream (2048). */
  hiddenSize: number;
  /** F: MLP hidden width (8192 = 4D). */
  intermediateSize: number;
  /** L: decoder layers (24). */
  numLayers: number;
  /** H: attention heads (32); head dim Dh = D / H = 64. */
  numHeads: number;
  /** Dh = D / H. */
  headDim: number;
  /** R: leading dims of each head that get rotary (partial_rotary_factor · Dh = 32). */
  rotaryDim: number;
  /** θ of the rotary frequencies θ_i = base^(-2i/R) (10000). */
  ropeTheta: number;
  /** LayerNorm ε (1e-5). */
  layerNormEps: number;
  /** Longest sequence, prompt and generation together (2048). */
  maxPositions: number;
}

/** The microsoft/phi-1_5 numbers, for synthetic weights and docs. */
export const PHI_1_5: PhiConfig = {
  vocabSize: 51200,
  hiddenSize: 2048,
  intermediateSize: 8192,
  numLayers: 24,
  numHeads: 32,
  headDim: 64,
  rotaryDim: 32,
  ropeTheta: 10000,
  layerNormEps: 1e-5,
  maxPositions: 2048,
};

type Json = Record<string, unknown>;

/** Parse config.json (as text or object); throws naming the field on anything inconsistent. */
export function parseConfig(input: string | Json, source = 'config.json'): PhiConfig {
  let j: Json;
  if (typeof input === 'string') {
    try {
      j = JSON.parse(input) as Json;
    } catch (e) {
      throw new Error(`${source}: not valid JSON (${(e as Error).message})`);
    }
  } else j = input;
  if (typeof j !== 'object' || j === null || Array.isArray(j)) {
    throw new Error(`${source}: must be a JSON object`);
  }
  const bad = (field: string, why: string): never => {
    throw new Error(`${source}: ${field} ${why}`);
  };
  const int = (field: string, fallback?: number): number => {
    const v = j[field] ?? fallback;
    if (v === undefined) bad(field, 'is missing');
    if (!Number.isSafeInteger(v) || (v as number) <= 0) {
      bad(field, `must be a positive integer, found ${JSON.stringify(v)}`);
    }
    return v as number;
  };
  const num = (field: string, fallback?: number): number => {
    const v = j[field] ?? fallback;
    if (v === undefined) bad(field, 'is missing');
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      bad(field, `must be a positive number, found ${JSON.stringify(v)}`);
    }
    return v as number;
  };

  const modelType = j.model_type;
  let cfg: PhiConfig;
  if (modelType === 'phi') {
    const hiddenSize = int('hidden_size');
    const numHeads = int('num_attention_heads');
    if (hiddenSize % numHeads !== 0) {
      bad('hidden_size', `(${hiddenSize}) must be divisible by num_attention_heads (${numHeads})`);
    }
    const headDim = hiddenSize / numHeads;
    const kv = j.num_key_value_heads;
    if (kv !== null && kv !== undefined && kv !== numHeads) {
      bad(
        'num_key_value_heads',
        `is ${JSON.stringify(kv)} but must equal num_attention_heads (${numHeads}): grouped-query attention is not supported`,
      );
    }
    const factor = num('partial_rotary_factor', 0.5);
    if (factor > 1) bad('partial_rotary_factor', `must be in (0, 1], found ${factor}`);
    const rotaryDim = Math.floor(headDim * factor);
    checkActivation(j.hidden_act, 'hidden_act', bad);
    for (const flag of ['qk_layernorm', 'tie_word_embeddings'])
      if (j[flag] !== undefined && j[flag] !== null && typeof j[flag] !== 'boolean')
        bad(flag, `must be true or false, found ${JSON.stringify(j[flag])}`);
    if (j.qk_layernorm === true) bad('qk_layernorm', 'is true: q/k LayerNorm is not supported');
    if (j.rope_scaling !== null && j.rope_scaling !== undefined) {
      bad('rope_scaling', `is ${JSON.stringify(j.rope_scaling)}: rotary scaling is not supported`);
    }
    if (j.tie_word_embeddings === true) {
      bad('tie_word_embeddings', 'is true: phi has a separate lm_head with a bias');
    }
    cfg = {
      vocabSize: int('vocab_size'),
      hiddenSize,
      intermediateSize: int('intermediate_size'),
      numLayers: int('num_hidden_layers'),
      numHeads,
      headDim,
      rotaryDim,
      ropeTheta: num('rope_theta', 10000),
      layerNormEps: num('layer_norm_eps', 1e-5),
      maxPositions: int('max_position_embeddings'),
    };
  } else if (modelType === 'phi-msft' || modelType === 'mixformer-sequential') {
    // The remote-code config of the first phi-1_5 revision.
    const hiddenSize = int('n_embd');
    const numHeads = int('n_head');
    if (hiddenSize % numHeads !== 0) {
      bad('n_embd', `(${hiddenSize}) must be divisible by n_head (${numHeads})`);
    }
    const headDim = hiddenSize / numHeads;
    const innerRaw = j.n_inner;
    const intermediateSize =
      innerRaw === null || innerRaw === undefined ? 4 * hiddenSize : int('n_inner');
    checkActivation(j.activation_function ?? 'gelu_new', 'activation_function', bad);
    cfg = {
      vocabSize: int('vocab_size'),
      hiddenSize,
      intermediateSize,
      numLayers: int('n_layer'),
      numHeads,
      headDim,
      rotaryDim: int('rotary_dim'),
      ropeTheta: 10000,
      layerNormEps: num('layer_norm_epsilon', 1e-5),
      maxPositions: int('n_positions'),
    };
  } else {
    return bad(
      'model_type',
      `must be "phi" (or the older "phi-msft"), found ${JSON.stringify(modelType)}`,
    );
  }
  if (cfg.rotaryDim % 2 !== 0 || cfg.rotaryDim > cfg.headDim) {
    bad(
      'partial_rotary_factor',
      `gives ${cfg.rotaryDim} rotary dims for head dim ${cfg.headDim}: need an even number <= head dim`,
    );
  }
  return cfg;
}

function checkActivation(act: unknown, field: string, bad: (f: string, w: string) => never) {
  // gelu_new and gelu_pytorch_tanh are the same tanh approximation.
  if (act !== 'gelu_new' && act !== 'gelu_pytorch_tanh') {
    bad(field, `must be "gelu_new" (tanh GELU), found ${JSON.stringify(act)}`);
  }
}
