// Phi: the model plus its tokenizer, with streaming generation.
//
//   const phi = await loadPhi('weights/phi-1_5');              // from 'phi-wasm/node'
//   const run = phi.generate('What is the meaning of life?\nAnswer:', { maxNewTokens: 64 });
//   for await (const { text } of run) process.stdout.write(text);
//   const { ids, decodeTokensPerS } = await run.result();
import { PhiForCausalLM } from './model/phi.js';
import { Sampler, type SamplingOptions } from './sample.js';
import { TokenStreamDecoder } from './tokenizer/stream.js';
import type { PhiTokenizer } from './tokenizer/tokenizer.js';

export interface GenerateOptions extends SamplingOptions {
  /** Most tokens to generate (default 128). */
  maxNewTokens?: number;
  /** Stop as soon as the text contains one of these; the stop string is not returned. */
  stop?: string[];
  /** Stop at <|endoftext|> (default true). */
  stopAtEos?: boolean;
  /** Abort between two tokens. */
  signal?: AbortSignal;
  /** Called for every generated token with the text it released. */
  onToken?: (id: number, text: string) => void;
}

export type StopReason = 'eos' | 'stop' | 'length' | 'context' | 'abort';

export interface GenerationResult {
  /** Generated ids (the prompt's not included; <|endoftext|> included when it stopped there). */
  ids: number[];
  text: string;
  promptTokens: number;
  stopReason: StopReason;
  /** Human-readable why, e.g. which limit was hit. */
  stopMessage: string;
  prefillSeconds: number;
  /** Forward steps of one token each after the prefill. */
  decodeSteps: number;
  decodeSeconds: number;
  prefillTokensPerS: number;
  decodeTokensPerS: number;
}

export interface TokenPiece {
  id: number;
  /** Text this token released: '' while a UTF-8 character or a possible stop string is pending. */
  text: string;
}

export type Prompt = string | { ids: number[] };

/** A running generation: iterate it for pieces, or await result() for everything. */
export class Generation implements AsyncIterable<TokenPiece> {
  private final: GenerationResult | null = null;
  private started = false;

  constructor(private readonly run: AsyncGenerator<TokenPiece, GenerationResult>) {}

  async *[Symbol.asyncIterator](): AsyncIterator<TokenPiece> {
    if (this.started) throw new Error('a Generation can be iterated once');
    this.started = true;
    while (true) {
      const step = await this.run.next();
      if (step.done) {
        this.final = step.value;
        return;
      }
      yield step.value;
    }
  }

  /** The whole result; drains whatever was not iterated yet. */
  async result(): Promise<GenerationResult> {
    if (!this.started) for await (const _ of this);
    if (!this.final) throw new Error('result() called before the iteration finished');
    return this.final;
  }
}

const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now()) / 1000;
/** Let timers, I/O and abort signals run between tokens. */
const yieldToEventLoop = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

export class Phi {
  constructor(
    readonly model: PhiForCausalLM,
    readonly tokenizer: PhiTokenizer | null,
    /** End-of-text id from generation_config.json, when it names one (else the tokenizer's). */
    readonly eosId: number | null = null,
  ) {}

  get config() {
    return this.model.config;
  }

  /** Stop the kernel backend's worker threads (the process exits without it too). */
  close(): void {
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

  decode(ids: number[]): string {
    return this.needTokenizer().decode(ids, { skipSpecial: true });
  }

  /** Logits of a whole sequence from scratch: (V,) for the last position, or (T, V). */
  logits(ids: number[], all = false): Float32Array {
    this.checkPrompt(ids);
    const out = this.model.forward(ids, 0, all);
    return all ? out : out.slice();
  }

  private checkPrompt(ids: number[]): void {
    if (ids.length === 0) throw new Error('the prompt is empty: phi needs at least one token');
    const ctx = this.model.contextLength;
    if (ids.length > ctx) {
      throw new Error(
        `the prompt has ${ids.length} tokens, longer than the context of ${ctx} positions`,
      );
    }
  }

  generate(prompt: Prompt, options: GenerateOptions = {}): Generation {
    return new Generation(this.run(prompt, options));
  }

  /** Generate and return the result, without streaming. */
  complete(prompt: Prompt, options: GenerateOptions = {}): Promise<GenerationResult> {
    return this.generate(prompt, options).result();
  }

  private async *run(
    prompt: Prompt,
    o: GenerateOptions,
  ): AsyncGenerator<TokenPiece, GenerationResult> {
    const promptIds = typeof prompt === 'string' ? this.encode(prompt) : [...prompt.ids];
    this.checkPrompt(promptIds);
    const maxNew = o.maxNewTokens ?? 128;
    if (!Number.isSafeInteger(maxNew) || maxNew < 0) {
      throw new Error(`max new tokens must be an integer >= 0, got ${maxNew}`);
    }
    const sampler = new Sampler(o);
    const stops = (o.stop ?? []).filter((s) => s.length > 0);
    const eos = this.eosId ?? this.tokenizer?.eosId ?? 50256;
    const stopAtEos = o.stopAtEos ?? true;
    const ctx = this.model.contextLength;
    const stream = this.tokenizer ? new TokenStreamDecoder(this.tokenizer) : null;

    const history = [...promptIds];
    const ids: number[] = [];
    let text = '';
    let pending = ''; // decoded text held back: it may be the start of a stop string
    let stopReason: StopReason = 'length';
    let stopMessage = `reached ${maxNew} new tokens`;

    const t0 = now();
    let logits = maxNew > 0 ? this.model.forward(promptIds, 0) : null;
    const prefillSeconds = now() - t0;
    let decodeSeconds = 0;
    let decodeSteps = 0;
    let pos = promptIds.length;

    while (logits && ids.length < maxNew) {
      if (o.signal?.aborted) {
        stopReason = 'abort';
        stopMessage = 'aborted';
        break;
      }
      const id = sampler.next(logits, history);
      ids.push(id);
      history.push(id);
      pending += stream ? stream.push(id) : '';

      // Is this the last token? Decide before releasing text, so the tail goes with it.
      const hit = firstStop(pending, stops);
      let last = true;
      if (hit >= 0) {
        pending = pending.slice(0, hit);
        [stopReason, stopMessage] = ['stop', 'hit a stop string'];
      } else if (stopAtEos && id === eos) {
        [stopReason, stopMessage] = ['eos', 'end of text'];
      } else if (ids.length >= maxNew) {
        // stopReason stays 'length'
      } else if (pos >= ctx) {
        stopReason = 'context';
        stopMessage = `reached the context limit of ${ctx} positions (prompt ${promptIds.length} + ${ids.length} generated)`;
      } else if (o.signal?.aborted) {
        [stopReason, stopMessage] = ['abort', 'aborted'];
      } else last = false;

      let released: string;
      if (last) {
        released = pending + (stream && hit < 0 ? stream.flush() : '');
        pending = '';
      } else {
        const keep = heldBack(pending, stops);
        released = pending.slice(0, pending.length - keep);
        pending = pending.slice(pending.length - keep);
      }
      text += released;
      o.onToken?.(id, released);
      yield { id, text: released };
      if (last) break;

      await yieldToEventLoop();
      const t = now();
      logits = this.model.forward([id], pos);
      decodeSeconds += now() - t;
      decodeSteps++;
      pos++;
    }
    return {
      ids,
      text,
      promptTokens: promptIds.length,
      stopReason,
      stopMessage,
      prefillSeconds,
      decodeSteps,
      decodeSeconds,
      prefillTokensPerS: prefillSeconds > 0 ? promptIds.length / prefillSeconds : 0,
      decodeTokensPerS: decodeSeconds > 0 ? decodeSteps / decodeSeconds : 0,
    };
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
