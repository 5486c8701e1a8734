// An adapter in PEFT's layout, the way `model.save_pretrained()` writes one: adapter_config.json
// and adapter_model.safetensors (F32), keys
//   base_model.model.model.layers.{i}.{self_attn.q_proj|..|mlp.fc2}.lora_{A,B}.weight
// with A (r, in) and B (out, r). PEFT (and phi-wasm, weights/adapter.ts) load it back.
// An adapter with the same rank and alpha on every term writes them once; terms that differ
// go in rank_pattern / alpha_pattern, and modules missing from some layers make
// target_modules a regex of the exact paths.
import type { LoraAdapter, LoraModule } from '../model/lora.js';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS } from './adapter.js';
import { TRANSFORMERS_NAMES } from './names.js';
import { writeSafetensors } from './safetensors.js';

/** Module m of block l under transformers' names (what phi-wasm writes). */
function modulePath(l: number, m: LoraModule): string {
  const n = TRANSFORMERS_NAMES;
  const qkv = n.qkv(l) as { q: string; k: string; v: string };
  return { q_proj: qkv.q, k_proj: qkv.k, v_proj: qkv.v, dense: n.dense(l), fc1: n.fc1(l), fc2: n.fc2(l) }[m];
}

/** The two files of a PEFT adapter folder, by name. */
export function adapterFolderFiles(
  adapter: LoraAdapter,
  base: string,
  extra: { lora_dropout?: number } = {},
): Record<string, Uint8Array> {
  const { r, lora_alpha, use_rslora } = adapter.info;
  const alphaOf = (rank: number, scale: number) => scale * (use_rslora ? Math.sqrt(rank) : rank);
  const rankPattern: Record<string, number> = {};
  const alphaPattern: Record<string, number> = {};
  const tensors: { name: string; dtype: 'F32'; shape: number[]; data: Uint8Array }[] = [];
  const paths: string[] = [];
  const present = new Set<string>();
  adapter.layers.forEach((terms, layer) => {
    for (const [m, t] of Object.entries(terms) as [LoraModule, NonNullable<(typeof terms)[LoraModule]>][]) {
      const key = modulePath(layer, m);
      paths.push(key);
      present.add(m);
      if (t.r !== r) rankPattern[key] = t.r;
      const alpha = alphaOf(t.r, t.scale);
      if (Math.abs(alpha - lora_alpha) > 1e-9 * Math.max(1, lora_alpha)) alphaPattern[key] = alpha;
      const bytes = (a: Float32Array) => new Uint8Array(Float32Array.from(a).buffer);
      tensors.push(
        { name: `base_model.model.${key}.lora_A.weight`, dtype: 'F32', shape: [t.r, t.in], data: bytes(t.A) },
        { name: `base_model.model.${key}.lora_B.weight`, dtype: 'F32', shape: [t.out, t.r], data: bytes(t.B) },
      );
    }
  });
  const targets = [...present];
  const full = paths.length === targets.length * adapter.layers.length;
  const config = {
    alpha_pattern: alphaPattern,
    auto_mapping: null,
    base_model_name_or_path: base,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    lora_alpha,
    lora_dropout: extra.lora_dropout ?? 0,
    modules_to_save: null,
    peft_type: 'LORA',
    r,
    rank_pattern: rankPattern,
    revision: null,
    // every layer has the same modules: their names; otherwise the exact paths, as a regex
    target_modules: full ? targets : paths.map((p) => p.replace(/\./g, '\\.')).join('|'),
    task_type: 'CAUSAL_LM',
    use_dora: false,
    use_rslora,
  };
  return {
    [ADAPTER_CONFIG]: new TextEncoder().encode(JSON.stringify(config, null, 2) + '\n'),
    [ADAPTER_WEIGHTS]: writeSafetensors(tensors, { format: 'pt' }),
  };
}
