// phi-1.5's files without its 2.8 GB of data, for tests of what loading decides before the
// weights are read (the memory plan, the README's memory claims).
import type { ByteSource, ModelFiles } from '../src/io/source.js';
import { PHI_1_5 } from '../src/model/config.js';

/**
 * phi-1.5's files without its 2.8 GB of data: a real header and config, reads of the data
 * answered with zeros. Enough to load until the weights would be read.
 */
export function phi15Files(): ModelFiles {
  const names: [string, number[]][] = [['model.embed_tokens.weight', [51200, 2048]]];
  for (let l = 0; l < 24; l++) {
    const p = `model.layers.${l}`;
    for (const s of ['weight', 'bias']) names.push([`${p}.input_layernorm.${s}`, [2048]]);
    for (const q of ['q_proj', 'k_proj', 'v_proj', 'dense']) {
      names.push(
        [`${p}.self_attn.${q}.weight`, [2048, 2048]],
        [`${p}.self_attn.${q}.bias`, [2048]],
      );
    }
    names.push([`${p}.mlp.fc1.weight`, [8192, 2048]], [`${p}.mlp.fc1.bias`, [8192]]);
    names.push([`${p}.mlp.fc2.weight`, [2048, 8192]], [`${p}.mlp.fc2.bias`, [2048]]);
  }
  for (const s of ['weight', 'bias']) names.push([`model.final_layernorm.${s}`, [2048]]);
  names.push(['lm_head.weight', [51200, 2048]], ['lm_head.bias', [51200]]);
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let off = 0;
  for (const [name, shape] of names) {
    const bytes = shape.reduce((a, b) => a * b, 2);
    header[name] = { dtype: 'F16', shape, data_offsets: [off, off + bytes] };
    off += bytes;
  }
  const head = new TextEncoder().encode(JSON.stringify(header));
  const size = 8 + head.length + off;
  const source: ByteSource = {
    name: 'phi-1_5/model.safetensors',
    size,
    async read(offset, into) {
      into.fill(0);
      const prefix = new Uint8Array(8 + head.length);
      new DataView(prefix.buffer).setBigUint64(0, BigInt(head.length), true);
      prefix.set(head, 8);
      if (offset < prefix.length) into.set(prefix.subarray(offset, offset + into.length));
    },
  };
  const config = JSON.stringify({
    model_type: 'phi',
    vocab_size: PHI_1_5.vocabSize,
    hidden_size: 2048,
    intermediate_size: 8192,
    num_hidden_layers: 24,
    num_attention_heads: 32,
    partial_rotary_factor: 0.5,
    rope_theta: 10000,
    layer_norm_eps: 1e-5,
    max_position_embeddings: 2048,
    hidden_act: 'gelu_new',
  });
  return {
    name: 'phi-1_5',
    exists: async (f) => f === 'config.json' || f === 'model.safetensors',
    readText: async () => config,
    open: async () => source,
  };
}
