// Node entry: everything in the core plus loading from a directory on disk or by Hub id.
import { loadPhiFrom, type LoadOptions } from '../load.js';
import type { Phi } from '../engine.js';
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

export interface NodeLoadOptions extends LoadOptions {
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
  const { offline, ...rest } = options;
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
  const t0 = Date.now();
  // the bar on a terminal only: in a log, the line at the end says it all
  const bar = progress?.isTTY ? progressBar(`loading ${model}`, 1, progress) : null;
  const phi = await loadPhiFrom(dirFiles(dir), {
    ...rest,
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
