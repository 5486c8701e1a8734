// The model card's prompt formats, one home for the CLI, `phi chat`, the server and the demo.
// Phi-1.5 is a base model: it continues text, so a format is a template that sets up the kind
// of text wanted, and the strings at which that text is over.
import { DEFAULTS } from './defaults.js';

export type FormatName = 'qa' | 'chat' | 'code';

export interface PromptFormat {
  /** The prompt as the model should see it. */
  template: (prompt: string) => string;
  /** Where the answer ends: the model would go on with the next question, turn or function. */
  stop: string[];
}

/** The chat format's turn markers for two speakers: either one starting a line ends a turn. */
export const turnStops = (user: string, assistant: string) => [`\n${user}:`, `\n${assistant}:`];

export const FORMATS: Record<FormatName, PromptFormat> = {
  // "Write a detailed analogy between mathematics and a lighthouse.\nAnswer:"
  qa: { template: (p) => `${p.trimEnd()}\nAnswer:`, stop: ['\n\n'] },
  // "Alice: ...\nBob:"
  chat: {
    template: (p) => `${DEFAULTS.userName}: ${p.trim()}\n${DEFAULTS.assistantName}:`,
    stop: turnStops(DEFAULTS.userName, DEFAULTS.assistantName),
  },
  // a signature and a docstring, continued as the body; the next top-level statement ends it
  code: { template: (p) => p, stop: ['\ndef ', '\nclass ', '\nif __name__', '\nprint('] },
};

/** The format called `name`, or an error naming the ones there are. */
export function promptFormat(name: string): PromptFormat {
  const f = FORMATS[name as FormatName];
  if (!f) throw new Error(`the prompt format must be qa, chat or code, got "${name}"`);
  return f;
}

/**
 * The Chat format over a conversation: system text first, then one line per turn,
 * `Alice: ...` for the user and `Bob: ...` for the assistant, ending with `Bob:` for the model
 * to continue.
 */
export function chatTranscript(
  turns: { role: 'system' | 'user' | 'assistant'; content: string }[],
  user: string = DEFAULTS.userName,
  assistant: string = DEFAULTS.assistantName,
): string {
  const lines: string[] = [];
  for (const m of turns) {
    if (m.role === 'system') lines.push(m.content.trim());
    else lines.push(`${m.role === 'user' ? user : assistant}: ${m.content.trim()}`);
  }
  lines.push(`${assistant}:`);
  return lines.join('\n');
}
