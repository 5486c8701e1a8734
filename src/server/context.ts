// What every endpoint shares: the options, the model (which may still be loading), the
// generations running, and the steps each request takes on its way to the engine.
import type { Context } from 'hono';
import { yieldToEventLoop, type Phi } from '../engine.js';
import type { GenerateOptions, Generation, GenerationResult } from '../generation.js';
import { ConstraintError } from '../grammar/constraint.js';
import { badTokenId } from '../model/token_ids.js';
import { safePieces } from '../tokenizer/tokenizer.js';
import { ApiError, badField } from './errors.js';
import type { ResolvedOptions } from './options.js';
import { samplingRequest, type SamplingRequest } from './requests.js';

/** Pieces longer than this (text with no place to cut) are tokenized by `encode` when given. */
const LONG_PIECE_CHARS = 8192;

/** A prompt too long for the context is still counted exactly up to this many characters. */
const EXACT_COUNT_CHARS = 32768;

export type Json = Record<string, unknown>;

/**
 * `given === key` in time that depends on the key's length only, not on where they differ
 * (a plain comparison returns at the first difference, which a client can time).
 */
function sameSecret(given: string, key: string): boolean {
  const a = new TextEncoder().encode(given);
  const b = new TextEncoder().encode(key);
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= (a[i] ?? 0) ^ b[i];
  return diff === 0;
}

export class ServerContext {
  /** The names the model answers to: the served name and its aliases. */
  readonly names: Set<string>;
  readonly created = Math.floor(Date.now() / 1000);
  /** Resolves (never rejects) once the model is loaded or has failed to. */
  readonly loading: Promise<void>;
  /** Set by closeAll: new work is refused, and what was cut short says so. */
  stopping = false;
  private model: Phi | null = null;
  private loadError: unknown = null;
  private readonly running = new Set<AbortController>();
  private nextId = 0;

  constructor(
    readonly o: ResolvedOptions,
    phi: Phi | Promise<Phi>,
  ) {
    this.names = new Set([o.modelName, ...o.aliases]);
    this.loading = Promise.resolve(phi)
      .then((p) => {
        // every endpoint but /detokenize's ids reads or writes text
        if (!p.tokenizer)
          throw new Error(
            'the model folder has no tokenizer.json, which the server needs for text',
          );
        this.model = p;
      })
      .catch((e) => {
        this.loadError = e;
      });
  }

  get ready(): boolean {
    return this.model !== null;
  }

  /** Why the model is not there: its load error, or null while it loads (or once loaded). */
  get failure(): Error | null {
    return this.loadError as Error | null;
  }

  /** Shutdown: refuse new work, abort every running generation (its stream says why). */
  closeAll(): void {
    this.stopping = true;
    this.running.forEach((a) => a.abort());
  }

  newId(prefix: string): string {
    return `${prefix}-${Date.now().toString(36)}${(this.nextId++).toString(36).padStart(4, '0')}`;
  }

  /** 401 unless the request carries the API key (when one is set). */
  authorize(c: Context): void {
    if (this.o.apiKey === undefined) return;
    const auth = c.req.header('Authorization') ?? '';
    const given = /^bearer[ \t]+(.*)$/i.exec(auth.trim())?.[1] ?? '';
    if (!sameSecret(given, this.o.apiKey))
      throw new ApiError(
        401,
        auth ? 'invalid API key' : 'missing API key: send Authorization: Bearer <key>',
        'authentication_error',
        null,
        'invalid_api_key',
      );
  }

  /** The loaded model, or 503 while it loads. */
  loaded(): Phi {
    if (this.model) return this.model;
    if (this.loadError)
      throw new ApiError(
        503,
        `the model failed to load: ${(this.loadError as Error).message}`,
        'unavailable_error',
      );
    throw new ApiError(503, 'the model is loading', 'unavailable_error', null, null, {
      'Retry-After': '5',
    });
  }

  /** The request body as a JSON object: 415 if not JSON, 413 past the limit, 400 if malformed. */
  async body(c: Context): Promise<Json> {
    const limit = this.o.bodyLimit;
    const type = c.req.header('Content-Type') ?? '';
    if (!/^application\/json\b/i.test(type))
      throw new ApiError(415, `Content-Type must be application/json, got "${type || 'none'}"`);
    const length = Number(c.req.header('Content-Length') ?? 0);
    const tooLarge = () =>
      new ApiError(
        413,
        `request body over the limit of ${limit} bytes`,
        'invalid_request_error',
        null,
        'body_too_large',
      );
    if (length > limit) throw tooLarge();
    const chunks: Uint8Array[] = [];
    let size = 0;
    const reader = c.req.raw.body?.getReader();
    while (reader) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > limit) {
        await reader.cancel();
        throw tooLarge();
      }
      chunks.push(value);
    }
    const bytes = new Uint8Array(size);
    chunks.reduce((at, ch) => (bytes.set(ch, at), at + ch.length), 0);
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    } catch (e) {
      throw new ApiError(400, `the body is not valid JSON: ${(e as Error).message}`);
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json))
      throw new ApiError(400, 'the body must be a JSON object');
    return json as Json;
  }

  /** `model` must be a string when given; what it names is checked once the model is there. */
  checkModel(b: Json): void {
    if (b.model === undefined || b.model === null) return;
    if (typeof b.model !== 'string') throw badField('model', 'must be a string');
  }

  /** The names a request's `model` may give: the base model's, then each adapter's. */
  servedNames(p: Phi | null): string[] {
    return [...this.names, ...(p?.adapters ?? [])];
  }

  /**
   * The adapter a request runs with: `model` naming a loaded adapter, or llama-server's
   * `lora: [{id, scale}]` (ids in --adapter order, scale a multiple of the trained one). One
   * model and no adapters: any name is that model, unless strictModel. With adapters served, a
   * name that is neither the base nor one of them is refused: running the base instead of a
   * mistyped adapter would be a silent wrong answer.
   */
  adapterOf(p: Phi, b: Json): Pick<GenerateOptions, 'adapter' | 'adapterScale'> {
    const adapters = p.adapters;
    let chosen: string | undefined;
    const model = b.model as string | undefined | null;
    if (typeof model === 'string' && !this.names.has(model)) {
      if (adapters.includes(model)) chosen = model;
      else if (this.o.strictModel || adapters.length)
        throw new ApiError(
          400,
          `model ${JSON.stringify(model.slice(0, 200))} is not served here; this server has ${this.servedNames(
            p,
          )
            .map((n) => JSON.stringify(n))
            .join(', ')}`,
          'invalid_request_error',
          'model',
          'model_not_found',
        );
    }
    if (b.lora === undefined || b.lora === null) return chosen ? { adapter: chosen } : {};
    if (!Array.isArray(b.lora))
      throw badField('lora', "must be an array of {id, scale} (llama-server's adapter list)");
    const used: { name: string; scale: number }[] = [];
    b.lora.forEach((e: unknown, i) => {
      const where = `lora[${i}]`;
      if (typeof e !== 'object' || e === null || Array.isArray(e))
        throw badField(where, 'must be an object {id, scale}');
      const { id, scale } = e as Json;
      if (!Number.isInteger(id) || (id as number) < 0 || (id as number) >= adapters.length)
        throw badField(
          `${where}.id`,
          `must be the index of a loaded adapter (${adapters.length ? adapters.map((n, k) => `${k} = ${n}`).join(', ') : 'none is loaded'}), got ${JSON.stringify(id)}`,
        );
      const sc = scale ?? 1;
      if (typeof sc !== 'number' || !Number.isFinite(sc))
        throw badField(`${where}.scale`, `must be a number, got ${JSON.stringify(scale)}`);
      if (sc !== 0) used.push({ name: adapters[id as number], scale: sc });
    });
    if (used.length > 1)
      throw badField(
        'lora',
        `one adapter per request is supported, got ${used.length} with a scale other than 0`,
      );
    if (chosen && used.length && used[0].name !== chosen)
      throw badField('lora', `names adapter ${used[0].name}, but model names ${chosen}`);
    if (!used.length) return chosen ? { adapter: chosen, adapterScale: 0 } : {};
    return { adapter: used[0].name, adapterScale: used[0].scale };
  }

  /** A generation request: authorized, its body read, its model and sampling fields checked. */
  async generationRequest(c: Context, chat: boolean): Promise<{ b: Json; req: SamplingRequest }> {
    this.authorize(c);
    const b = await this.body(c);
    this.checkModel(b);
    // max_tokens is bounded by the context, known once the model is there
    await this.loading;
    const ctx = this.model?.model.contextLength ?? Infinity;
    const req = samplingRequest(b, chat, Math.min(this.o.maxTokens, ctx), ctx);
    if (this.model) {
      Object.assign(req.options, this.adapterOf(this.model, b));
      // a grammar that does not compile is the client's 400, before any text is sent
      if (req.structured)
        try {
          await this.model.prepareConstraint(req.options);
        } catch (e) {
          if (e instanceof ConstraintError) throw badField(req.structured.field, e.detail);
          throw e;
        }
    }
    return { b, req };
  }

  /**
   * The ids of a text, tokenized a piece at a time (cut where the tokenizer would cut anyway)
   * with the event loop let run between pieces, so other streams and /health go on. Past
   * `limit` ids a long text stops there (null): the rest is not worth the time; a short one
   * is finished, so the error can give its count.
   */
  async tokenize(p: Phi, text: string, limit: number): Promise<number[] | null> {
    const ids: number[] = [];
    const encode = this.o.encode;
    for (const piece of safePieces(text)) {
      // a piece the cutting could not shorten (one long word) goes elsewhere when it can
      const got =
        encode && piece.length > LONG_PIECE_CHARS ? await encode(p, piece) : p.encode(piece);
      for (const id of got) ids.push(id);
      if (ids.length > limit && text.length > EXACT_COUNT_CHARS) return null;
      await yieldToEventLoop();
    }
    return ids;
  }

  /** Token ids of a prompt, checked against the context before any work is queued. */
  async promptIds(p: Phi, prompt: string | { ids: number[] }, param: string): Promise<number[]> {
    const ctx = p.model.contextLength;
    const tooLong = (what: string) =>
      new ApiError(
        400,
        `the prompt has ${what}`,
        'invalid_request_error',
        param,
        'context_length_exceeded',
      );
    // a text that cannot fit is refused before the work of tokenizing it
    if (typeof prompt === 'string' && prompt.length > p.maxPromptChars)
      throw tooLong(
        `${prompt.length} characters, more than the context of ${ctx} positions can hold`,
      );
    const ids = typeof prompt === 'string' ? await this.tokenize(p, prompt, ctx) : prompt.ids;
    if (ids === null) throw tooLong(`more tokens than the context of ${ctx} positions`);
    if (ids.length === 0) throw badField(param, 'is empty: at least one token is needed');
    if (ids.length > ctx)
      throw tooLong(`${ids.length} tokens, more than the context of ${ctx} positions`);
    const bad = badTokenId(ids, p.config.vocabSize);
    if (bad) throw badField(param, bad);
    return ids;
  }

  /** Queue a generation, or 503 when the queue is full. Aborts when the client goes. */
  start(
    p: Phi,
    ids: number[],
    opts: Parameters<Phi['generate']>[1],
    signal: AbortSignal,
  ): { run: Generation; abort: AbortController } {
    // a request that finds a free slot never waits; one that would wait needs room in the queue
    if (p.freeSlots === 0 && p.waiting >= this.o.queue)
      throw new ApiError(
        503,
        `the server is busy: ${p.waiting} requests are waiting for ${p.parallel} slot(s); try again`,
        'unavailable_error',
        null,
        'queue_full',
        { 'Retry-After': '1' },
      );
    const abort = new AbortController();
    const onGone = () => abort.abort();
    signal.addEventListener('abort', onGone, { once: true });
    this.running.add(abort);
    const run = p.generate({ ids }, { ...opts, signal: abort.signal });
    void run
      .result()
      .catch(() => {})
      .finally(() => {
        this.running.delete(abort);
        signal.removeEventListener('abort', onGone);
      });
    return { run, abort };
  }

  /** A generation the shutdown cut short is an error for its client, not a normal end. */
  checkEnded(r: GenerationResult): void {
    if (r.stopReason === 'abort' && this.stopping)
      throw new ApiError(
        503,
        'the server is shutting down: the generation was stopped',
        'unavailable_error',
        null,
        'server_shutdown',
      );
  }
}

/** A token's text and bytes as logprobs show them ('' and [] without a tokenizer). */
export const tokenText = (p: Phi, id: number) =>
  p.tokenizer ? new TextDecoder().decode(p.tokenizer.tokenBytes(id, false)) : '';
export const tokenBytes = (p: Phi, id: number) =>
  p.tokenizer ? Array.from(p.tokenizer.tokenBytes(id, false)) : [];
