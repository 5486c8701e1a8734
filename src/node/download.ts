// `phi download`: fetch a model repository from the Hugging Face hub, into the Hugging Face
// cache (src/node/hub.ts: blobs by hash, snapshot links, refs) or into a plain folder.
//
//   GET {endpoint}/api/models/{repo}/revision/{revision}      the commit it points to
//   GET {endpoint}/api/models/{repo}/tree/{commit}            file list, sizes and hashes
//   GET {endpoint}/{repo}/resolve/{commit}/{path}             the file (Range: bytes=N- to resume)
//
// Each file is written to `<dest>.incomplete` and renamed when complete and verified: LFS files
// (the safetensors) against the sha256 the hub lists, small git files against their git blob
// sha1. A transfer that breaks off or stalls resumes where it stopped, within the run
// (retries) and across runs (the .incomplete file stays). HF_ENDPOINT overrides the host,
// HF_TOKEN is sent as a bearer token.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { diskFull } from './atomic.js';
import { DEFAULT_MODEL, hubCacheDir, hubOffline, repoCacheDir } from './hub.js';
import { progressBar, type Progress, type ProgressOut } from './progress.js';

export interface DownloadOptions {
  repo?: string;
  revision?: string;
  /** A plain folder to write the files into; without it they go to the Hugging Face cache. */
  dir?: string;
  /** The cache folder (default: hubCacheDir()). */
  cache?: string;
  /** Seconds without a byte before a transfer is abandoned and resumed (default 30). */
  stallSeconds?: number;
  endpoint?: string;
  token?: string;
  /** Attempts per file before giving up (each resumes the last). Default 5. */
  retries?: number;
  /** Where progress goes (default process.stderr). */
  log?: ProgressOut;
  /** Called as each file's bytes arrive (its name, bytes so far, its size). */
  onProgress?: (file: string, loadedBytes: number, totalBytes: number) => void;
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

export interface Downloaded {
  /** The folder that holds the files: the snapshot in the cache, or `dir`. */
  dir: string;
  files: string[];
  commit: string | null;
}

export async function download(o: DownloadOptions = {}): Promise<Downloaded> {
  const repo = o.repo ?? DEFAULT_MODEL;
  const revision = o.revision ?? 'main';
  if (hubOffline())
    throw new Error(
      `HF_HUB_OFFLINE is set: not downloading ${repo}; unset it where there is a network, ` +
        'or `phi synth --out DIR` writes a random-weight model',
    );
  const endpoint = (o.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(
    /\/+$/,
    '',
  );
  const token = o.token ?? process.env.HF_TOKEN;
  const log = o.log ?? process.stderr;
  const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
  const get = async (url: string, what: string) => {
    let res: Response;
    try {
      res = await fetch(url, { headers });
    } catch (e) {
      throw new Error(
        `cannot reach ${endpoint} (${causeOf(e)}); set HF_ENDPOINT to use a mirror, or, with no network, ` +
          '`phi synth --out DIR` writes a random-weight model to try everything with',
      );
    }
    if (res.status === 401 || res.status === 403)
      throw new Error(
        `${url}: HTTP ${res.status} ${what}: the repository needs a token (set HF_TOKEN)`,
      );
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status} ${what}`);
    return res.json();
  };

  // the commit the revision points to: the cache is keyed by it
  let commit: string | null = /^[0-9a-f]{40}$/.test(revision) ? revision : null;
  if (!commit) {
    const info = (await get(
      `${endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}`,
      `looking up ${repo}@${revision}`,
    )) as { sha?: unknown };
    if (typeof info?.sha !== 'string' || !/^[0-9a-f]{40}$/.test(info.sha))
      throw new Error(`${endpoint}: the answer for ${repo}@${revision} names no commit (sha)`);
    commit = info.sha;
  }
  const listUrl = `${endpoint}/api/models/${repo}/tree/${commit}`;
  const list = (await get(listUrl, `listing ${repo}@${revision}`)) as HubFile[];
  if (!Array.isArray(list)) throw new Error(`${listUrl}: expected a JSON array of files`);
  const files = list.filter((f) => f.type === 'file' && (o.filter ?? defaultFilter)(f.path));
  if (!files.some((f) => f.path.endsWith('.safetensors'))) {
    throw new Error(`${repo}@${revision} has no .safetensors file`);
  }

  const repoDir = repoCacheDir(repo, o.cache ?? hubCacheDir());
  const dir = o.dir ?? path.join(repoDir, 'snapshots', commit);
  await fs.mkdir(dir, { recursive: true });
  const done: string[] = [];
  for (const f of files) {
    const url = `${endpoint}/${repo}/resolve/${commit}/${f.path}`;
    const target = path.join(dir, f.path);
    if (o.dir) {
      await fetchFile(url, target, f, headers, o, log);
    } else {
      // the bytes go to blobs/<hash>; the snapshot links to them, as huggingface_hub does
      const blob = path.join(repoDir, 'blobs', expectedHash(f).expected);
      await fs.mkdir(path.dirname(blob), { recursive: true });
      await fetchFile(url, blob, f, headers, o, log, f.path);
      await link(blob, target);
    }
    done.push(f.path);
  }
  if (!o.dir && revision !== commit) {
    await fs.mkdir(path.join(repoDir, 'refs'), { recursive: true });
    await fs.writeFile(path.join(repoDir, 'refs', revision), commit);
  }
  return { dir, files: done, commit };
}

/** target -> blob as a relative symbolic link (a copy where links are not allowed). */
async function link(blob: string, target: string): Promise<void> {
  await fs.mkdir(path.dirname(target), { recursive: true });
  await fs.rm(target, { force: true });
  try {
    await fs.symlink(path.relative(path.dirname(target), blob), target);
  } catch {
    await fs.copyFile(blob, target);
  }
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
  o: DownloadOptions,
  log: ProgressOut,
  name = f.path,
): Promise<void> {
  const retries = o.retries ?? 5;
  const stallMs = (o.stallSeconds ?? 30) * 1000;
  const { hash, expected, kind, size } = expectedHash(f);
  if ((await sizeOf(dest)) === size && (await hashFile(dest, hash())) === expected) {
    log.write(`${name}: already complete\n`);
    return;
  }
  const part = `${dest}.incomplete`;
  const shown = progressBar(name, size, log);
  const bar = {
    update: (n: number) => {
      shown.update(n);
      o.onProgress?.(name, n, size);
    },
    finish: () => shown.finish(),
  };
  let lastError = '';
  for (let attempt = 1; attempt <= retries; attempt++) {
    let have = Math.max(0, await sizeOf(part));
    if (have > size) {
      await fs.rm(part);
      have = 0;
    }
    if (have < size) {
      try {
        await transfer(url, part, have, size, headers, bar, stallMs);
      } catch (e) {
        lastError = causeOf(e);
        const full = diskFull(e, `${f.path} (${size} bytes)`);
        if (full) throw full; // another attempt cannot find more room
        if (e instanceof TooLong) {
          await fs.rm(part, { force: true });
          throw new Error(`${f.path}: ${lastError}; the partial file was deleted`);
        }
        if (attempt < retries)
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

/** The server sent more bytes than the file has: not worth a retry. */
class TooLong extends Error {}

async function transfer(
  url: string,
  part: string,
  have: number,
  size: number,
  headers: Record<string, string>,
  bar: Progress,
  stallMs: number,
): Promise<void> {
  // a server that stops sending (but keeps the connection) is abandoned after stallMs
  const abort = new AbortController();
  let stalled = false;
  let timer = setTimeout(() => {
    stalled = true;
    abort.abort();
  }, stallMs);
  const alive = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      stalled = true;
      abort.abort();
    }, stallMs);
  };
  const stallError = () => new Error(`no data for ${stallMs / 1000} s`);
  try {
    let res: Response;
    try {
      res = await fetch(url, {
        headers: have > 0 ? { ...headers, Range: `bytes=${have}-` } : headers,
        signal: abort.signal,
      });
    } catch (e) {
      throw stalled ? stallError() : e;
    }
    if (res.status === 200 && have > 0)
      have = 0; // server ignored the range: start over
    else if (res.status !== 200 && res.status !== 206)
      throw new Error(`HTTP ${res.status} for ${url}`);
    if (!res.body) throw new Error(`empty response for ${url}`);
    const out = await fs.open(part, have > 0 ? 'a' : 'w');
    try {
      let written = have;
      bar.update(written);
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          alive();
          if (written + chunk.length > size)
            throw new TooLong(`the server sent more than the ${size} bytes the hub lists`);
          await out.write(chunk);
          written += chunk.length;
          bar.update(written);
        }
      } catch (e) {
        throw stalled ? stallError() : e;
      }
      if (written !== size) throw new Error(`got ${written} of ${size} bytes`);
    } finally {
      await out.close();
    }
  } finally {
    clearTimeout(timer);
  }
}
