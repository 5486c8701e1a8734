// GET /health, /v1/models and /v1/models/{id}: whether the model is there, its names, and the
// LoRA adapters it serves (each a model id of its own); llama-server's GET /lora-adapters.
import type { Context } from 'hono';
import type { Phi } from '../../engine.js';
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

/** A LoRA adapter as a model of its own (as vLLM lists them): `parent` is the base. */
const adapterObject = (ctx: ServerContext, p: Phi, name: string) => ({
  id: name,
  object: 'model',
  created: ctx.created,
  owned_by: 'phi-wasm',
  root: p.adapterInfo(name).source,
  parent: ctx.o.modelName,
});

/** The base model, then each adapter loaded (none while the model loads). */
export function listModels(c: Context, ctx: ServerContext): Response {
  ctx.authorize(c);
  const p = ctx.ready ? ctx.loaded() : null;
  const adapters = p ? p.adapters.map((n) => adapterObject(ctx, p, n)) : [];
  return c.json({ object: 'list', data: [modelObject(ctx), ...adapters] });
}

/** The model under any of its names (the served name or an alias), or an adapter. */
export function getModel(c: Context, ctx: ServerContext): Response {
  ctx.authorize(c);
  const id = c.req.param('id') ?? '';
  if (ctx.names.has(id)) return c.json(modelObject(ctx));
  const p = ctx.ready ? ctx.loaded() : null;
  if (p?.adapters.includes(id)) return c.json(adapterObject(ctx, p, id));
  throw new ApiError(404, `no model "${id}"`, 'not_found_error', 'model', 'model_not_found');
}

/** llama-server's GET /lora-adapters: each adapter's index (for `lora`), path and scale. */
export function loraAdapters(c: Context, ctx: ServerContext): Response {
  ctx.authorize(c);
  const p = ctx.loaded();
  return c.json(
    p.adapters.map((name, id) => ({ id, name, path: p.adapterInfo(name).source, scale: 1 })),
  );
}
