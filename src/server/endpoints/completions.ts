// POST /v1/completions: a prompt continued (streamed or not), legacy logprobs, echo.
import type { Context } from 'hono';
import type { TokenLogprob, TokenPiece } from '../../generation.js';
import { answer, finishReason } from '../answer.js';
import { tokenText, type ServerContext } from '../context.js';
import { badField } from '../errors.js';
import { completionPrompt } from '../requests.js';

export async function completions(c: Context, ctx: ServerContext): Promise<Response> {
  const { b, req } = await ctx.generationRequest(c, false);
  const prompt = completionPrompt(b);
  const echo = (() => {
    if (b.echo === undefined || b.echo === null) return false;
    if (typeof b.echo !== 'boolean') throw badField('echo', 'must be true or false');
    return b.echo;
  })();
  await ctx.loading;
  const p = ctx.loaded();
  const ids = await ctx.promptIds(p, prompt, 'prompt');
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
  let offset = echoed.length; // of the streamed pieces, in the text so far

  return answer(c, ctx, p, ids, req, req.options, {
    idPrefix: 'cmpl',
    object: 'text_completion',
    chunkObject: 'text_completion',
    whole: (pieces, r) => {
      let logprobs = null;
      if (req.logprobs !== null) {
        const acc = lp();
        let at = echoed.length;
        for (const piece of pieces) {
          addLogprobs(acc, piece, at);
          at += piece.text.length;
        }
        logprobs = acc;
      }
      return {
        choices: [{ index: 0, text: echoed + r.text, logprobs, finish_reason: finishReason(r) }],
      };
    },
    opening: () =>
      echoed
        ? [{ choices: [{ index: 0, text: echoed, logprobs: null, finish_reason: null }] }]
        : [],
    chunk: (piece) => {
      if (piece.text === '' && req.logprobs === null) return null;
      let logprobs = null;
      if (req.logprobs !== null) {
        logprobs = lp();
        addLogprobs(logprobs, piece, offset);
      }
      offset += piece.text.length;
      return { choices: [{ index: 0, text: piece.text, logprobs, finish_reason: null }] };
    },
    closing: (r) => ({
      choices: [{ index: 0, text: '', logprobs: null, finish_reason: finishReason(r) }],
    }),
  });
}
