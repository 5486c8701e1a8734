// `phi serve`: listen at once (/health says 503 while the model loads), load, serve; one log
// line per request on stderr. SIGINT / SIGTERM stop accepting, abort what runs (the streams
// say why), close every connection after --shutdown-grace seconds, and exit; a second signal
// exits at once. A model that fails to load ends the server with its error, whatever is open.
import * as path from 'node:path';
import { DEFAULTS } from '../defaults.js';
import type { Phi } from '../engine.js';
import type { LoadOptions } from '../load.js';
import { DEFAULT_MODEL, parseModelRef } from '../node/hub.js';
import { serve } from '../node/serve.js';
import { UsageError, type Values } from './args.js';

/** The name the server reports, and the other names it answers to. */
export function servedNames(v: Values): { name: string; aliases: string[] } {
  const spec = (v.model as string | undefined) ?? DEFAULT_MODEL;
  const ref = parseModelRef(spec);
  // a Hub id as it is written (without @revision), else the folder's name
  const own = ref ? ref.repo : path.basename(path.resolve(spec));
  const short = ref ? ref.repo.split('/')[1] : own;
  const name = (v['model-name'] as string | undefined) ?? own;
  return { name, aliases: [...new Set([own, short, spec])].filter((n) => n !== name) };
}

export async function serveCommand(
  v: Values,
  load: (extra: LoadOptions) => Promise<Phi>,
): Promise<void> {
  const { name, aliases } = servedNames(v);
  if (v['model-name'] !== undefined && name.trim() === '')
    throw new UsageError('--model-name must not be empty');
  if (v['api-key'] !== undefined && v['api-key'] === '')
    throw new UsageError(
      '--api-key is empty, which would turn authentication off; is the variable it came from unset?',
    );
  const graceMs = ((v['shutdown-grace'] as number | undefined) ?? DEFAULTS.shutdownGraceS) * 1000;
  // logging must never stop the server: a closed stderr (phi serve 2>&1 | head) turns it off
  let logging = true;
  process.stderr.on('error', () => (logging = false));
  const say = (line: string) => {
    if (!logging) return;
    try {
      process.stderr.write(line);
    } catch {
      logging = false;
    }
  };
  const log = (line: string) => say(`${new Date().toISOString()} ${line}\n`);
  const parallel = (v.parallel as number | undefined) ?? 1;
  const loading = load({ parallel });
  loading.catch(() => {}); // handled below; the server answers 503 meanwhile
  const server = await serve(loading, {
    host: v.host as string | undefined,
    port: v.port as number | undefined,
    queue: v.queue as number | undefined,
    apiKey: v['api-key'] as string | undefined,
    cors: v.cors as string | undefined,
    allowHosts: v['allow-host'] as string[] | undefined,
    modelName: name,
    aliases,
    strictModel: v['strict-model'] === true,
    log,
  });
  say(`phi serve: listening on ${server.url} (loading the model)\n`);
  let stopping = false;
  const stopped = new Promise<string>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        say(`phi serve: ${signal} again: exiting now\n`);
        process.exit(signal === 'SIGINT' ? 130 : 143);
      }
      stopping = true;
      resolve(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  const phi = await Promise.race([loading, stopped]).catch(async (e) => {
    await server.close(0);
    throw e;
  });
  if (typeof phi === 'string') {
    // stopped while loading: nothing to finish
    say(`phi serve: ${phi}: stopping\n`);
    await server.close(0);
    loading.then((p) => p.close()).catch(() => {});
    return;
  }
  say(
    `phi serve: ready: ${server.url}/v1, model "${name}" (${phi.parallel} slot(s) of ${phi.model.contextLength} positions, ${phi.model.kernels.name})\n`,
  );
  const signal = await stopped;
  say(`phi serve: ${signal}: stopping (connections get ${graceMs / 1000} s to finish)\n`);
  await server.close(graceMs);
  phi.close();
  say('phi serve: stopped\n');
}
