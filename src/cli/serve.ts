// `phi serve`: listen at once (/health says 503 while the model loads), load, serve; one log
// line per request on stderr. SIGINT / SIGTERM stop accepting, abort what runs (the streams
// say why), close every connection after --shutdown-grace seconds, and exit; a second signal
// exits at once. A model that fails to load ends the server with its error, whatever is open.
import * as path from 'node:path';
import { DEFAULTS } from '../defaults.js';
import type { Phi } from '../engine.js';
import type { NodeLoadOptions } from '../node/index.js';
import { DEFAULT_MODEL, parseModelRef } from '../node/hub.js';
import { serve } from '../node/serve.js';
import { resolveOptions } from '../server/index.js';
import { badAdapterName } from '../weights/adapter.js';
import { UsageError, type Values } from './args.js';
import { asFlagError, HELP, load, MODEL_FLAGS, type Command } from './common.js';

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

/** --adapter NAME=DIR|ID, repeatable: the adapters served unmerged, each a model id. */
function servedAdapters(v: Values, base: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const spec of (v.adapter as string[] | undefined) ?? []) {
    const eq = spec.indexOf('=');
    if (eq <= 0 || eq === spec.length - 1)
      throw new UsageError(
        `--adapter takes NAME=DIR|ID (the name requests give as model), got "${spec}"`,
      );
    const name = spec.slice(0, eq);
    const bad = badAdapterName(name);
    if (bad) throw new UsageError(`--adapter ${spec}: ${bad}`);
    if (name in out || base.includes(name))
      throw new UsageError(
        `--adapter ${spec}: the name ${name} is already the ${name in out ? 'name of another adapter' : "base model's"}`,
      );
    out[name] = spec.slice(eq + 1);
  }
  return out;
}

async function runServe(v: Values, load: (extra: NodeLoadOptions) => Promise<Phi>): Promise<void> {
  const { name, aliases } = servedNames(v);
  const adapters = servedAdapters(v, [name, ...aliases]);
  const options = {
    queue: v.queue as number | undefined,
    apiKey: v['api-key'] as string | undefined,
    cors: v.cors as string | undefined,
    allowHosts: v['allow-host'] as string[] | undefined,
    modelName: name,
    aliases,
    strictModel: v['strict-model'] === true,
  };
  // the server's own checks, before anything is loaded or downloaded, said as the flags
  try {
    resolveOptions(options);
  } catch (e) {
    throw asFlagError(e);
  }
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
  const loading = load({ parallel, ...(Object.keys(adapters).length ? { adapters } : {}) });
  loading.catch(() => {}); // handled below; the server answers 503 meanwhile
  const server = await serve(loading, {
    host: v.host as string | undefined,
    port: v.port as number | undefined,
    ...options,
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
    `phi serve: ready: ${server.url}/v1, model "${name}"${phi.adapters.length ? ` and adapter(s) ${phi.adapters.map((a) => `"${a}"`).join(', ')}` : ''} (${phi.parallel} slot(s) of ${phi.model.contextLength} positions, ${phi.model.kernels.name})\n`,
  );
  const signal = await stopped;
  say(`phi serve: ${signal}: stopping (connections get ${graceMs / 1000} s to finish)\n`);
  await server.close(graceMs);
  phi.close();
  say('phi serve: stopped\n');
}

export const serveCommand: Command = {
  usage: 'phi serve [--host 127.0.0.1] [--port 8080] [--parallel N] [--queue N] [options]',
  about:
    'An OpenAI-compatible HTTP server (/v1/completions, /v1/chat/completions, /v1/models, /health).',
  flags: [
    {
      name: 'host',
      type: 'string',
      arg: 'ADDR',
      help: 'address to bind (default 127.0.0.1: this machine only)',
    },
    { name: 'port', type: 'integer', arg: 'N', min: 0, max: 65535, help: 'port (default 8080)' },
    {
      name: 'parallel',
      type: 'integer',
      arg: 'N',
      min: 1,
      max: 64,
      help: 'requests decoded together, a KV cache each (default 1)',
    },
    {
      name: 'queue',
      type: 'integer',
      arg: 'N',
      min: 0,
      help: 'requests that may wait for a slot; more get 503 (default 16)',
    },
    {
      name: 'adapter',
      type: 'string',
      arg: 'NAME=DIR',
      multiple: true,
      help: 'serve a PEFT LoRA adapter (folder or Hub id) as model NAME, unmerged; repeatable',
    },
    { name: 'api-key', type: 'string', arg: 'KEY', help: 'require Authorization: Bearer KEY' },
    {
      name: 'cors',
      type: 'string',
      arg: 'ORIGIN',
      help: 'allow browsers from ORIGIN (* for any); off by default',
    },
    {
      name: 'model-name',
      type: 'string',
      arg: 'NAME',
      help: "the model id the server reports (default: the Hub id, or the folder's name)",
    },
    {
      name: 'strict-model',
      type: 'boolean',
      help: 'refuse requests that name another model (default: any name is the served model)',
    },
    {
      name: 'allow-host',
      type: 'string',
      arg: 'NAME',
      multiple: true,
      help: 'a Host name to answer besides loopback ones when bound to loopback (a reverse proxy)',
    },
    {
      name: 'shutdown-grace',
      type: 'number',
      arg: 'S',
      min: 0,
      max: 3600,
      help: 'seconds connections get to finish after SIGINT/SIGTERM (default 3)',
    },
    ...MODEL_FLAGS,
    HELP,
  ],
  run: (v) => runServe(v, (extra) => load(v, extra)),
};
