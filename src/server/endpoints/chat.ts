// POST /v1/chat/completions: messages in the model card's Chat format, the reply until the
// next turn of either speaker.
import type { Context } from 'hono';
import type { TokenPiece } from '../../generation.js';
import { turnStops } from '../../prompts.js';
import { answer, finishReason } from '../answer.js';
import { tokenBytes, tokenText, type ServerContext } from '../context.js';
import { chatMessages, chatPrompt } from '../requests.js';

export async function chatCompletions(c: Context, ctx: ServerContext): Promise<Response> {
  const o = ctx.o;
  const { b, req } = await ctx.generationRequest(c, true);
  const messages = chatMessages(b);
  await ctx.loading;
  const p = ctx.loaded();
  const ids = await ctx.promptIds(p, chatPrompt(messages, o.userName, o.assistantName), 'messages');
  // the next turn of either speaker ends the reply
  const turns = turnStops(o.userName, o.assistantName);
  const options = { ...req.options, stop: [...turns, ...(req.options.stop ?? [])] };

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

  return answer(c, ctx, p, ids, req, options, {
    idPrefix: 'chatcmpl',
    object: 'chat.completion',
    chunkObject: 'chat.completion.chunk',
    whole: (pieces, r) => {
      const text = pieces.map((piece) => trimStart(piece.text)).join('');
      const content = req.logprobs === null ? null : { content: pieces.map(entry) };
      return {
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: text.trimEnd() },
            logprobs: content,
            finish_reason: finishReason(r),
          },
        ],
      };
    },
    opening: () => [
      {
        choices: [
          {
            index: 0,
            delta: { role: 'assistant', content: '' },
            logprobs: null,
            finish_reason: null,
          },
        ],
      },
    ],
    chunk: (piece) => {
      const text = trimStart(piece.text);
      if (text === '' && req.logprobs === null) return null;
      const logprobs = req.logprobs === null ? null : { content: [entry(piece)] };
      return { choices: [{ index: 0, delta: { content: text }, logprobs, finish_reason: null }] };
    },
    closing: (r) => ({
      choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: finishReason(r) }],
    }),
  });
}
