// The server's options, their defaults and the checks that refuse, when the server is made,
// options that would make every request fail.
import type { Phi } from '../engine.js';
import { DEFAULTS, OptionError, withDefaults } from '../defaults.js';

export interface ServerOptions {
  /** The id the server reports (default "phi-1_5"). */
  modelName?: string;
  /** Other names the model answers to in /v1/models/{id} and, with strictModel, in requests. */
  aliases?: string[];
  /**
   * Refuse a request whose `model` is not the served name or an alias (400). Off by default:
   * with one model served, any `model` is answered by it, as llama-server does, since typed
   * clients always send one.
   */
  strictModel?: boolean;
  /** Requests that may wait for a slot; more get 503 (default 16). */
  queue?: number;
  /** Require `Authorization: Bearer <key>`. */
  apiKey?: string;
  /** Answer CORS requests from this origin ("*" for any); off by default. */
  cors?: string;
  /**
   * The `Host` names requests may carry (any port); others get 403. Set it when bound to a
   * loopback address, so a web page on another name (DNS rebinding) cannot reach the server.
   * Loopback names (localhost, 127.x.x.x, [::1]) are always allowed. Default: any host.
   */
  allowHosts?: string[];
  /**
   * Tokenize a long piece of text elsewhere (the Node server: a worker thread), so that it
   * does not hold the event loop. Default: here, between yields.
   */
  encode?: (p: Phi, text: string) => Promise<number[]>;
  /** Largest request body in bytes (default 1 MiB). */
  bodyLimit?: number;
  /** The chat format's speaker names (default Alice and Bob, as the model card). */
  userName?: string;
  assistantName?: string;
  /** max_tokens when a request gives none (default 256). */
  maxTokens?: number;
  /** Comment lines to keep a waiting stream open, every this many ms (default 5000). */
  pingMs?: number;
  /** One line per request (method, path, status, tokens, ms); default: none. */
  log?: (line: string) => void;
}

/** The options with every default filled in. */
export type ResolvedOptions = ReturnType<typeof resolveOptions>;

export function resolveOptions(options: ServerOptions) {
  const o = withDefaults(
    {
      modelName: 'phi-1_5',
      aliases: [] as string[],
      strictModel: false,
      queue: DEFAULTS.queue as number,
      bodyLimit: DEFAULTS.bodyLimit as number,
      userName: DEFAULTS.userName as string,
      assistantName: DEFAULTS.assistantName as string,
      maxTokens: DEFAULTS.maxReplyTokens as number,
      pingMs: DEFAULTS.pingMs as number,
    },
    options,
  );
  checkOptions(o);
  return o;
}

/** Options that would make every request fail are refused when the server is made. */
function checkOptions(o: ServerOptions & { queue: number; modelName: string }): void {
  const refuse = (option: string, why: string) => {
    throw new OptionError(option, why, 'server option');
  };
  if (
    o.cors !== undefined &&
    o.cors !== '*' &&
    !/^(null|[a-z][a-z0-9+.-]*:\/\/[^\s/?#]+)$/i.test(o.cors)
  )
    refuse(
      'cors',
      `must be "*" or an origin such as http://localhost:5173 (scheme://host[:port]), got ${JSON.stringify(o.cors)}`,
    );
  if (o.apiKey === '')
    refuse(
      'apiKey',
      'is empty: it would turn authentication off (is the variable it came from unset?)',
    );
  if (o.apiKey !== undefined && /[\s]/.test(o.apiKey))
    refuse('apiKey', 'must not contain whitespace');
  if (!Number.isSafeInteger(o.queue) || o.queue < 0)
    refuse('queue', `must be an integer >= 0, got ${JSON.stringify(o.queue)}`);
  if (typeof o.modelName !== 'string' || o.modelName.trim() === '')
    refuse('modelName', `must be a non-empty string, got ${JSON.stringify(o.modelName)}`);
}
