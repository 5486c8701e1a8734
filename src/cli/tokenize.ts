// `phi tokenize` and `phi detokenize`: text to token ids and back, with the shipped tokenizer
// unless --model names another.
import { UsageError, type Values } from './args.js';
import {
  HELP,
  MODEL_FILE_FLAGS,
  parseIds,
  RAW,
  text,
  tokenizerOf,
  type Command,
} from './common.js';

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

export const tokenizeCommand: Command = {
  usage: 'phi tokenize [options] TEXT',
  about:
    'A JSON array of token ids (\\n, \\t, \\\\ understood, as in --prompt); the shipped tokenizer unless --model.',
  flags: [RAW, ...MODEL_FILE_FLAGS, HELP],
  positionals: true,
  run: tokenize,
};

export const detokenizeCommand: Command = {
  usage: 'phi detokenize [options] ID[,ID...]...',
  about:
    'The text of token ids (commas or spaces between them); the shipped tokenizer unless --model.',
  flags: [...MODEL_FILE_FLAGS, HELP],
  positionals: true,
  run: detokenize,
};
