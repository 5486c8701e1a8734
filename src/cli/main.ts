// The `phi` command line. Every error ends as one line "phi: <message>" and exit code 1.
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import * as path from 'node:path';
import { loadTokenizer, type LoadOptions } from '../load.js';
import type { GenerateOptions } from '../generation.js';
import type { Phi } from '../engine.js';
import { dirFiles, loadPhi } from '../node/index.js';
import { download } from '../node/download.js';
import { DEFAULT_MODEL } from '../node/hub.js';
import { resolveModel } from '../node/resolve.js';
import { saveModel } from '../node/save.js';
import { synthesize, TOKENIZER_DIR } from '../node/synth.js';
import { DEFAULTS, OptionError, withDefaults } from '../defaults.js';
import { FORMATS, type FormatName } from '../prompts.js';
import { chat } from './chat.js';
import { flagHelp, parse, UsageError, unescape, type Flag, type Values } from './args.js';
import { serveCommand } from './serve.js';

export { unescape } from './args.js';

const VERSION: string = JSON.parse(
  readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'),
).version;

// --- flags
const MODEL_FLAGS: Flag[] = [
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
const SAMPLING_FLAGS: Flag[] = [
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
const HELP: Flag = { name: 'help', short: 'h', type: 'boolean', help: 'this help' };
const QUIET: Flag = MODEL_FLAGS.find((f) => f.name === 'quiet')!;
const RAW: Flag = {
  name: 'raw-prompt',
  type: 'boolean',
  help: 'take text arguments literally (no \\n, \\t, \\\\ escapes)',
};

interface Command {
  usage: string;
  about: string;
  flags: Flag[];
  positionals?: boolean;
  run(v: Values, positionals: string[]): Promise<void>;
}

const text = (v: Values, raw: string) => (v['raw-prompt'] ? raw : unescape(raw));

function loadOptions(v: Values): LoadOptions {
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
const modelDir = (v: Values) =>
  resolveModel((v.model as string) ?? DEFAULT_MODEL, {
    offline: v.offline === true,
    progress: v.quiet ? null : process.stderr,
  });

/** The flag each load option comes from. */
const FLAG_OF: Record<string, string> = {
  maxPositions: '--context',
  threads: '--threads',
  dtype: '--dtype',
  backend: '--backend',
  parallel: '--parallel',
};

/**
 * Resolve --model and load it, with progress on stderr; library errors name the flags. A
 * command that reads or writes text needs the folder's tokenizer.json (`idsOnly`: not).
 */
async function load(v: Values, extra: LoadOptions = {}, idsOnly = false): Promise<Phi> {
  const options = loadOptions(v); // a typo in a flag is reported before a 2.8 GB download
  const dir = await modelDir(v);
  let phi: Phi;
  try {
    phi = await loadPhi(dir, {
      ...options,
      ...extra,
      progress: v.quiet ? null : process.stderr,
    });
  } catch (e) {
    // the library names its options; say them as the flags they came from
    if (e instanceof OptionError && FLAG_OF[e.option])
      throw new UsageError(`${FLAG_OF[e.option]} ${e.why}`);
    throw e;
  }
  if (!phi.tokenizer && !idsOnly) {
    phi.close();
    throw new Error(
      `${dir} has no tokenizer.json, which text needs (for token ids only: generate --ids ... --json, or logits)`,
    );
  }
  return phi;
}

function samplingOptions(v: Values): GenerateOptions {
  return {
    maxNewTokens: v['max-new-tokens'] as number | undefined,
    temperature: (v.temperature as number | undefined) ?? 0,
    topK: v['top-k'] as number | undefined,
    topP: v['top-p'] as number | undefined,
    repetitionPenalty: v['repetition-penalty'] as number | undefined,
    seed: v.seed as number | undefined,
    stop: (v.stop as string[] | undefined)?.map((s) => text(v, s)),
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
function readText(flag: string, file: string): string {
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

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const COMMANDS: Record<string, Command> = {
  generate: {
    usage: 'phi generate [--prompt TEXT | --prompt-file FILE | --ids 1,2,3 | stdin] [options]',
    about: 'Continue a prompt; text to stdout as it comes, timings to stderr.',
    flags: [
      {
        name: 'prompt',
        short: 'p',
        type: 'string',
        arg: 'TEXT',
        help: 'the prompt (\\n, \\t, \\\\ understood)',
      },
      {
        name: 'prompt-file',
        type: 'string',
        arg: 'FILE',
        help: 'read the prompt from FILE, as it is',
      },
      { name: 'ids', type: 'string', arg: '1,2,3', help: 'the prompt as token ids' },
      {
        name: 'format',
        type: 'string',
        arg: 'F',
        help: "the model card's prompt formats: qa, chat or code (template and stops)",
      },
      { name: 'json', type: 'boolean', help: 'a JSON line per token, then a summary line' },
      RAW,
      ...SAMPLING_FLAGS,
      ...MODEL_FLAGS,
      HELP,
    ],
    run: generate,
  },
  chat: {
    usage: 'phi chat [--system TEXT] [--user NAME] [--assistant NAME] [options]',
    about:
      "A conversation in the model card's Chat format (Alice: / Bob:). Each line you type is a turn;\n" +
      'the reply streams; only the new turn is prefilled. Ctrl-C stops a reply, Ctrl-D ends.',
    flags: [
      { name: 'system', type: 'string', arg: 'TEXT', help: 'text before the conversation' },
      {
        name: 'user',
        type: 'string',
        arg: 'NAME',
        help: 'your name in the transcript (default Alice)',
      },
      { name: 'assistant', type: 'string', arg: 'NAME', help: "the model's name (default Bob)" },
      RAW,
      ...SAMPLING_FLAGS,
      ...MODEL_FLAGS,
      HELP,
    ],
    run: async (v) => {
      const code = await chat(await load(v), {
        system: v.system === undefined ? undefined : text(v, v.system as string),
        user: (v.user as string) ?? DEFAULTS.userName,
        assistant: (v.assistant as string) ?? DEFAULTS.assistantName,
        sampling: withDefaults(
          { maxNewTokens: DEFAULTS.maxReplyTokens as number },
          samplingOptions(v),
        ),
      });
      if (code) process.exitCode = code;
    },
  },
  logits: {
    usage: 'phi logits --ids 1,2,3 [--all] [options]',
    about:
      'JSON {"ids":[..],"logits":[[..]]}: the last position\'s logits, or every position\'s (--all, streamed).',
    flags: [
      { name: 'ids', type: 'string', arg: '1,2,3', help: 'token ids' },
      { name: 'all', type: 'boolean', help: 'every position, not only the last' },
      ...MODEL_FLAGS,
      HELP,
    ],
    run: logits,
  },
  tokenize: {
    usage: 'phi tokenize [options] TEXT',
    about:
      'A JSON array of token ids (\\n, \\t, \\\\ understood, as in --prompt); the shipped tokenizer unless --model.',
    flags: [
      RAW,
      ...MODEL_FLAGS.filter((f) => ['model', 'offline', 'quiet'].includes(f.name)),
      HELP,
    ],
    positionals: true,
    run: tokenize,
  },
  detokenize: {
    usage: 'phi detokenize [options] ID[,ID...]...',
    about:
      'The text of token ids (commas or spaces between them); the shipped tokenizer unless --model.',
    flags: [...MODEL_FLAGS.filter((f) => ['model', 'offline', 'quiet'].includes(f.name)), HELP],
    positionals: true,
    run: detokenize,
  },
  download: {
    usage: 'phi download [--repo ID] [--revision REV] [--dir DIR]',
    about:
      'Fetch a model from the Hugging Face Hub into its cache (or --dir); resumes, verifies hashes.',
    flags: [
      { name: 'repo', type: 'string', arg: 'ID', help: `repository (default ${DEFAULT_MODEL})` },
      {
        name: 'revision',
        type: 'string',
        arg: 'REV',
        help: 'branch, tag or commit (default main)',
      },
      { name: 'dir', type: 'string', arg: 'DIR', help: 'a plain folder instead of the cache' },
      QUIET,
      HELP,
    ],
    run: async (v) => {
      const r = await download({
        repo: v.repo as string | undefined,
        revision: v.revision as string | undefined,
        dir: v.dir as string | undefined,
        log: v.quiet ? { write: () => true } : process.stderr,
      });
      process.stderr.write(`downloaded ${r.files.length} files into ${r.dir}\n`);
    },
  },
  quantize: {
    usage: 'phi quantize --dtype q8|q4 --out DIR [--model DIR|ID]',
    about: 'Save the model with its linear layers quantized; later loads skip the quantization.',
    flags: [
      { name: 'out', type: 'string', arg: 'DIR', help: 'where to write the quantized model' },
      { name: 'dtype', type: 'string', arg: 'D', help: 'q8 (8-bit) or q4 (4-bit)' },
      ...MODEL_FLAGS.filter((f) => ['model', 'offline', 'quiet'].includes(f.name)),
      HELP,
    ],
    run: quantize,
  },
  serve: {
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
    run: (v) => serveCommand(v, (extra) => load(v, extra)),
  },
  synth: {
    usage: 'phi synth --out DIR [--size tiny|phi-1_5] [--dtype f16|q8|q4] [--seed S]',
    about:
      'Write a random-weight model in the Hugging Face layout (with the real tokenizer): no network needed.',
    flags: [
      { name: 'out', type: 'string', arg: 'DIR', help: 'the folder to write' },
      {
        name: 'size',
        type: 'string',
        arg: 'SIZE',
        help: 'tiny (2 layers of 64, 13 MB) or phi-1_5 (the real shapes, 2.8 GB as f16)',
      },
      { name: 'dtype', type: 'string', arg: 'D', help: 'f16 (default), q8 or q4' },
      { name: 'seed', type: 'integer', arg: 'S', help: 'seed of the weights (default 1)' },
      QUIET,
      HELP,
    ],
    run: async (v) => {
      if (!v.out) throw new UsageError('synth needs --out DIR');
      const size = (v.size as string) ?? 'tiny';
      if (size !== 'tiny' && size !== 'phi-1_5')
        throw new UsageError(`--size must be tiny or phi-1_5, got "${size}"`);
      const dtype = (v.dtype as string) ?? 'f16';
      if (dtype !== 'f16' && dtype !== 'q8' && dtype !== 'q4')
        throw new UsageError(`--dtype must be f16, q8 or q4, got "${dtype}"`);
      const t0 = Date.now();
      const r = await synthesize(v.out as string, {
        size,
        dtype,
        seed: v.seed as number | undefined,
      });
      process.stderr.write(
        `wrote a random ${size} model (${dtype}, ${(r.bytes / 1e9).toFixed(2)} GB of tensors) to ${v.out} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
      );
    },
  },
};

async function generate(v: Values): Promise<void> {
  const given = ['prompt', 'prompt-file', 'ids'].filter((k) => v[k] !== undefined);
  if (given.length > 1)
    throw new UsageError(`give one prompt source, not ${given.map((s) => '--' + s).join(' and ')}`);
  let prompt: string | { ids: number[] };
  if (v.ids !== undefined) prompt = { ids: parseIds(v.ids as string) };
  else if (v.prompt !== undefined) prompt = text(v, v.prompt as string);
  else if (v['prompt-file'] !== undefined)
    prompt = readText('--prompt-file', v['prompt-file'] as string);
  else if (!process.stdin.isTTY) prompt = await readStdin();
  else
    throw new UsageError(
      'no prompt: use --prompt TEXT, --prompt-file FILE, --ids 1,2,3 or pipe text to stdin',
    );
  const options = samplingOptions(v);
  if (v.format !== undefined) {
    const f = FORMATS[v.format as FormatName];
    if (!f) throw new UsageError(`--format must be qa, chat or code, got "${v.format}"`);
    if (typeof prompt !== 'string')
      throw new UsageError('--format applies to text prompts, not --ids');
    prompt = f.template(prompt);
    options.stop = [...f.stop, ...(options.stop ?? [])];
  }
  const phi = await load(v, {}, typeof prompt !== 'string' && v.json === true);
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  const run = phi.generate(prompt, { ...options, signal: abort.signal });
  for await (const piece of run) {
    if (v.json) process.stdout.write(JSON.stringify({ id: piece.id, text: piece.text }) + '\n');
    else process.stdout.write(piece.text);
  }
  const r = await run.result();
  if (v.json) {
    process.stdout.write(
      JSON.stringify({
        ids: r.ids,
        prefill_tokens_per_s: r.prefillTokensPerS,
        decode_tokens_per_s: r.decodeTokensPerS,
        prompt_tokens: r.promptTokens,
        stop_reason: r.stopReason,
        backend: phi.model.kernels.name,
      }) + '\n',
    );
  } else process.stdout.write('\n');
  phi.close();
  if (r.stopReason === 'context') process.stderr.write(`phi: stopped: ${r.stopMessage}\n`);
  if (!v.quiet)
    process.stderr.write(
      `prompt ${r.promptTokens} tokens, prefill ${r.prefillTokensPerS.toFixed(2)} tokens/s; ` +
        `generated ${r.ids.length} tokens, decode ${r.decodeTokensPerS.toFixed(2)} tokens/s; stop: ${r.stopMessage}; ` +
        `${phi.model.kernels.name}\n`,
    );
  if (r.stopReason === 'abort') process.exitCode = 130;
}

async function logits(v: Values): Promise<void> {
  if (v.ids === undefined) throw new UsageError('logits needs --ids 1,2,3');
  const ids = parseIds(v.ids as string);
  const phi = await load(v, {}, true); // ids in, numbers out
  // streamed row by row: --all over a long prompt is T x 51200 numbers
  const out = process.stdout;
  out.write(`{"ids":${JSON.stringify(ids)},"logits":[`);
  let first = true;
  phi.eachLogits(ids, v.all === true, (row) => {
    out.write((first ? '' : ',') + JSON.stringify(Array.from(row)));
    first = false;
  });
  out.write(']}\n');
  phi.close();
}

/** --model's tokenizer, or the one this package ships (phi-1.5's) when no --model is given. */
async function tokenizerOf(v: Values) {
  const dir = v.model === undefined ? TOKENIZER_DIR : await modelDir(v);
  const tok = await loadTokenizer(dirFiles(dir));
  if (!tok) throw new Error(`${dir}: no tokenizer.json`);
  return tok;
}

async function tokenize(v: Values, positionals: string[]): Promise<void> {
  if (positionals.length === 0) throw new UsageError('tokenize needs TEXT');
  const tok = await tokenizerOf(v);
  process.stdout.write(JSON.stringify(tok.encode(text(v, positionals.join(' ')))) + '\n');
}

async function detokenize(v: Values, positionals: string[]): Promise<void> {
  if (positionals.length === 0) throw new UsageError('detokenize needs token ids');
  const ids = parseIds(positionals.join(',').replace(/,+/g, ','), 'detokenize');
  const tok = await tokenizerOf(v);
  const V = tok.size;
  const bad = ids.findIndex((id) => id >= V);
  if (bad >= 0)
    throw new UsageError(`token id ${ids[bad]} is not one the tokenizer knows (0..${V - 1})`);
  process.stdout.write(tok.decode(ids) + '\n');
}

async function quantize(v: Values): Promise<void> {
  if (v.dtype !== 'q8' && v.dtype !== 'q4') throw new UsageError('quantize needs --dtype q8 or q4');
  if (!v.out) throw new UsageError('quantize needs --out DIR');
  const dir = await modelDir(v);
  const real = (p: string) => (existsSync(p) ? realpathSync(p) : path.resolve(p));
  if (real(dir) === real(v.out as string))
    throw new UsageError(
      '--out is the model folder: quantizing in place would overwrite the original with the lossy copy; choose another folder',
    );
  // the TypeScript backend: plain memory, nothing re-encoded, no 4 GiB limit
  const phi = await loadPhi(dir, {
    dtype: v.dtype,
    backend: 'js',
    progress: v.quiet ? null : process.stderr,
  });
  const files = await saveModel(phi, dir, v.out as string);
  process.stderr.write(`wrote ${files.join(', ')} to ${v.out} (${v.dtype})\n`);
}

function globalHelp(): string {
  const names = Object.keys(COMMANDS);
  const w = Math.max(...names.map((n) => n.length)) + 2;
  return (
    `usage: phi <command> [options]      (phi <command> --help for its options)\n\ncommands:\n` +
    names.map((n) => `  ${n.padEnd(w)}${COMMANDS[n].about.split('\n')[0]}`).join('\n') +
    `\n\nmodels: --model takes a folder or a Hub id (default ${DEFAULT_MODEL}), found in the Hugging Face\n` +
    'cache ($HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub) and downloaded there if missing.\n' +
    'No network? `phi synth --out DIR` writes a random-weight model to try everything with.\n'
  );
}

const commandHelp = (name: string, c: Command) =>
  `usage: ${c.usage}\n\n${c.about}\n\noptions:\n${flagHelp(c.flags)}\n`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (!command || command === '--help' || command === '-h' || command === 'help') {
      process.stdout.write(globalHelp());
      return command ? 0 : 1;
    }
    if (command === '--version' || command === '-v' || command === 'version') {
      process.stdout.write(`phi-wasm ${VERSION}\n`);
      return 0;
    }
    const c = COMMANDS[command];
    if (!c) {
      const guess = Object.keys(COMMANDS).find((n) => n.startsWith(command.slice(0, 3)));
      throw new UsageError(
        `unknown command "${command}"${guess ? ` (did you mean ${guess}?)` : ''} (${Object.keys(COMMANDS).join(', ')})`,
      );
    }
    const { values, positionals } = parse(rest, c.flags);
    if (values.help) {
      process.stdout.write(commandHelp(command, c));
      return 0;
    }
    if (!c.positionals && positionals.length > 0)
      throw new UsageError(`unexpected argument "${positionals[0]}"`);
    await c.run(values, positionals);
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const hint =
      e instanceof UsageError ? ` (phi ${COMMANDS[command] ? `${command} ` : ''}--help)` : '';
    process.stderr.write(`phi: ${msg.split('\n')[0]}${hint}\n`);
    return 1;
  }
}
