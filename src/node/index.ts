// Node entry: everything in the core plus loading from a directory on disk.
import { existsSync } from 'node:fs';
import { loadPhiFrom, type LoadOptions } from '../load.js';
import type { Phi } from '../engine.js';
import { dirFiles } from './files.js';
import { defaultThreads, readWasm, spawnWorker } from './wasm.js';

export * from '../index.js';
export { dirFiles, openFileSource } from './files.js';
export { readWasm, spawnWorker, defaultThreads } from './wasm.js';

export const DEFAULT_MODEL_DIR = 'weights/phi-1_5';

export function missingModelMessage(dir: string): string {
  return (
    `model directory ${dir} not found. Get the real weights with \`phi download\` ` +
    `(microsoft/phi-1_5 from the Hugging Face hub into ${DEFAULT_MODEL_DIR}), or pass --model DIR`
  );
}

export async function loadPhi(
  dir: string = DEFAULT_MODEL_DIR,
  options: LoadOptions = {},
): Promise<Phi> {
  if (!existsSync(dir)) throw new Error(missingModelMessage(dir));
  return loadPhiFrom(dirFiles(dir), {
    ...options,
    threads: options.threads ?? (options.backend === 'js' ? 1 : defaultThreads()),
    wasm: { readWasm, spawnWorker, ...options.wasm },
  });
}
