// `phi serve` as a user starts it: bin/phi.js in a child process, with the default flags, spoken
// to by the official `openai` client, which always sends `model`. The in-process tests
// (server.test.ts) cover the details; these check what the binary's own defaults make of them.
import OpenAI from 'openai';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import * as path from 'node:path';
import { fixture, ROOT } from './helpers.js';

const MODEL = fixture('tiny-phi-f32');

interface Running {
  child: ChildProcessWithoutNullStreams;
  url: string;
  log: () => string;
  exit: Promise<{ code: number | null; ms: number; at: number }>;
}

/** Start `phi serve ARGS` and wait for its ready line. */
async function start(args: string[]): Promise<Running> {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'phi.js'), 'serve', ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let err = '';
  const exit = new Promise<{ code: number | null; ms: number; at: number }>((resolve) =>
    child.on('exit', (code) => resolve({ code, ms: 0, at: Date.now() })),
  );
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (d) => {
      err += d;
      const m = /ready: (http:\/\/[^/\s]+)/.exec(err);
      if (m) resolve(m[1]);
    });
    void exit.then(() => reject(new Error(`phi serve exited before it was ready:\n${err}`)));
  });
  return { child, url, log: () => err, exit };
}

/** `phi serve` on the tiny model, one thread, a free port, and `extra` flags. */
const startTiny = (...extra: string[]) =>
  start(['--model', MODEL, '--threads', '1', '--port', '0', ...extra]);

/** Send a signal and measure how long the server takes to exit. */
async function stop(s: Running, signal: NodeJS.Signals) {
  const t0 = Date.now();
  s.child.kill(signal);
  const e = await s.exit;
  return { code: e.code, ms: e.at - t0 };
}

const idleSocket = (url: string) =>
  new Promise<Socket>((resolve) => {
    const u = new URL(url);
    const s = connect(Number(u.port), u.hostname, () => resolve(s));
    s.on('error', () => {});
  });

describe('phi serve with its default flags', () => {
  let s: Running;
  let client: OpenAI;
  beforeAll(async () => {
    // the defaults, but a free port: the test may share the machine (the default 8080 is
    // checked by the log line below)
    s = await startTiny();
    client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'none', maxRetries: 0 });
  });
  afterAll(() => {
    s.child.kill('SIGKILL');
  });

  test('/v1/models names the model after its folder; any model name is answered', async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).toEqual(['tiny-phi-f32']);
    expect((await client.models.retrieve('tiny-phi-f32')).id).toBe('tiny-phi-f32');
    await expect(client.models.retrieve('gpt-4')).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    for (const model of ['tiny-phi-f32', 'phi-1_5', 'gpt-4o-mini']) {
      const r = await client.completions.create({ model, prompt: 'def f(x):', max_tokens: 4 });
      expect(r.model).toBe('tiny-phi-f32');
      expect(r.choices[0].finish_reason).toBe('length');
      expect(r.usage?.completion_tokens).toBe(4);
    }
  });

  test('chat, and streaming of both endpoints', async () => {
    const chat = await client.chat.completions.create({
      model: 'phi-1_5',
      messages: [{ role: 'user', content: 'Hello there' }],
      max_tokens: 5,
      temperature: 0,
    });
    expect(chat.model).toBe('tiny-phi-f32');
    expect(chat.choices[0].message.role).toBe('assistant');
    const streamed = await client.chat.completions.create({
      model: 'phi-1_5',
      messages: [{ role: 'user', content: 'Hello there' }],
      max_tokens: 5,
      temperature: 0,
      stream: true,
    });
    let text = '';
    let finish: string | null = null;
    for await (const ch of streamed) {
      text += ch.choices[0]?.delta?.content ?? '';
      finish = ch.choices[0]?.finish_reason ?? finish;
    }
    expect(text.trim()).toBe(chat.choices[0].message.content);
    expect(finish).toBe(chat.choices[0].finish_reason);
    const c = await client.completions.create({
      model: 'x',
      prompt: 'Once upon',
      max_tokens: 6,
      temperature: 0,
      stream: true,
    });
    let ctext = '';
    for await (const ch of c) ctext += ch.choices[0]?.text ?? '';
    const whole = await client.completions.create({
      model: 'x',
      prompt: 'Once upon',
      max_tokens: 6,
      temperature: 0,
    });
    expect(ctext).toBe(whole.choices[0].text);
  });

  test('structured output: a strict json_schema reply and a forced tool call', async () => {
    const schema = {
      type: 'object',
      properties: {
        answer: { enum: ['yes', 'no'] },
        score: { type: 'integer', minimum: 0, maximum: 9 },
      },
      required: ['answer', 'score'],
      additionalProperties: false,
    };
    const messages = [{ role: 'user' as const, content: 'Is it raining?' }];
    const r = await client.chat.completions.create({
      model: 'phi-1_5',
      messages,
      max_tokens: 40,
      temperature: 0,
      response_format: { type: 'json_schema', json_schema: { name: 'a', schema, strict: true } },
    });
    expect(r.choices[0].finish_reason).toBe('stop');
    const value = JSON.parse(r.choices[0].message.content!) as { answer: string; score: number };
    expect(['yes', 'no']).toContain(value.answer);
    expect(value.score).toBeGreaterThanOrEqual(0);
    expect(value.score).toBeLessThanOrEqual(9);
    const t = await client.chat.completions.create({
      model: 'phi-1_5',
      messages,
      max_tokens: 40,
      temperature: 0,
      tools: [{ type: 'function', function: { name: 'answer', parameters: schema } }],
      tool_choice: 'required',
    });
    expect(t.choices[0].finish_reason).toBe('tool_calls');
    const call = t.choices[0].message
      .tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(call.function.name).toBe('answer');
    // greedy both times, under the same schema: the same arguments
    expect(JSON.parse(call.function.arguments)).toEqual(value);
  });

  test('the default queue is bounded: past 16 waiting, 503 with Retry-After', async () => {
    const body = JSON.stringify({ prompt: 'Once upon a time', max_tokens: 40, temperature: 0 });
    const rs = await Promise.all(
      Array.from({ length: 24 }, () =>
        fetch(`${s.url}/v1/completions`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body,
        }).then(async (r) => ({
          status: r.status,
          retry: r.headers.get('retry-after'),
          body: await r.text(),
        })),
      ),
    );
    const ok = rs.filter((r) => r.status === 200).length;
    const busy = rs.filter((r) => r.status === 503);
    expect(ok + busy.length).toBe(24);
    // 1 slot + 16 waiting are served; the rest are refused
    expect(ok).toBeGreaterThanOrEqual(17);
    expect(busy.length).toBeGreaterThanOrEqual(1);
    expect(busy[0].retry).toBe('1');
    expect(JSON.parse(busy[0].body).error.code).toBe('queue_full');
  });

  test('one log line per request', () => {
    expect(s.log()).toMatch(/GET \/v1\/models 200 \d+ ms/);
    expect(s.log()).toMatch(/POST \/v1\/completions 200/);
    expect(s.log()).toMatch(/model "tiny-phi-f32" \(1 slot\(s\) of 512 positions/);
  });
});

describe('phi serve stops in bounded time', () => {
  test.each(['SIGTERM', 'SIGINT'] as const)(
    '%s with an idle and a half-sent connection open, mid-stream: the stream says why; exit 0',
    async (signal) => {
      const s = await startTiny('--shutdown-grace', '1');
      const idle = await idleSocket(s.url);
      const half = await idleSocket(s.url);
      half.write(
        'POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{"pro',
      );
      const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'none', maxRetries: 0 });
      const stream = await client.completions.create({
        model: 'phi-1_5',
        prompt: 'Once upon a time',
        max_tokens: 400,
        stream: true,
      });
      let chunks = 0;
      let error: unknown = null;
      let finish: string | null = null;
      const read = (async () => {
        try {
          for await (const ch of stream) {
            chunks++;
            finish = ch.choices[0]?.finish_reason ?? finish;
          }
        } catch (e) {
          error = e;
        }
      })();
      while (chunks < 3) await new Promise((r) => setTimeout(r, 10));
      const { code, ms } = await stop(s, signal);
      await read;
      expect(code).toBe(0);
      // the grace is 1 s; starting the shutdown and the kernels' end take little more
      expect(ms).toBeLessThan(15000);
      // not finish_reason "stop": a client can tell a shutdown from a normal end
      expect(finish).toBeNull();
      expect(String((error as Error)?.message)).toMatch(/shutting down/);
      expect(s.log()).toMatch(new RegExp(`${signal}: stopping`));
      idle.destroy();
      half.destroy();
    },
  );

  test('a model that fails to load ends the server at once, with its error, whatever is open', async () => {
    const child = spawn(
      process.execPath,
      [
        path.join(ROOT, 'bin', 'phi.js'),
        'serve',
        '--model',
        MODEL,
        '--port',
        '0',
        '--context',
        '99999',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(1);
    expect(err).toMatch(/^phi: .*context/m);
  });

  test('a closed stderr (phi serve 2>&1 | head) turns logging off, not the server', async () => {
    const s = await startTiny();
    s.child.stderr.destroy(); // the reader went away: the next log line meets EPIPE
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`${s.url}/v1/completions`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ prompt: 'Hello', max_tokens: 2 }),
      });
      expect([i, r.status]).toEqual([i, 200]);
      await r.json();
    }
    expect(s.child.exitCode).toBeNull();
    const { code } = await stop(s, 'SIGTERM');
    expect(code).toBe(0);
  });

  test('a second signal exits at once', async () => {
    const s = await startTiny('--shutdown-grace', '60');
    const half = await idleSocket(s.url);
    half.write('POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{');
    await new Promise((r) => setTimeout(r, 100));
    s.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    const { code, ms } = await stop(s, 'SIGTERM');
    expect(code).toBe(143);
    expect(ms).toBeLessThan(5000);
    half.destroy();
  });
});
