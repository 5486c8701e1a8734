// A LoRA adapter as Hugging Face PEFT saves it: a folder with adapter_config.json and
// adapter_model.safetensors, read into one low-rank term per adapted linear layer:
//   y = x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ        A (r, in), B (out, r), s = lora_alpha / r
// (lora_alpha / √r with use_rslora). Every field that changes that math is honoured or
// refused by name; every tensor must be one the config describes, as for checkpoints.
import { widenHalf } from '../formats/f16.js';
import type { ModelFiles } from '../io/source.js';
import type { PhiConfig } from '../model/config.js';
import { LORA_MODULES, type LoraAdapter, type LoraModule, type LoraTerm } from '../model/lora.js';
import { numel, openSafetensors, type SafetensorsFile } from './safetensors.js';

/** Why `name` cannot name an adapter (it is a model id in the server's API), or null. */
export function badAdapterName(name: unknown): string | null {
  return typeof name === 'string' && /^[\w.:@/-]{1,128}$/.test(name)
    ? null
    : `an adapter name must be 1-128 letters, digits or . _ - : @ /, got ${JSON.stringify(name)}`;
}

export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';
const PREFIX = 'base_model.model.';

/**
 * A module of the base model an adapter may name: its path as PEFT sees it (named_modules of
 * the base model), the layer, and which of our terms it feeds. A fused Wqkv feeds q, k and v.
 */
interface Site {
  path: string;
  layer: number;
  /** the block index in the path, which layers_to_transform counts (layers.N is block N-1) */
  index: number;
  module: LoraModule | 'Wqkv';
  in: number;
  out: number;
}

/** Every linear layer PEFT could target in phi, under both naming schemes. */
function sites(cfg: PhiConfig): { transformers: Site[]; fused: Site[]; msft: Site[] } {
  const { hiddenSize: D, intermediateSize: F, numLayers: L } = cfg;
  const shapes = {
    q_proj: [D, D],
    k_proj: [D, D],
    v_proj: [D, D],
    dense: [D, D],
    fc1: [D, F],
    fc2: [F, D],
    Wqkv: [D, 3 * D],
  } as const;
  const site = (path: string, layer: number, module: Site['module'], index = layer): Site => ({
    path,
    layer,
    index,
    module,
    in: shapes[module][0],
    out: shapes[module][1],
  });
  const transformers: Site[] = [];
  const fused: Site[] = [];
  const msft: Site[] = [];
  for (let l = 0; l < L; l++) {
    for (const m of ['q_proj', 'k_proj', 'v_proj', 'dense'] as const)
      transformers.push(site(`model.layers.${l}.self_attn.${m}`, l, m));
    for (const m of ['fc1', 'fc2'] as const)
      transformers.push(site(`model.layers.${l}.mlp.${m}`, l, m));
    // the first phi-1_5 revision: layers.0 is the embedding, blocks are layers.1..L
    for (const [p, list, index] of [
      [`layers.${l + 1}`, fused, l + 1],
      [`transformer.h.${l}`, msft, l],
    ] as const) {
      list.push(
        site(`${p}.mixer.Wqkv`, l, 'Wqkv', index),
        site(`${p}.mixer.out_proj`, l, 'dense', index),
      );
      list.push(site(`${p}.mlp.fc1`, l, 'fc1', index), site(`${p}.mlp.fc2`, l, 'fc2', index));
    }
  }
  return { transformers, fused, msft };
}

function adapterError(where: string, field: string, why: string): Error {
  return new Error(`${where}: "${field}" ${why}`);
}

/** PEFT's match of a pattern key (rank_pattern, alpha_pattern) against a module path. */
function patternFor(patterns: Record<string, number>, path: string): number | undefined {
  for (const [key, value] of Object.entries(patterns))
    if (new RegExp(`^(.*\\.)?(${key})$`).test(path)) return value;
  return undefined;
}

/** target_modules as PEFT reads it: a regex string matches the whole path; a list, the last parts. */
function targets(spec: unknown, where: string, field: string): (path: string) => boolean {
  if (typeof spec === 'string') {
    let re: RegExp;
    try {
      re = new RegExp(`^(?:${spec})$`);
    } catch (e) {
      throw adapterError(where, field, `is not a regular expression: ${(e as Error).message}`);
    }
    return (p) => re.test(p);
  }
  if (Array.isArray(spec) && spec.every((s) => typeof s === 'string')) {
    const names = spec as string[];
    return (p) => names.some((n) => p === n || p.endsWith(`.${n}`));
  }
  throw adapterError(
    where,
    field,
    `must be a list of module names or a regex string, got ${JSON.stringify(spec)}`,
  );
}

interface Parsed {
  r: number;
  alpha: number;
  rslora: boolean;
  targeted: (path: string) => boolean;
  layers: Set<number> | null;
  rankPattern: Record<string, number>;
  alphaPattern: Record<string, number>;
}

/** Check adapter_config.json: the fields of LoRA phi-wasm honours, and refusals for the rest. */
export function parseAdapterConfig(json: unknown, where: string): Parsed {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new Error(`${where}: must be a JSON object`);
  const c = json as Record<string, unknown>;
  const refuse = (field: string, why: string) => {
    throw adapterError(where, field, why);
  };
  if (c.peft_type !== 'LORA')
    refuse(
      'peft_type',
      `is ${JSON.stringify(c.peft_type)}: phi-wasm runs LoRA adapters ("LORA") only`,
    );
  if (c.use_dora) refuse('use_dora', 'is true: DoRA adapters are not supported (only plain LoRA)');
  if (c.bias !== undefined && c.bias !== 'none')
    refuse(
      'bias',
      `is ${JSON.stringify(c.bias)}: only "none" is supported (the adapter would carry trained biases)`,
    );
  if (c.lora_bias) refuse('lora_bias', 'is true: LoRA B biases are not supported');
  if (Array.isArray(c.modules_to_save) ? c.modules_to_save.length > 0 : c.modules_to_save != null)
    refuse(
      'modules_to_save',
      `is ${JSON.stringify(c.modules_to_save)}: fully trained modules are not supported, only LoRA terms`,
    );
  for (const field of ['layer_replication', 'trainable_token_indices', 'megatron_config'])
    if (c[field] != null) refuse(field, `is set: not supported`);
  if (Array.isArray(c.target_parameters) && c.target_parameters.length > 0)
    refuse(
      'target_parameters',
      'is set: LoRA on raw parameters is not supported, only on linear modules',
    );
  if (
    c.layers_pattern != null &&
    !(Array.isArray(c.layers_pattern) && !c.layers_pattern.length) &&
    c.layers_pattern !== 'layers' &&
    c.layers_pattern !== 'h'
  )
    refuse(
      'layers_pattern',
      `is ${JSON.stringify(c.layers_pattern)}: phi's blocks are "layers" (or "h")`,
    );

  const r = c.r;
  if (!Number.isSafeInteger(r) || (r as number) < 1)
    refuse('r', `must be a positive integer, got ${JSON.stringify(r)}`);
  const alpha = c.lora_alpha ?? 8; // PEFT's default
  if (typeof alpha !== 'number' || !Number.isFinite(alpha))
    refuse('lora_alpha', `must be a number, got ${JSON.stringify(alpha)}`);
  const rslora = c.use_rslora ?? false;
  if (typeof rslora !== 'boolean')
    refuse('use_rslora', `must be true or false, got ${JSON.stringify(rslora)}`);
  const fifo = c.fan_in_fan_out ?? false;
  if (typeof fifo !== 'boolean')
    refuse('fan_in_fan_out', `must be true or false, got ${JSON.stringify(fifo)}`);
  // fan_in_fan_out describes Conv1D bases (weights stored (in, out)); phi's layers are
  // nn.Linear, for which PEFT turns it off and keeps A (r, in), B (out, r): so do we.

  const include = targets(c.target_modules, where, 'target_modules');
  const exclude =
    c.exclude_modules == null ? () => false : targets(c.exclude_modules, where, 'exclude_modules');
  let layers: Set<number> | null = null;
  const ltt = c.layers_to_transform;
  if (ltt != null) {
    const list = typeof ltt === 'number' ? [ltt] : ltt;
    if (!Array.isArray(list) || !list.every((x) => Number.isSafeInteger(x) && x >= 0))
      refuse(
        'layers_to_transform',
        `must be a layer index or a list of them, got ${JSON.stringify(ltt)}`,
      );
    layers = new Set(list as number[]);
  }
  const pattern = (field: string, integer: boolean): Record<string, number> => {
    const p = c[field] ?? {};
    if (typeof p !== 'object' || p === null || Array.isArray(p))
      refuse(field, `must be an object {module pattern: value}, got ${JSON.stringify(p)}`);
    for (const [k, v] of Object.entries(p as object)) {
      const ok = integer
        ? Number.isSafeInteger(v) && v >= 1
        : typeof v === 'number' && Number.isFinite(v);
      if (!ok)
        refuse(
          `${field}.${k}`,
          `must be ${integer ? 'a positive integer' : 'a number'}, got ${JSON.stringify(v)}`,
        );
      try {
        new RegExp(k);
      } catch (e) {
        refuse(`${field}.${k}`, `is not a regular expression: ${(e as Error).message}`);
      }
    }
    return p as Record<string, number>;
  };
  return {
    r: r as number,
    alpha: alpha as number,
    rslora: rslora as boolean,
    targeted: (p) => include(p) && !exclude(p),
    layers,
    rankPattern: pattern('rank_pattern', true),
    alphaPattern: pattern('alpha_pattern', false),
  };
}

/** The adapter in `files` (a PEFT folder), checked against the base model's config. */
export async function readAdapter(files: ModelFiles, cfg: PhiConfig): Promise<LoraAdapter> {
  const where = `${files.name}/${ADAPTER_CONFIG}`;
  if (!(await files.exists(ADAPTER_CONFIG)))
    throw new Error(
      `${files.name}: no ${ADAPTER_CONFIG} (a PEFT adapter folder has ${ADAPTER_CONFIG} and ${ADAPTER_WEIGHTS})`,
    );
  let json: unknown;
  try {
    json = JSON.parse(await files.readText(ADAPTER_CONFIG));
  } catch (e) {
    throw new Error(`${where}: not valid JSON (${(e as Error).message})`);
  }
  const p = parseAdapterConfig(json, where);
  if (!(await files.exists(ADAPTER_WEIGHTS))) {
    const bin = await files.exists('adapter_model.bin');
    throw new Error(
      bin
        ? `${files.name}: adapter_model.bin is a pickle, which phi-wasm does not read (it can run code); save the adapter with safe_serialization=True (PEFT's default) to get ${ADAPTER_WEIGHTS}`
        : `${files.name}: no ${ADAPTER_WEIGHTS}`,
    );
  }
  const st = await openSafetensors(await files.open(ADAPTER_WEIGHTS));
  try {
    return await readTerms(st, p, cfg, files.name);
  } finally {
    await st.source.close?.();
  }
}

async function readTerms(
  st: SafetensorsFile,
  p: Parsed,
  cfg: PhiConfig,
  source: string,
): Promise<LoraAdapter> {
  const file = st.source.name;
  const keys = [...st.tensors.keys()];
  // the tensors' own names say which naming scheme the adapter was trained on
  const all = sites(cfg);
  const scheme = keys.some((k) => k.startsWith(`${PREFIX}model.layers.`))
    ? all.transformers
    : keys.some((k) => k.startsWith(`${PREFIX}transformer.h.`))
      ? all.msft
      : keys.some((k) => k.startsWith(`${PREFIX}layers.`))
        ? all.fused
        : all.transformers;
  const wanted = new Map<string, { site: Site; part: 'A' | 'B'; r: number }>();
  const layers: LoraAdapter['layers'] = Array.from({ length: cfg.numLayers }, () => ({}));
  const targetsFound = new Set<LoraModule>();
  for (const site of scheme) {
    if (!p.targeted(site.path)) continue;
    if (p.layers && !p.layers.has(site.index)) continue;
    const r = patternFor(p.rankPattern, site.path) ?? p.r;
    wanted.set(`${PREFIX}${site.path}.lora_A.weight`, { site, part: 'A', r });
    wanted.set(`${PREFIX}${site.path}.lora_B.weight`, { site, part: 'B', r });
  }
  const extra = keys.filter((k) => !wanted.has(k));
  if (extra.length)
    throw new Error(
      `${file}: tensor "${extra[0]}"${extra.length > 1 ? ` (and ${extra.length - 1} more)` : ''} is not one ${ADAPTER_CONFIG} describes for phi ` +
        `(${cfg.numLayers} layers; LoRA on ${LORA_MODULES.join(', ')} or the first revision's Wqkv, out_proj, fc1, fc2): ` +
        'an adapter for another model, or a config that does not match its weights',
    );
  if (!wanted.size)
    throw new Error(
      `${source}/${ADAPTER_CONFIG}: "target_modules" selects none of phi's linear layers (${LORA_MODULES.join(', ')})`,
    );
  const missing = [...wanted.keys()].filter((k) => !st.tensors.has(k));
  if (missing.length)
    throw new Error(
      `${file}: missing tensor "${missing[0]}"${missing.length > 1 ? ` (and ${missing.length - 1} more)` : ''}, which ${ADAPTER_CONFIG} targets`,
    );

  const read = async (key: string, shape: [number, number]): Promise<Float32Array> => {
    const info = st.tensors.get(key)!;
    if (info.shape.length !== 2 || info.shape[0] !== shape[0] || info.shape[1] !== shape[1])
      throw new Error(
        `${file}: tensor "${key}" has shape [${info.shape.join(', ')}], expected [${shape.join(', ')}] for the base model`,
      );
    if (info.dtype === 'U8')
      throw new Error(`${file}: tensor "${key}" is U8; LoRA weights must be F32, F16 or BF16`);
    const raw = new Uint8Array(info.byteLength);
    await st.source.read(info.offset, raw);
    const values =
      info.dtype === 'F32'
        ? new Float32Array(raw.buffer)
        : widenHalf(new Uint16Array(raw.buffer), info.dtype === 'F16' ? 'f16' : 'bf16');
    for (let i = 0; i < values.length; i++)
      if (!Number.isFinite(values[i]))
        throw new Error(`${file}: tensor "${key}" holds a non-finite value at index ${i}`);
    if (values.length !== numel(shape)) throw new Error(`${file}: tensor "${key}" is short`);
    return values;
  };

  for (const [key, w] of wanted) {
    if (w.part !== 'A') continue;
    const { site, r } = w;
    const alpha = patternFor(p.alphaPattern, site.path) ?? p.alpha;
    const scale = p.rslora ? alpha / Math.sqrt(r) : alpha / r;
    const A = await read(key, [r, site.in]);
    const B = await read(key.replace('.lora_A.', '.lora_B.'), [site.out, r]);
    const term = (b: Float32Array, out: number): LoraTerm => ({
      r,
      scale,
      A,
      B: b,
      in: site.in,
      out,
    });
    if (site.module === 'Wqkv') {
      // B (3D, r): rows [0, D) feed q, [D, 2D) k, [2D, 3D) v; A is shared
      const D = cfg.hiddenSize;
      (['q_proj', 'k_proj', 'v_proj'] as const).forEach((m, i) => {
        layers[site.layer][m] = term(B.subarray(i * D * r, (i + 1) * D * r), D);
        targetsFound.add(m);
      });
    } else {
      layers[site.layer][site.module] = term(B, site.out);
      targetsFound.add(site.module);
    }
  }
  return {
    source,
    layers,
    info: {
      r: p.r,
      lora_alpha: p.alpha,
      use_rslora: p.rslora,
      targets: LORA_MODULES.filter((m) => targetsFound.has(m)),
    },
  };
}
