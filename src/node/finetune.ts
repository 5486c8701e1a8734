// A fine-tune's folder on disk: the adapter in PEFT's layout (what transformers + PEFT and
// phi-wasm load), and beside it what a resumed run needs and what a person reads:
//   adapter_config.json, adapter_model.safetensors    the adapter
//   optimizer.safetensors                             AdamW's m and v per tensor (F32)
//   trainer_state.json                                the step, tokens seen, every option
//   log.jsonl, loss.svg                               one line a step; the loss curve
// The folder is written whole into a temporary one and renamed into place (node/atomic.ts):
// a run killed while saving leaves the previous checkpoint as it was.
import { readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { PhiConfig } from '../model/config.js';
import { lossChart } from '../train/chart.js';
import type { Checkpoint, FinetuneRun, ResolvedOptions, StepMetrics } from '../train/finetune.js';
import { LoraParams } from '../train/lora_params.js';
import { createRefKernels } from '../kernels/ref/index.js';
import { readAdapter } from '../weights/adapter.js';
import { adapterFolderFiles } from '../weights/adapter_write.js';
import { openSafetensors, writeSafetensors } from '../weights/safetensors.js';
import { bufferSource } from '../io/source.js';
import { writeFolderAtomically } from './atomic.js';
import { dirFiles } from './files.js';

export const TRAINER_STATE = 'trainer_state.json';
export const OPTIMIZER = 'optimizer.safetensors';
const FORMAT = 'phi-wasm-finetune/1';

/** Write run's adapter, optimizer state, log and chart to dir (atomically). */
export async function saveFinetune(
  dir: string,
  run: FinetuneRun,
  base: string,
  /** how the data became sequences (seq, format, ..), for a resumed run to repeat */
  data: Record<string, unknown> = {},
  flag = '--out',
): Promise<void> {
  const ck = run.checkpoint();
  const names = run.params.tensors().map((t) => t.name);
  const f32 = (a: Float32Array) => new Uint8Array(Float32Array.from(a).buffer);
  const optimizer = writeSafetensors(
    names.flatMap((name, i) => [
      {
        name: `${name}.m`,
        dtype: 'F32' as const,
        shape: [ck.optimizer.m[i].length],
        data: f32(ck.optimizer.m[i]),
      },
      {
        name: `${name}.v`,
        dtype: 'F32' as const,
        shape: [ck.optimizer.v[i].length],
        data: f32(ck.optimizer.v[i]),
      },
    ]),
    { format: 'pt', optimizer_step: String(ck.optimizer.step) },
  );
  const state = {
    format: FORMAT,
    base_model: base,
    step: ck.step,
    tokens: ck.tokens,
    optimizer_step: ck.optimizer.step,
    tensors: names,
    options: ck.options,
    data: { ...data, hash: run.dataHash() },
  };
  const files = {
    ...adapterFolderFiles(ck.adapter, base, { lora_dropout: run.options.dropout }),
    [OPTIMIZER]: optimizer,
    [TRAINER_STATE]: JSON.stringify(state, null, 2) + '\n',
    'log.jsonl': run.log.map((m) => JSON.stringify(m)).join('\n') + (run.log.length ? '\n' : ''),
    'loss.svg': lossChart(
      run.log,
      `phi finetune: ${base}, step ${ck.step} of ${run.options.steps}`,
    ),
  };
  await writeFolderAtomically(
    dir,
    async (tmp) => {
      for (const [name, data] of Object.entries(files)) await writeFile(path.join(tmp, name), data);
    },
    flag,
    'adapter_config.json',
  );
}

/** A folder saveFinetune wrote, as a Checkpoint to resume from; every part checked. */
export async function loadCheckpoint(
  dir: string,
  cfg: PhiConfig,
): Promise<{ checkpoint: Checkpoint; data: Record<string, unknown> }> {
  const where = (f: string) => path.join(dir, f);
  let state: {
    format?: string;
    step: number;
    tokens: number;
    optimizer_step: number;
    tensors: string[];
    options: ResolvedOptions;
    data?: Record<string, unknown>;
  };
  try {
    state = JSON.parse(await readFile(where(TRAINER_STATE), 'utf8'));
  } catch (e) {
    throw new Error(
      `--resume ${dir}: cannot read ${TRAINER_STATE} (${(e as Error).message.split('\n')[0]}): resume takes a folder phi finetune wrote`,
    );
  }
  if (state.format !== FORMAT)
    throw new Error(
      `${where(TRAINER_STATE)}: "format" is ${JSON.stringify(state.format)}, expected "${FORMAT}"`,
    );
  const adapter = await readAdapter(dirFiles(dir), cfg);
  // the parameter order the optimizer's tensors follow: LoraParams' own
  const names = LoraParams.from(adapter, createRefKernels())
    .tensors()
    .map((t) => t.name);
  if (JSON.stringify(names) !== JSON.stringify(state.tensors))
    throw new Error(
      `${where(TRAINER_STATE)}: its tensors do not match the adapter's (${names.length} in the adapter, ${state.tensors.length} listed)`,
    );
  const bytes = new Uint8Array(await readFile(where(OPTIMIZER)));
  const file = await openSafetensors(bufferSource(where(OPTIMIZER), bytes));
  const read = (name: string, length: number) => {
    const t = file.tensors.get(name);
    if (!t || t.dtype !== 'F32' || t.byteLength !== length * 4)
      throw new Error(
        `${where(OPTIMIZER)}: tensor "${name}" is missing or not F32 of ${length} values`,
      );
    return new Float32Array(bytes.slice(t.offset, t.offset + t.byteLength).buffer);
  };
  const sizes = LoraParams.from(adapter, createRefKernels())
    .tensors()
    .map((t) => t.p.length);
  const log = (await readFile(where('log.jsonl'), 'utf8').catch(() => ''))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as StepMetrics);
  const checkpoint: Checkpoint = {
    step: state.step,
    tokens: state.tokens,
    adapter,
    options: state.options,
    optimizer: {
      step: state.optimizer_step,
      m: names.map((n, i) => read(`${n}.m`, sizes[i])),
      v: names.map((n, i) => read(`${n}.v`, sizes[i])),
    },
    log,
  };
  return { checkpoint, data: state.data ?? {} };
}
