// A client's mistake is a 400, never a 500: a seeded fuzzer mutates valid request bodies of
// every endpoint (fields removed, retyped, set to awkward values, nested deep, huge numbers,
// the wrong JSON altogether) and sends them to the server's fetch handler. A 500 would be a
// bug on the server's side, and the official client retries it. Every error has OpenAI's
// shape. Node's own refusals (a malformed Content-Length) get that shape too.
import { connect } from 'node:net';
import type { Phi } from '../src/engine.js';
import { loadPhi } from '../src/node/index.js';
import { serve, type RunningServer } from '../src/node/serve.js';
import { createServer } from '../src/server/index.js';
import { fixture, xorshift } from './helpers.js';

const CASES = Number(process.env.PHI_SERVER_FUZZ_CASES ?? 600);
const SEED = Number(process.env.PHI_SERVER_FUZZ_SEED ?? 20261203);

let phi: Phi;
beforeAll(async () => {
  phi = await loadPhi(fixture('tiny-phi-f32'), { parallel: 2, threads: 1, progress: null });
});
afterAll(() => phi.close());

const VALID: [string, Record<string, unknown>][] = [
  ['/v1/completions', { model: 'phi-1_5', prompt: 'def f(x):', max_tokens: 2, temperature: 0 }],
  [
    '/v1/completions',
    { prompt: [1, 2, 3], max_tokens: 2, logprobs: 2, echo: true, stream: true, stop: ['\n'] },
  ],
  [
    '/v1/chat/completions',
    {
      model: 'x',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: [{ type: 'text', text: 'hi' }] },
      ],
      max_tokens: 2,
      top_p: 0.9,
      seed: 1,
      logprobs: true,
      top_logprobs: 2,
      stream_options: { include_usage: true },
      stream: true,
    },
  ],
  ['/tokenize', { content: 'Hello world', with_pieces: true }],
  ['/detokenize', { tokens: [15496, 995] }],
];

const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
const WEIRD: unknown[] = [
  null,
  true,
  -1,
  0,
  1.5,
  1e300,
  -0,
  '',
  'x'.repeat(70000),
  [],
  {},
  [[[[1]]]],
  2 ** 53,
  2 ** 64,
  -(2 ** 63),
  { toString: 1 },
  { valueOf: 'x' },
  ['a', 1, null],
  [1e300],
  '\u0000\ud800',
  { role: 'user' },
];

/** A mutated body: valid JSON text mostly, sometimes raw text that JSON.parse makes odd. */
function mutate(rand: () => number): { path: string; body: string; what: string } {
  const pick = <T>(a: T[]) => a[Math.floor(rand() * a.length)];
  const weird = () => structuredClone(pick(WEIRD)); // a fresh copy: the body may nest it
  const [path, valid] = pick(VALID);
  const b = JSON.parse(JSON.stringify(valid)) as Record<string, unknown>;
  const keys = Object.keys(b);
  const r = rand();
  if (r < 0.08)
    return { path, body: pick(['', '{', 'null', '[]', '"x"', '1', '{"a":}']), what: 'raw' };
  if (r < 0.14) {
    const k = pick(keys);
    return {
      path,
      body: JSON.stringify(b).replace(`"${k}":`, `"${k}":${deep(20000)},"_":`),
      what: `${k} nested deep`,
    };
  }
  if (r < 0.2) {
    const k = pick(keys);
    return {
      path,
      body: JSON.stringify(b).replace(`"${k}":`, `"${k}":1e309,"_":`),
      what: `${k} = 1e309`,
    };
  }
  // one to three fields changed: removed, or set to an awkward value, possibly inside
  const what: string[] = [];
  for (let n = 1 + Math.floor(rand() * 3); n > 0; n--) {
    const k =
      rand() < 0.15
        ? pick([
            'n',
            'suffix',
            'logit_bias',
            'best_of',
            'max_completion_tokens',
            'presence_penalty',
            'top_k',
            'repetition_penalty',
            'echo',
            'stream_options',
          ])
        : pick(keys);
    const v = b[k];
    if (rand() < 0.2) {
      delete b[k];
      what.push(`${k} removed`);
    } else if (Array.isArray(v) && v.length > 0 && rand() < 0.5) {
      const i = Math.floor(rand() * v.length);
      const inner = v[i];
      if (inner && typeof inner === 'object' && rand() < 0.6) {
        const ik = pick(Object.keys(inner));
        (inner as Record<string, unknown>)[ik] = weird();
        what.push(`${k}[${i}].${ik}`);
      } else {
        v[i] = weird();
        what.push(`${k}[${i}]`);
      }
    } else {
      b[k] = weird();
      what.push(k);
    }
  }
  return { path, body: JSON.stringify(b), what: what.join(', ') };
}

test(`${CASES} mutated request bodies: each is answered, and never with a 500 (seed ${SEED})`, async () => {
  // a request without max_tokens gets 4, so the ones served stay quick
  const handler = createServer(phi, { pingMs: 60_000, maxTokens: 4 });
  const rand = xorshift(SEED);
  const failures: string[] = [];
  const seen = new Map<number, number>();
  for (let i = 0; i < CASES && failures.length < 10; i++) {
    const { path, body, what } = mutate(rand);
    const res = await handler.fetch(
      new Request(`http://127.0.0.1${path}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body,
      }),
    );
    const text = await res.text(); // a stream is read to its end
    seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
    const where = `case ${i} (${path}: ${what})`;
    if (res.status >= 500) failures.push(`${where}: ${res.status} ${text.slice(0, 200)}`);
    else if (res.status >= 400) {
      const e = JSON.parse(text)?.error;
      if (typeof e?.message !== 'string' || e.type !== 'invalid_request_error')
        failures.push(
          `${where}: ${res.status} without OpenAI's error shape: ${text.slice(0, 200)}`,
        );
    } else if (text.includes('"server_error"'))
      failures.push(`${where}: a stream ended with a server error: ${text.slice(-300)}`);
  }
  expect(failures).toEqual([]);
  // the fuzzer reaches both sides: refused bodies and served ones
  expect(seen.get(200) ?? 0).toBeGreaterThan(CASES / 20);
  expect(seen.get(400) ?? 0).toBeGreaterThan(CASES / 4);
  expect([phi.active, phi.waiting]).toEqual([0, 0]);
}, 120_000);

describe("Node's own refusals in OpenAI's shape", () => {
  let s: RunningServer;
  beforeAll(async () => {
    s = await serve(phi, { port: 0 });
  });
  afterAll(() => s.close());

  const raw = (request: string) =>
    new Promise<string>((resolve) => {
      const u = new URL(s.url);
      const sock = connect(Number(u.port), u.hostname, () => sock.write(request));
      let out = '';
      sock.on('data', (d) => (out += d));
      sock.on('close', () => resolve(out));
      sock.on('error', () => resolve(out));
    });

  test.each([
    [
      'a malformed Content-Length',
      'POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n',
    ],
    [
      'two Content-Lengths',
      'POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{}',
    ],
    ['a broken request line', 'HELLO\r\n\r\n'],
  ])('%s: 400 with a JSON error body', async (_, request) => {
    const out = await raw(request);
    expect(out).toMatch(/^HTTP\/1\.1 400 /);
    const body = JSON.parse(out.slice(out.indexOf('\r\n\r\n') + 4));
    expect(body.error).toEqual(
      expect.objectContaining({ type: 'invalid_request_error', code: 'bad_request' }),
    );
  });
});
