// `phi serve` in Node: the portable fetch handler (src/server) on a Node HTTP server, through
// @hono/node-server, which streams responses and turns a client that goes away into an abort
// of the request's signal.
import { serve as nodeServe } from '@hono/node-server';
import type { Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import { DEFAULTS } from '../defaults.js';
import type { Phi } from '../engine.js';
import { createServer, isLoopbackName, type ServerOptions } from '../server/index.js';

export interface ServeOptions extends ServerOptions {
  /** Address to bind (default 127.0.0.1: this machine only). */
  host?: string;
  /** Port (default 8080; 0 picks a free one). */
  port?: number;
}

export interface RunningServer {
  /** e.g. http://127.0.0.1:8080 */
  url: string;
  port: number;
  /**
   * Stop accepting, abort running generations (their streams end with an error saying so),
   * and close every connection, idle or half-sent, once `graceMs` have passed (default 3 s)
   * or sooner when they are done. Resolves when the listening socket is closed.
   */
  close(graceMs?: number): Promise<void>;
}

/** The server's tokenizer thread, started at the first long text (most servers never see one). */
function tokenizerThread() {
  let worker: Worker | null = null;
  let next = 0;
  const waiting = new Map<
    number,
    { resolve: (ids: number[]) => void; reject: (e: Error) => void }
  >();
  const encode = (p: Phi, text: string): Promise<number[]> => {
    const source = p.tokenizer?.source;
    if (!source) return Promise.resolve(p.encode(text)); // built by hand: no files to share
    if (!worker) {
      worker = new Worker(new URL('./tokenize-worker.js', import.meta.url), { workerData: source });
      worker.unref();
      worker.on('message', (m: { id: number; ids?: number[]; error?: string }) => {
        const w = waiting.get(m.id);
        waiting.delete(m.id);
        if (m.ids) w?.resolve(m.ids);
        else w?.reject(new Error(m.error));
      });
      const fail = (e: Error) => {
        for (const w of waiting.values()) w.reject(e);
        waiting.clear();
        worker = null;
      };
      worker.on('error', fail);
      worker.on('exit', (code) => fail(new Error(`the tokenizer thread exited (${code})`)));
    }
    const id = next++;
    return new Promise((resolve, reject) => {
      waiting.set(id, { resolve, reject });
      worker!.postMessage({ id, text });
    });
  };
  return { encode, close: () => void worker?.terminate() };
}

export async function serve(
  phi: Phi | Promise<Phi>,
  options: ServeOptions = {},
): Promise<RunningServer> {
  const host = options.host ?? DEFAULTS.host;
  // bound to loopback: only loopback Host names (and those allowed) reach it, as ollama does
  const loopback = isLoopbackName(host.toLowerCase()) || host === '::1';
  const tokenizer = tokenizerThread();
  const handler = createServer(phi, {
    ...options,
    allowHosts: options.allowHosts ?? (loopback ? [] : undefined),
    encode: options.encode ?? tokenizer.encode,
  });
  return new Promise((resolve, reject) => {
    const sockets = new Set<Socket>();
    const server = nodeServe(
      { fetch: handler.fetch, hostname: host, port: options.port ?? DEFAULTS.port },
      (info: AddressInfo) => {
        const shown = host.includes(':') ? `[${host}]` : host;
        let closing: Promise<void> | null = null;
        resolve({
          url: `http://${shown}:${info.port}`,
          port: info.port,
          close: (graceMs = DEFAULTS.shutdownGraceS * 1000) =>
            (closing ??= new Promise<void>((done) => {
              handler.closeAll();
              tokenizer.close();
              const http = server as Server;
              // streams end within a token of their abort; idle keep-alive sockets close now;
              // whatever is still open (a client mid-headers or mid-body) when the grace ends
              const hard = setTimeout(() => {
                http.closeAllConnections?.();
                for (const s of sockets) s.destroy();
              }, graceMs);
              hard.unref?.();
              http.close(() => {
                clearTimeout(hard);
                done();
              });
              http.closeIdleConnections?.();
            })),
        });
      },
    );
    // the http server tracks sockets with a request; this also sees those that never sent one
    server.on('connection', (s: Socket) => {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    });
    // what Node's HTTP parser refuses (a malformed Content-Length, a broken request line)
    // gets OpenAI's error shape too, not a bare 400 a client cannot read
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      if (!socket.writable) return socket.destroy();
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
      const body = JSON.stringify({
        error: {
          message: `the request could not be parsed: ${err.code ?? err.message}`,
          type: 'invalid_request_error',
          param: null,
          code: 'bad_request',
        },
      });
      socket.end(
        `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    });
    server.once('error', reject);
  });
}
