// Node entry: everything in the core plus loading from a directory on disk or by Hub id.
import { loadPhiFrom, type LoadOptions } from '../load.js';
import type { Phi } from '../engine.js';
import type { ModelFiles } from '../io/source.js';
import { dirFiles } from './files.js';
import { DEFAULT_MODEL } from './hub.js';
import { resolveModel } from './resolve.js';
import { progressBar, type ProgressOut } from './progress.js';
import { defaultThreads, readWasm, spawnWorker } from './wasm.js';

export * from '../index.js';
export { dirFiles, openFileSource } from './files.js';
export { readWasm, spawnWorker, defaultThreads } from './wasm.js';
export { DEFAULT_MODEL, hubCacheDir, parseModelRef, cachedSnapshot, type ModelRef } from './hub.js';
export { resolveModel, type ResolveOptions } from './resolve.js';
export { download, type DownloadOptions } from './download.js';
export { serve, type ServeOptions, type RunningServer } from './serve.js';
export { synthesize, type SynthOptions } from './synth.js';
export { saveFinetune, loadCheckpoint } from './finetune.js';

export interface NodeLoadOptions extends Omit<LoadOptions, 'adapters' | 'merge'> {
  /** LoRA adapters held unmerged, by name: PEFT folders or Hub ids (as models resolve). */
  adapters?: Record<string, string | ModelFiles>;
  /** LoRA adapters merged into the weights at load: folders or Hub ids. */
  merge?: string | ModelFiles | (string | ModelFiles)[];
  /** Never download a Hub id missing from the cache (as HF_HUB_OFFLINE=1). */
  offline?: boolean;
  /**
   * Print what is loading, a progress bar while reading, and the time and memory it took.
   * Default: stderr when it is a terminal; null for nothing.
   */
  progress?: ProgressOut | null;
}

/**
 * Load a model from a folder, or by Hub id (`microsoft/phi-1_5[@revision]`, the default)
 * from the Hugging Face cache, downloading it there first if it is missing.
 */
export async function loadPhi(
  model: string = DEFAULT_MODEL,
  options: NodeLoadOptions = {},
): Promise<Phi> {
  const { offline, adapters, merge, ...rest } = options;
  const progress =
    options.progress === undefined
      ? process.stderr.isTTY
        ? process.stderr
        : null
      : options.progress;
  const dir = await resolveModel(model, {
    offline,
    progress,
    onProgress: (file, loaded, total) =>
      rest.onProgress?.(loaded, total, { stage: 'download', file }),
  });
  const adapterFiles = async (a: string | ModelFiles): Promise<ModelFiles> =>
    typeof a === 'string'
      ? dirFiles(await resolveModel(a, { offline, progress, kind: 'adapter' }))
      : a;
  const unmerged: Record<string, ModelFiles> = {};
  for (const [name, a] of Object.entries(adapters ?? {})) unmerged[name] = await adapterFiles(a);
  const merged: ModelFiles[] = [];
  for (const a of [merge ?? []].flat()) merged.push(await adapterFiles(a));
  const t0 = Date.now();
  // the bar on a terminal only: in a log, the line at the end says it all
  const bar = progress?.isTTY ? progressBar(`loading ${model}`, 1, progress) : null;
  const phi = await loadPhiFrom(dirFiles(dir), {
    ...rest,
    ...(adapters ? { adapters: unmerged } : {}),
    ...(merge ? { merge: merged } : {}),
    threads: rest.threads ?? (rest.backend === 'js' ? 1 : defaultThreads()),
    wasm: { readWasm, spawnWorker, ...rest.wasm },
    onProgress: (loaded, total, info) => {
      bar?.update(loaded, total);
      rest.onProgress?.(loaded, total, info);
    },
  });
  if (progress) {
    bar?.finish();
    const rss = process.memoryUsage().rss / 2 ** 30;
    progress.write(
      `loaded ${model} (${phi.model.weights.lm_head.weight.dtype}, ${phi.model.kernels.name}) in ` +
        `${((Date.now() - t0) / 1000).toFixed(1)} s, ${rss.toFixed(2)} GiB resident\n`,
    );
  }
  return phi;
}
