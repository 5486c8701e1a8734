// `phi finetune`: train a LoRA adapter on a frozen model and save it in PEFT's layout
// (src/node/finetune.ts), with a progress line, a JSONL log and a loss chart. Ctrl-C saves a
// checkpoint that --resume continues exactly.
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { Phi } from '../engine.js';
import { LORA_MODULES, type LoraModule } from '../model/lora.js';
import { dirFiles } from '../node/files.js';
import * as path from 'node:path';
import { formatBytes, type TrainingOptions } from '../memory.js';
import { loadCheckpoint, saveFinetune, TRAINER_STATE } from '../node/finetune.js';
import type { Checkpointing } from '../train/plan.js';
import type { FormatName } from '../prompts.js';
import { parseJsonl, type DataInput } from '../train/data.js';
import {
  FINETUNE_DEFAULTS,
  type Checkpoint,
  type FinetuneOptions,
  type StepMetrics,
} from '../train/finetune.js';
import type { ScheduleKind } from '../train/schedule.js';
import { readAdapter } from '../weights/adapter.js';
import { UsageError, type Flag, type Values } from './args.js';
import { HELP, load, MODEL_FLAGS, type Command } from './common.js';

/** A data file: JSONL (.jsonl, .json), or any other file as one plain-text document. */
function readData(flag: string, file: string): DataInput {
  if (!existsSync(file)) throw new UsageError(`${flag} ${file}: no such file`);
  const text = readFileSync(file, 'utf8');
  if (/\.jsonl?$/i.test(file)) return parseJsonl(text, file);
  if (!text.trim()) throw new UsageError(`${flag} ${file}: the file is empty`);
  return [{ text }];
}

const duration = (s: number) =>
  !Number.isFinite(s)
    ? '?'
    : s < 90
      ? `${Math.round(s)}s`
      : s < 5400
        ? `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`
        : `${Math.floor(s / 3600)}h${String(Math.round((s % 3600) / 60)).padStart(2, '0')}m`;

function progressLine(m: StepMetrics, steps: number): string {
  const ev = m.evalLoss === undefined ? '' : `  eval ${m.evalLoss.toFixed(4)}`;
  return (
    `step ${m.step}/${steps}  loss ${m.loss.toFixed(4)}${ev}  lr ${m.lr.toExponential(2)}  ` +
    `${m.tokensPerSecond.toFixed(1)} tok/s  left ${duration(m.secondsLeft)}`
  );
}

/** What a saved run was trained with, read before the model loads (node/finetune.ts checks it all after). */
function savedShape(dir: string): {
  seq?: number;
  rank?: number;
  targets?: LoraModule[];
  dropout?: number;
  checkpointing?: string;
} {
  try {
    const state = JSON.parse(readFileSync(path.join(dir, TRAINER_STATE), 'utf8'));
    const o = state.options ?? {};
    return {
      seq: typeof state.data?.seq === 'number' ? state.data.seq : undefined,
      rank: typeof o.rank === 'number' ? o.rank : undefined,
      targets: Array.isArray(o.targets) ? o.targets : undefined,
      dropout: typeof o.dropout === 'number' ? o.dropout : undefined,
      checkpointing:
        typeof o.gradientCheckpointing === 'string' ? o.gradientCheckpointing : undefined,
    };
  } catch {
    return {}; // loadCheckpoint says what is wrong with it
  }
}

function targetsOf(v: Values): LoraModule[] | undefined {
  if (v.targets === undefined) return undefined;
  const list = (v.targets as string)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const t of list)
    if (!LORA_MODULES.includes(t as LoraModule))
      throw new UsageError(`--targets: "${t}" is not one of ${LORA_MODULES.join(', ')}`);
  if (!list.length) throw new UsageError('--targets names no module');
  return list as LoraModule[];
}

async function finetune(v: Values): Promise<void> {
  if (!v.data) throw new UsageError('finetune needs --data FILE (JSONL, or a plain text file)');
  const out = (v.out as string | undefined) ?? (v.resume as string | undefined);
  if (!out) throw new UsageError('finetune needs --out DIR (where the adapter goes)');
  if (v.epochs !== undefined && v.steps !== undefined)
    throw new UsageError('give --epochs or --steps, not both');
  const format = (v.format as string | undefined) ?? null;
  if (format !== null && !['qa', 'chat', 'code'].includes(format))
    throw new UsageError(`--format must be qa, chat or code, got "${format}"`);
  const schedule = v.schedule as string | undefined;
  if (schedule !== undefined && !['cosine', 'constant', 'linear'].includes(schedule))
    throw new UsageError(`--schedule must be cosine, constant or linear, got "${schedule}"`);
  if (v.resume && v.init)
    throw new UsageError('--init starts a new run; --resume goes on with one: not both');
  const ckpt = v['gradient-checkpointing'] as string | undefined;
  if (ckpt !== undefined && !['auto', 'on', 'off'].includes(ckpt))
    throw new UsageError(`--gradient-checkpointing must be auto, on or off, got "${ckpt}"`);
  const data = readData('--data', v.data as string);
  const evalData = v.eval ? readData('--eval', v.eval as string) : undefined;

  // the load makes room for the training (memory.ts), and refuses, naming what would fit,
  // before reading a byte; a resumed run's shape is its saved one
  const saved = v.resume ? savedShape(v.resume as string) : {};
  const seq0 = saved.seq ?? (v.seq as number | undefined) ?? 256;
  const training: TrainingOptions = {
    seq: seq0,
    rank: saved.rank ?? (v.rank as number | undefined) ?? FINETUNE_DEFAULTS.rank,
    targets: saved.targets ?? targetsOf(v) ?? FINETUNE_DEFAULTS.targets,
    dropout: (saved.dropout ?? (v.dropout as number | undefined) ?? FINETUNE_DEFAULTS.dropout) > 0,
    checkpointing: (ckpt ?? saved.checkpointing ?? 'auto') as Checkpointing,
  };
  // training needs no KV cache beyond a sequence: the model's 2048 positions would take 768 MiB
  const phi: Phi = await load(v, {
    maxPositions: (v.context as number | undefined) ?? seq0,
    training,
  });
  let resume: Checkpoint | undefined;
  let options: FinetuneOptions;
  let seq = (v.seq as number | undefined) ?? 256;
  let fmt = format;
  let savedHash: unknown;
  try {
    if (v.resume) {
      const saved = await loadCheckpoint(v.resume as string, phi.config);
      resume = saved.checkpoint;
      // the run goes on as it was set up (the data made into the same sequences); only its
      // length may change
      if (typeof saved.data.seq === 'number') seq = saved.data.seq;
      if (saved.data.format !== undefined) fmt = saved.data.format as string | null;
      savedHash = saved.data.hash;
      const { steps, epochs: _epochs, ...rest } = resume.options;
      options = {
        ...rest,
        steps: (v.steps as number | undefined) ?? steps,
        resume,
        gradientCheckpointing: training.checkpointing,
      };
    } else {
      options = {
        rank: v.rank as number | undefined,
        alpha: v.alpha as number | undefined,
        targets: targetsOf(v),
        rslora: v.rslora === true ? true : undefined,
        lr: v.lr as number | undefined,
        weightDecay: v['weight-decay'] as number | undefined,
        beta1: v.beta1 as number | undefined,
        beta2: v.beta2 as number | undefined,
        eps: v.eps as number | undefined,
        epochs: v.epochs as number | undefined,
        steps: v.steps as number | undefined,
        batch: v.batch as number | undefined,
        accumulate: v.accumulate as number | undefined,
        warmup: v.warmup as number | undefined,
        schedule: schedule as ScheduleKind | undefined,
        clip: v.clip as number | undefined,
        dropout: v.dropout as number | undefined,
        shuffle: v['no-shuffle'] ? false : undefined,
        seed: v.seed as number | undefined,
        evalEvery: v['eval-every'] as number | undefined,
        gradientCheckpointing: training.checkpointing,
        init: v.init ? await readAdapter(dirFiles(v.init as string), phi.config) : undefined,
      };
    }
  } catch (e) {
    phi.close();
    throw e;
  }
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const base = (v.model as string | undefined) ?? 'microsoft/phi-1_5';
  try {
    const run = phi.finetune(data, {
      ...options,
      seq,
      format: fmt as FormatName | null,
      eval: evalData,
      evalSplit: v['eval-split'] as number | undefined,
      signal: abort.signal,
    } as FinetuneOptions);
    const o = run.options;
    if (savedHash !== undefined && savedHash !== run.dataHash())
      throw new Error(
        `--resume ${v.resume}: --data ${v.data} does not make the sequences the run was trained on ` +
          `(${run.dataHash()}, saved ${savedHash}): resume with the same data`,
      );
    const dataInfo = { seq, format: fmt, file: v.data };
    const quiet = v.quiet === true;
    const tty = process.stderr.isTTY;
    if (!quiet)
      process.stderr.write(
        `finetune: ${run.params.count().toLocaleString('en')} LoRA parameters (rank ${o.rank}, alpha ${o.alpha}, ` +
          `${o.targets.join(',')}), ${o.steps} steps of ${o.batch * o.accumulate} sequence(s) ` +
          `of up to ${seq} tokens${resume ? `, resumed at step ${resume.step}` : ''}; ` +
          (run.memory.keep ? 'activations kept' : 'gradient checkpointing') +
          ` (${formatBytes(run.memory.total)})\n`,
      );
    const logFile = v.log as string | undefined;
    if (logFile && !resume) writeFileSync(logFile, '');
    const saveEvery = v['save-every'] as number | undefined;
    for await (const m of run) {
      if (logFile) appendFileSync(logFile, JSON.stringify(m) + '\n');
      if (!quiet)
        process.stderr.write(
          tty ? `\r\x1b[K${progressLine(m, o.steps)}` : `${progressLine(m, o.steps)}\n`,
        );
      if (saveEvery && m.step % saveEvery === 0 && m.step < o.steps)
        await saveFinetune(out, run, base, dataInfo);
    }
    if (!quiet && tty) process.stderr.write('\n');
    await saveFinetune(out, run, base, dataInfo);
    const last = run.log[run.log.length - 1];
    if (abort.signal.aborted) {
      process.stderr.write(
        `finetune: stopped at step ${last?.step ?? 0} of ${o.steps}; saved a checkpoint to ${out} ` +
          `(phi finetune --resume ${out} --data ${v.data} goes on from there)\n`,
      );
      process.exitCode = 130;
    } else if (!quiet) {
      process.stderr.write(
        `finetune: wrote the adapter to ${out} (loss ${last.loss.toFixed(4)}` +
          `${last.evalLoss !== undefined ? `, eval ${last.evalLoss.toFixed(4)}` : ''}); ` +
          `try: phi generate --adapter ${out} ...\n`,
      );
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    phi.close();
  }
}

const TRAIN_FLAGS: Flag[] = [
  {
    name: 'data',
    type: 'string',
    arg: 'FILE',
    help: 'training data: JSONL ({"text"}, {"prompt", "completion"} or {"ids"}), or plain text',
  },
  {
    name: 'eval',
    type: 'string',
    arg: 'FILE',
    help: 'eval data, the same formats (default: none, or --eval-split)',
  },
  {
    name: 'eval-split',
    type: 'number',
    arg: 'F',
    min: 0,
    max: 0.9,
    help: 'hold out this fraction of the training sequences for eval',
  },
  {
    name: 'eval-every',
    type: 'integer',
    arg: 'N',
    min: 0,
    help: 'an eval loss every N steps (and after the last)',
  },
  {
    name: 'format',
    type: 'string',
    arg: 'F',
    help: 'qa, chat or code: put prompt/completion pairs in the model card format',
  },
  { name: 'rank', short: 'r', type: 'integer', arg: 'R', min: 1, help: 'LoRA rank (default 8)' },
  {
    name: 'alpha',
    type: 'number',
    arg: 'A',
    above: 0,
    help: 'lora_alpha (default 16): the scale is alpha / rank',
  },
  { name: 'rslora', type: 'boolean', help: 'scale by alpha / sqrt(rank) (rsLoRA)' },
  {
    name: 'targets',
    type: 'string',
    arg: 'LIST',
    help: `modules to adapt (default ${LORA_MODULES.join(',')})`,
  },
  {
    name: 'dropout',
    type: 'number',
    arg: 'P',
    min: 0,
    max: 0.99,
    help: "lora_dropout on each term's input (default 0.05)",
  },
  { name: 'lr', type: 'number', arg: 'LR', above: 0, help: 'peak learning rate (default 2e-4)' },
  {
    name: 'weight-decay',
    type: 'number',
    arg: 'W',
    min: 0,
    help: "AdamW's decoupled weight decay (default 0.01)",
  },
  {
    name: 'beta1',
    type: 'number',
    arg: 'B',
    min: 0,
    max: 0.999999,
    help: 'AdamW beta1 (default 0.9)',
  },
  {
    name: 'beta2',
    type: 'number',
    arg: 'B',
    min: 0,
    max: 0.999999,
    help: 'AdamW beta2 (default 0.999)',
  },
  { name: 'eps', type: 'number', arg: 'E', above: 0, help: 'AdamW epsilon (default 1e-8)' },
  {
    name: 'schedule',
    type: 'string',
    arg: 'S',
    help: 'cosine (default), constant or linear, after the warm-up',
  },
  { name: 'warmup', type: 'integer', arg: 'N', min: 0, help: 'linear warm-up steps (default 0)' },
  {
    name: 'clip',
    type: 'number',
    arg: 'C',
    min: 0,
    help: 'clip the gradient norm to C (default 1; 0 = off)',
  },
  { name: 'epochs', type: 'number', arg: 'N', above: 0, help: 'passes over the data (default 1)' },
  {
    name: 'steps',
    type: 'integer',
    arg: 'N',
    min: 1,
    help: 'optimizer steps (instead of --epochs)',
  },
  {
    name: 'seq',
    type: 'integer',
    arg: 'N',
    min: 2,
    help: 'tokens a sequence: documents are packed to it (default 256)',
  },
  { name: 'batch', type: 'integer', arg: 'N', min: 1, help: 'sequences a micro-batch (default 1)' },
  {
    name: 'accumulate',
    type: 'integer',
    arg: 'N',
    min: 1,
    help: 'micro-batches a step (default 1)',
  },
  {
    name: 'seed',
    type: 'integer',
    arg: 'S',
    min: 0,
    help: 'seed of the initialisation, shuffle and dropout (default 0)',
  },
  { name: 'no-shuffle', type: 'boolean', help: 'keep the data in file order' },
  {
    name: 'init',
    type: 'string',
    arg: 'DIR',
    help: "start from this PEFT adapter instead of PEFT's initialisation",
  },
  {
    name: 'resume',
    type: 'string',
    arg: 'DIR',
    help: 'go on with a run saved there (Ctrl-C or --save-every)',
  },
  {
    name: 'out',
    type: 'string',
    arg: 'DIR',
    help: 'where the adapter, its optimizer state, log.jsonl and loss.svg go',
  },
  {
    name: 'save-every',
    type: 'integer',
    arg: 'N',
    min: 1,
    help: 'also save a checkpoint every N steps',
  },
  { name: 'log', type: 'string', arg: 'FILE', help: 'write one JSON line a step there as it runs' },
  {
    name: 'gradient-checkpointing',
    type: 'string',
    arg: 'auto|on|off',
    help: "recompute each block's activations in the backward instead of keeping them: slower, less memory (auto: keep them when they fit)",
  },
];

export const finetuneCommand: Command = {
  usage:
    'phi finetune --data FILE --out DIR [--model DIR|ID] [--eval FILE] [--format qa|chat|code] [--rank 8] [--alpha 16] ' +
    '[--targets q_proj,k_proj,v_proj,dense,fc1,fc2] [--lr 2e-4] [--epochs N | --steps N] [--seq 256] [--batch N] ' +
    '[--accumulate N] [--warmup N] [--seed S] [--resume DIR]',
  about:
    "Fine-tune a LoRA adapter on the frozen model (any --dtype: q4 is QLoRA) and save it in PEFT's layout.\n" +
    'Ctrl-C saves a checkpoint; --resume DIR goes on from it exactly.',
  flags: [...TRAIN_FLAGS, ...MODEL_FLAGS, HELP],
  run: finetune,
};
