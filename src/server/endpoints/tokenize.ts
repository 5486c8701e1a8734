// POST /tokenize and /detokenize, as llama-server has them.
import type { Context } from 'hono';
import { badTokenId } from '../../model/token_ids.js';
import { tokenText, type ServerContext } from '../context.js';
import { ApiError, badField } from '../errors.js';

export async function tokenize(c: Context, ctx: ServerContext): Promise<Response> {
  ctx.authorize(c);
  const b = await ctx.body(c);
  if (typeof b.content !== 'string') throw badField('content', 'must be a string');
  await ctx.loading;
  const p = ctx.loaded();
  if (b.content.length > p.maxPromptChars)
    throw new ApiError(
      400,
      `content has ${b.content.length} characters, more than the context of ${p.model.contextLength} positions can hold`,
      'invalid_request_error',
      'content',
      'context_length_exceeded',
    );
  const tokens = (await ctx.tokenize(p, b.content, Infinity))!;
  if (b.with_pieces === true)
    return c.json({ tokens: tokens.map((id) => ({ id, piece: tokenText(p, id) })) });
  return c.json({ tokens });
}

export async function detokenize(c: Context, ctx: ServerContext): Promise<Response> {
  ctx.authorize(c);
  const b = await ctx.body(c);
  const t = b.tokens;
  if (!Array.isArray(t)) throw badField('tokens', 'must be an array of token ids');
  await ctx.loading;
  const p = ctx.loaded();
  const bad = badTokenId(t, p.config.vocabSize);
  if (bad) throw badField('tokens', bad);
  return c.json({ content: p.decode(t as number[]) });
}
