// One generation request: its options, the text it releases token by token, and the handle a
// caller iterates. The engine (engine.ts) decides when its tokens are computed; this file
// decides what each new token means for the text: stop strings, end of text, limits.
import { DEFAULTS } from './defaults.js';
import { constraintOf, type ConstraintOptions } from './grammar/constraint.js';
import { validateSampling, type SamplingOptions } from './sample.js';
import { TokenStreamDecoder } from './tokenizer/stream.js';
import type { PhiTokenizer } from './tokenizer/tokenizer.js';

export interface GenerateOptions extends SamplingOptions, ConstraintOptions {
  /** Most tokens to generate (default 128). */
  maxNewTokens?: number;
  /** Stop as soon as the text contains one of these; the stop string is not returned. */
  stop?: string[];
  /** Stop at <|endoftext|> (default true). */
  stopAtEos?: boolean;
  /** Abort: the generation ends within one token (also while it waits or prefills). */
  signal?: AbortSignal;
  /** Called for every generated token with the text it released. */
  onToken?: (id: number, text: string) => void;
  /** The k most likely tokens and their log-probabilities at every step (0 = none, at most 20). */
  topLogprobs?: number;
  /** A LoRA adapter loaded unmerged (loadPhi's `adapters`, Phi.loadAdapter), by name; default the base model. */
  adapter?: string | null;
  /** A multiple of the adapter's trained scale s (default 1; 0 is the base model). */
  adapterScale?: number;
}

export type StopReason = 'eos' | 'stop' | 'length' | 'context' | 'abort';

export interface GenerationResult {
  /** Generated ids (the prompt's not included; <|endoftext|> included when it stopped there). */
  ids: number[];
  text: string;
  promptTokens: number;
  /** Prompt tokens whose keys and values were reused from an earlier request (not prefilled). */
  cachedPromptTokens: number;
  stopReason: StopReason;
  /** Human-readable why, e.g. which limit was hit. */
  stopMessage: string;
  /** Seconds spent waiting for a free slot before the prefill began. */
  queueSeconds: number;
  prefillSeconds: number;
  /** Forward steps of one token each after the prefill. */
  decodeSteps: number;
  decodeSeconds: number;
  prefillTokensPerS: number;
  decodeTokensPerS: number;
}

/** A candidate token and its log-probability under the model (raw logits: before temperature and penalties). */
export interface TokenLogprob {
  id: number;
  logprob: number;
}

export interface TokenPiece {
  id: number;
  /** Text this token released: '' while a UTF-8 character or a possible stop string is pending. */
  text: string;
  /** With `topLogprobs`: the chosen token's log-probability and the top candidates. */
  logprob?: number;
  top?: TokenLogprob[];
}

export type Prompt = string | { ids: number[] };

/** Check the options that do not depend on the model; throws naming the option. */
export function validateGenerateOptions(o: GenerateOptions): void {
  validateSampling(o);
  const maxNew = o.maxNewTokens ?? DEFAULTS.maxNewTokens;
  if (!Number.isSafeInteger(maxNew) || maxNew < 0) {
    throw new Error(`max new tokens must be an integer >= 0, got ${maxNew}`);
  }
  const k = o.topLogprobs ?? 0;
  if (!Number.isInteger(k) || k < 0 || k > 20) {
    throw new Error(`top logprobs must be an integer in 0..20, got ${k}`);
  }
  if (o.stop !== undefined && (!Array.isArray(o.stop) || o.stop.some((s) => typeof s !== 'string')))
    throw new Error('stop must be an array of strings');
  if (o.onToken !== undefined && typeof o.onToken !== 'function')
    throw new Error(`onToken must be a function (id, text) => void, got ${typeof o.onToken}`);
  if (o.signal !== undefined && typeof (o.signal as AbortSignal)?.addEventListener !== 'function')
    throw new Error('signal must be an AbortSignal');
  constraintOf(o);
}

/**
 * The text side of a generation: turns each new token into released text, holding back what
 * might still become a stop string or is an unfinished UTF-8 character, and says when to stop.
 */
export class Continuation {
  readonly ids: number[] = [];
  text = '';
  stopReason: StopReason = 'length';
  stopMessage: string;
  private pending = ''; // decoded text held back: it may be the start of a stop string
  private readonly stops: string[];
  private readonly stream: TokenStreamDecoder | null;

  constructor(
    tokenizer: PhiTokenizer | null,
    private readonly o: GenerateOptions,
    readonly eos: number,
    readonly maxNew: number,
  ) {
    this.stops = (o.stop ?? []).filter((s) => s.length > 0);
    this.stream = tokenizer ? new TokenStreamDecoder(tokenizer) : null;
    this.stopMessage = `reached ${maxNew} new tokens`;
  }

  /**
   * Take the token chosen at cache position `pos` (context `ctx`): returns the text it
   * releases and whether the generation ends with it. `complete`: a constraint's grammar took
   * it as its end (<|endoftext|>), which ends the text even when stopAtEos is off.
   */
  accept(
    id: number,
    pos: number,
    ctx: number,
    promptTokens: number,
    complete = false,
  ): { text: string; last: boolean } {
    this.ids.push(id);
    this.pending += this.stream ? this.stream.push(id) : '';

    // Is this the last token? Decide before releasing text, so the tail goes with it.
    const hit = firstStop(this.pending, this.stops);
    let last = true;
    if (hit >= 0) {
      this.pending = this.pending.slice(0, hit);
      this.end('stop', 'hit a stop string');
    } else if (complete) {
      this.end('eos', 'end of text: the constraint is complete');
    } else if ((this.o.stopAtEos ?? true) && id === this.eos) {
      this.end('eos', 'end of text');
    } else if (this.ids.length >= this.maxNew) {
      // stopReason stays 'length'
    } else if (pos >= ctx) {
      this.end(
        'context',
        `reached the context limit of ${ctx} positions (prompt ${promptTokens} + ${this.ids.length} generated)`,
      );
    } else if (this.o.signal?.aborted) {
      this.end('abort', 'aborted');
    } else last = false;

    let released: string;
    if (last) {
      released = this.pending + (this.stream && hit < 0 ? this.stream.flush() : '');
      this.pending = '';
    } else {
      const keep = heldBack(this.pending, this.stops);
      released = this.pending.slice(0, this.pending.length - keep);
      this.pending = this.pending.slice(this.pending.length - keep);
    }
    this.text += released;
    return { text: released, last };
  }

  end(reason: StopReason, message: string): void {
    this.stopReason = reason;
    this.stopMessage = message;
  }
}

/** Index of the earliest stop string in `text`, or -1. */
function firstStop(text: string, stops: string[]): number {
  let best = -1;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (best < 0 || i < best)) best = i;
  }
  return best;
}

/** Length of the longest suffix of `text` that is a proper prefix of some stop string. */
function heldBack(text: string, stops: string[]): number {
  let keep = 0;
  for (const s of stops) {
    for (let n = Math.min(s.length - 1, text.length); n > keep; n--) {
      if (text.endsWith(s.slice(0, n))) {
        keep = n;
        break;
      }
    }
  }
  return keep;
}

/** log-softmax of the chosen token and the k best candidates, from logits (V,). */
export function logprobs(
  logits: Float32Array,
  id: number,
  k: number,
): { logprob: number; top: TokenLogprob[] } {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const logZ = max + Math.log(sum);
  const top: TokenLogprob[] = [];
  for (let i = 0; i < logits.length; i++) {
    if (top.length < k || logits[i] > top[top.length - 1].logprob) {
      top.push({ id: i, logprob: logits[i] });
      top.sort((a, b) => b.logprob - a.logprob || a.id - b.id);
      if (top.length > k) top.pop();
    }
  }
  for (const t of top) t.logprob -= logZ;
  return { logprob: logits[id] - logZ, top };
}

/**
 * A running generation: iterate it for pieces, or await result() for everything. Breaking
 * out of the iteration aborts it. Pieces are produced by the engine whether or not anyone
 * is iterating yet; they wait here.
 */
export class Generation implements AsyncIterable<TokenPiece> {
  private readonly pieces: TokenPiece[] = [];
  private final: GenerationResult | null = null;
  private failure: unknown = null;
  private wake: (() => void) | null = null;
  private iterated = false;
  private readonly done: Promise<GenerationResult>;
  private settle!: { resolve: (r: GenerationResult) => void; reject: (e: unknown) => void };
  private startedResolve!: () => void;
  /** Resolves when the request leaves the queue and its prefill begins. */
  readonly started: Promise<void>;

  constructor(private readonly cancel: () => void) {
    this.done = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    this.done.catch(() => {}); // a failure is reported through iteration or result()
    this.started = new Promise((r) => (this.startedResolve = r));
  }

  /** Abort this generation (same as its signal). */
  abort(): void {
    this.cancel();
  }

  // --- the engine's side
  /** @internal */
  markStarted(): void {
    this.startedResolve();
  }
  /** @internal */
  push(piece: TokenPiece): void {
    this.pieces.push(piece);
    this.wake?.();
  }
  /** @internal */
  finish(result: GenerationResult): void {
    this.final = result;
    this.startedResolve();
    this.settle.resolve(result);
    this.wake?.();
  }
  /** @internal */
  fail(e: unknown): void {
    this.failure = e;
    this.startedResolve();
    this.settle.reject(e);
    this.wake?.();
  }

  // --- the caller's side
  async *[Symbol.asyncIterator](): AsyncIterator<TokenPiece> {
    if (this.iterated) throw new Error('a Generation can be iterated once');
    this.iterated = true;
    let complete = false;
    try {
      while (true) {
        if (this.pieces.length > 0) {
          yield this.pieces.shift()!;
          continue;
        }
        if (this.failure) throw this.failure;
        if (this.final) {
          complete = true;
          return;
        }
        await new Promise<void>((r) => (this.wake = r));
        this.wake = null;
      }
    } finally {
      if (!complete) this.cancel(); // the caller broke out: stop computing for nobody
    }
  }

  /** The whole result (after the last token); rejects if the generation failed. */
  result(): Promise<GenerationResult> {
    return this.done;
  }
}
