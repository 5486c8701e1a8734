// The request bodies of the OpenAI-compatible endpoints: validated field by field (a bad
// field is a 400 that names it and the allowed values) and turned into generation options.
import type { GenerateOptions } from '../generation.js';
import { chatTranscript } from '../prompts.js';
import { badField, shown } from './errors.js';
import { structuredOutput, type Structured } from './structured.js';

type Json = Record<string, unknown>;

export interface SamplingRequest {
  options: GenerateOptions;
  stream: boolean;
  includeUsage: boolean;
  /** completions: top-N logprobs of each token (0..5); chat: top_logprobs (0..20); null: none */
  logprobs: number | null;
  /** The constraint asked for (its options are in `options`), or null. */
  structured: Structured | null;
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const present = (v: unknown) => v !== undefined && v !== null;

function number(
  b: Json,
  field: string,
  lo: number,
  hi: number,
  integer = false,
): number | undefined {
  const v = b[field];
  if (!present(v)) return undefined;
  if (!(integer ? isInt(v) : isNum(v)) || (v as number) < lo || (v as number) > hi)
    throw badField(
      field,
      `must be ${integer ? 'an integer' : 'a number'} in ${lo}..${hi}, got ${shown(v)}`,
    );
  return v as number;
}

function boolean(b: Json, field: string): boolean | undefined {
  const v = b[field];
  if (!present(v)) return undefined;
  if (typeof v !== 'boolean') throw badField(field, `must be true or false, got ${shown(v)}`);
  return v;
}

/** The sampling fields both endpoints share, in OpenAI's names and ranges (+ top_k, repetition_penalty). */
export function samplingRequest(
  b: Json,
  chat: boolean,
  maxTokensDefault: number,
  context: number,
): SamplingRequest {
  if (present(b.n) && b.n !== 1)
    throw badField('n', `only 1 choice per request is supported, got ${shown(b.n)}`);
  for (const f of ['presence_penalty', 'frequency_penalty']) {
    const v = number(b, f, -2, 2);
    if (v !== undefined && v !== 0)
      throw badField(f, 'is not supported (use repetition_penalty, > 0, 1 = off)');
  }
  if (
    present(b.logit_bias) &&
    (typeof b.logit_bias !== 'object' || Object.keys(b.logit_bias as object).length > 0)
  )
    throw badField('logit_bias', 'is not supported');
  if (present(b.best_of) && b.best_of !== 1) throw badField('best_of', 'only 1 is supported');
  if (present(b.suffix)) throw badField('suffix', 'is not supported');
  const structured = structuredOutput(b, chat);

  const maxField =
    chat && present(b.max_completion_tokens) ? 'max_completion_tokens' : 'max_tokens';
  const maxNewTokens = number(b, maxField, 0, context, true) ?? maxTokensDefault;
  let stop: string[] | undefined;
  if (present(b.stop)) {
    const s = b.stop;
    if (typeof s === 'string') stop = [s];
    else if (Array.isArray(s) && s.every((x) => typeof x === 'string')) stop = s as string[];
    else throw badField('stop', 'must be a string or an array of up to 4 strings');
    if (stop.length > 4) throw badField('stop', `at most 4 stop strings, got ${stop.length}`);
  }
  const streamOptions = b.stream_options;
  if (present(streamOptions) && (typeof streamOptions !== 'object' || Array.isArray(streamOptions)))
    throw badField('stream_options', 'must be an object');
  const includeUsage = present(streamOptions)
    ? (boolean(streamOptions as Json, 'include_usage') ?? false)
    : false;

  let logprobs: number | null = null;
  if (chat) {
    const on = boolean(b, 'logprobs') ?? false;
    const top = number(b, 'top_logprobs', 0, 20, true);
    if (top !== undefined && !on) throw badField('top_logprobs', 'needs logprobs: true');
    logprobs = on ? (top ?? 0) : null;
  } else {
    logprobs = number(b, 'logprobs', 0, 5, true) ?? null;
  }

  const options: GenerateOptions = {
    maxNewTokens,
    temperature: number(b, 'temperature', 0, 2) ?? 1,
    topP: present(b.top_p) ? number(b, 'top_p', Number.MIN_VALUE, 1) : undefined,
    topK: number(b, 'top_k', 0, 1e9, true),
    seed: number(b, 'seed', -(2 ** 53), 2 ** 53, true),
    repetitionPenalty: present(b.repetition_penalty)
      ? number(b, 'repetition_penalty', Number.MIN_VALUE, 100)
      : undefined,
    stop,
    // logprobs of the chosen token need the distribution even when no alternatives are asked
    topLogprobs: logprobs === null ? 0 : Math.max(1, logprobs),
    ...structured?.constraint,
  };
  if (options.topP === 0) throw badField('top_p', 'must be in (0, 1]');
  return {
    options,
    stream: boolean(b, 'stream') ?? false,
    includeUsage,
    logprobs,
    structured,
  };
}

/** A completion's prompt: a string, an array holding one string, or token ids. */
export function completionPrompt(b: Json): string | { ids: number[] } {
  const p = b.prompt;
  if (typeof p === 'string') return p;
  if (Array.isArray(p)) {
    if (p.length === 1 && typeof p[0] === 'string') return p[0];
    if (p.length > 0 && p.every(isInt)) return { ids: p as number[] };
    if (p.length === 1 && Array.isArray(p[0]) && p[0].every(isInt))
      return { ids: p[0] as number[] };
    if (p.length > 1) throw badField('prompt', 'only one prompt per request is supported');
  }
  throw badField('prompt', 'must be a string, an array holding one string, or token ids');
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export function chatMessages(b: Json): ChatMessage[] {
  const m = b.messages;
  if (!Array.isArray(m) || m.length === 0)
    throw badField('messages', 'must be a non-empty array of {role, content}');
  return m.map((x: unknown, i) => {
    const where = `messages[${i}]`;
    if (typeof x !== 'object' || x === null)
      throw badField(where, 'must be an object {role, content}');
    const { role, content } = x as Json;
    if (role !== 'system' && role !== 'user' && role !== 'assistant' && role !== 'developer')
      throw badField(`${where}.role`, `must be system, user or assistant, got ${shown(role)}`);
    let text: string;
    if (typeof content === 'string') text = content;
    else if (
      Array.isArray(content) &&
      content.every((c) => (c as Json)?.type === 'text' && typeof (c as Json).text === 'string')
    )
      text = content.map((c) => (c as Json).text as string).join('');
    else throw badField(`${where}.content`, 'must be a string (or text parts)');
    return { role: role === 'developer' ? 'system' : role, content: text };
  });
}

/** The model card's Chat format over the messages (src/prompts.ts). */
export const chatPrompt = (messages: ChatMessage[], user: string, assistant: string): string =>
  chatTranscript(messages, user, assistant);
