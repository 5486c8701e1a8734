// `phi download` against a local server that speaks the hub's URL layout, serving the
// tiny-phi-f16 fixture: a clean download, a transfer cut off mid-file, and a corrupt file.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { download } from '../src/node/download.js';
import { loadPhi } from '../src/node/index.js';
import { fixture, reference } from './helpers.js';

const FILES = [
  'config.json',
  'generation_config.json',
  'model.safetensors',
  'tokenizer.json',
  'tokenizer_config.json',
];
const content = Object.fromEntries(FILES.map((f) => [f, readFileSync(fixture('tiny-phi-f16', f))]));
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const gitOid = (b: Buffer) =>
  createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

interface Behaviour {
  cutAfter?: number; // close the connection after this many bytes of model.safetensors, once
  corrupt?: boolean; // serve model.safetensors with one byte flipped
  noRange?: boolean;
}
let server: Server;
let base = '';
let behaviour: Behaviour = {};
const requests: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    requests.push(`${req.method} ${url.pathname} ${req.headers.range ?? ''}`.trim());
    if (url.pathname === '/api/models/microsoft/phi-1_5/tree/main') {
      const list = FILES.map((f) =>
        f.endsWith('.safetensors')
          ? {
              type: 'file',
              path: f,
              size: content[f].length,
              oid: gitOid(Buffer.from('pointer')),
              lfs: { oid: sha256(content[f]), size: content[f].length },
            }
          : { type: 'file', path: f, size: content[f].length, oid: gitOid(content[f]) },
      );
      list.push({ type: 'directory', path: 'onnx', size: 0, oid: '' });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(list));
      return;
    }
    const m = url.pathname.match(/^\/microsoft\/phi-1_5\/resolve\/main\/(.+)$/);
    if (!m || !(m[1] in content)) {
      res.statusCode = 404;
      res.end('not found');
      return;
    }
    let body = content[m[1]];
    if (m[1] === 'model.safetensors' && behaviour.corrupt) {
      body = Buffer.from(body);
      body[body.length - 10] ^= 0xff;
    }
    let start = 0;
    const range = req.headers.range?.match(/^bytes=(\d+)-$/);
    if (range && !behaviour.noRange) {
      start = Number(range[1]);
      res.statusCode = 206;
      res.setHeader('content-range', `bytes ${start}-${body.length - 1}/${body.length}`);
    }
    res.setHeader('content-length', body.length - start);
    const cut = m[1] === 'model.safetensors' ? behaviour.cutAfter : undefined;
    if (cut !== undefined) {
      behaviour.cutAfter = undefined; // only once
      res.write(body.subarray(start, start + cut), () => res.socket?.end()); // FIN, not RST: nothing in flight is lost
      return;
    }
    res.end(body.subarray(start));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const quiet = () => {
  const lines: string[] = [];
  const log = new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) });
  return { log, lines };
};

test('downloads a checkpoint that then loads and matches the reference', async () => {
  behaviour = {};
  const dir = mkdtempSync(path.join(tmpdir(), 'phi-dl-'));
  const { log, lines } = quiet();
  const files = await download({ endpoint: base, dir, log });
  expect(files.sort()).toEqual([...FILES].sort());
  for (const f of FILES) expect(readFileSync(path.join(dir, f)).equals(content[f])).toBe(true);
  expect(lines.join('')).toMatch(/model\.safetensors \[#+\] 100\.0%/);
  const phi = await loadPhi(dir);
  const c = reference('tiny-phi-f16').cases[1];
  expect(
    (await phi.complete({ ids: c.input_ids }, { maxNewTokens: 20, stopAtEos: false })).ids,
  ).toEqual(c.greedy.new_tokens);
  // a second run finds everything complete and fetches no file
  requests.length = 0;
  await download({ endpoint: base, dir, log });
  expect(requests.filter((r) => r.includes('/resolve/'))).toEqual([]);
});

test('an interrupted transfer resumes with a Range request', async () => {
  behaviour = { cutAfter: 1_000_000 };
  const dir = mkdtempSync(path.join(tmpdir(), 'phi-dl-'));
  requests.length = 0;
  await download({ endpoint: base, dir, log: quiet().log });
  expect(
    readFileSync(path.join(dir, 'model.safetensors')).equals(content['model.safetensors']),
  ).toBe(true);
  // it resumed from what had arrived (the cut may lose bytes in flight, so <= 1,000,000)
  const resumed = requests
    .map((r) =>
      r.match(/^GET \/microsoft\/phi-1_5\/resolve\/main\/model\.safetensors bytes=(\d+)-$/),
    )
    .filter((m) => m !== null)
    .map((m) => Number(m![1]));
  expect(resumed).toHaveLength(1);
  expect(resumed[0]).toBeGreaterThan(0);
  expect(resumed[0]).toBeLessThanOrEqual(1_000_000);
  expect(existsSync(path.join(dir, 'model.safetensors.incomplete'))).toBe(false);
});

test('a partial file left by an earlier run is resumed, not restarted', async () => {
  behaviour = {};
  const dir = mkdtempSync(path.join(tmpdir(), 'phi-dl-'));
  writeFileSync(
    path.join(dir, 'model.safetensors.incomplete'),
    content['model.safetensors'].subarray(0, 4096),
  );
  requests.length = 0;
  await download({ endpoint: base, dir, log: quiet().log });
  expect(requests).toContain('GET /microsoft/phi-1_5/resolve/main/model.safetensors bytes=4096-');
  expect(
    readFileSync(path.join(dir, 'model.safetensors')).equals(content['model.safetensors']),
  ).toBe(true);
});

test('a server that ignores Range restarts the file cleanly', async () => {
  behaviour = { noRange: true };
  const dir = mkdtempSync(path.join(tmpdir(), 'phi-dl-'));
  writeFileSync(path.join(dir, 'model.safetensors.incomplete'), Buffer.alloc(4096, 7));
  await download({ endpoint: base, dir, log: quiet().log });
  expect(
    readFileSync(path.join(dir, 'model.safetensors')).equals(content['model.safetensors']),
  ).toBe(true);
});

test('a corrupted file fails the sha256 check and is deleted', async () => {
  behaviour = { corrupt: true };
  const dir = mkdtempSync(path.join(tmpdir(), 'phi-dl-'));
  await expect(download({ endpoint: base, dir, log: quiet().log })).rejects.toThrow(
    /model\.safetensors: sha256 mismatch: expected [0-9a-f]{64}, got [0-9a-f]{64}; the corrupt file was deleted/,
  );
  expect(existsSync(path.join(dir, 'model.safetensors'))).toBe(false);
  expect(existsSync(path.join(dir, 'model.safetensors.incomplete'))).toBe(false);
});

test('an unreachable endpoint says so', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'phi-dl-'));
  await expect(download({ endpoint: 'http://127.0.0.1:1', dir, log: quiet().log })).rejects.toThrow(
    /cannot reach http:\/\/127\.0\.0\.1:1/,
  );
});
