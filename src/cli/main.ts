// The `phi` command line: the table of commands (one file each), help, and the one place
// errors become a line "phi: <message>" and exit code 1.
import { readFileSync } from 'node:fs';
import { DEFAULT_MODEL } from '../node/hub.js';
import { flagHelp, parse, UsageError } from './args.js';
import { chatCommand } from './chat.js';
import type { Command } from './common.js';
import { downloadCommand } from './download.js';
import { generateCommand } from './generate.js';
import { logitsCommand } from './logits.js';
import { finetuneCommand } from './finetune.js';
import { mergeCommand } from './merge.js';
import { quantizeCommand } from './quantize.js';
import { serveCommand } from './serve.js';
import { synthCommand } from './synth.js';
import { detokenizeCommand, tokenizeCommand } from './tokenize.js';

export { unescape } from './args.js';
export { parseIds } from './common.js';

const VERSION: string = JSON.parse(
  readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'),
).version;

const COMMANDS: Record<string, Command> = {
  generate: generateCommand,
  chat: chatCommand,
  logits: logitsCommand,
  tokenize: tokenizeCommand,
  detokenize: detokenizeCommand,
  download: downloadCommand,
  quantize: quantizeCommand,
  merge: mergeCommand,
  finetune: finetuneCommand,
  serve: serveCommand,
  synth: synthCommand,
};

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
