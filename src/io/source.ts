// Where model files come from. The core never touches the file system directly: a ModelFiles
// is handed in by an adapter (Node directory in src/node, URLs or in-memory buffers here),
// so the same loading code runs in Node, Deno, Bun and the browser.

/** Random access to one file's bytes. Reads never need the whole file in one buffer. */
export interface ByteSource {
  /** File path or URL, for error messages. */
  readonly name: string;
  readonly size: number;
  /** Fill `into` with bytes [offset, offset + into.length); throws if the file is shorter. */
  read(offset: number, into: Uint8Array): Promise<void>;
  close?(): Promise<void>;
}

/** A model folder: config.json, model.safetensors (or shards), tokenizer.json ... */
export interface ModelFiles {
  /** Directory path or base URL, for error messages. */
  readonly name: string;
  exists(file: string): Promise<boolean>;
  readText(file: string): Promise<string>;
  open(file: string): Promise<ByteSource>;
}

export function bufferSource(name: string, bytes: Uint8Array): ByteSource {
  return {
    name,
    size: bytes.length,
    async read(offset, into) {
      if (offset < 0 || offset + into.length > bytes.length) {
        throw new Error(
          `${name}: read of ${into.length} bytes at offset ${offset} is past the end (${bytes.length} bytes)`,
        );
      }
      into.set(bytes.subarray(offset, offset + into.length));
    },
  };
}

/** A model held in memory: file name -> bytes (e.g. from <input type=file> or a test). */
export function memoryFiles(name: string, files: Record<string, Uint8Array | string>): ModelFiles {
  const bytesOf = (file: string): Uint8Array => {
    const f = files[file];
    if (f === undefined) throw new Error(`${name}: no file ${file}`);
    return typeof f === 'string' ? new TextEncoder().encode(f) : f;
  };
  return {
    name,
    exists: async (file) => file in files,
    readText: async (file) => new TextDecoder().decode(bytesOf(file)),
    open: async (file) => bufferSource(`${name}/${file}`, bytesOf(file)),
  };
}

/**
 * A model served over HTTP(S): files are fetched from `${baseUrl}/${file}`; safetensors
 * are read with Range requests, one tensor at a time, so no 2 GB response is ever needed.
 */
export function urlFiles(baseUrl: string, fetchFn: typeof fetch = fetch): ModelFiles {
  const base = baseUrl.replace(/\/+$/, '');
  const url = (file: string) => `${base}/${file}`;
  return {
    name: base,
    async exists(file) {
      const r = await fetchFn(url(file), { method: 'HEAD' });
      return r.ok;
    },
    async readText(file) {
      const r = await fetchFn(url(file));
      if (!r.ok) throw new Error(`${url(file)}: HTTP ${r.status}`);
      return r.text();
    },
    async open(file) {
      const u = url(file);
      const head = await fetchFn(u, { method: 'HEAD' });
      if (!head.ok) throw new Error(`${u}: HTTP ${head.status}`);
      const size = Number(head.headers.get('content-length'));
      if (!Number.isFinite(size)) throw new Error(`${u}: server sent no Content-Length`);
      return {
        name: u,
        size,
        async read(offset, into) {
          if (into.length === 0) return;
          if (offset + into.length > size) {
            throw new Error(`${u}: read past the end (${offset + into.length} > ${size} bytes)`);
          }
          const r = await fetchFn(u, {
            headers: { Range: `bytes=${offset}-${offset + into.length - 1}` },
          });
          if (r.status !== 206 && !(r.status === 200 && offset === 0 && into.length === size)) {
            throw new Error(`${u}: range request answered HTTP ${r.status}, expected 206`);
          }
          const buf = new Uint8Array(await r.arrayBuffer());
          if (buf.length !== into.length) {
            throw new Error(`${u}: got ${buf.length} bytes, expected ${into.length}`);
          }
          into.set(buf);
        },
      };
    },
  };
}
