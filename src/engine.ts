// Phi: the model plus its tokenizer, with streaming generation that many callers can share.
//
//   const phi = await loadPhi('weights/phi-1_5');              // from 'phi-wasm/node'
//   const run = phi.generate('What is the meaning of life?\nAnswer:', { maxNewTokens: 64 });
//   for await (const { text } of run) process.stdout.write(text);
//   const { ids, decodeTokensPerS } = await run.result();
//
// How concurrent calls are served. The model has `parallel` slots, each a KV cache. A request
// waits in a first-in-first-out queue until a slot is free, then owns that slot until it
// ends. The engine loop runs one forward step at a time over every running request: one
// row for each request that is decoding (its last token), then prompt chunks of the ones
// that are prefilling, at most B rows in all. One step reads every weight once for all of
// them, so N streams cost little more than one. Every kernel sums each row in the same order
// whatever else is in the step, so a request's tokens are exactly those it gets alone.
//
// A slot keeps its cache when a request ends; a later prompt that starts with the same
// tokens (a chat resending its history) reuses those positions and prefills only the rest.
import {
  Continuation,
  Generation,
  logprobs,
  validateGenerateOptions,
  type GenerateOptions,
  type GenerationResult,
  type Prompt,
} from './generation.js';
import {
  constraintOf,
  Constraints,
  type Constraint,
  type ConstraintOptions,
  type GrammarRun,
} from './grammar/constraint.js';
import { onlyAllowed } from './grammar/mask.js';
import type { LoraAdapter } from './model/lora.js';
import type { FormatName } from './prompts.js';
import { prepareData, type DataInput } from './train/data.js';
import { FinetuneRun, type FinetuneOptions } from './train/finetune.js';
import { Rng } from './train/rng.js';
import { badAdapterName, readAdapter } from './weights/adapter.js';
import { DEFAULTS } from './defaults.js';
import type { ModelFiles } from './io/source.js';
import { KVCache } from './model/kv_cache.js';
import { sameUse, uploadAdapter, type AdapterUse, type LoraWeights } from './model/lora.js';
import { badTokenId } from './model/token_ids.js';
import { formatBytes } from './memory.js';
import type { PhiForCausalLM, Segment } from './model/causal_lm.js';
import { Sampler } from './sample.js';
import type { PhiTokenizer } from './tokenizer/tokenizer.js';

/** Characters one token covers at most: GPT-2's longest tokens have about 40; 64 leaves room. */
const MAX_CHARS_PER_TOKEN = 64;

const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now()) / 1000;

/** Let timers, I/O and abort signals run between steps. */
export const yieldToEventLoop = (): Promise<void> =>
  new Promise((resolve) =>
    typeof setImmediate === 'function' ? setImmediate(resolve) : setTimeout(resolve, 0),
  );

/** A request in the engine: what it asked, where it stands, and its caller's handle. */
class Request {
  slot: KVCache | null = null;
  /** The LoRA adapter it runs with (options.adapter), or null for the base model. */
  adapter: AdapterUse | null = null;
  /** Prompt tokens already in the slot's cache. */
  prefilled = 0;
  cached = 0;
  /** The token sampled last, to be fed in the next step. */
  next = -1;
  readonly history: number[];
  readonly enqueued = now();
  started = 0;
  prefillSeconds = 0;
  decodeSeconds = 0;
  decodeSteps = 0;
  done = false;
  /** Removes the abort listener from the caller's signal. */
  unlisten: () => void = () => {};
  /** Its constraint's matcher, once compiled (started when the request is made). */
  grammar: GrammarRun | null = null;
  grammarStart: Promise<GrammarRun> | null = null;

  constructor(
    readonly promptIds: number[],
    readonly options: GenerateOptions,
    readonly sampler: Sampler,
    readonly text: Continuation,
    readonly handle: Generation,
    readonly constraint: Constraint | null,
  ) {
    this.history = [...promptIds];
  }

  get decoding(): boolean {
    return this.prefilled === this.promptIds.length;
  }

  result(): GenerationResult {
    const prefilledTokens = this.promptIds.length - this.cached;
    return {
      ids: this.text.ids,
      text: this.text.text,
      promptTokens: this.promptIds.length,
      cachedPromptTokens: this.cached,
      stopReason: this.text.stopReason,
      stopMessage: this.text.stopMessage,
      queueSeconds: (this.started || now()) - this.enqueued,
      prefillSeconds: this.prefillSeconds,
      decodeSteps: this.decodeSteps,
      decodeSeconds: this.decodeSeconds,
      prefillTokensPerS: this.prefillSeconds > 0 ? prefilledTokens / this.prefillSeconds : 0,
      decodeTokensPerS: this.decodeSeconds > 0 ? this.decodeSteps / this.decodeSeconds : 0,
    };
  }
}

/** Which adapter a call runs with (GenerateOptions has the same two fields). */
export interface AdapterChoice {
  /** A LoRA adapter loaded unmerged, by name; default none (the base model). */
  adapter?: string | null;
  /** A multiple of the adapter's trained scale (default 1; 0 is the base model). */
  adapterScale?: number;
}

/** How phi.finetune makes sequences of its data (train/data.ts). */
export interface FinetuneDataOptions {
  /** tokens a training sequence (default 256) */
  seq?: number;
  format?: FormatName | null;
  eval?: DataInput;
  evalSplit?: number;
}

export class Phi {
  /** KV caches: each running request owns one; free ones keep their tokens for reuse. */
  private readonly slots: KVCache[];
  private readonly free: KVCache[];
  private readonly queue: Request[] = [];
  private readonly running: Request[] = [];
  private pumping = false;
  private closed = false;
  /**
   * True while a step's logits are being sampled: they live in the model's state, which a
   * logits() call from an onToken callback would overwrite before the other rows are read.
   */
  private sampling = false;
  /** LoRA adapters loaded unmerged, by name: a request picks one (GenerateOptions.adapter). */
  private readonly loras = new Map<string, LoraWeights>();
  private constraints: Constraints | null = null;

  constructor(
    readonly model: PhiForCausalLM,
    readonly tokenizer: PhiTokenizer | null,
    /** End-of-text id from generation_config.json, when it names one (else the tokenizer's). */
    readonly eosId: number | null = null,
    /** Requests that run at the same time, each with its own KV cache (default 1). */
    parallel = 1,
  ) {
    if (!Number.isSafeInteger(parallel) || parallel < 1)
      throw new Error(`parallel must be an integer >= 1, got ${parallel}`);
    this.slots = [];
    for (let i = 0; i < parallel; i++) {
      try {
        this.slots.push(model.newCache());
      } catch (e) {
        if (!(e instanceof RangeError)) throw e;
        // "Array buffer allocation failed" says neither what nor how much
        const each = KVCache.bytes(model.config, model.contextLength);
        throw new Error(
          `the KV caches of ${parallel} slot(s) of ${model.contextLength} positions need ${formatBytes(parallel * each)} ` +
            `(${formatBytes(each)} each), more than this process could allocate (it stopped at slot ${i + 1}); ` +
            `${i > 0 ? `${i} slot(s) fit` : 'use a shorter context'}: load with fewer parallel slots or a shorter context`,
        );
      }
    }
    this.free = [...this.slots];
  }

  get config() {
    return this.model.config;
  }

  /** The names of the LoRA adapters loaded (unmerged), in load order. */
  get adapters(): string[] {
    return [...this.loras.keys()];
  }

  /** An adapter's PEFT facts (rank, alpha, targets, where it came from). */
  adapterInfo(name: string): LoraAdapter['info'] & { source: string } {
    const a = this.lora(name).adapter;
    return { ...a.info, source: a.source };
  }

  /** The adapter called `name`; a name not loaded is an error naming those that are. */
  private lora(name: string): LoraWeights {
    const a = this.loras.get(name);
    if (!a)
      throw new Error(
        `adapter ${JSON.stringify(name)} is not loaded (${this.loras.size ? `loaded: ${this.adapters.join(', ')}` : 'none is loaded'})`,
      );
    return a;
  }

  /** What options.adapter and adapterScale ask for: undefined, null or scale 0 is the base model. */
  private loraFor(o: { adapter?: string | null; adapterScale?: number }): AdapterUse | null {
    const { adapter: name, adapterScale: scale = 1 } = o;
    if (typeof scale !== 'number' || !Number.isFinite(scale))
      throw new Error(`adapter scale must be a finite number, got ${JSON.stringify(scale)}`);
    if (name === undefined || name === null) {
      if (o.adapterScale !== undefined) throw new Error('adapter scale needs an adapter');
      return null;
    }
    if (typeof name !== 'string')
      throw new Error(`adapter must be a name (a string), got ${JSON.stringify(name)}`);
    const lora = this.lora(name);
    return scale === 0 ? null : { lora, scale };
  }

  /** Add an adapter read by readAdapter() (weights/adapter.ts), to run unmerged under `name`. */
  addAdapter(name: string, adapter: LoraAdapter): void {
    const bad = badAdapterName(name);
    if (bad) throw new Error(bad);
    if (this.loras.has(name))
      throw new Error(
        `an adapter called ${JSON.stringify(name)} is already loaded: unload it first`,
      );
    if (adapter.layers.length !== this.config.numLayers)
      throw new Error(
        `adapter ${name}: made for ${adapter.layers.length} layers, the model has ${this.config.numLayers}`,
      );
    this.loras.set(
      name,
      uploadAdapter(name, adapter, this.model.kernels, this.model.state.maxBatch),
    );
  }

  /** Read a PEFT adapter folder (adapter_config.json, adapter_model.safetensors) and add it. */
  async loadAdapter(name: string, files: ModelFiles): Promise<void> {
    this.addAdapter(name, await readAdapter(files, this.config));
  }

  /**
   * Forget an adapter; refused while a request runs or waits with it. (Its buffers in wasm
   * memory are not returned: that memory only grows. Load adapters at start where you can.)
   */
  unloadAdapter(name: string): void {
    const a = this.lora(name);
    const users = [...this.running, ...this.queue].filter((r) => r.adapter?.lora === a).length;
    if (users)
      throw new Error(
        `adapter ${JSON.stringify(name)} is in use by ${users} request(s): unload it when they end`,
      );
    this.loras.delete(name);
    for (const slot of this.slots) if (slot.adapter?.lora === a) slot.useAdapter(null);
  }

  /** Slots (requests served at the same time). */
  get parallel(): number {
    return this.slots.length;
  }

  /**
   * Requests waiting for a slot: those queued beyond the free slots. A request queued in this
   * turn of the event loop, with a slot free for it, is admitted at the next step, not waiting.
   */
  get waiting(): number {
    return Math.max(0, this.queue.length - this.free.length);
  }

  /** Slots a new request would find free. */
  get freeSlots(): number {
    return Math.max(0, this.free.length - this.queue.length);
  }

  /** Requests holding a slot. */
  get active(): number {
    return this.running.length;
  }

  /** Stop the kernel backend's worker threads; running and queued requests fail. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const err = new Error('the model was closed');
    for (const r of [...this.running, ...this.queue]) this.fail(r, err);
    this.model.kernels.close?.();
  }

  private needTokenizer(): PhiTokenizer {
    if (!this.tokenizer)
      throw new Error('this model was loaded without tokenizer.json: pass token ids');
    return this.tokenizer;
  }

  encode(text: string): number[] {
    return this.needTokenizer().encode(text);
  }

  /**
   * A prompt's token ids, refusing a text that cannot fit the context before the work of
   * tokenizing it (a 5 MB paste would take the tokenizer tens of seconds).
   */
  /** The longest text that can be a prompt: one that cannot fit the context is longer. */
  get maxPromptChars(): number {
    return this.model.contextLength * MAX_CHARS_PER_TOKEN;
  }

  encodePrompt(text: string): number[] {
    const ctx = this.model.contextLength;
    if (text.length > this.maxPromptChars)
      throw new Error(
        `the prompt has ${text.length} characters, more than the context of ${ctx} positions can hold ` +
          `(a token covers at most ${MAX_CHARS_PER_TOKEN})`,
      );
    return this.encode(text);
  }

  decode(ids: number[]): string {
    return this.needTokenizer().decode(ids, { skipSpecial: true });
  }

  /**
   * Fine-tune a LoRA adapter on this model (train/finetune.ts), the base frozen: iterate the
   * run for each step's metrics (options.signal stops it between steps); run.adapter() is the
   * adapter so far, for addAdapter. Data: records ({text}, {prompt, completion} or {ids}) or
   * JSONL text; `format` puts prompt/completion pairs in a model card format; `eval` data, or
   * `evalSplit` of the training sequences held out.
   */
  finetune(data: DataInput, options: FinetuneOptions & FinetuneDataOptions = {}): FinetuneRun {
    const { seq = 256, format = null, eval: evalData, evalSplit = 0, ...rest } = options;
    const seed = rest.seed ?? 0;
    const { train, eval: held } = prepareData(
      data,
      evalData,
      { seq, format, evalSplit, seed },
      (t) => this.encode(t),
      (a) => new Rng(seed, 3).shuffle(a),
    );
    return new FinetuneRun(this.model, train, held, rest);
  }

  private checkPrompt(ids: number[]): void {
    if (ids.length === 0) throw new Error('the prompt is empty: phi needs at least one token');
    const ctx = this.model.contextLength;
    if (ids.length > ctx) {
      throw new Error(
        `the prompt has ${ids.length} tokens, longer than the context of ${ctx} positions`,
      );
    }
    const bad = badTokenId(ids, this.config.vocabSize);
    if (bad) throw new Error(bad);
  }

  /** A free slot right now, for a synchronous call; throws if every slot is in use. */
  private takeFreeSlot(what: string): KVCache {
    if (this.closed) throw new Error('the model was closed');
    if (this.sampling)
      throw new Error(
        `${what} cannot run inside onToken: the step's logits are still being read; ` +
          'call it after the callback returns (e.g. from a queueMicrotask)',
      );
    const slot = this.free.pop();
    if (!slot) {
      throw new Error(
        `${what}: all ${this.parallel} slots are in use by running generations; ` +
          `await them first, or load the model with more parallel slots`,
      );
    }
    return slot;
  }

  /**
   * Logits of a whole sequence from scratch: (V,) for the last position, or (T, V). Runs at
   * once on a free slot (and throws if there is none: generations hold them all).
   */
  logits(ids: number[], all = false, options: AdapterChoice = {}): Float32Array {
    this.checkPrompt(ids);
    const adapter = this.loraFor(options);
    const slot = this.takeFreeSlot('logits');
    slot.useAdapter(adapter);
    try {
      const out = this.model.forward(ids, 0, slot, all);
      return all ? out : out.slice();
    } finally {
      this.free.push(slot);
    }
  }

  /**
   * The logits of a sequence from scratch, handed to `row` one position at a time as they are
   * computed (every position with `all`, else the last): a long prompt's (T, V) never sits in
   * memory at once. Runs at once on a free slot, like logits().
   */
  eachLogits(
    ids: number[],
    all: boolean,
    row: (logits: Float32Array, position: number) => void,
    options: AdapterChoice = {},
  ): void {
    this.checkPrompt(ids);
    const adapter = this.loraFor(options);
    this.withFreeSlot('logits', (cache) => {
      cache.useAdapter(adapter);
      const { maxBatch: B } = this.model.state;
      const V = this.config.vocabSize;
      for (let start = 0; start < ids.length; start += B) {
        const tokens = ids.slice(start, start + B);
        const last = start + B >= ids.length;
        const out = this.model.step([
          { cache, tokens, pos0: start, logits: all ? 'all' : last ? 'last' : 'none' },
        ]);
        for (let r = 0; r < out.length / V; r++)
          row(out.subarray(r * V, (r + 1) * V), all ? start + r : ids.length - 1);
      }
    });
  }

  /** Run `f` with a free slot (for src/inspect.ts); throws if there is none. */
  withFreeSlot<T>(what: string, f: (cache: KVCache) => T): T {
    const slot = this.takeFreeSlot(what);
    try {
      return f(slot);
    } finally {
      this.free.push(slot);
    }
  }

  generate(prompt: Prompt, options: GenerateOptions = {}): Generation {
    if (this.closed) throw new Error('the model was closed');
    validateGenerateOptions(options);
    const adapter = this.loraFor(options);
    const promptIds = typeof prompt === 'string' ? this.encodePrompt(prompt) : [...prompt.ids];
    this.checkPrompt(promptIds);
    const eos = this.eosId ?? this.tokenizer?.eosId ?? DEFAULTS.eosId;
    const text = new Continuation(
      this.tokenizer,
      options,
      eos,
      options.maxNewTokens ?? DEFAULTS.maxNewTokens,
    );
    let request: Request | null = null;
    const handle = new Generation(() => request && this.abort(request));
    const constraint = constraintOf(options);
    request = new Request(promptIds, options, new Sampler(options), text, handle, constraint);
    request.adapter = adapter;
    if (constraint) {
      // compiled while the request waits for a slot; a refusal fails it (pump)
      request.grammarStart = this.grammars().start(constraint);
      request.grammarStart.catch(() => {});
    }
    if (text.maxNew === 0) {
      handle.finish(request.result());
      return handle;
    }
    const signal = options.signal;
    if (signal?.aborted) {
      text.end('abort', 'aborted');
      handle.finish(request.result());
      return handle;
    }
    if (signal) {
      const onAbort = () => this.abort(request);
      signal.addEventListener('abort', onAbort, { once: true });
      request.unlisten = () => signal.removeEventListener('abort', onAbort);
    }
    this.queue.push(request);
    // start the loop after the caller's synchronous code: requests made together start together
    if (!this.pumping) {
      this.pumping = true;
      queueMicrotask(() => void this.pump());
    }
    return handle;
  }

  /** The model's constraints (src/grammar/): XGrammar told its vocabulary on first use. */
  private grammars(): Constraints {
    const tokenizer = this.needTokenizer();
    this.constraints ??= new Constraints(
      tokenizer,
      this.config.vocabSize,
      this.eosId ?? tokenizer.eosId,
    );
    return this.constraints;
  }

  /**
   * Compile the constraint `options` ask for (jsonSchema, json, grammar or regex), so that a
   * refusal (a keyword it cannot honour, a grammar that does not parse) is known before any
   * text is generated: a ConstraintError naming the option. Compiled grammars are cached, so
   * generate() with the same options does not compile again. Returns the seconds it took.
   */
  async prepareConstraint(options: ConstraintOptions): Promise<number> {
    const c = constraintOf(options);
    if (!c) return 0;
    await this.grammars().compile(c);
    return this.grammars().lastCompileSeconds;
  }

  /** Seconds it took to describe the vocabulary to XGrammar (it is done once per model). */
  async grammarSetupSeconds(): Promise<number> {
    return (await this.grammars().ready()).tokenizerInfoSeconds;
  }

  /** Generate and return the result, without streaming. */
  async complete(prompt: Prompt, options: GenerateOptions = {}): Promise<GenerationResult> {
    return this.generate(prompt, options).result();
  }

  /** End a request now: queued ones leave the queue, running ones free their slot. */
  private abort(r: Request): void {
    if (r.done) return;
    r.text.end('abort', 'aborted');
    this.finish(r);
  }

  /** Take a request out of the engine (queue or slot); its slot keeps the cached tokens. */
  private release(r: Request): void {
    r.done = true;
    r.unlisten();
    const q = this.queue.indexOf(r);
    if (q >= 0) this.queue.splice(q, 1);
    const i = this.running.indexOf(r);
    if (i >= 0) this.running.splice(i, 1);
    if (r.slot) this.free.push(r.slot);
    r.slot = null;
    r.grammar?.dispose();
    r.grammar = null;
  }

  private finish(r: Request): void {
    if (r.done) return;
    this.release(r);
    r.handle.finish(r.result());
  }

  private fail(r: Request, e: unknown): void {
    if (r.done) return;
    r.slot?.truncate(0); // its cache may be half-written
    this.release(r);
    r.handle.fail(e);
  }

  /** Give free slots to queued requests, first come first served. */
  private admit(): void {
    while (this.queue.length > 0 && this.free.length > 0) {
      const r = this.queue.shift()!;
      // the free slot whose cached tokens share the longest prefix with this prompt (keys and
      // values computed with the same adapter: another's are other numbers)
      let best = 0;
      let bestLen = -1;
      this.free.forEach((slot, i) => {
        const n = sameUse(slot.adapter, r.adapter) ? commonPrefix(slot.tokens, r.promptIds) : 0;
        if (n > bestLen) [best, bestLen] = [i, n];
      });
      const slot = this.free.splice(best, 1)[0];
      slot.useAdapter(r.adapter);
      // keep at least one prompt token to compute, so there are logits to sample from
      r.cached = Math.min(bestLen, r.promptIds.length - 1);
      slot.truncate(r.cached);
      r.slot = slot;
      r.prefilled = r.cached;
      r.started = now();
      this.running.push(r);
      r.handle.markStarted();
    }
  }

  /** The engine loop: one step over every running request, until none is left. */
  private async pump(): Promise<void> {
    try {
      while (!this.closed) {
        this.admit();
        if (this.running.length === 0) break;
        if (this.running.some((r) => r.constraint)) await this.prepareGrammars();
        if (this.running.length === 0) continue;
        this.tick();
        await yieldToEventLoop();
      }
    } catch (e) {
      for (const r of [...this.running, ...this.queue]) this.fail(r, e); // a bug, never silent
    } finally {
      this.pumping = false;
    }
  }

  /**
   * Before a step: every constrained request gets its matcher and the mask of its next token.
   * A grammar that allows nothing but <|endoftext|> is complete: sampling would pick it with
   * certainty, so it is taken without a forward step (unless logprobs want that step's logits).
   */
  private async prepareGrammars(): Promise<void> {
    const V = this.config.vocabSize;
    for (const r of [...this.running]) {
      if (!r.constraint || r.done) continue;
      try {
        if (!r.grammar) {
          const g = await r.grammarStart!;
          if (r.done) {
            g.dispose(); // aborted while it compiled
            continue;
          }
          r.grammar = g;
        }
        const mask = await r.grammar.nextMask();
        if (r.done) continue;
        const eos = r.text.eos;
        if (r.decoding && !(r.options.topLogprobs ?? 0) && onlyAllowed(mask, V) === eos)
          this.take(r, eos, null);
      } catch (e) {
        this.fail(r, e);
      }
    }
  }

  /** One forward step: decode rows first, then prompt chunks, at most B rows. */
  private tick(): void {
    const B = this.model.state.maxBatch;
    const plan: [Request, Segment][] = [];
    let rows = 0;
    for (const r of this.running) {
      if (!r.decoding) continue;
      plan.push([r, { cache: r.slot!, tokens: [r.next], pos0: r.slot!.length, logits: 'last' }]);
      rows++;
    }
    for (const r of this.running) {
      if (r.decoding || rows >= B) continue;
      const chunk = r.promptIds.slice(r.prefilled, r.prefilled + B - rows);
      const last = r.prefilled + chunk.length === r.promptIds.length;
      plan.push([
        r,
        { cache: r.slot!, tokens: chunk, pos0: r.prefilled, logits: last ? 'last' : 'none' },
      ]);
      rows += chunk.length;
    }

    const t0 = now();
    let logits: Float32Array;
    try {
      logits = this.model.step(plan.map(([, seg]) => seg));
    } catch (e) {
      // a kernel failure (e.g. a dead worker): every request in the step ends with it
      for (const [r] of plan) this.fail(r, e);
      return;
    }
    const seconds = now() - t0;

    const V = this.config.vocabSize;
    let row = 0;
    for (const [r, seg] of plan) {
      const l = seg.logits === 'none' ? null : logits.subarray(row * V, (row + 1) * V);
      if (l) row++;
      if (r.done) continue; // aborted by a callback of an earlier request in this step
      if (r.decoding) {
        r.decodeSeconds += seconds;
        r.decodeSteps++;
      } else {
        r.prefillSeconds += seconds;
        r.prefilled += seg.tokens.length;
      }
      if (!l) continue;
      // a fault in one request's sampling (non-finite logits, a throwing callback) is that
      // request's alone: the others in the step go on as they would have
      this.sampling = true;
      try {
        this.emit(r, l);
      } catch (e) {
        this.fail(r, e);
      } finally {
        this.sampling = false;
      }
    }
  }

  /** Sample the request's next token from its logits and hand the text to the caller. */
  private emit(r: Request, logits: Float32Array): void {
    if (r.constraint && !r.grammar?.mask)
      throw new Error('a constrained step came without its mask');
    this.take(r, r.sampler.next(logits, r.history, r.grammar?.mask), logits);
  }

  /** The request's next token is `id` (sampled from `logits`, or forced by its grammar). */
  private take(r: Request, id: number, logits: Float32Array | null): void {
    r.grammar?.accept(id);
    r.history.push(id);
    r.next = id;
    const pos = r.slot!.length;
    const { text, last } = r.text.accept(
      id,
      pos,
      this.model.contextLength,
      r.promptIds.length,
      r.grammar?.complete ?? false,
    );
    const k = r.options.topLogprobs ?? 0;
    r.handle.push(logits && k > 0 ? { id, text, ...logprobs(logits, id, k) } : { id, text });
    r.options.onToken?.(id, text); // a throw fails this request (tick)
    if (last) this.finish(r);
  }
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}
