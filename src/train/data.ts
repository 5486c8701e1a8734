// Training data: what `phi finetune --data` and phi.finetune read, made into sequences.
//   {"text": "..."}                          loss on every token
//   {"prompt": "...", "completion": "..."}   loss on the completion only (and the end of text)
//   {"ids": [..]}                            token ids, trained as one sequence each, unpacked
//   plain text (a file not ending in .jsonl/.json) is one document
// --format qa|chat|code puts a prompt/completion pair into the model card's format (prompts.ts)
// first. Documents are packed end to end with <|endoftext|> between them and cut into
// sequences of `seq` tokens (each predicting the next `seq`: windows of seq + 1 tokens that
// share their last token with the next window's first).
import { FORMATS, type FormatName } from '../prompts.js';
import { NO_TARGET } from './cross_entropy.js';

export const EOS = 50256;

/** One record of the data, as a JSONL line holds it. */
export type TrainRecord =
  { text: string } | { prompt: string; completion: string } | { ids: number[] };

/** A training sequence: inputs, and each position's target (NO_TARGET: no loss there). */
export interface Sequence {
  input: number[];
  targets: number[];
}

/** A document as tokens, and whether each token is one the loss is on. */
interface Doc {
  ids: number[];
  trained: boolean[];
}

/**
 * Parse JSONL text into records; every bad line is an error naming `file`, its line number and
 * what is wrong. Blank lines are skipped.
 */
export function parseJsonl(text: string, file: string): TrainRecord[] {
  const out: TrainRecord[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line) return;
    const where = `${file}:${i + 1}`;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new Error(`${where}: not JSON (${(e as Error).message})`);
    }
    out.push(checkRecord(v, where));
  });
  if (!out.length) throw new Error(`${file}: no records (expected one JSON object a line)`);
  return out;
}

/** A record as given (a JSONL line's value, or an object from the library), checked. */
export function checkRecord(v: unknown, where: string): TrainRecord {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new Error(
      `${where}: expected an object with "text", "prompt" and "completion", or "ids"`,
    );
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  const str = (k: string) => {
    if (typeof o[k] !== 'string')
      throw new Error(`${where}: "${k}" must be a string, got ${JSON.stringify(o[k])}`);
    return o[k] as string;
  };
  if ('ids' in o) {
    const ids = o.ids;
    if (
      !Array.isArray(ids) ||
      ids.length < 2 ||
      !ids.every((x) => Number.isSafeInteger(x) && x >= 0)
    )
      throw new Error(
        `${where}: "ids" must be a list of at least 2 token ids (non-negative integers)`,
      );
    return { ids: ids as number[] };
  }
  if ('prompt' in o || 'completion' in o) {
    if (!('prompt' in o) || !('completion' in o))
      throw new Error(
        `${where}: "prompt" and "completion" come together (found only ${'prompt' in o ? '"prompt"' : '"completion"'})`,
      );
    const [prompt, completion] = [str('prompt'), str('completion')];
    if (!completion)
      throw new Error(`${where}: "completion" is empty: there is nothing to learn from`);
    return { prompt, completion };
  }
  if ('text' in o) {
    const text = str('text');
    if (!text) throw new Error(`${where}: "text" is empty`);
    return { text };
  }
  throw new Error(
    `${where}: expected "text", "prompt" and "completion", or "ids"; found ${keys.map((k) => `"${k}"`).join(', ') || 'an empty object'}`,
  );
}

/** A prompt/completion pair in a model card format: the prompt part, and the completion's. */
export function formatPair(
  prompt: string,
  completion: string,
  format: FormatName | null,
): [string, string] {
  if (!format) return [prompt, completion];
  const head = FORMATS[format].template(prompt);
  // "Answer:" and "Bob:" are followed by a space before the answer, as the model card's examples
  const gap = format !== 'code' && !/^\s/.test(completion) ? ' ' : '';
  return [head, gap + completion];
}

export interface PackOptions {
  seq: number;
  format: FormatName | null;
  encode: (text: string) => number[];
}

/** Records into training sequences (see the top of the file). */
export function toSequences(records: TrainRecord[], o: PackOptions): Sequence[] {
  if (!Number.isSafeInteger(o.seq) || o.seq < 1)
    throw new Error(`seq must be a positive integer, got ${o.seq}`);
  const out: Sequence[] = [];
  const docs: Doc[] = [];
  for (const r of records) {
    if ('ids' in r) {
      // one sequence as given, not packed: for exact comparisons with other trainers
      if (r.ids.length - 1 > o.seq)
        throw new Error(
          `an "ids" record of ${r.ids.length} tokens is longer than --seq ${o.seq} + 1`,
        );
      out.push({ input: r.ids.slice(0, -1), targets: r.ids.slice(1) });
    } else if ('text' in r) {
      const ids = o.encode(r.text);
      docs.push({ ids, trained: ids.map(() => true) });
    } else {
      const [p, c] = formatPair(r.prompt, r.completion, o.format);
      const [pi, ci] = [o.encode(p), o.encode(c)];
      docs.push({ ids: [...pi, ...ci], trained: [...pi.map(() => false), ...ci.map(() => true)] });
    }
  }
  // pack: doc, EOS, doc, EOS, ... (the EOS is trained: a document's end is worth learning)
  const ids: number[] = [];
  const trained: boolean[] = [];
  for (const d of docs) {
    ids.push(...d.ids, EOS);
    trained.push(...d.trained, true);
  }
  for (let start = 0; start + 1 < ids.length; start += o.seq) {
    const end = Math.min(ids.length, start + o.seq + 1);
    const input = ids.slice(start, end - 1);
    const targets = ids
      .slice(start + 1, end)
      .map((id, i) => (trained[start + 1 + i] ? id : NO_TARGET));
    if (targets.some((t) => t !== NO_TARGET)) out.push({ input, targets });
  }
  return out;
}

/** Positions with a target in these sequences: the N a batch's mean divides by. */
export const targetCount = (seqs: Sequence[]) =>
  seqs.reduce((n, s) => n + s.targets.filter((t) => t !== NO_TARGET).length, 0);

/** Training data as the library takes it: records, or JSONL text. */
export type DataInput = TrainRecord[] | string;

export interface DataOptions {
  seq: number;
  format: FormatName | null;
  /** a fraction of the training sequences held out for eval, when no eval data is given */
  evalSplit: number;
  seed: number;
}

/** Train and eval sequences from the inputs: eval data as given, or a seeded split. */
export function prepareData(
  train: DataInput,
  evalData: DataInput | undefined,
  o: DataOptions,
  encode: (text: string) => number[],
  shuffle: <T>(a: T[]) => T[],
): { train: Sequence[]; eval: Sequence[] } {
  const records = (d: DataInput, name: string) =>
    typeof d === 'string' ? parseJsonl(d, name) : d.map((r, i) => checkRecord(r, `${name}[${i}]`));
  const pack = { seq: o.seq, format: o.format, encode };
  let seqs = toSequences(records(train, 'data'), pack);
  if (!seqs.length) throw new Error('the data has no tokens to learn from');
  let held: Sequence[] = [];
  if (evalData !== undefined) held = toSequences(records(evalData, 'eval'), pack);
  else if (o.evalSplit > 0) {
    if (!(o.evalSplit < 1)) throw new Error(`the eval split must be in [0, 1), got ${o.evalSplit}`);
    const n = Math.max(1, Math.round(seqs.length * o.evalSplit));
    if (n >= seqs.length)
      throw new Error(
        `an eval split of ${o.evalSplit} leaves no training sequences (${seqs.length} in all)`,
      );
    seqs = shuffle([...seqs]);
    held = seqs.slice(0, n);
    seqs = seqs.slice(n);
  }
  return { train: seqs, eval: held };
}
