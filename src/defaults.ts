// The defaults every entry point shares (the library, the CLI, the server), with the reason for
// each, and the one way options meet them.

export const DEFAULTS = {
  /** Tokens a generation may add when the caller says nothing: a few sentences or a function. */
  maxNewTokens: 128,
  /** A chat reply or a server answer is longer than a one-shot continuation (llama-server: -1, OpenAI: the model's limit). */
  maxReplyTokens: 256,
  /** <|endoftext|> in the GPT-2 vocabulary phi uses, for a model folder whose config names none. */
  eosId: 50256,
  /** The model card's chat speakers. */
  userName: 'Alice',
  assistantName: 'Bob',
  /** Requests that may wait for a busy server before it answers 503: a few per slot is enough to hide gaps. */
  queue: 16,
  /** A request body larger than this is not a prompt for a 2048-position model. */
  bodyLimit: 1 << 20,
  /** A keep-alive comment on a silent stream, so proxies do not time it out. */
  pingMs: 5000,
  /** What `phi serve` binds and listens on. */
  host: '127.0.0.1',
  port: 8080,
  /** Seconds a stopping server lets its connections finish before it closes them. */
  shutdownGraceS: 3,
} as const;

type Defined<T> = { [K in keyof T]-?: Exclude<T[K], undefined> };

/**
 * `options` over `defaults`, where an option that is `undefined` keeps its default. A plain
 * `{ ...defaults, ...options }` would not: `{ queue: undefined }` overwrites the 16 with
 * `undefined`, which is what `--queue` not given looks like.
 */
export function withDefaults<D extends object, O extends object>(
  defaults: D,
  options: O | undefined,
): Defined<D> & O {
  const out: Record<string, unknown> = { ...(defaults as Record<string, unknown>) };
  for (const [k, v] of Object.entries(options ?? {})) if (v !== undefined) out[k] = v;
  return out as Defined<D> & O;
}

/**
 * An option of the wrong type or range, naming it: `option` is the library's name
 * (maxPositions), so a front end can say it in its own words (the CLI's --context).
 */
export class OptionError extends Error {
  constructor(
    readonly option: string,
    /** e.g. "must be an integer in 1..512 (the model's context), got 600" */
    readonly why: string,
    /** Whose option it is, for the message. */
    what = 'load option',
  ) {
    super(`${what} ${option} ${why}`);
  }
}
