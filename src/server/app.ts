// The server as an app of endpoints: one route table, from which the 405s come too.
import { Hono, type Context } from 'hono';
import type { Phi } from '../engine.js';
import { ServerContext } from './context.js';
import { chatCompletions } from './endpoints/chat.js';
import { completions } from './endpoints/completions.js';
import { getModel, health, listModels, loraAdapters } from './endpoints/models.js';
import { detokenize, tokenize } from './endpoints/tokenize.js';
import { ApiError } from './errors.js';
import { useHttp } from './http.js';
import { resolveOptions, type ServerOptions } from './options.js';

type Endpoint = (c: Context, ctx: ServerContext) => Response | Promise<Response>;

/** Every route: method, path (Hono's syntax), endpoint. */
const ROUTES: [method: 'GET' | 'POST', path: string, endpoint: Endpoint][] = [
  ['GET', '/health', health],
  ['GET', '/v1/models', listModels],
  ['GET', '/v1/models/:id{.+}', getModel],
  ['POST', '/v1/completions', completions],
  ['POST', '/v1/chat/completions', chatCompletions],
  // llama-server's adapter list and tokenizer endpoints
  ['GET', '/lora-adapters', loraAdapters],
  ['POST', '/tokenize', tokenize],
  ['POST', '/detokenize', detokenize],
];

export interface Server {
  fetch: (request: Request) => Promise<Response>;
  /** Whether the model has loaded. */
  ready: () => boolean;
  /** Shutdown: refuse new work, abort every running generation (its stream says why). */
  closeAll: () => void;
}

/**
 * The fetch handler. `phi` may still be loading (a promise): /health then answers 503 and
 * every model call waits for it.
 */
export function createServer(phi: Phi | Promise<Phi>, options: ServerOptions = {}): Server {
  const ctx = new ServerContext(resolveOptions(options), phi);
  const app = new Hono();
  useHttp(app, ctx);
  for (const [method, path, endpoint] of ROUTES) app.on(method, path, (c) => endpoint(c, ctx));
  // a known path with another method: 405
  const allowed = new Map<string, string[]>();
  for (const [method, path] of ROUTES) allowed.set(path, [...(allowed.get(path) ?? []), method]);
  for (const [path, methods] of allowed) {
    const allow = methods.join(', ');
    app.all(path, (c) => {
      throw new ApiError(
        405,
        `${c.req.path} takes ${allow}`,
        'invalid_request_error',
        null,
        'method_not_allowed',
        { Allow: allow },
      );
    });
  }
  return {
    fetch: async (request) => app.fetch(request),
    ready: () => ctx.ready,
    closeAll: () => ctx.closeAll(),
  };
}
