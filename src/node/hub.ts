// Models by name: a Hub id (`microsoft/phi-1_5`, optionally `@revision`) resolves through the
// Hugging Face cache that Python's huggingface_hub uses, so whoever ran transformers already
// has the weights:
//   $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub
//     models--ORG--NAME/
//       blobs/<sha256 or git sha1>          the files' bytes, named by their hash
//       snapshots/<commit>/<file>           links to the blobs
//       refs/<revision>                     the commit a branch or tag points to
// `phi download` writes the same layout (src/node/download.ts), and `phi generate` downloads a
// missing model first unless HF_HUB_OFFLINE=1 or --offline.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import * as path from 'node:path';

export const DEFAULT_MODEL = 'microsoft/phi-1_5';

export interface ModelRef {
  repo: string;
  revision: string;
}

/** The cache folder, as huggingface_hub finds it. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HF_HOME) return path.join(env.HF_HOME, 'hub');
  return path.join(homedir(), '.cache', 'huggingface', 'hub');
}

/** Whether the Hub is off limits (HF_HUB_OFFLINE=1, as huggingface_hub reads it). */
export const hubOffline = (env: NodeJS.ProcessEnv = process.env) =>
  /^(1|true|yes|on)$/i.test(env.HF_HUB_OFFLINE ?? '');

/** `org/name` or `org/name@rev` -> a ModelRef; null for anything else (a path). */
export function parseModelRef(spec: string): ModelRef | null {
  const m = /^([A-Za-z0-9][\w.-]*)\/([\w.-]+)(?:@([\w./-]+))?$/.exec(spec);
  if (!m || spec.startsWith('.')) return null;
  return { repo: `${m[1]}/${m[2]}`, revision: m[3] ?? 'main' };
}

/** models--ORG--NAME under the cache. */
export function repoCacheDir(repo: string, cache = hubCacheDir()): string {
  return path.join(cache, `models--${repo.replace(/\//g, '--')}`);
}

/** The commit a revision names in the cache: refs/<revision>, or the revision itself if it is one. */
export function cachedCommit(ref: ModelRef, cache = hubCacheDir()): string | null {
  const dir = repoCacheDir(ref.repo, cache);
  const refFile = path.join(dir, 'refs', ref.revision);
  if (existsSync(refFile)) return readFileSync(refFile, 'utf8').trim();
  if (/^[0-9a-f]{40}$/.test(ref.revision) && existsSync(path.join(dir, 'snapshots', ref.revision)))
    return ref.revision;
  return null;
}

/** The files a loadable model (or PEFT adapter) folder needs; what is missing in `dir` (none: it loads). */
export function missingFiles(dir: string): string[] {
  const has = (f: string) => {
    try {
      return statSync(path.join(dir, f)).isFile(); // follows the snapshot's links
    } catch {
      return false;
    }
  };
  // a PEFT adapter's snapshot: its config and its weights
  if (has('adapter_config.json'))
    return has('adapter_model.safetensors') ? [] : ['adapter_model.safetensors'];
  const missing = ['config.json', 'tokenizer.json'].filter((f) => !has(f));
  if (has('model.safetensors.index.json')) {
    try {
      const index = JSON.parse(
        readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8'),
      );
      const shards = new Set(Object.values((index?.weight_map ?? {}) as Record<string, string>));
      for (const s of shards) if (!has(s)) missing.push(s);
    } catch {
      missing.push('model.safetensors.index.json (unreadable)');
    }
  } else if (!has('model.safetensors')) missing.push('model.safetensors');
  return missing;
}

/** The snapshot folder of a model in the cache, if it is there in full. */
export function cachedSnapshot(ref: ModelRef, cache = hubCacheDir()): string | null {
  const commit = cachedCommit(ref, cache);
  if (!commit) return null;
  const dir = path.join(repoCacheDir(ref.repo, cache), 'snapshots', commit);
  return missingFiles(dir).length === 0 ? dir : null;
}
