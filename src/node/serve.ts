// `phi serve` in Node: the portable fetch handler (src/server) on a Node HTTP server, through
// @hono/node-server, which streams responses and turns a client that goes away into an abort
// of the request's signal.
import { serve as nodeServe } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import type { Phi } from '../engine.js';
import { createServer, type ServerOptions } from '../server/index.js';

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
  /** Stop accepting, abort running generations, and resolve once the socket is closed. */
  close(): Promise<void>;
}

export function serve(phi: Phi | Promise<Phi>, options: ServeOptions = {}): Promise<RunningServer> {
  const handler = createServer(phi, options);
  const host = options.host ?? '127.0.0.1';
  return new Promise((resolve, reject) => {
    const server = nodeServe(
      { fetch: handler.fetch, hostname: host, port: options.port ?? 8080 },
      (info: AddressInfo) => {
        const shown = host.includes(':') ? `[${host}]` : host;
        resolve({
          url: `http://${shown}:${info.port}`,
          port: info.port,
          close: () =>
            new Promise<void>((done) => {
              handler.closeAll();
              server.close(() => done());
              // streams end within a token of their abort; idle keep-alive sockets close now
              (server as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
            }),
        });
      },
    );
    server.once('error', reject);
  });
}
