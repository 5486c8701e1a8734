// HTTP around the endpoints: errors as JSON, CORS, the Host check, the shutdown gate, the
// request log, and Server-Sent Events.
import type { Context, Hono } from 'hono';
import type { ServerContext } from './context.js';
import { ApiError } from './errors.js';

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

/** A header name as RFC 9110 spells one (a token). */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Errors as OpenAI's JSON, 404s, and the checks every request passes before its endpoint. */
export function useHttp(app: Hono, ctx: ServerContext): void {
  const o = ctx.o;
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
    if (ctx.stopping && c.req.method !== 'GET')
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
}

const SSE_HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache',
  Connection: 'keep-alive',
};

/**
 * An SSE response from an async producer of `data:` payloads; pings every pingMs while it is
 * silent, ends with [DONE], and logs `done()` when the stream closes.
 */
export function sse(
  c: Context,
  o: { pingMs: number; log?: (line: string) => void },
  abort: AbortController,
  produce: (send: (data: unknown) => void) => Promise<void>,
  done: () => string,
): Response {
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
}
