// `phi serve --adapter NAME=DIR`: adapters served unmerged beside the base model, picked by a
// request's `model` (or llama-server's `lora`), spoken to by the official `openai` client.
import OpenAI from 'openai';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as path from 'node:path';
import { loadPhi, type Phi } from '../src/node/index.js';
import { fixture, ROOT } from './helpers.js';

const MODEL = fixture('tiny-phi-f32');
const ADAPTER = fixture('lora', 'tiny-phi-f32-r4');
const IDS = [11420, 13904, 26716, 33332, 12972, 21442, 28836];

let child: ChildProcessWithoutNullStreams;
let url: string;
let client: OpenAI;
let merged: Phi;
let base: Phi;

beforeAll(async () => {
  child = spawn(
    process.execPath,
    [
      path.join(ROOT, 'bin', 'phi.js'),
      'serve',
      '--model',
      MODEL,
      '--threads',
      '1',
      '--port',
      '0',
      '--parallel',
      '2',
      '--adapter',
      `r4=${ADAPTER}`,
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let err = '';
  url = await new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (d) => {
      err += d;
      const m = /ready: (http:\/\/[^/\s]+)/.exec(err);
      if (m) resolve(m[1]);
    });
    child.on('exit', () => reject(new Error(`phi serve exited:\n${err}`)));
  });
  expect(err).toMatch(/model "tiny-phi-f32" and adapter\(s\) "r4"/);
  client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'none', maxRetries: 0 });
  merged = await loadPhi(MODEL, { backend: 'js', merge: ADAPTER });
  base = await loadPhi(MODEL, { backend: 'js' });
});
afterAll(() => {
  child?.kill('SIGKILL');
  merged?.close();
  base?.close();
});

const expected = async (phi: Phi) =>
  (await phi.complete({ ids: IDS }, { maxNewTokens: 6, temperature: 0 })).text;

const post = (body: object) =>
  fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ prompt: IDS, max_tokens: 6, temperature: 0, ...body }),
  });

describe('phi serve --adapter', () => {
  test('/v1/models lists the base model and the adapter; each can be retrieved', async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).toEqual(['tiny-phi-f32', 'r4']);
    const r4 = await client.models.retrieve('r4');
    expect(r4).toMatchObject({ id: 'r4', parent: 'tiny-phi-f32' });
    const lora = await (await fetch(`${url}/lora-adapters`)).json();
    expect(lora).toEqual([
      { id: 0, name: 'r4', path: expect.stringContaining('tiny-phi-f32-r4'), scale: 1 },
    ]);
  });

  test("a request's model picks the adapter: the merged model's text; the base name, the base's", async () => {
    const withAdapter = await client.completions.create({
      model: 'r4',
      prompt: IDS,
      max_tokens: 6,
      temperature: 0,
    });
    expect(withAdapter.model).toBe('r4');
    expect(withAdapter.choices[0].text).toBe(await expected(merged));
    const plain = await client.completions.create({
      model: 'tiny-phi-f32',
      prompt: IDS,
      max_tokens: 6,
      temperature: 0,
    });
    expect(plain.choices[0].text).toBe(await expected(base));
    expect(plain.choices[0].text).not.toBe(withAdapter.choices[0].text);
    const chat = await client.chat.completions.create({
      model: 'r4',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 3,
    });
    expect(chat.model).toBe('r4');
  });

  test('both at once, in one batch, equal each alone', async () => {
    const [a, b] = await Promise.all(
      ['r4', 'tiny-phi-f32'].map((model) =>
        client.completions.create({ model, prompt: IDS, max_tokens: 6, temperature: 0 }),
      ),
    );
    expect(a.choices[0].text).toBe(await expected(merged));
    expect(b.choices[0].text).toBe(await expected(base));
  });

  test('with adapters served, another model name is refused, not run as the base', async () => {
    const e = await client.completions
      .create({ model: 'r5', prompt: IDS, max_tokens: 2 })
      .catch((x) => x);
    expect(e).toBeInstanceOf(OpenAI.BadRequestError);
    expect(e.message).toMatch(
      /model "r5" is not served here; this server has .*"tiny-phi-f32".*"r4"/,
    );
  });

  test("llama-server's lora: [{id, scale}] picks by index; scale 0 is the base; bad entries are 400s", async () => {
    const text = async (r: Response) =>
      ((await r.json()) as { choices: { text: string }[] }).choices[0].text;
    expect(await text(await post({ lora: [{ id: 0, scale: 1 }] }))).toBe(await expected(merged));
    expect(await text(await post({ lora: [{ id: 0, scale: 0 }] }))).toBe(await expected(base));
    const bad = await post({ lora: [{ id: 3, scale: 1 }] });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(
      /lora\[0\]\.id.*0 = r4.*got 3/,
    );
    const two = await post({ lora: 'r4' });
    expect(two.status).toBe(400);
  });
});
