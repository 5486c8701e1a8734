// `phi generate`: continue a prompt; text to stdout as it comes, timings to stderr.
import type { Values } from './args.js';
import { UsageError } from './args.js';
import { FORMATS, type FormatName } from '../prompts.js';
import { constraintOf, ConstraintError } from '../grammar/constraint.js';
import {
  ADAPTER_FLAGS,
  adapterOptions,
  CONSTRAINT_FLAGS,
  constraintOptions,
  HELP,
  load,
  MODEL_FLAGS,
  parseIds,
  RAW,
  readStdin,
  readText,
  SAMPLING_FLAGS,
  samplingOptions,
  text,
  type Command,
} from './common.js';

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
  const constraint = constraintOptions(v);
  if (constraint) {
    Object.assign(options, constraint.options);
    // a schema keyword it cannot honour is known before the model loads
    try {
      constraintOf(options);
    } catch (e) {
      if (e instanceof ConstraintError) throw new UsageError(`${constraint.flag}: ${e.detail}`);
      throw e;
    }
  }
  if (v.format !== undefined) {
    const f = FORMATS[v.format as FormatName];
    if (!f) throw new UsageError(`--format must be qa, chat or code, got "${v.format}"`);
    if (typeof prompt !== 'string')
      throw new UsageError('--format applies to text prompts, not --ids');
    prompt = f.template(prompt);
    // a constraint decides where the answer ends; "Answer:" and "Bob:" are followed by a space
    if (constraint) options.constraintLeadingSpace = v.format !== 'code';
    else options.stop = [...f.stop, ...(options.stop ?? [])];
  }
  const phi = await load(v, adapterOptions(v), typeof prompt !== 'string' && v.json === true);
  let compiled = '';
  if (constraint) {
    try {
      const seconds = await phi.prepareConstraint(options);
      compiled = `; constraint ${constraint.flag.split(' ')[0]}, compiled in ${(seconds * 1000).toFixed(0)} ms`;
    } catch (e) {
      phi.close();
      if (e instanceof ConstraintError) throw new UsageError(`${constraint.flag}: ${e.detail}`);
      throw e;
    }
  }
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
        `${phi.model.kernels.name}${compiled}\n`,
    );
  if (r.stopReason === 'abort') process.exitCode = 130;
}

export const generateCommand: Command = {
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
    ...CONSTRAINT_FLAGS,
    ...MODEL_FLAGS,
    ...ADAPTER_FLAGS,
    HELP,
  ],
  run: generate,
};
