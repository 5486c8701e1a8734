// `phi chat`: a conversation in the model card's Chat format. Each line typed (or piped) is
// the user's turn; the reply streams until the model starts the next turn. The whole
// transcript is the prompt of every turn, and the engine reuses the KV cache of what it has
// seen, so only the new turn is prefilled. Ctrl-C stops a reply; at the prompt it clears the
// line, and a second Ctrl-C exits (130); Ctrl-D (end of input) ends.
//
// A conversation never ends for want of context: when the next turn would not fit, the oldest
// turns are dropped (the system text stays) and stderr says so. The kept turns then sit at new
// positions, and rotary positions are part of every cached key, so they are prefilled again
// once; the system text before them is still a common prefix and keeps its cache.
import { createInterface } from 'node:readline';
import type { Phi } from '../engine.js';
import type { GenerateOptions } from '../generation.js';
import { turnStops } from '../prompts.js';
import { DEFAULTS, withDefaults } from '../defaults.js';
import {
  ADAPTER_FLAGS,
  adapterOptions,
  HELP,
  load,
  MODEL_FLAGS,
  RAW,
  SAMPLING_FLAGS,
  samplingOptions,
  text,
  type Command,
} from './common.js';

export interface ChatOptions {
  system?: string;
  user: string;
  assistant: string;
  sampling: GenerateOptions;
}

/**
 * The turns to keep so that the prompt, plus room for a reply, fits the context: the oldest
 * are dropped first. Returns how many of `turns` to drop from the front (turns.length - 1 at
 * most: the newest, the user's question, always stays).
 */
export function turnsToDrop(
  tokensOf: (turns: string[]) => number,
  turns: string[],
  room: number,
  context: number,
): number {
  let drop = 0;
  while (drop < turns.length - 1 && tokensOf(turns.slice(drop)) + room > context) drop++;
  return drop;
}

export async function chat(phi: Phi, o: ChatOptions): Promise<number> {
  const tty = process.stdin.isTTY === true;
  const rl = createInterface({
    input: process.stdin,
    output: tty ? process.stdout : undefined,
    terminal: tty,
  });
  const system = o.system ? o.system.trim() : null;
  let turns: string[] = [];
  let current: AbortController | null = null;
  let exitCode = 0;
  let interrupted = false; // Ctrl-C at the prompt once already
  rl.on('SIGINT', () => {
    if (current) {
      current.abort(); // stop the reply, keep the session
      return;
    }
    if (interrupted) {
      exitCode = 130;
      process.stdout.write('\n');
      rl.close();
      return;
    }
    interrupted = true;
    rl.write(null, { ctrl: true, name: 'u' }); // clear what was typed
    process.stderr.write('\n(Ctrl-C again or Ctrl-D to leave)\n');
    ask();
  });
  const ask = () => {
    if (!tty) return;
    rl.setPrompt(`${o.user}: `);
    rl.prompt();
  };
  const context = phi.model.contextLength;
  const promptOf = (kept: string[]) =>
    [...(system ? [system] : []), ...kept, `${o.assistant}:`].join('\n');
  // room for a reply: what -n asks, but never more than half the context
  const room = Math.min(o.sampling.maxNewTokens ?? 256, Math.floor(context / 2));

  if (tty)
    process.stderr.write(
      `(chatting as ${o.user} with ${o.assistant}; Ctrl-C stops a reply, Ctrl-D ends)\n`,
    );
  ask();
  try {
    for await (const line of rl) {
      interrupted = false;
      const said = line.trim();
      if (!said) {
        ask();
        continue;
      }
      turns.push(`${o.user}: ${said}`);
      const drop = turnsToDrop(
        (kept) => phi.encodePrompt(promptOf(kept)).length,
        turns,
        room,
        context,
      );
      if (drop > 0) {
        turns = turns.slice(drop);
        process.stderr.write(
          `(the conversation reached the context of ${context} positions: dropped the ${drop} oldest turn(s)${system ? ', kept the system text' : ''})\n`,
        );
      }
      current = new AbortController();
      const stop = [...turnStops(o.user, o.assistant), ...(o.sampling.stop ?? [])];
      let reply = '';
      try {
        const run = phi.generate(promptOf(turns), {
          ...o.sampling,
          stop,
          signal: current.signal,
        });
        process.stdout.write(`${o.assistant}:`);
        for await (const piece of run) {
          process.stdout.write(piece.text);
          reply += piece.text;
        }
        const r = await run.result();
        process.stdout.write('\n');
        turns.push(`${o.assistant}: ${reply.trim()}`);
        if (tty)
          process.stderr.write(
            `(${r.ids.length} tokens; prefilled ${r.promptTokens - r.cachedPromptTokens} of ${r.promptTokens}, ${r.decodeTokensPerS.toFixed(1)} tokens/s${r.stopReason === 'abort' ? '; stopped' : ''})\n`,
          );
      } catch (e) {
        // this turn failed (e.g. one line longer than the context): say so, keep the session
        turns.pop();
        process.stderr.write(`\nphi: ${(e as Error).message}\n`);
      }
      current = null;
      ask();
    }
  } finally {
    rl.close();
    phi.close();
  }
  return exitCode;
}

export const chatCommand: Command = {
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
    ...ADAPTER_FLAGS,
    HELP,
  ],
  run: async (v) => {
    const code = await chat(await load(v, adapterOptions(v)), {
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
};
