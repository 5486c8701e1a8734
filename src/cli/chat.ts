// `phi chat`: a conversation in the model card's Chat format. Each line typed (or piped) is
// the user's turn; the reply streams until the model starts the next turn. The whole
// transcript is the prompt of every turn, and the engine reuses the KV cache of what it has
// seen, so only the new turn is prefilled. Ctrl-C stops a reply; Ctrl-D (end of input) ends.
import { createInterface } from 'node:readline';
import type { Phi } from '../engine.js';
import type { GenerateOptions } from '../generation.js';

export interface ChatOptions {
  system?: string;
  user: string;
  assistant: string;
  sampling: GenerateOptions;
}

export async function chat(phi: Phi, o: ChatOptions): Promise<void> {
  const tty = process.stdin.isTTY === true;
  const rl = createInterface({
    input: process.stdin,
    output: tty ? process.stdout : undefined,
    terminal: tty,
  });
  const turns: string[] = o.system ? [o.system.trim()] : [];
  let current: AbortController | null = null;
  rl.on('SIGINT', () => {
    if (current)
      current.abort(); // stop the reply, keep the session
    else rl.close();
  });
  const ask = () => {
    if (!tty) return;
    rl.setPrompt(`${o.user}: `);
    rl.prompt();
  };

  if (tty)
    process.stderr.write(
      `(chatting as ${o.user} with ${o.assistant}; Ctrl-C stops a reply, Ctrl-D ends)\n`,
    );
  ask();
  try {
    for await (const line of rl) {
      const said = line.trim();
      if (!said) {
        ask();
        continue;
      }
      turns.push(`${o.user}: ${said}`);
      const prompt = [...turns, `${o.assistant}:`].join('\n');
      current = new AbortController();
      const stop = [`\n${o.user}:`, `\n${o.assistant}:`, ...(o.sampling.stop ?? [])];
      const run = phi.generate(prompt, { ...o.sampling, stop, signal: current.signal });
      process.stdout.write(`${o.assistant}:`);
      let reply = '';
      for await (const piece of run) {
        process.stdout.write(piece.text);
        reply += piece.text;
      }
      const r = await run.result();
      current = null;
      process.stdout.write('\n');
      turns.push(`${o.assistant}: ${reply.trim()}`);
      if (tty)
        process.stderr.write(
          `(${r.ids.length} tokens; prefilled ${r.promptTokens - r.cachedPromptTokens} of ${r.promptTokens}, ${r.decodeTokensPerS.toFixed(1)} tokens/s${r.stopReason === 'abort' ? '; stopped' : ''})\n`,
        );
      ask();
    }
  } finally {
    rl.close();
    phi.close();
  }
}
