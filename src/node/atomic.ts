// Writes that are never half-trusted. A model folder is written into a temporary folder beside
// its target and renamed into place only when every file is complete, so a run that is killed
// or runs out of space leaves the old model as it was and no folder that loads.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import * as path from 'node:path';

/** The error of a full disk, said plainly: retrying cannot help. */
export function diskFull(e: unknown, what: string): Error | null {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code === 'ENOSPC') return new Error(`no space left on the device writing ${what}`);
  if (code === 'EDQUOT') return new Error(`the disk quota is exceeded writing ${what}`);
  return null;
}

/**
 * Write the folder `target` through `write(tmp)`, which fills a fresh folder. `target` may be
 * missing, empty, or an earlier folder of this kind (it has the `marker` file: config.json for
 * a model, adapter_config.json for an adapter), which is replaced; any other folder is
 * refused, since replacing it would delete what the user keeps there.
 */
export async function writeFolderAtomically<T>(
  target: string,
  write: (tmp: string) => Promise<T>,
  flag = '--out',
  marker = 'config.json',
): Promise<T> {
  const dir = path.resolve(target);
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new Error(`${flag} ${target} is a file, not a folder`);
    const entries = readdirSync(dir);
    if (entries.length > 0 && !entries.includes(marker))
      throw new Error(
        `${flag} ${target} is a folder with other files in it (no ${marker}): writing there ` +
          'would replace them; choose a new or empty folder',
      );
  }
  const stamp = `${process.pid}-${Date.now().toString(36)}`;
  const tmp = `${dir}.partial-${stamp}`;
  await mkdir(path.dirname(dir), { recursive: true });
  await mkdir(tmp);
  let result: T;
  try {
    result = await write(tmp);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw diskFull(e, target) ?? e;
  }
  // the old folder steps aside (whole, under a name no loader looks for) before the new one
  // takes its name; it is removed only once the new one is in place
  const old = existsSync(dir) ? `${dir}.old-${stamp}` : null;
  if (old) await rename(dir, old);
  try {
    await rename(tmp, dir);
  } catch (e) {
    if (old) await rename(old, dir);
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  if (old) await rm(old, { recursive: true, force: true });
  return result;
}
