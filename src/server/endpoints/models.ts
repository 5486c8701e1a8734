// GET /health, /v1/models and /v1/models/{id}: whether the one model is there, and its names.
import type { Context } from 'hono';
import type { ServerContext } from '../context.js';
import { ApiError } from '../errors.js';

export function health(c: Context, ctx: ServerContext): Response {
  if (ctx.ready) return c.json({ status: 'ok' });
  if (ctx.failure) return c.json({ status: 'error', error: String(ctx.failure.message) }, 503);
  return c.json({ status: 'loading model' }, 503);
}

const modelObject = (ctx: ServerContext) => ({
  id: ctx.o.modelName,
  object: 'model',
  created: ctx.created,
  owned_by: 'phi-wasm',
});

export function listModels(c: Context, ctx: ServerContext): Response {
  ctx.authorize(c);
  return c.json({ object: 'list', data: [modelObject(ctx)] });
}

/** The model under any of its names (the served name or an alias). */
export function getModel(c: Context, ctx: ServerContext): Response {
  ctx.authorize(c);
  const id = c.req.param('id') ?? '';
  if (!ctx.names.has(id))
    throw new ApiError(404, `no model "${id}"`, 'not_found_error', 'model', 'model_not_found');
  return c.json(modelObject(ctx));
}
