// The one generation skeleton behind /v1/completions and /v1/chat/completions: queue the
// prompt, then answer with one JSON body or a stream of chunks. The endpoints differ only in
// the shapes of those bodies and chunks (a Reply).
import type { Context } from 'hono';
import type { Phi } from '../engine.js';
import type { GenerationResult, TokenPiece } from '../generation.js';
import type { Json, ServerContext } from './context.js';
import { sse } from './http.js';
import type { SamplingRequest } from './requests.js';

/** What an endpoint puts in its bodies and chunks; `head` (id, object, created, model) is added. */
export interface Reply {
  /** The id's prefix and the `object` of a whole answer and of a chunk. */
  idPrefix: string;
  object: string;
  chunkObject: string;
  /** The whole answer's fields (choices), from every piece and the result. */
  whole(pieces: TokenPiece[], r: GenerationResult): Json;
  /** The chunks sent before the first piece. */
  opening(): Json[];
  /** A piece's chunk fields, or null to send nothing for it. */
  chunk(piece: TokenPiece): Json | null;
  /** The last chunks' fields, the finish reason in the last. */
  closing(r: GenerationResult): Json | Json[];
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
export const finishReason = (r: GenerationResult) =>
  r.stopReason === 'length' || r.stopReason === 'context' ? 'length' : 'stop';

const tokens = (r: GenerationResult) => `${r.promptTokens}+${r.ids.length} tokens`;

/** Run the generation of `ids` and answer the request with it, whole or streamed. */
export async function answer(
  c: Context,
  ctx: ServerContext,
  p: Phi,
  ids: number[],
  req: SamplingRequest,
  options: SamplingRequest['options'],
  reply: Reply,
): Promise<Response> {
  const { run, abort } = ctx.start(p, ids, options, c.req.raw.signal);
  const head = {
    id: ctx.newId(reply.idPrefix),
    object: reply.chunkObject,
    created: Math.floor(Date.now() / 1000),
    model: options.adapter ?? ctx.o.modelName, // the adapter a request ran with, by its name
  };
  if (!req.stream) {
    const pieces: TokenPiece[] = [];
    for await (const piece of run) pieces.push(piece);
    const r = await run.result();
    ctx.checkEnded(r);
    ctx.o.log?.(`${c.req.method} ${c.req.path} 200 ${tokens(r)}`);
    return c.json({ ...head, object: reply.object, ...reply.whole(pieces, r), usage: usage(r) });
  }
  let result: GenerationResult | null = null;
  return sse(
    c,
    ctx.o,
    abort,
    async (send) => {
      for (const chunk of reply.opening()) send({ ...head, ...chunk });
      for await (const piece of run) {
        const chunk = reply.chunk(piece);
        if (chunk) send({ ...head, ...chunk });
      }
      result = await run.result();
      ctx.checkEnded(result);
      for (const chunk of [reply.closing(result)].flat()) send({ ...head, ...chunk });
      if (req.includeUsage) send({ ...head, choices: [], usage: usage(result) });
    },
    () => (result ? tokens(result) : 'aborted'),
  );
}
