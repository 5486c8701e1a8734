// POST /v1/chat/completions: messages in the model card's Chat format, the reply until the
// next turn of either speaker, or, under a constraint (response_format, a forced tool call),
// until the constraint is complete: it constrains Bob's reply only.
import type { Context } from 'hono';
import type { GenerationResult, TokenPiece } from '../../generation.js';
import { turnStops } from '../../prompts.js';
import { answer, finishReason } from '../answer.js';
import { tokenBytes, tokenText, type ServerContext } from '../context.js';
import { chatMessages, chatPrompt } from '../requests.js';

export async function chatCompletions(c: Context, ctx: ServerContext): Promise<Response> {
  const o = ctx.o;
  const { b, req } = await ctx.generationRequest(c, true);
  const messages = chatMessages(b);
  await ctx.loading;
  const p = ctx.loaded();
  const ids = await ctx.promptIds(p, chatPrompt(messages, o.userName, o.assistantName), 'messages');
  const constrained = req.structured !== null;
  // the next turn of either speaker ends the reply; a constraint ends it where it is complete,
  // and lets it start with the space the model writes after "Bob:"
  const turns = constrained ? [] : turnStops(o.userName, o.assistantName);
  const options = {
    ...req.options,
    stop: [...turns, ...(req.options.stop ?? [])],
    ...(constrained ? { constraintLeadingSpace: true } : {}),
  };
  const tool = req.structured?.tool ?? null;
  const callId = ctx.newId('call');

  const entry = (piece: TokenPiece) => ({
    token: tokenText(p, piece.id),
    logprob: piece.logprob ?? 0,
    bytes: tokenBytes(p, piece.id),
    top_logprobs: (piece.top ?? []).slice(0, req.logprobs ?? 0).map((t) => ({
      token: tokenText(p, t.id),
      logprob: t.logprob,
      bytes: tokenBytes(p, t.id),
    })),
  });
  // the model continues "Bob:" with a space: the reply starts at its first other character
  let started = false;
  let held = ''; // a call to one of several tools, until its name is known
  const trimStart = (text: string) => {
    if (started) return text;
    const t = text.replace(/^\s+/, '');
    started = t.length > 0;
    return t;
  };

  const choice = (fields: Record<string, unknown>) => ({ choices: [{ index: 0, ...fields }] });
  // a forced call's text is the call: its arguments, or {"name", "arguments"} when the model
  // picked one of several tools (streamed at the end, once the name is known)
  const call = (text: string, r: GenerationResult) => {
    if (tool?.name) return { name: tool.name, arguments: text };
    if (r.stopReason !== 'eos') return null; // cut short: no call to read
    const parsed = JSON.parse(text) as { name: string; arguments: unknown };
    const at = text.indexOf('"arguments": ');
    return { name: parsed.name, arguments: text.slice(at + '"arguments": '.length, -1) };
  };
  // a chunk's call carries its index in the list; a whole message's does not
  const toolCall = (c: { name: string; arguments: string }, chunk = true) => ({
    ...(chunk ? { index: 0 } : {}),
    id: callId,
    type: 'function',
    function: c,
  });
  const finish = (r: GenerationResult) =>
    tool && r.stopReason === 'eos' ? 'tool_calls' : finishReason(r);
  const streamsArguments = tool?.name != null;

  return answer(c, ctx, p, ids, req, options, {
    idPrefix: 'chatcmpl',
    object: 'chat.completion',
    chunkObject: 'chat.completion.chunk',
    whole: (pieces, r) => {
      const text = pieces
        .map((piece) => trimStart(piece.text))
        .join('')
        .trimEnd();
      const logprobs = req.logprobs === null ? null : { content: pieces.map(entry) };
      const made = tool ? call(text, r) : null;
      const message = made
        ? {
            role: 'assistant',
            content: null,
            tool_calls: [toolCall(made, false)],
          }
        : { role: 'assistant', content: text };
      return choice({ message, logprobs, finish_reason: finish(r) });
    },
    opening: () => [
      choice({
        delta: streamsArguments
          ? {
              role: 'assistant',
              content: null,
              tool_calls: [toolCall({ name: tool!.name!, arguments: '' })],
            }
          : { role: 'assistant', content: tool ? null : '' },
        logprobs: null,
        finish_reason: null,
      }),
    ],
    chunk: (piece) => {
      const text = trimStart(piece.text);
      if (tool && !streamsArguments) {
        held += text;
        return null;
      }
      if (text === '' && req.logprobs === null) return null;
      const logprobs = req.logprobs === null ? null : { content: [entry(piece)] };
      const delta = streamsArguments
        ? { tool_calls: [{ index: 0, function: { arguments: text } }] }
        : { content: text };
      return choice({ delta, logprobs, finish_reason: null });
    },
    closing: (r) => {
      const last = choice({ delta: {}, logprobs: null, finish_reason: finish(r) });
      if (!tool || streamsArguments) return last;
      const made = call(held.trimEnd(), r);
      const delta = made ? { tool_calls: [toolCall(made)] } : { content: held };
      return [choice({ delta, logprobs: null, finish_reason: null }), last];
    },
  });
}
