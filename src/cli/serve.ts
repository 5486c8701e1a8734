// `phi serve`: listen at once (/health says 503 while the model loads), load, serve; one log
// line per request on stderr; SIGINT / SIGTERM stop accepting, abort what runs, and exit.
import type { Phi } from '../engine.js';
import type { LoadOptions } from '../load.js';
import { serve } from '../node/serve.js';
import type { Values } from './args.js';

export async function serveCommand(
  v: Values,
  load: (extra: LoadOptions) => Promise<Phi>,
): Promise<void> {
  const parallel = (v.parallel as number | undefined) ?? 1;
  const loading = load({ parallel });
  const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
  const server = await serve(loading, {
    host: v.host as string | undefined,
    port: (v.port as number | undefined) ?? 8080,
    queue: v.queue as number | undefined,
    apiKey: v['api-key'] as string | undefined,
    cors: v.cors as string | undefined,
    modelName: v['model-name'] as string | undefined,
    log,
  });
  process.stderr.write(`phi serve: listening on ${server.url} (loading the model)\n`);
  let phi: Phi;
  try {
    phi = await loading;
  } catch (e) {
    await server.close();
    throw e;
  }
  process.stderr.write(
    `phi serve: ready: ${server.url}/v1 (${phi.parallel} slot(s) of ${phi.model.contextLength} positions, ${phi.model.kernels.name})\n`,
  );
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      process.stderr.write(`phi serve: ${signal}: stopping\n`);
      void server.close().then(() => {
        phi.close();
        resolve();
      });
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}
