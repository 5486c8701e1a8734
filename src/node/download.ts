// `phi download`: fetch a model repository from the Hugging Face hub into a folder.
//
//   GET {endpoint}/api/models/{repo}/tree/{revision}          file list, sizes and hashes
//   GET {endpoint}/{repo}/resolve/{revision}/{path}           the file (Range: bytes=N- to resume)
//
// Each file is written to `path.incomplete` and renamed when complete and verified: LFS files
// (the safetensors) against the sha256 the hub lists, small git files against their git blob
// sha1. A transfer that breaks off resumes where it stopped, within the run (retries) and
// across runs (the .incomplete file stays). HF_ENDPOINT overrides the host, HF_TOKEN is sent
// as a bearer token.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';

export interface DownloadOptions {
  repo?: string;
  revision?: string;
  dir?: string;
  endpoint?: string;
  token?: string;
  /** Attempts per file before giving up (each resumes the last). Default 5. */
  retries?: number;
  /** Where progress goes (default process.stderr). */
  log?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Which repository files to fetch (default: top-level .json and .safetensors). */
  filter?: (file: string) => boolean;
}

interface HubFile {
  type: string;
  path: string;
  size: number;
  oid: string;
  lfs?: { oid: string; size: number };
}

const defaultFilter = (f: string) =>
  !f.includes('/') && (f.endsWith('.json') || f.endsWith('.safetensors'));

export async function download(o: DownloadOptions = {}): Promise<string[]> {
  const repo = o.repo ?? 'microsoft/phi-1_5';
  const revision = o.revision ?? 'main';
  const dir = o.dir ?? 'weights/phi-1_5';
  const endpoint = (o.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(
    /\/+$/,
    '',
  );
  const token = o.token ?? process.env.HF_TOKEN;
  const log = o.log ?? process.stderr;
  const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};

  const listUrl = `${endpoint}/api/models/${repo}/tree/${encodeURIComponent(revision)}`;
  let res: Response;
  try {
    res = await fetch(listUrl, { headers });
  } catch (e) {
    throw new Error(`cannot reach ${endpoint} (${causeOf(e)}); set HF_ENDPOINT to use a mirror`);
  }
  if (!res.ok) throw new Error(`${listUrl}: HTTP ${res.status} listing ${repo}@${revision}`);
  const list = (await res.json()) as HubFile[];
  if (!Array.isArray(list)) throw new Error(`${listUrl}: expected a JSON array of files`);
  const files = list.filter((f) => f.type === 'file' && (o.filter ?? defaultFilter)(f.path));
  if (!files.some((f) => f.path.endsWith('.safetensors'))) {
    throw new Error(`${repo}@${revision} has no .safetensors file`);
  }
  await fs.mkdir(dir, { recursive: true });
  const done: string[] = [];
  for (const f of files) {
    const url = `${endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${f.path}`;
    await fetchFile(url, path.join(dir, f.path), f, headers, o.retries ?? 5, log);
    done.push(f.path);
  }
  return done;
}

function causeOf(e: unknown): string {
  const err = e as Error & { cause?: Error };
  return err.cause?.message ?? err.message;
}

/** What the hub says the file hashes to, and how to hash it ourselves. */
function expectedHash(f: HubFile): {
  hash: () => Hash;
  expected: string;
  kind: string;
  size: number;
} {
  if (f.lfs)
    return {
      hash: () => createHash('sha256'),
      expected: f.lfs.oid,
      kind: 'sha256',
      size: f.lfs.size,
    };
  // A git blob id is sha1("blob <size>\0" + content).
  return {
    hash: () => createHash('sha1').update(`blob ${f.size}\0`),
    expected: f.oid,
    kind: 'git sha1',
    size: f.size,
  };
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await fs.stat(file)).size;
  } catch {
    return -1;
  }
}

async function hashFile(file: string, h: Hash): Promise<string> {
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function fetchFile(
  url: string,
  dest: string,
  f: HubFile,
  headers: Record<string, string>,
  retries: number,
  log: DownloadOptions['log'] & object,
): Promise<void> {
  const { hash, expected, kind, size } = expectedHash(f);
  if ((await sizeOf(dest)) === size && (await hashFile(dest, hash())) === expected) {
    log.write(`${f.path}: already complete\n`);
    return;
  }
  const part = `${dest}.incomplete`;
  const bar = progressBar(f.path, size, log);
  let lastError = '';
  for (let attempt = 1; attempt <= retries; attempt++) {
    let have = Math.max(0, await sizeOf(part));
    if (have > size) {
      await fs.rm(part);
      have = 0;
    }
    if (have < size) {
      try {
        await transfer(url, part, have, size, headers, bar);
      } catch (e) {
        lastError = causeOf(e);
        log.write(
          `\n${f.path}: transfer broke off (${lastError}); resuming (attempt ${attempt + 1} of ${retries})\n`,
        );
        continue;
      }
    }
    bar.finish();
    const got = await hashFile(part, hash());
    if (got !== expected) {
      await fs.rm(part, { force: true });
      throw new Error(
        `${f.path}: ${kind} mismatch: expected ${expected}, got ${got}; the corrupt file was deleted, run phi download again`,
      );
    }
    await fs.rename(part, dest);
    return;
  }
  throw new Error(
    `${f.path}: download failed after ${retries} attempts (${lastError}); run phi download again to resume`,
  );
}

async function transfer(
  url: string,
  part: string,
  have: number,
  size: number,
  headers: Record<string, string>,
  bar: ReturnType<typeof progressBar>,
): Promise<void> {
  const res = await fetch(url, {
    headers: have > 0 ? { ...headers, Range: `bytes=${have}-` } : headers,
  });
  if (res.status === 200 && have > 0)
    have = 0; // server ignored the range: start over
  else if (res.status !== 200 && res.status !== 206)
    throw new Error(`HTTP ${res.status} for ${url}`);
  if (!res.body) throw new Error(`empty response for ${url}`);
  const out = await fs.open(part, have > 0 ? 'a' : 'w');
  try {
    let written = have;
    bar.update(written);
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      await out.write(chunk);
      written += chunk.length;
      bar.update(written);
    }
    if (written !== size) throw new Error(`got ${written} of ${size} bytes`);
  } finally {
    await out.close();
  }
}

function progressBar(name: string, total: number, log: DownloadOptions['log'] & object) {
  const start = Date.now();
  let lastDraw = 0;
  let lastDecile = -1;
  let current = 0;
  const mb = (n: number) => (n / 1e6).toFixed(1);
  const draw = () => {
    const frac = total > 0 ? current / total : 1;
    const secs = Math.max(1e-3, (Date.now() - start) / 1000);
    const width = 30;
    const filled = Math.round(frac * width);
    return `${name} [${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${(frac * 100).toFixed(1)}% ${mb(current)}/${mb(total)} MB ${mb(current / secs)} MB/s`;
  };
  return {
    update(n: number) {
      current = n;
      if (log.isTTY) {
        if (Date.now() - lastDraw > 100) {
          lastDraw = Date.now();
          log.write(`\r${draw()}`);
        }
      } else {
        const decile = Math.floor((10 * n) / Math.max(1, total));
        if (decile > lastDecile) {
          lastDecile = decile;
          log.write(`${draw()}\n`);
        }
      }
    },
    finish() {
      if (log.isTTY) log.write(`\r${draw()}\n`);
    },
  };
}
