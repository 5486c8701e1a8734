// The `phi` command line. Every error ends as one line "phi: <message>" and exit code 1.
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadTokenizer } from '../load.js';
import { DEFAULT_MODEL_DIR, dirFiles, loadPhi, missingModelMessage } from '../node/index.js';
import { download } from '../node/download.js';
import { saveModel } from '../node/save.js';
import type { GenerateOptions } from '../generation.js';
import type { LoadOptions } from '../load.js';
import { existsSync } from 'node:fs';

const USAGE = `usage: phi <command> [options]

commands:
  generate   [--model DIR] [--prompt TEXT | --prompt-file FILE | --ids 1,2,3 | stdin]
             [-n/--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P]
             [--repetition-penalty R] [--seed S] [--stop STR]... [--json]
             streams the continuation to stdout, timings to stderr; --temperature 0 is greedy
  logits     --model DIR --ids 1,2,3 [--all]     JSON {"ids":[..],"logits":[[..]]}
  tokenize   --model DIR TEXT                    JSON array of token ids
  download   [--repo microsoft/phi-1_5] [--revision main] [--dir ${DEFAULT_MODEL_DIR}]
  quantize   [--model DIR] --dtype q8|q4 --out DIR
             saves the model with quantized linear layers; later loads skip the quantization

common options:
  --model DIR        model folder (default ${DEFAULT_MODEL_DIR})
  --dtype D          in-memory weight dtype: auto (the checkpoint's), f32, f16, or q8 / q4
                     (linear layers quantized at load time, 32 weights a block)
  --context N        positions of KV cache to allocate (default: the model's context)
  --backend B        wasm (SIMD kernels, default) or js (the readable TypeScript kernels)
  --threads N        threads for the wasm backend (default: the number of cores)
  --raw-prompt       take --prompt and --stop literally (by default \\n, \\t, \\\\ are unescaped)
`;

class UsageError extends Error {}

const OPTIONS = {
  model: { type: 'string' },
  prompt: { type: 'string' },
  'prompt-file': { type: 'string' },
  'raw-prompt': { type: 'boolean' },
  ids: { type: 'string' },
  'max-new-tokens': { type: 'string', short: 'n' },
  temperature: { type: 'string' },
  'top-k': { type: 'string' },
  'top-p': { type: 'string' },
  'repetition-penalty': { type: 'string' },
  seed: { type: 'string' },
  stop: { type: 'string', multiple: true },
  json: { type: 'boolean' },
  all: { type: 'boolean' },
  dtype: { type: 'string' },
  context: { type: 'string' },
  backend: { type: 'string' },
  threads: { type: 'string' },
  repo: { type: 'string' },
  revision: { type: 'string' },
  dir: { type: 'string' },
  out: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} satisfies ParseArgsConfig['options'];

type Values = ReturnType<
  typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>
>['values'];

function number(values: Values, name: keyof Values, integer = false): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const v = Number(raw);
  if (String(raw).trim() === '' || !Number.isFinite(v) || (integer && !Number.isInteger(v))) {
    throw new UsageError(`--${name}: "${raw}" is not ${integer ? 'an integer' : 'a number'}`);
  }
  return v;
}

export function parseIds(raw: string): number[] {
  const parts = raw.split(',').map((s) => s.trim());
  if (parts.length === 1 && parts[0] === '') throw new UsageError('--ids: no token ids given');
  return parts.map((p) => {
    if (!/^\d+$/.test(p)) throw new UsageError(`--ids: "${p}" is not a token id`);
    return Number(p);
  });
}

export function unescape(s: string): string {
  return s.replace(/\\(n|t|r|\\|"|')/g, (_, c: string) =>
    c === 'n' ? '\n' : c === 't' ? '\t' : c === 'r' ? '\r' : c,
  );
}

function loadOptions(values: Values): LoadOptions {
  const dtype = values.dtype ?? 'auto';
  if (!['auto', 'f32', 'f16', 'q8', 'q4'].includes(dtype)) {
    throw new UsageError(`--dtype must be auto, f32, f16, q8 or q4, got "${dtype}"`);
  }
  const backend = values.backend ?? 'wasm';
  if (backend !== 'wasm' && backend !== 'js')
    throw new UsageError(`--backend must be wasm or js, got "${backend}"`);
  const threads = number(values, 'threads', true);
  if (threads !== undefined && threads < 1)
    throw new UsageError(`--threads must be >= 1, got ${threads}`);
  return {
    dtype: dtype as LoadOptions['dtype'],
    backend,
    threads,
    maxPositions: number(values, 'context', true),
  };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function generate(values: Values): Promise<void> {
  const sources = ['prompt', 'prompt-file', 'ids'].filter(
    (k) => values[k as keyof Values] !== undefined,
  );
  if (sources.length > 1)
    throw new UsageError(
      `give one prompt source, not ${sources.map((s) => '--' + s).join(' and ')}`,
    );
  let prompt: string | { ids: number[] };
  if (values.ids !== undefined) prompt = { ids: parseIds(values.ids) };
  else if (values.prompt !== undefined)
    prompt = values['raw-prompt'] ? values.prompt : unescape(values.prompt);
  else if (values['prompt-file'] !== undefined)
    prompt = readFileSync(values['prompt-file'], 'utf8');
  else if (!process.stdin.isTTY) prompt = await readStdin();
  else
    throw new UsageError(
      'no prompt: use --prompt TEXT, --prompt-file FILE, --ids 1,2,3 or pipe text to stdin',
    );

  const options: GenerateOptions = {
    maxNewTokens: number(values, 'max-new-tokens', true),
    temperature: number(values, 'temperature') ?? 0,
    topK: number(values, 'top-k', true),
    topP: number(values, 'top-p'),
    repetitionPenalty: number(values, 'repetition-penalty'),
    seed: number(values, 'seed', true),
    stop: values['raw-prompt'] ? values.stop : values.stop?.map(unescape),
  };
  const phi = await loadPhi(values.model ?? DEFAULT_MODEL_DIR, loadOptions(values));
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  const run = phi.generate(prompt, { ...options, signal: abort.signal });
  for await (const piece of run) {
    if (values.json)
      process.stdout.write(JSON.stringify({ id: piece.id, text: piece.text }) + '\n');
    else process.stdout.write(piece.text);
  }
  const r = await run.result();
  if (values.json) {
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
  process.stderr.write(
    `prompt ${r.promptTokens} tokens, prefill ${r.prefillTokensPerS.toFixed(2)} tokens/s; ` +
      `generated ${r.ids.length} tokens, decode ${r.decodeTokensPerS.toFixed(2)} tokens/s; stop: ${r.stopMessage}; ` +
      `${phi.model.kernels.name}\n`,
  );
}

async function logits(values: Values): Promise<void> {
  if (values.ids === undefined) throw new UsageError('logits needs --ids 1,2,3');
  const ids = parseIds(values.ids);
  const phi = await loadPhi(values.model ?? DEFAULT_MODEL_DIR, loadOptions(values));
  const V = phi.config.vocabSize;
  const out = phi.logits(ids, values.all ?? false);
  phi.close();
  const rows: number[][] = [];
  for (let r = 0; r < out.length / V; r++) rows.push(Array.from(out.subarray(r * V, (r + 1) * V)));
  process.stdout.write(JSON.stringify({ ids, logits: rows }) + '\n');
}

async function tokenize(values: Values, positionals: string[]): Promise<void> {
  const text = positionals.length > 0 ? positionals.join(' ') : values.prompt;
  if (text === undefined) throw new UsageError('tokenize needs TEXT');
  const dir = values.model ?? DEFAULT_MODEL_DIR;
  if (!existsSync(dir)) throw new Error(missingModelMessage(dir));
  const tok = await loadTokenizer(dirFiles(dir));
  if (!tok) throw new Error(`${dir}: no tokenizer.json`);
  process.stdout.write(JSON.stringify(tok.encode(text)) + '\n');
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (!command || command === '--help' || command === '-h' || command === 'help') {
      process.stdout.write(USAGE);
      return command ? 0 : 1;
    }
    let parsed;
    try {
      parsed = parseArgs({ args: rest, options: OPTIONS, allowPositionals: true, strict: true });
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const { values, positionals } = parsed;
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (command !== 'tokenize' && positionals.length > 0) {
      throw new UsageError(`unexpected argument "${positionals[0]}"`);
    }
    switch (command) {
      case 'generate':
        await generate(values);
        break;
      case 'logits':
        await logits(values);
        break;
      case 'tokenize':
        await tokenize(values, positionals);
        break;
      case 'download': {
        const dir = values.dir ?? values.model ?? DEFAULT_MODEL_DIR;
        const files = await download({ repo: values.repo, revision: values.revision, dir });
        process.stderr.write(`downloaded ${files.length} files into ${dir}\n`);
        break;
      }
      case 'quantize': {
        if (values.dtype !== 'q8' && values.dtype !== 'q4')
          throw new UsageError('quantize needs --dtype q8 or q4');
        if (!values.out) throw new UsageError('quantize needs --out DIR');
        const dir = values.model ?? DEFAULT_MODEL_DIR;
        // the TypeScript backend: plain memory, nothing re-encoded, no 4 GiB limit
        const phi = await loadPhi(dir, { ...loadOptions(values), backend: 'js' });
        const files = await saveModel(phi, dir, values.out);
        process.stderr.write(`wrote ${files.join(', ')} to ${values.out} (${values.dtype})\n`);
        break;
      }
      default:
        throw new UsageError(
          `unknown command "${command}" (generate, logits, tokenize, download, quantize)`,
        );
    }
    return 0;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(
      `phi: ${msg.split('\n')[0]}${e instanceof UsageError ? ' (phi --help)' : ''}\n`,
    );
    return 1;
  }
}
