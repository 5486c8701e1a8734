// An OpenAI-compatible HTTP API over one loaded model, as a web-standard fetch handler
// (Request) => Promise<Response>: it runs under Node (src/node/serve.ts), Deno.serve and
// Bun.serve alike. Endpoints, as llama-server and ollama have them:
//   GET  /health                  200 {"status":"ok"}, 503 while the model loads
//   GET  /v1/models[/{id}]        the one model
//   POST /v1/completions          prompt -> text (stream: Server-Sent Events)
//   POST /v1/chat/completions     messages in the model card's Chat format -> reply
//   POST /tokenize, /detokenize   llama-server's
// Concurrency is the engine's (src/engine.ts): `parallel` slots decode in one batched step,
// a request waits in its queue for a slot; this server bounds that queue (503 past it).
import { Hono, type Context } from 'hono';
import { yieldToEventLoop, type Phi } from '../engine.js';
import { safePieces } from '../tokenizer/tokenizer.js';
import { badTokenId } from '../model/token_ids.js';
import type { Generation, GenerationResult, TokenLogprob, TokenPiece } from '../generation.js';
import { DEFAULTS, withDefaults } from '../defaults.js';
import { turnStops } from '../prompts.js';
import { ApiError, badField } from './errors.js';
import { chatMessages, chatPrompt, completionPrompt, samplingRequest } from './requests.js';

export { ApiError } from './errors.js';

export interface ServerOptions {
  /** The id the server reports (default "phi-1_5"). */
  modelName?: string;
  /** Other names the model answers to in /v1/models/{id} and, with strictModel, in requests. */
  aliases?: string[];
  /**
   * Refuse a request whose `model` is not the served name or an alias (400). Off by default:
   * with one model served, any `model` is answered by it, as llama-server does, since typed
   * clients always send one.
   */
  strictModel?: boolean;
  /** Requests that may wait for a slot; more get 503 (default 16). */
  queue?: number;
  /** Require `Authorization: Bearer <key>`. */
  apiKey?: string;
  /** Answer CORS requests from this origin ("*" for any); off by default. */
  cors?: string;
  /**
   * The `Host` names requests may carry (any port); others get 403. Set it when bound to a
   * loopback address, so a web page on another name (DNS rebinding) cannot reach the server.
   * Loopback names (localhost, 127.x.x.x, [::1]) are always allowed. Default: any host.
   */
  allowHosts?: string[];
  /**
   * Tokenize a long piece of text elsewhere (the Node server: a worker thread), so that it
   * does not hold the event loop. Default: here, between yields.
   */
  encode?: (p: Phi, text: string) => Promise<number[]>;
  /** Largest request body in bytes (default 1 MiB). */
  bodyLimit?: number;
  /** The chat format's speaker names (default Alice and Bob, as the model card). */
  userName?: string;
  assistantName?: string;
  /** max_tokens when a request gives none (default 256). */
  maxTokens?: number;
  /** Comment lines to keep a waiting stream open, every this many ms (default 5000). */
  pingMs?: number;
  /** One line per request (method, path, status, tokens, ms); default: none. */
  log?: (line: string) => void;
}

interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

const usage = (r: GenerationResult): Usage => ({
  prompt_tokens: r.promptTokens,
  completion_tokens: r.ids.length,
  total_tokens: r.promptTokens + r.ids.length,
  prompt_tokens_details: { cached_tokens: r.cachedPromptTokens },
});

/** OpenAI's finish reasons: the model stopped by itself or at a stop string, or hit a limit. */
const finishReason = (r: GenerationResult) =>
  r.stopReason === 'length' || r.stopReason === 'context' ? 'length' : 'stop';

const SSE_HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache',
  Connection: 'keep-alive',
};

/** What the route handlers share: the options, the model, and the request helpers. */
interface Helpers {
  o: Required<
    Pick<
      ServerOptions,
      'modelName' | 'queue' | 'bodyLimit' | 'userName' | 'assistantName' | 'maxTokens' | 'pingMs'
    >
  > &
    ServerOptions;
  loading: Promise<unknown>;
  loaded: () => Phi;
  /** Authorize, read the JSON body, check the model and the sampling fields. */
  request: (
    c: Context,
    chat: boolean,
  ) => Promise<{ b: Record<string, unknown>; req: ReturnType<typeof samplingRequest> }>;
  promptIds: (p: Phi, prompt: string | { ids: number[] }, param: string) => Promise<number[]>;
  start: (
    p: Phi,
    ids: number[],
    opts: Parameters<Phi['generate']>[1],
    signal: AbortSignal,
  ) => { run: Generation; abort: AbortController };
  newId: (prefix: string) => string;
  checkEnded: (r: GenerationResult) => void;
  tokenText: (p: Phi, id: number) => string;
  tokenBytes: (p: Phi, id: number) => number[];
  sse: (
    c: Context,
    abort: AbortController,
    produce: (send: (data: unknown) => void) => Promise<void>,
    done: () => string,
  ) => Response;
}

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

/** The name in a Host header, lower case, without its port. */
const hostName = (host: string) =>
  (host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d*$/, ''))
    .trim()
    .toLowerCase();

/** Names that only ever mean this machine. */
export const isLoopbackName = (name: string) =>
  name === 'localhost' ||
  name.endsWith('.localhost') ||
  /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name) ||
  name === '[::1]' ||
  name === '::1';

/** Pieces longer than this (text with no place to cut) are tokenized by `encode` when given. */
const LONG_PIECE_CHARS = 8192;

/** A prompt too long for the context is still counted exactly up to this many characters. */
const EXACT_COUNT_CHARS = 32768;

/** A header name as RFC 9110 spells one (a token). */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Options that would make every request fail are refused when the server is made. */
function checkServerOptions(o: ServerOptions & { queue: number; modelName: string }): void {
  if (
    o.cors !== undefined &&
    o.cors !== '*' &&
    !/^(null|[a-z][a-z0-9+.-]*:\/\/[^\s/?#]+)$/i.test(o.cors)
  )
    throw new Error(
      `cors must be "*" or an origin such as http://localhost:5173 (scheme://host[:port]), got ${JSON.stringify(o.cors)}`,
    );
  if (o.apiKey !== undefined && (o.apiKey === '' || /[\s]/.test(o.apiKey)))
    throw new Error(
      o.apiKey === ''
        ? 'the API key is empty: it would turn authentication off (is the variable it came from unset?)'
        : 'the API key must not contain whitespace',
    );
  if (!Number.isSafeInteger(o.queue) || o.queue < 0)
    throw new Error(`queue must be an integer >= 0, got ${JSON.stringify(o.queue)}`);
  if (typeof o.modelName !== 'string' || o.modelName === '')
    throw new Error(`modelName must be a non-empty string, got ${JSON.stringify(o.modelName)}`);
}

/**
 * The fetch handler. `phi` may still be loading (a promise): /health then answers 503 and
 * every model call waits for it.
 */
export function createServer(
  phi: Phi | Promise<Phi>,
  options: ServerOptions = {},
): { fetch: (request: Request) => Promise<Response>; ready: () => boolean; closeAll: () => void } {
  const o = withDefaults(
    {
      modelName: 'phi-1_5',
      aliases: [] as string[],
      strictModel: false,
      queue: DEFAULTS.queue as number,
      bodyLimit: DEFAULTS.bodyLimit as number,
      userName: DEFAULTS.userName as string,
      assistantName: DEFAULTS.assistantName as string,
      maxTokens: DEFAULTS.maxReplyTokens as number,
      pingMs: DEFAULTS.pingMs as number,
    },
    options,
  );
  checkServerOptions(o);
  const names = new Set([o.modelName, ...o.aliases]);
  let model: Phi | null = null;
  let loadError: unknown = null;
  const loading = Promise.resolve(phi)
    .then((p) => {
      // every endpoint but /detokenize's ids reads or writes text
      if (!p.tokenizer)
        throw new Error('the model folder has no tokenizer.json, which the server needs for text');
      model = p;
    })
    .catch((e) => {
      loadError = e;
    });
  const created = Math.floor(Date.now() / 1000);
  const running = new Set<AbortController>();
  /** Set by closeAll: new work is refused, and what was cut short says so. */
  let stopping = false;
  let nextId = 0;
  const newId = (prefix: string) =>
    `${prefix}-${Date.now().toString(36)}${(nextId++).toString(36).padStart(4, '0')}`;

  const app = new Hono();

  // --- errors, CORS, auth, logging
  app.onError((e, c) => {
    const err =
      e instanceof ApiError
        ? e
        : new ApiError(500, (e as Error).message ?? String(e), 'server_error');
    for (const [k, v] of Object.entries(err.headers)) c.header(k, v);
    return c.json(err.body(), err.status as 400);
  });
  app.notFound(() => {
    throw new ApiError(404, 'no such route', 'not_found_error', null, 'not_found');
  });
  app.use('*', async (c, next) => {
    const t0 = Date.now();
    if (o.cors) {
      c.header('Access-Control-Allow-Origin', o.cors);
      c.header('Vary', 'Origin');
      if (c.req.method === 'OPTIONS') {
        // a preflight carries no credentials: it is answered before auth. The headers it asks
        // for are allowed (the openai SDK sends x-stainless-*), when they are header names.
        const asked = c.req.header('Access-Control-Request-Headers') ?? '';
        const allowed = asked
          .split(',')
          .map((h) => h.trim())
          .filter((h) => HEADER_NAME.test(h));
        c.header('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
        c.header(
          'Access-Control-Allow-Headers',
          [
            ...new Set(['authorization', 'content-type', ...allowed.map((h) => h.toLowerCase())]),
          ].join(', '),
        );
        c.header('Access-Control-Max-Age', '600');
        c.header('Vary', 'Origin, Access-Control-Request-Headers');
        return c.body(null, 204);
      }
    }
    if (o.allowHosts) {
      const host = hostName(c.req.header('Host') ?? '');
      if (!isLoopbackName(host) && !o.allowHosts.some((h) => h.toLowerCase() === host))
        throw new ApiError(
          403,
          `Host ${JSON.stringify(host.slice(0, 100))} is not allowed: this server answers to loopback names` +
            (o.allowHosts.length ? ` and ${o.allowHosts.join(', ')}` : '') +
            ' (phi serve --allow-host NAME for a reverse proxy)',
          'invalid_request_error',
          null,
          'host_not_allowed',
        );
    }
    if (stopping && c.req.method !== 'GET')
      throw new ApiError(
        503,
        'the server is shutting down',
        'unavailable_error',
        null,
        'server_shutdown',
      );
    await next();
    if (o.log && !c.res.headers.get('Content-Type')?.startsWith('text/event-stream')) {
      o.log(`${c.req.method} ${c.req.path} ${c.res.status} ${Date.now() - t0} ms`);
    }
  });
  const authorize = (c: Context) => {
    if (o.apiKey === undefined) return;
    const auth = c.req.header('Authorization') ?? '';
    const given = /^bearer[ \t]+(.*)$/i.exec(auth.trim())?.[1] ?? '';
    if (!sameSecret(given, o.apiKey))
      throw new ApiError(
        401,
        auth ? 'invalid API key' : 'missing API key: send Authorization: Bearer <key>',
        'authentication_error',
        null,
        'invalid_api_key',
      );
  };

  /** The loaded model, or 503 while it loads. */
  const loaded = (): Phi => {
    if (model) return model;
    if (loadError)
      throw new ApiError(
        503,
        `the model failed to load: ${(loadError as Error).message}`,
        'unavailable_error',
      );
    throw new ApiError(503, 'the model is loading', 'unavailable_error', null, null, {
      'Retry-After': '5',
    });
  };

  /** The request body as a JSON object: 415 if not JSON, 413 past the limit, 400 if malformed. */
  const body = async (c: Context): Promise<Record<string, unknown>> => {
    const type = c.req.header('Content-Type') ?? '';
    if (!/^application\/json\b/i.test(type))
      throw new ApiError(415, `Content-Type must be application/json, got "${type || 'none'}"`);
    const length = Number(c.req.header('Content-Length') ?? 0);
    const tooLarge = () =>
      new ApiError(
        413,
        `request body over the limit of ${o.bodyLimit} bytes`,
        'invalid_request_error',
        null,
        'body_too_large',
      );
    if (length > o.bodyLimit) throw tooLarge();
    const chunks: Uint8Array[] = [];
    let size = 0;
    const reader = c.req.raw.body?.getReader();
    while (reader) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > o.bodyLimit) {
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
    return json as Record<string, unknown>;
  };

  /** `model` names what to run; one model is served, so any name is it unless strictModel. */
  const checkModel = (b: Record<string, unknown>) => {
    if (b.model === undefined || b.model === null) return;
    if (typeof b.model !== 'string') throw badField('model', 'must be a string');
    if (o.strictModel && !names.has(b.model))
      throw new ApiError(
        400,
        `model ${JSON.stringify(b.model.slice(0, 200))} is not served here; this server has ${[...names].map((n) => JSON.stringify(n)).join(', ')}`,
        'invalid_request_error',
        'model',
        'model_not_found',
      );
  };

  /**
   * The ids of a text, tokenized a piece at a time (cut where the tokenizer would cut anyway)
   * with the event loop let run between pieces, so other streams and /health go on. Past
   * `limit` ids a long text stops there (null): the rest is not worth the time; a short one
   * is finished, so the error can give its count.
   */
  const tokenize = async (p: Phi, text: string, limit: number): Promise<number[] | null> => {
    const ids: number[] = [];
    for (const piece of safePieces(text)) {
      // a piece the cutting could not shorten (one long word) goes elsewhere when it can
      const got =
        o.encode && piece.length > LONG_PIECE_CHARS ? await o.encode(p, piece) : p.encode(piece);
      for (const id of got) ids.push(id);
      if (ids.length > limit && text.length > EXACT_COUNT_CHARS) return null;
      await yieldToEventLoop();
    }
    return ids;
  };

  /** Token ids of a prompt, checked against the context before any work is queued. */
  const promptIds = async (
    p: Phi,
    prompt: string | { ids: number[] },
    param: string,
  ): Promise<number[]> => {
    const ctx = p.model.contextLength;
    // a text that cannot fit is refused before the work of tokenizing it
    if (typeof prompt === 'string' && prompt.length > p.maxPromptChars)
      throw new ApiError(
        400,
        `the prompt has ${prompt.length} characters, more than the context of ${ctx} positions can hold`,
        'invalid_request_error',
        param,
        'context_length_exceeded',
      );
    const ids = typeof prompt === 'string' ? await tokenize(p, prompt, ctx) : prompt.ids;
    if (ids === null)
      throw new ApiError(
        400,
        `the prompt has more tokens than the context of ${ctx} positions`,
        'invalid_request_error',
        param,
        'context_length_exceeded',
      );
    if (ids.length === 0) throw badField(param, 'is empty: at least one token is needed');
    if (ids.length > ctx)
      throw new ApiError(
        400,
        `the prompt has ${ids.length} tokens, more than the context of ${ctx} positions`,
        'invalid_request_error',
        param,
        'context_length_exceeded',
      );
    const bad = badTokenId(ids, p.config.vocabSize);
    if (bad) throw badField(param, bad);
    return ids;
  };

  /** Queue a generation, or 503 when the queue is full. Aborts when the client goes. */
  const start = (
    p: Phi,
    ids: number[],
    opts: Parameters<Phi['generate']>[1],
    signal: AbortSignal,
  ): { run: Generation; abort: AbortController } => {
    // a request that finds a free slot never waits; one that would wait needs room in the queue
    if (p.freeSlots === 0 && p.waiting >= o.queue)
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
    running.add(abort);
    const run = p.generate({ ids }, { ...opts, signal: abort.signal });
    void run
      .result()
      .catch(() => {})
      .finally(() => {
        running.delete(abort);
        signal.removeEventListener('abort', onGone);
      });
    return { run, abort };
  };

  /** A generation the shutdown cut short is an error for its client, not a normal end. */
  const checkEnded = (r: GenerationResult) => {
    if (r.stopReason === 'abort' && stopping)
      throw new ApiError(
        503,
        'the server is shutting down: the generation was stopped',
        'unavailable_error',
        null,
        'server_shutdown',
      );
  };

  const tokenText = (p: Phi, id: number) =>
    p.tokenizer ? new TextDecoder().decode(p.tokenizer.tokenBytes(id, false)) : '';
  const tokenBytes = (p: Phi, id: number) =>
    p.tokenizer ? Array.from(p.tokenizer.tokenBytes(id, false)) : [];

  /** An SSE response from an async producer of `data:` payloads; pings while it is silent. */
  const sse = (
    c: Context,
    abort: AbortController,
    produce: (send: (data: unknown) => void) => Promise<void>,
    done: () => string,
  ): Response => {
    const t0 = Date.now();
    const enc = new TextEncoder();
    let ping: ReturnType<typeof setInterval> | undefined;
    const stream = new ReadableStream<Uint8Array>({
      start: (ctl) => {
        const write = (s: string) => {
          try {
            ctl.enqueue(enc.encode(s));
          } catch {
            abort.abort(); // the client is gone
          }
        };
        ping = setInterval(() => write(': ping\n\n'), o.pingMs);
        const send = (data: unknown) => write(`data: ${JSON.stringify(data)}\n\n`);
        void produce(send)
          .catch((e) => {
            const err =
              e instanceof ApiError ? e : new ApiError(500, (e as Error).message, 'server_error');
            send(err.body());
          })
          .finally(() => {
            clearInterval(ping);
            write('data: [DONE]\n\n');
            try {
              ctl.close();
            } catch {
              // already closed by a cancel
            }
            o.log?.(`${c.req.method} ${c.req.path} 200 ${done()} ${Date.now() - t0} ms (stream)`);
          });
      },
      cancel: () => {
        clearInterval(ping);
        abort.abort();
      },
    });
    // through the context, so the headers set before (CORS) come along
    return c.body(stream, 200, SSE_HEADERS);
  };

  // --- routes
  app.get('/health', (c) => {
    if (model) return c.json({ status: 'ok' });
    if (loadError)
      return c.json({ status: 'error', error: String((loadError as Error).message) }, 503);
    return c.json({ status: 'loading model' }, 503);
  });

  const modelObject = () => ({ id: o.modelName, object: 'model', created, owned_by: 'phi-wasm' });
  app.get('/v1/models', (c) => {
    authorize(c);
    return c.json({ object: 'list', data: [modelObject()] });
  });
  app.get('/v1/models/:id{.+}', (c) => {
    authorize(c);
    if (!names.has(c.req.param('id')))
      throw new ApiError(
        404,
        `no model "${c.req.param('id')}"`,
        'not_found_error',
        'model',
        'model_not_found',
      );
    return c.json(modelObject());
  });

  const helpers: Helpers = {
    o,
    loading,
    loaded,
    request: async (c, chat) => {
      authorize(c);
      const b = await body(c);
      checkModel(b);
      // max_tokens is bounded by the context, known once the model is there
      await loading;
      const ctx = model?.model.contextLength ?? Infinity;
      return { b, req: samplingRequest(b, chat, Math.min(o.maxTokens, ctx), ctx) };
    },
    promptIds,
    start,
    newId,
    checkEnded,
    tokenText,
    tokenBytes,
    sse,
  };
  app.post('/v1/completions', (c) => completions(c, helpers));
  app.post('/v1/chat/completions', (c) => chatCompletions(c, helpers));

  // llama-server's tokenizer endpoints
  app.post('/tokenize', async (c) => {
    authorize(c);
    const b = await body(c);
    if (typeof b.content !== 'string') throw badField('content', 'must be a string');
    await loading;
    const p = loaded();
    if (b.content.length > p.maxPromptChars)
      throw new ApiError(
        400,
        `content has ${b.content.length} characters, more than the context of ${p.model.contextLength} positions can hold`,
        'invalid_request_error',
        'content',
        'context_length_exceeded',
      );
    const tokens = (await tokenize(p, b.content, Infinity))!;
    if (b.with_pieces === true)
      return c.json({ tokens: tokens.map((id) => ({ id, piece: tokenText(p, id) })) });
    return c.json({ tokens });
  });
  app.post('/detokenize', async (c) => {
    authorize(c);
    const b = await body(c);
    const t = b.tokens;
    if (!Array.isArray(t)) throw badField('tokens', 'must be an array of token ids');
    await loading;
    const p = loaded();
    const bad = badTokenId(t, p.config.vocabSize);
    if (bad) throw badField('tokens', bad);
    return c.json({ content: p.decode(t as number[]) });
  });

  // a known path with another method: 405
  for (const [path, allow] of [
    ['/health', 'GET'],
    ['/v1/models', 'GET'],
    ['/v1/completions', 'POST'],
    ['/v1/chat/completions', 'POST'],
    ['/tokenize', 'POST'],
    ['/detokenize', 'POST'],
  ]) {
    app.all(path, () => {
      throw new ApiError(
        405,
        `${path} takes ${allow}`,
        'invalid_request_error',
        null,
        'method_not_allowed',
        { Allow: allow },
      );
    });
  }

  return {
    fetch: async (request) => app.fetch(request),
    ready: () => model !== null,
    /** Shutdown: refuse new work, abort every running generation (its stream says why). */
    closeAll: () => {
      stopping = true;
      running.forEach((a) => a.abort());
    },
  };
}

/** POST /v1/completions: a prompt continued (streamed or not), legacy logprobs, echo. */
async function completions(c: Context, h: Helpers): Promise<Response> {
  const { o, loading, loaded, promptIds, start, newId, checkEnded, tokenText, sse } = h;
  const { b, req } = await h.request(c, false);
  const prompt = completionPrompt(b);
  const echo = (() => {
    if (b.echo === undefined || b.echo === null) return false;
    if (typeof b.echo !== 'boolean') throw badField('echo', 'must be true or false');
    return b.echo;
  })();
  await loading;
  const p = loaded();
  const ids = await promptIds(p, prompt, 'prompt');
  const { run, abort } = start(p, ids, req.options, c.req.raw.signal);
  const id = newId('cmpl');
  const head = {
    id,
    object: 'text_completion',
    created: Math.floor(Date.now() / 1000),
    model: o.modelName,
  };
  const echoed = echo ? (typeof prompt === 'string' ? prompt : p.decode(ids)) : '';

  // the legacy completions logprobs: parallel lists over the returned tokens
  const lp = () => ({
    tokens: [] as string[],
    token_logprobs: [] as number[],
    top_logprobs: [] as Record<string, number>[],
    text_offset: [] as number[],
  });
  const addLogprobs = (acc: ReturnType<typeof lp>, piece: TokenPiece, offset: number) => {
    acc.tokens.push(tokenText(p, piece.id));
    acc.token_logprobs.push(piece.logprob ?? 0);
    acc.top_logprobs.push(
      Object.fromEntries(
        (piece.top ?? [])
          .slice(0, req.logprobs ?? 0)
          .map((t: TokenLogprob) => [tokenText(p, t.id), t.logprob]),
      ),
    );
    acc.text_offset.push(offset);
  };

  if (!req.stream) {
    const pieces: TokenPiece[] = [];
    for await (const piece of run) pieces.push(piece);
    const r = await run.result();
    checkEnded(r);
    let logprobs = null;
    if (req.logprobs !== null) {
      const acc = lp();
      let offset = echoed.length;
      for (const piece of pieces) {
        addLogprobs(acc, piece, offset);
        offset += piece.text.length;
      }
      logprobs = acc;
    }
    o.log?.(`POST /v1/completions 200 ${r.promptTokens}+${r.ids.length} tokens`);
    return c.json({
      ...head,
      choices: [{ index: 0, text: echoed + r.text, logprobs, finish_reason: finishReason(r) }],
      usage: usage(r),
    });
  }
  let result: GenerationResult | null = null;
  return sse(
    c,
    abort,
    async (send) => {
      let offset = echoed.length;
      if (echoed)
        send({
          ...head,
          choices: [{ index: 0, text: echoed, logprobs: null, finish_reason: null }],
        });
      for await (const piece of run) {
        if (piece.text === '' && req.logprobs === null) continue;
        let logprobs = null;
        if (req.logprobs !== null) {
          logprobs = lp();
          addLogprobs(logprobs, piece, offset);
        }
        offset += piece.text.length;
        send({
          ...head,
          choices: [{ index: 0, text: piece.text, logprobs, finish_reason: null }],
        });
      }
      result = await run.result();
      checkEnded(result);
      send({
        ...head,
        choices: [{ index: 0, text: '', logprobs: null, finish_reason: finishReason(result) }],
      });
      if (req.includeUsage) send({ ...head, choices: [], usage: usage(result) });
    },
    () => (result ? `${result.promptTokens}+${result.ids.length} tokens` : 'aborted'),
  );
}

/** POST /v1/chat/completions: messages in the Chat format, the reply until the next turn. */
async function chatCompletions(c: Context, h: Helpers): Promise<Response> {
  const { o, loading, loaded, promptIds, start, newId, checkEnded, tokenText, tokenBytes, sse } = h;
  const { b, req } = await h.request(c, true);
  const messages = chatMessages(b);
  await loading;
  const p = loaded();
  const ids = await promptIds(p, chatPrompt(messages, o.userName, o.assistantName), 'messages');
  // the next turn of either speaker ends the reply
  const turns = turnStops(o.userName, o.assistantName);
  const options = { ...req.options, stop: [...turns, ...(req.options.stop ?? [])] };
  const { run, abort } = start(p, ids, options, c.req.raw.signal);
  const id = newId('chatcmpl');
  const head = {
    id,
    object: 'chat.completion.chunk',
    created: Math.floor(Date.now() / 1000),
    model: o.modelName,
  };

  const entry = (piece: TokenPiece) => ({
    token: tokenText(p, piece.id),
    logprob: piece.logprob ?? 0,
    bytes: tokenBytes(p, piece.id),
    top_logprobs: (piece.top ?? []).slice(0, req.logprobs ?? 0).map((t) => ({
      token: tokenText(p, t.id),
      logprob: t.logprob,
      bytes: tokenBytes(p, t.id),
    })),
  });
  // the model continues "Bob:" with a space: the reply starts at its first other character
  let started = false;
  const trimStart = (text: string) => {
    if (started) return text;
    const t = text.replace(/^\s+/, '');
    started = t.length > 0;
    return t;
  };

  if (!req.stream) {
    const content: ReturnType<typeof entry>[] = [];
    let text = '';
    for await (const piece of run) {
      text += trimStart(piece.text);
      if (req.logprobs !== null) content.push(entry(piece));
    }
    const r = await run.result();
    checkEnded(r);
    o.log?.(`POST /v1/chat/completions 200 ${r.promptTokens}+${r.ids.length} tokens`);
    return c.json({
      ...head,
      object: 'chat.completion',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: text.trimEnd() },
          logprobs: req.logprobs === null ? null : { content },
          finish_reason: finishReason(r),
        },
      ],
      usage: usage(r),
    });
  }
  let result: GenerationResult | null = null;
  return sse(
    c,
    abort,
    async (send) => {
      send({
        ...head,
        choices: [
          {
            index: 0,
            delta: { role: 'assistant', content: '' },
            logprobs: null,
            finish_reason: null,
          },
        ],
      });
      for await (const piece of run) {
        const text = trimStart(piece.text);
        if (text === '' && req.logprobs === null) continue;
        const logprobs = req.logprobs === null ? null : { content: [entry(piece)] };
        send({
          ...head,
          choices: [{ index: 0, delta: { content: text }, logprobs, finish_reason: null }],
        });
      }
      result = await run.result();
      checkEnded(result);
      send({
        ...head,
        choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: finishReason(result) }],
      });
      if (req.includeUsage) send({ ...head, choices: [], usage: usage(result) });
    },
    () => (result ? `${result.promptTokens}+${result.ids.length} tokens` : 'aborted'),
  );
}
