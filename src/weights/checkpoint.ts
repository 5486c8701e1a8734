// A Hugging Face checkpoint's tensors: model.safetensors, or the shards that
// model.safetensors.index.json lists, opened as one set of named entries (nothing read yet).
import { QUANT_LAYOUT } from '../formats/quant.js';
import type { ModelFiles } from '../io/source.js';
import { openSafetensors, type SafetensorsFile, type TensorInfo } from './safetensors.js';

/** safetensors metadata key naming the quantization of U8 matrices ("q8" or "q4"). */
export const QUANT_KEY = 'phi_wasm.quantization';
/**
 * safetensors metadata key for the version of the quantized layout (src/formats/quant.ts);
 * files of another version are refused (quantize them again) rather than read wrongly.
 */
export const QUANT_LAYOUT_KEY = 'phi_wasm.quant_layout';
export { QUANT_LAYOUT };

export interface Entry {
  file: SafetensorsFile;
  info: TensorInfo;
}

/** All tensors of a checkpoint, single file or sharded. */
export class Checkpoint {
  private constructor(
    readonly name: string,
    readonly entries: Map<string, Entry>,
    private readonly files: SafetensorsFile[],
  ) {}

  static async open(files: ModelFiles): Promise<Checkpoint> {
    const entries = new Map<string, Entry>();
    const opened: SafetensorsFile[] = [];
    const add = (f: SafetensorsFile) => {
      opened.push(f);
      for (const [name, info] of f.tensors) {
        const prev = entries.get(name);
        if (prev) {
          throw new Error(`tensor "${name}" is in both ${prev.file.source.name} and ${f.source.name}`);
        }
        entries.set(name, { file: f, info });
      }
    };
    try {
      if (await files.exists('model.safetensors.index.json')) {
        const where = `${files.name}/model.safetensors.index.json`;
        let index: unknown;
        try {
          index = JSON.parse(await files.readText('model.safetensors.index.json'));
        } catch (e) {
          throw new Error(`${where}: not valid JSON (${(e as Error).message})`);
        }
        const map = (index as { weight_map?: unknown } | null)?.weight_map;
        if (typeof index !== 'object' || index === null || Array.isArray(index))
          throw new Error(`${where}: must be a JSON object with a weight_map`);
        if (typeof map !== 'object' || map === null || Array.isArray(map))
          throw new Error(`${where}: weight_map must be an object {tensor name: shard file}`);
        for (const [name, shard] of Object.entries(map)) {
          if (typeof shard !== 'string')
            throw new Error(`${where}: weight_map["${name}"] must be a file name, got ${JSON.stringify(shard)}`);
          // a shard is a file of this folder: no way out of it
          if (!/^[\w.-]+$/.test(shard) || shard.startsWith('.'))
            throw new Error(`${where}: shard "${shard}" (for "${name}") is not a plain file name of the model folder`);
        }
        for (const shard of [...new Set(Object.values(map as Record<string, string>))].sort()) {
          if (!(await files.exists(shard))) throw new Error(`${where}: shard ${shard} is missing`);
          add(await openSafetensors(await files.open(shard)));
        }
        for (const [name, shard] of Object.entries(map as Record<string, string>)) {
          const e = entries.get(name);
          if (!e) throw new Error(`${where}: lists tensor "${name}" in ${shard}, which does not hold it`);
        }
      } else if (await files.exists('model.safetensors')) {
        add(await openSafetensors(await files.open('model.safetensors')));
      } else {
        throw new Error(`${files.name}: no model.safetensors or model.safetensors.index.json`);
      }
    } catch (e) {
      // a failed open leaves no file handle for the garbage collector to warn about
      await Promise.all(opened.map((f) => f.source.close?.()));
      throw e;
    }
    return new Checkpoint(files.name, entries, opened);
  }


  has(name: string): boolean {
    return this.entries.has(name);
  }

  get totalBytes(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.info.byteLength;
    return n;
  }

  /** The tensor `name`, checked to have `shape`. */
  entry(name: string, shape: number[]): Entry {
    const e = this.entries.get(name);
    if (!e) throw new Error(`${this.name}: missing tensor "${name}"`);
    const found = e.info.shape;
    if (found.length !== shape.length || found.some((d, i) => d !== shape[i])) {
      throw new Error(
        `${e.file.source.name}: tensor "${name}" has shape [${found.join(', ')}], expected [${shape.join(', ')}]`,
      );
    }
    return e;
  }

  async close(): Promise<void> {
    for (const f of this.files) await f.source.close?.();
  }
}
