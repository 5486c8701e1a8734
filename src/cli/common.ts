// What the commands share: the model and sampling flags, loading a model with errors that name
// flags, and reading prompts and token ids. Each command is a file of its own (COMMANDS in
// main.ts lists them); every flag is checked before anything is read or downloaded.
import { readFileSync } from 'node:fs';
import { loadTokenizer, type LoadOptions } from '../load.js';
import type { GenerateOptions } from '../generation.js';
import type { ConstraintOptions } from '../grammar/constraint.js';
import type { Phi } from '../engine.js';
import { dirFiles, loadPhi, type NodeLoadOptions } from '../node/index.js';
import { DEFAULT_MODEL } from '../node/hub.js';
import { resolveModel } from '../node/resolve.js';
import { TOKENIZER_DIR } from '../node/synth.js';
import { OptionError } from '../defaults.js';
import { UsageError, unescape, type Flag, type Values } from './args.js';

export const MODEL_FLAGS: Flag[] = [
  {
    name: 'model',
    type: 'string',
    arg: 'DIR|ID',
    help: `model folder, or Hub id (default ${DEFAULT_MODEL}, from the Hugging Face cache)`,
  },
  {
    name: 'dtype',
    type: 'string',
    arg: 'D',
    help: 'in-memory weights: auto (as stored), f32, f16, q8, q4',
  },
  {
    name: 'context',
    short: 'c',
    aliases: ['ctx-size'],
    type: 'integer',
    arg: 'N',
    min: 1,
    help: "positions of KV cache (default: the model's context)",
  },
  {
    name: 'backend',
    type: 'string',
    arg: 'B',
    help: 'wasm (SIMD kernels, default) or js (the readable TypeScript kernels)',
  },
  {
    name: 'threads',
    short: 't',
    type: 'integer',
    arg: 'N',
    min: 1,
    max: 256,
    help: 'kernel threads (default: the number of cores)',
  },
  { name: 'offline', type: 'boolean', help: 'never download (as HF_HUB_OFFLINE=1)' },
  { name: 'quiet', type: 'boolean', short: 'q', help: 'no loading progress on stderr' },
];
export const SAMPLING_FLAGS: Flag[] = [
  {
    name: 'max-new-tokens',
    short: 'n',
    aliases: ['max-tokens', 'n-predict'],
    type: 'integer',
    arg: 'N',
    min: 0,
    help: 'most tokens to generate (default 128)',
  },
  {
    name: 'temperature',
    type: 'number',
    arg: 'T',
    min: 0,
    help: '0 = greedy (default), higher = more random',
  },
  {
    name: 'top-k',
    type: 'integer',
    arg: 'K',
    min: 0,
    help: 'keep the K most likely tokens (0 = all)',
  },
  {
    name: 'top-p',
    type: 'number',
    arg: 'P',
    above: 0,
    max: 1,
    help: 'keep the most likely tokens up to probability P',
  },
  {
    name: 'repetition-penalty',
    type: 'number',
    arg: 'R',
    above: 0,
    help: '> 1 discourages repeating (1 = off)',
  },
  { name: 'seed', type: 'integer', arg: 'S', help: 'seed of the sampling (same seed, same text)' },
  {
    name: 'stop',
    type: 'string',
    arg: 'STR',
    multiple: true,
    help: 'stop when the text contains STR',
  },
];
/** LoRA adapters for the commands that run the model (generate, chat, logits). */
export const ADAPTER_FLAGS: Flag[] = [
  {
    name: 'adapter',
    type: 'string',
    arg: 'DIR|ID',
    multiple: true,
    help: 'a PEFT LoRA adapter (folder or Hub id), merged into the weights at load; repeatable',
  },
  {
    name: 'no-merge',
    type: 'boolean',
    help: 'apply --adapter unmerged: the base weights stay as loaded (exact on a q8/q4 base)',
  },
];
/** The name an unmerged --adapter runs under. */
const CLI_ADAPTER = 'adapter';

/** The --adapter load options: merged by default, one unmerged with --no-merge. */
export function adapterOptions(v: Values): Pick<NodeLoadOptions, 'adapters' | 'merge'> {
  const list = (v.adapter as string[] | undefined) ?? [];
  if (v['no-merge'] && list.length !== 1)
    throw new UsageError(
      list.length
        ? `--no-merge applies one --adapter, got ${list.length}`
        : '--no-merge needs an --adapter',
    );
  if (!list.length) return {};
  return v['no-merge'] ? { adapters: { [CLI_ADAPTER]: list[0] } } : { merge: list };
}

/** The adapter a command's requests name: the unmerged --adapter, else none. */
export const requestAdapter = (v: Values): string | undefined =>
  v['no-merge'] && v.adapter ? CLI_ADAPTER : undefined;

export const HELP: Flag = { name: 'help', short: 'h', type: 'boolean', help: 'this help' };
export const QUIET: Flag = MODEL_FLAGS.find((f) => f.name === 'quiet')!;
export const RAW: Flag = {
  name: 'raw-prompt',
  type: 'boolean',
  help: 'take text arguments literally (no \\n, \\t, \\\\ escapes)',
};

/** The model flags of a command that only reads the model's files (no weights in memory). */
export const MODEL_FILE_FLAGS = MODEL_FLAGS.filter((f) =>
  ['model', 'offline', 'quiet'].includes(f.name),
);

export interface Command {
  usage: string;
  about: string;
  flags: Flag[];
  positionals?: boolean;
  run(v: Values, positionals: string[]): Promise<void>;
}

export const text = (v: Values, raw: string) => (v['raw-prompt'] ? raw : unescape(raw));

export function loadOptions(v: Values): LoadOptions {
  const dtype = (v.dtype as string) ?? 'auto';
  if (!['auto', 'f32', 'f16', 'q8', 'q4'].includes(dtype))
    throw new UsageError(`--dtype must be auto, f32, f16, q8 or q4, got "${dtype}"`);
  const backend = (v.backend as string) ?? 'wasm';
  if (backend !== 'wasm' && backend !== 'js')
    throw new UsageError(`--backend must be wasm or js, got "${backend}"`);
  return {
    dtype: dtype as LoadOptions['dtype'],
    backend,
    threads: v.threads as number | undefined,
    maxPositions: v.context as number | undefined,
  };
}

/** The folder --model names: a folder, or a Hub id from the cache (downloaded when missing). */
export const modelDir = (v: Values) =>
  resolveModel((v.model as string) ?? DEFAULT_MODEL, {
    offline: v.offline === true,
    progress: v.quiet ? null : process.stderr,
  });

/** The flag each load option comes from. */
const FLAG_OF: Record<string, string> = {
  // load options
  maxPositions: '--context',
  threads: '--threads',
  dtype: '--dtype',
  backend: '--backend',
  parallel: '--parallel',
  // server options
  apiKey: '--api-key',
  cors: '--cors',
  queue: '--queue',
  modelName: '--model-name',
};

/** The error to report for `e`: a library OptionError said as the flag its option came from. */
export function asFlagError(e: unknown): unknown {
  return e instanceof OptionError && FLAG_OF[e.option]
    ? new UsageError(`${FLAG_OF[e.option]} ${e.why}`)
    : e;
}

/**
 * Resolve --model and load it, with progress on stderr; library errors name the flags. A
 * command that reads or writes text needs the folder's tokenizer.json (`idsOnly`: not).
 */
export async function load(v: Values, extra: NodeLoadOptions = {}, idsOnly = false): Promise<Phi> {
  const options = loadOptions(v); // a typo in a flag is reported before a 2.8 GB download
  const dir = await modelDir(v);
  let phi: Phi;
  try {
    phi = await loadPhi(dir, {
      ...options,
      ...extra,
      offline: v.offline === true,
      progress: v.quiet ? null : process.stderr,
    });
  } catch (e) {
    throw asFlagError(e); // the library names its options; say them as flags
  }
  if (!phi.tokenizer && !idsOnly) {
    phi.close();
    throw new Error(
      `${dir} has no tokenizer.json, which text needs (for token ids only: generate --ids ... --json, or logits)`,
    );
  }
  return phi;
}

/** What the generated text must be: phi generate's constrained decoding (src/grammar/). */
export const CONSTRAINT_FLAGS: Flag[] = [
  {
    name: 'json-schema',
    type: 'string',
    arg: 'FILE',
    help: 'the text is JSON valid under the JSON Schema in FILE',
  },
  { name: 'json-mode', type: 'boolean', help: 'the text is a JSON object' },
  {
    name: 'grammar',
    type: 'string',
    arg: 'FILE',
    help: "the text follows the grammar in FILE (GBNF, llama.cpp's notation, from root)",
  },
  {
    name: 'regex',
    type: 'string',
    arg: 'RE',
    help: 'the whole text matches the regular expression RE',
  },
];

/** The constraint the flags ask for, and the flag each option came from (for errors). */
export function constraintOptions(v: Values): { options: ConstraintOptions; flag: string } | null {
  const given = ['json-schema', 'json-mode', 'grammar', 'regex'].filter(
    (f) => v[f] !== undefined && v[f] !== false,
  );
  if (given.length === 0) return null;
  if (given.length > 1)
    throw new UsageError(`give one constraint, not ${given.map((f) => '--' + f).join(' and ')}`);
  const f = given[0];
  const flag = typeof v[f] === 'string' ? `--${f} ${v[f] as string}` : `--${f}`;
  if (f === 'json-schema')
    return { options: { jsonSchema: readText('--json-schema', v[f] as string) }, flag };
  if (f === 'grammar') return { options: { grammar: readText('--grammar', v[f] as string) }, flag };
  if (f === 'regex') return { options: { regex: v[f] as string }, flag };
  return { options: { json: true }, flag };
}

export function samplingOptions(v: Values): GenerateOptions {
  return {
    maxNewTokens: v['max-new-tokens'] as number | undefined,
    temperature: (v.temperature as number | undefined) ?? 0,
    topK: v['top-k'] as number | undefined,
    topP: v['top-p'] as number | undefined,
    repetitionPenalty: v['repetition-penalty'] as number | undefined,
    seed: v.seed as number | undefined,
    stop: (v.stop as string[] | undefined)?.map((s) => text(v, s)),
    adapter: requestAdapter(v),
  };
}

export function parseIds(raw: string, what = '--ids'): number[] {
  const parts = raw.split(',').map((s) => s.trim());
  if (parts.length === 1 && parts[0] === '') throw new UsageError(`${what}: no token ids given`);
  return parts.map((p) => {
    if (!/^\d+$/.test(p)) throw new UsageError(`${what}: "${p}" is not a token id`);
    return Number(p);
  });
}

/** A file's text; errors name the flag, the file and the reason in words. */
export function readText(flag: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'it is a directory'
            : (e as Error).message;
    throw new Error(`cannot read ${flag} ${file}: ${why}`);
  }
}

export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** --model's tokenizer, or the one this package ships (phi-1.5's) when no --model is given. */
export async function tokenizerOf(v: Values) {
  const dir = v.model === undefined ? TOKENIZER_DIR : await modelDir(v);
  const tok = await loadTokenizer(dirFiles(dir));
  if (!tok) throw new Error(`${dir}: no tokenizer.json`);
  return tok;
}
