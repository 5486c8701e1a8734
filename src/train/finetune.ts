// The training loop: LoRA terms on a frozen Phi, AdamW, a warm-up then cosine (or constant)
// learning rate, gradient accumulation and clipping, an eval loss now and then. Every source
// of randomness is a stream of one seed (train/rng.ts):
//   the initialisation        Rng(seed, 0)
//   epoch e's order           Rng(seed, 1, e)
//   step k's dropout masks    Rng(seed, 2, k, sequence, layer, module)
// so a run resumed at step k (the parameters and the optimizer state as saved there) goes on
// exactly as the uninterrupted one would.
import type { PhiForCausalLM } from '../model/causal_lm.js';
import { LORA_MODULES, type LoraAdapter, type LoraModule } from '../model/lora.js';
import { ADAMW_DEFAULTS, AdamW, clipGradNorm, type AdamWState } from './adamw.js';
import type { Dropout } from './block.js';
import { CausalLMTrainer } from './causal_lm.js';
import { targetCount, type Sequence } from './data.js';
import { LoraParams } from './lora_params.js';
import { Rng } from './rng.js';
import type { Checkpointing, TrainPlan } from './plan.js';
import { learningRate, type ScheduleKind } from './schedule.js';

export interface FinetuneOptions {
  rank?: number;
  alpha?: number;
  targets?: readonly LoraModule[];
  rslora?: boolean;
  lr?: number;
  weightDecay?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** passes over the data (default 1), or `steps` optimizer steps */
  epochs?: number;
  steps?: number;
  /** sequences a micro-batch, and micro-batches a step */
  batch?: number;
  accumulate?: number;
  warmup?: number;
  schedule?: ScheduleKind;
  /** clip the global gradient norm to this (0: never) */
  clip?: number;
  /** PEFT's lora_dropout on each term's input */
  dropout?: number;
  shuffle?: boolean;
  seed?: number;
  /** an eval loss every this many steps (and after the last) */
  evalEvery?: number;
  /** recompute each block's activations in the backward (on), keep them (off), or keep them when they fit (auto) */
  gradientCheckpointing?: Checkpointing;
  /** start from this adapter instead of PEFT's initialisation */
  init?: LoraAdapter;
  /** go on from a checkpoint (its parameters, optimizer state and step) */
  resume?: Checkpoint;
  signal?: AbortSignal;
}

/** What a run's every option resolves to (saved with a checkpoint). */
export type ResolvedOptions = Required<
  Omit<FinetuneOptions, 'init' | 'resume' | 'signal' | 'epochs' | 'steps'>
> & { steps: number; epochs: number | null };

export const FINETUNE_DEFAULTS = {
  rank: 8,
  alpha: 16,
  targets: LORA_MODULES,
  rslora: false,
  lr: 2e-4,
  ...ADAMW_DEFAULTS,
  batch: 1,
  accumulate: 1,
  warmup: 0,
  schedule: 'cosine' as ScheduleKind,
  clip: 1, // the Hugging Face Trainer's max_grad_norm
  dropout: 0.05,
  shuffle: true,
  seed: 0,
  evalEvery: 0,
  gradientCheckpointing: 'auto' as Checkpointing,
};

/** One optimizer step's figures (a line of the log). */
export interface StepMetrics {
  step: number;
  /** the loss of the step's sequences, before the update */
  loss: number;
  lr: number;
  /** target tokens so far */
  tokens: number;
  tokensPerSecond: number;
  gradNorm: number;
  epoch: number;
  evalLoss?: number;
  seconds: number;
  /** estimated seconds to the last step */
  secondsLeft: number;
}

/** A run's state at a step: enough to go on exactly. */
export interface Checkpoint {
  step: number;
  adapter: LoraAdapter;
  optimizer: AdamWState;
  options: ResolvedOptions;
  tokens: number;
  /** the steps logged so far, to go on with */
  log?: StepMetrics[];
}

export class FinetuneRun implements AsyncIterable<StepMetrics> {
  readonly params: LoraParams;
  readonly options: ResolvedOptions;
  readonly log: StepMetrics[] = [];
  private readonly trainer: CausalLMTrainer;
  private readonly optimizer: AdamW;
  private readonly perStep: number;
  private step: number;
  private tokens: number;

  constructor(
    private readonly model: PhiForCausalLM,
    private readonly train: Sequence[],
    private readonly evalSet: Sequence[],
    options: FinetuneOptions = {},
  ) {
    if (!train.length) throw new Error('no training sequences');
    const o = { ...FINETUNE_DEFAULTS, ...withoutUndefined(options) };
    for (const [k, min] of [
      ['rank', 1],
      ['batch', 1],
      ['accumulate', 1],
      ['warmup', 0],
      ['seed', 0],
      ['evalEvery', 0],
    ] as const)
      if (!Number.isSafeInteger(o[k]) || o[k] < min)
        throw new Error(`${k} must be an integer >= ${min}, got ${o[k]}`);
    for (const k of ['alpha', 'lr', 'weightDecay', 'eps', 'clip'] as const)
      if (!Number.isFinite(o[k]) || o[k] < 0)
        throw new Error(`${k} must be a number >= 0, got ${o[k]}`);
    for (const k of ['beta1', 'beta2', 'dropout'] as const)
      if (!(o[k] >= 0 && o[k] < 1)) throw new Error(`${k} must be in [0, 1), got ${o[k]}`);
    if (!['auto', 'on', 'off'].includes(o.gradientCheckpointing))
      throw new Error(
        `gradientCheckpointing must be auto, on or off, got "${o.gradientCheckpointing}"`,
      );
    for (const t of o.targets)
      if (!LORA_MODULES.includes(t))
        throw new Error(`unknown target "${t}" (${LORA_MODULES.join(', ')})`);
    this.perStep = o.batch * o.accumulate;
    const stepsPerEpoch = Math.ceil(train.length / this.perStep);
    let steps: number;
    let epochs: number | null = null;
    if (options.steps !== undefined) {
      if (options.epochs !== undefined) throw new Error('give epochs or steps, not both');
      steps = options.steps;
    } else {
      epochs = options.epochs ?? 1;
      if (!(epochs > 0)) throw new Error(`epochs must be > 0, got ${epochs}`);
      steps = Math.ceil(epochs * stepsPerEpoch);
    }
    if (!Number.isSafeInteger(steps) || steps < 1)
      throw new Error(`steps must be an integer >= 1, got ${steps}`);
    this.options = { ...o, targets: [...o.targets], steps, epochs };

    const kernels = model.kernels;
    const resume = options.resume;
    const start = resume?.adapter ?? options.init;
    this.params = start
      ? LoraParams.from(start, kernels)
      : LoraParams.init(
          model.config,
          { rank: o.rank, alpha: o.alpha, targets: o.targets, rslora: o.rslora },
          new Rng(o.seed, 0),
          kernels,
        );
    const maxT = Math.max(...[...train, ...evalSet].map((s) => s.input.length));
    this.trainer = new CausalLMTrainer(
      model,
      this.params,
      maxT,
      o.dropout > 0,
      o.gradientCheckpointing,
    );
    this.optimizer = new AdamW(
      this.params.tensors(),
      { beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay },
      resume?.optimizer,
    );
    this.step = resume?.step ?? 0;
    this.log.push(...(resume?.log ?? []));
    this.tokens = resume?.tokens ?? 0;
    this.signal = options.signal;
  }

  private readonly signal?: AbortSignal;

  /** The trainer's memory (train/plan.ts): bytes, and whether each block's activations are kept. */
  get memory(): TrainPlan {
    return this.trainer.plan;
  }

  /** The sequences of step k: epoch by epoch, each epoch's order its own shuffle. */
  private batchOf(k: number): Sequence[] {
    const n = this.train.length;
    const out: Sequence[] = [];
    for (let i = k * this.perStep; i < (k + 1) * this.perStep; i++) {
      const epoch = Math.floor(i / n);
      out.push(this.train[this.order(epoch)[i % n]]);
    }
    return out;
  }

  private orders = new Map<number, number[]>();
  private order(epoch: number): number[] {
    let o = this.orders.get(epoch);
    if (!o) {
      o = Array.from({ length: this.train.length }, (_, i) => i);
      if (this.options.shuffle) new Rng(this.options.seed, 1, epoch).shuffle(o);
      this.orders.clear(); // one epoch at a time is enough
      this.orders.set(epoch, o);
    }
    return o;
  }

  /** The mean loss over the eval sequences (no dropout, no gradient). */
  evalLoss(): number {
    if (!this.evalSet.length) return NaN;
    let sum = 0;
    for (const s of this.evalSet) sum += this.trainer.run(s.input, s.targets, 1, false);
    return sum / targetCount(this.evalSet);
  }

  get done(): boolean {
    return this.step >= this.options.steps;
  }

  /** One optimizer step. */
  runStep(): StepMetrics {
    const o = this.options;
    const k = this.step;
    const t0 = performance.now();
    const seqs = this.batchOf(k);
    const N = targetCount(seqs);
    this.params.zeroGrad();
    let loss = 0;
    seqs.forEach((s, i) => {
      const dropout: Dropout | null =
        o.dropout > 0
          ? { p: o.dropout, stream: (l, m) => new Rng(o.seed, 2, k, i, l, LORA_MODULES.indexOf(m)) }
          : null;
      loss += this.trainer.run(s.input, s.targets, Math.max(1, N), true, dropout);
    });
    const grads = this.params.tensors().map((t) => t.g);
    const gradNorm = clipGradNorm(grads, o.clip);
    const lr = learningRate(o.schedule, o.lr, k, o.warmup, o.steps);
    this.optimizer.step(lr);
    this.step++;
    this.tokens += N;
    const seconds = (performance.now() - t0) / 1000;
    const m: StepMetrics = {
      step: this.step,
      loss: loss / Math.max(1, N),
      lr,
      tokens: this.tokens,
      tokensPerSecond: N / seconds,
      gradNorm,
      epoch: (this.step * this.perStep) / this.train.length,
      seconds,
      secondsLeft: 0,
    };
    if ((o.evalEvery > 0 && this.step % o.evalEvery === 0) || this.done) {
      const e = this.evalLoss();
      if (!Number.isNaN(e)) m.evalLoss = e;
    }
    const recent = this.log.slice(-9).concat(m);
    const mean = recent.reduce((s, x) => s + x.seconds, 0) / recent.length;
    m.secondsLeft = mean * (o.steps - this.step);
    this.log.push(m);
    return m;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<StepMetrics> {
    while (!this.done) {
      if (this.signal?.aborted) return;
      yield this.runStep();
      await new Promise((r) => setTimeout(r, 0)); // let an abort (Ctrl-C) in between steps
    }
  }

  /** A fingerprint of the training sequences in order (FNV-1a): a resumed run must see the same. */
  dataHash(): string {
    let h = 0x811c9dc5;
    const add = (x: number) => {
      h = Math.imul(h ^ (x & 0xffff), 0x01000193) >>> 0;
      h = Math.imul(h ^ (x >>> 16), 0x01000193) >>> 0;
    };
    for (const s of this.train) {
      add(s.input.length);
      s.input.forEach(add);
      s.targets.forEach((t) => add(t + 1));
    }
    return `${this.train.length}:${h.toString(16).padStart(8, '0')}`;
  }

  /** The adapter as trained so far. */
  adapter(source = 'finetune'): LoraAdapter {
    return this.params.toAdapter(source);
  }

  /** Everything a resumed run needs. */
  checkpoint(): Checkpoint {
    const s = this.optimizer.state;
    return {
      step: this.step,
      adapter: this.adapter(),
      optimizer: {
        step: s.step,
        m: s.m.map((a) => Float32Array.from(a)),
        v: s.v.map((a) => Float32Array.from(a)),
      },
      options: this.options,
      tokens: this.tokens,
      log: [...this.log],
    };
  }
}

function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
