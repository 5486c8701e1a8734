// A model named on the command line or to loadPhi: a folder as it is, or a Hub id resolved
// through the Hugging Face cache (hub.ts) and downloaded into it when missing (download.ts).
import { existsSync, statSync } from 'node:fs';
import { download } from './download.js';
import { cachedSnapshot, DEFAULT_MODEL, hubCacheDir, hubOffline, parseModelRef } from './hub.js';
import type { ProgressOut } from './progress.js';

export interface ResolveOptions {
  /** Never download: fail if the model is not in the cache (also HF_HUB_OFFLINE=1). */
  offline?: boolean;
  /** Download progress goes here (default stderr); null for none. */
  progress?: ProgressOut | null;
  /** The cache folder (default hubCacheDir()). */
  cache?: string;
  /** Called as a download's bytes arrive (download.ts). */
  onProgress?: (file: string, loadedBytes: number, totalBytes: number) => void;
  /** What is being resolved, for messages (default 'model'). */
  kind?: 'model' | 'adapter';
}

/**
 * A model folder for `spec`: a directory as it is, or a Hub id resolved through the cache and,
 * when missing there, downloaded into it first (unless offline).
 */
export async function resolveModel(spec: string, o: ResolveOptions = {}): Promise<string> {
  const kind = o.kind ?? 'model';
  if (existsSync(spec)) {
    if (!statSync(spec).isDirectory())
      throw new Error(`${spec} is a file; --${kind} takes a folder or a Hub id`);
    return spec;
  }
  const ref = parseModelRef(spec);
  if (!ref)
    throw new Error(
      kind === 'adapter'
        ? `adapter folder ${spec} not found (nor is it a Hub id like user/phi-1_5-lora): a PEFT adapter folder holds adapter_config.json and adapter_model.safetensors`
        : `model folder ${spec} not found (nor is it a Hub id like ${DEFAULT_MODEL}); ` +
            '`phi download` gets microsoft/phi-1_5 into the Hugging Face cache, `phi synth --out DIR` writes a random model',
    );
  const cache = o.cache ?? hubCacheDir();
  const found = cachedSnapshot(ref, cache);
  if (found) return found;
  const name = `${ref.repo}${ref.revision === 'main' ? '' : `@${ref.revision}`}`;
  if (o.offline || hubOffline())
    throw new Error(
      `${name} is not in the Hugging Face cache (${cache}) and downloads are off (${hubOffline() ? 'HF_HUB_OFFLINE' : '--offline'}); ` +
        `run phi download --repo ${ref.repo} where there is a network, or phi synth --out DIR for a random model`,
    );
  const out = o.progress === null ? { write: () => true } : (o.progress ?? process.stderr);
  out.write(`${name} is not in the Hugging Face cache (${cache}): downloading it\n`);
  const r = await download({
    repo: ref.repo,
    revision: ref.revision,
    cache,
    log: out,
    onProgress: o.onProgress,
  });
  return r.dir;
}
