// `phi download` against a local server that speaks the hub's URL layout, serving the
// tiny-phi-f16 fixture: a clean download, a transfer cut off mid-file or stalled, a corrupt
// file, too many bytes; the Hugging Face cache layout and models by Hub id through the CLI.
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, existsSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { download } from '../src/node/download.js';
import { loadPhi } from '../src/node/index.js';
import { fixture, reference, ROOT } from './helpers.js';

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
  stallAfter?: number; // send this many bytes of model.safetensors, then nothing (once)
  extra?: number; // send this many bytes more than the file has
}
const COMMIT = 'c0ffee'.padEnd(40, '0');
let server: Server;
let base = '';
let behaviour: Behaviour = {};
const requests: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    requests.push(`${req.method} ${url.pathname} ${req.headers.range ?? ''}`.trim());
    if (url.pathname === '/api/models/microsoft/phi-1_5/revision/main') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ id: 'microsoft/phi-1_5', sha: COMMIT }));
      return;
    }
    if (url.pathname === `/api/models/microsoft/phi-1_5/tree/${COMMIT}`) {
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
    const m = url.pathname.match(new RegExp(`^/microsoft/phi-1_5/resolve/${COMMIT}/(.+)$`));
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
    if (m[1] === 'model.safetensors' && behaviour.extra) {
      body = Buffer.concat([body, Buffer.alloc(behaviour.extra, 1)]);
    }
    res.setHeader('content-length', body.length - start);
    if (m[1] === 'model.safetensors' && behaviour.stallAfter !== undefined) {
      const n = behaviour.stallAfter;
      behaviour.stallAfter = undefined; // only once: the retry gets the rest
      res.write(body.subarray(start, start + n)); // then nothing, connection open
      return;
    }
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
  const { files } = await download({ endpoint: base, dir, log });
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
      r.match(
        new RegExp(`^GET /microsoft/phi-1_5/resolve/${COMMIT}/model\\.safetensors bytes=(\\d+)-$`),
      ),
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
  expect(requests).toContain(
    `GET /microsoft/phi-1_5/resolve/${COMMIT}/model.safetensors bytes=4096-`,
  );
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

test('a server that stalls is abandoned after the stall timeout and the download resumes', async () => {
  behaviour = { stallAfter: 100_000 };
  const dir = mkdtempSync(path.join(tmpdir(), 'phi-dl-'));
  const { log, lines } = quiet();
  const t0 = Date.now();
  await download({ endpoint: base, dir, log, stallSeconds: 0.5 });
  expect(Date.now() - t0).toBeLessThan(25_000); // not the default stall timeout of 30 s
  expect(lines.join('')).toMatch(
    /model\.safetensors: transfer broke off \(no data for 0\.5 s\); resuming/,
  );
  expect(
    readFileSync(path.join(dir, 'model.safetensors')).equals(content['model.safetensors']),
  ).toBe(true);
});

test('a server that sends more bytes than the hub lists is a clear error', async () => {
  behaviour = { extra: 13 };
  const dir = mkdtempSync(path.join(tmpdir(), 'phi-dl-'));
  await expect(download({ endpoint: base, dir, log: quiet().log })).rejects.toThrow(
    /model\.safetensors: the server sent more than the \d+ bytes the hub lists; the partial file was deleted/,
  );
  expect(existsSync(path.join(dir, 'model.safetensors.incomplete'))).toBe(false);
});

describe('the Hugging Face cache', () => {
  test('phi download fills it as huggingface_hub does: blobs by hash, snapshot links, refs', async () => {
    behaviour = {};
    const cache = mkdtempSync(path.join(tmpdir(), 'phi-hub-'));
    const r = await download({ endpoint: base, cache, log: quiet().log });
    const repo = path.join(cache, 'models--microsoft--phi-1_5');
    expect(r.dir).toBe(path.join(repo, 'snapshots', COMMIT));
    expect(readFileSync(path.join(repo, 'refs', 'main'), 'utf8')).toBe(COMMIT);
    const st = content['model.safetensors'];
    expect(readFileSync(path.join(repo, 'blobs', sha256(st))).equals(st)).toBe(true);
    expect(
      readFileSync(path.join(repo, 'blobs', gitOid(content['config.json']))).equals(
        content['config.json'],
      ),
    ).toBe(true);
    expect(readlinkSync(path.join(r.dir, 'model.safetensors'))).toBe(
      path.join('..', '..', 'blobs', sha256(st)),
    );
  });

  test('models by Hub id: loaded from the cache, downloaded into it when missing, refused offline', async () => {
    behaviour = {};
    const cache = mkdtempSync(path.join(tmpdir(), 'phi-hub-'));
    const env = { ...process.env, HF_HUB_CACHE: cache, HF_ENDPOINT: base, HF_HUB_OFFLINE: '' };
    // asynchronously: the hub it downloads from is served by this process
    const phi = (args: string[], extraEnv: Record<string, string> = {}) =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'phi.js'), ...args], {
          env: { ...env, ...extraEnv },
        });
        let [stdout, stderr] = ['', ''];
        child.stdout.on('data', (d) => (stdout += d));
        child.stderr.on('data', (d) => (stderr += d));
        child.on('close', (status) => resolve({ status, stdout, stderr }));
      });
    const ids = reference('tiny-phi-f16').cases[1].input_ids.join(',');
    // offline with an empty cache: one clear line
    const off = await phi(['generate', '--ids', ids, '-n', '3'], { HF_HUB_OFFLINE: '1' });
    expect(off.status).toBe(1);
    expect(off.stderr).toMatch(
      /^phi: microsoft\/phi-1_5 is not in the Hugging Face cache \(.+\) and downloads are off \(HF_HUB_OFFLINE\)/m,
    );
    // the default model, missing: downloaded with progress, then generated
    requests.length = 0;
    const first = await phi(['generate', '--ids', ids, '-n', '3', '--json']);
    expect(first.status).toBe(0);
    expect(first.stderr).toMatch(/not in the Hugging Face cache .*: downloading it/);
    expect(first.stderr).toMatch(/model\.safetensors \[#+\] 100\.0%/);
    expect(requests.some((q) => q.includes('/resolve/'))).toBe(true);
    // now in the cache: offline works, nothing is fetched, same tokens
    requests.length = 0;
    const again = await phi([
      'generate',
      '--model',
      'microsoft/phi-1_5',
      '--ids',
      ids,
      '-n',
      '3',
      '--json',
      '--offline',
    ]);
    expect(again.status).toBe(0);
    expect(requests).toEqual([]);
    const last = (out: string) => JSON.parse(out.trim().split('\n').pop()!).ids;
    expect(last(again.stdout)).toEqual(last(first.stdout));
    // a library user gets the same through loadPhi(id)
    process.env.HF_HUB_CACHE = cache;
    try {
      const p = await loadPhi('microsoft/phi-1_5', { offline: true });
      expect(p.config.hiddenSize).toBe(64);
      p.close();
    } finally {
      delete process.env.HF_HUB_CACHE;
    }
  });

  test('loadPhi(id, { onProgress }) reports the download, file by file, and then the load', async () => {
    behaviour = {};
    const cache = mkdtempSync(path.join(tmpdir(), 'phi-hub-'));
    const saved = { cache: process.env.HF_HUB_CACHE, endpoint: process.env.HF_ENDPOINT };
    process.env.HF_HUB_CACHE = cache;
    process.env.HF_ENDPOINT = base;
    const seen: { stage: string; file?: string; loaded: number; total: number }[] = [];
    try {
      const p = await loadPhi('microsoft/phi-1_5', {
        progress: null,
        onProgress: (loaded, total, info) => seen.push({ ...info!, loaded, total }),
      });
      p.close();
    } finally {
      process.env.HF_HUB_CACHE = saved.cache;
      process.env.HF_ENDPOINT = saved.endpoint;
      if (saved.cache === undefined) delete process.env.HF_HUB_CACHE;
      if (saved.endpoint === undefined) delete process.env.HF_ENDPOINT;
    }
    const downloads = seen.filter((s) => s.stage === 'download');
    const st = downloads.filter((s) => s.file === 'model.safetensors');
    expect(st.length).toBeGreaterThan(0);
    expect(st[st.length - 1].loaded).toBe(st[st.length - 1].total);
    expect(new Set(downloads.map((s) => s.file))).toContain('config.json');
    const loads = seen.filter((s) => s.stage === 'load');
    expect(loads.length).toBeGreaterThan(0);
    expect(loads[loads.length - 1].loaded).toBe(loads[loads.length - 1].total);
    // downloads come first, then the load
    expect(seen.findIndex((s) => s.stage === 'load')).toBeGreaterThan(
      seen.findIndex((s) => s.stage === 'download'),
    );
  });
});
