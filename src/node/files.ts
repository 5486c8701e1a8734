// Node adapter: a model folder on disk. Reads go through a file handle at explicit
// positions, at most 256 MiB per call, so files over 2 GiB (phi-1.5 f16 is 2.8 GB) work
// where fs.readFile would throw ERR_FS_FILE_TOO_LARGE.
import { constants, promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { ByteSource, ModelFiles } from '../io/source.js';

const CHUNK = 256 * 1024 * 1024;

export async function openFileSource(file: string): Promise<ByteSource> {
  const handle = await fs.open(file, constants.O_RDONLY);
  const size = (await handle.stat()).size;
  return {
    name: file,
    size,
    async read(offset, into) {
      if (offset + into.length > size) {
        throw new Error(
          `${file}: read of ${into.length} bytes at offset ${offset} is past the end of the file (${size} bytes)`,
        );
      }
      let done = 0;
      while (done < into.length) {
        const len = Math.min(CHUNK, into.length - done);
        const { bytesRead } = await handle.read(into, done, len, offset + done);
        if (bytesRead === 0) throw new Error(`${file}: unexpected end of file at ${offset + done}`);
        done += bytesRead;
      }
    },
    close: () => handle.close(),
  };
}

export function dirFiles(dir: string): ModelFiles {
  return {
    name: dir,
    async exists(file) {
      try {
        await fs.access(path.join(dir, file));
        return true;
      } catch {
        return false;
      }
    },
    readText: (file) => fs.readFile(path.join(dir, file), 'utf8'),
    open: (file) => openFileSource(path.join(dir, file)),
  };
}
