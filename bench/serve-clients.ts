// The clients of `npm run bench -- --serve`, in a process of their own (bench/serve.ts spawns
// this): n streaming completions at once, each one's text, token count and times.
//   node dist/bench/serve-clients.js '{"url": "http://127.0.0.1:PORT", "prompts": [..], "tokens": 48}'
// ("models": [..] beside the prompts picks each request's model: an adapter's name)

export interface StreamResult {
  text: string;
  tokens: number;
  sent: number;
  first: number;
  last: number;
}

async function stream(
  url: string,
  prompt: string,
  tokens: number,
  model?: string,
): Promise<StreamResult> {
  const sent = performance.now();
  const r = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      ...(model ? { model } : {}),
      prompt,
      max_tokens: tokens,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    }),
  });
  let first = 0;
  let text = '';
  let count = 0;
  let buffer = '';
  const decoder = new TextDecoder();
  for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let nl;
    while ((nl = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 2);
      if (!event.startsWith('data: {')) continue;
      const data = JSON.parse(event.slice(6));
      if (data.usage) count = data.usage.completion_tokens;
      const piece = data.choices?.[0]?.text;
      if (piece !== undefined && !first) first = performance.now();
      text += piece ?? '';
    }
  }
  return { text, tokens: count, sent, first, last: performance.now() };
}

const { url, prompts, tokens, models } = JSON.parse(process.argv[2]) as {
  url: string;
  prompts: string[];
  tokens: number;
  models?: string[];
};
const runs = await Promise.all(prompts.map((p, i) => stream(url, p, tokens, models?.[i])));
process.stdout.write(JSON.stringify(runs) + '\n');
