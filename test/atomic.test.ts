// Writes are atomic: phi synth, phi quantize and saves fill a folder beside the target and
// rename it into place when complete. A full disk or a kill mid-write leaves the old model as
// it was and no folder that loads.
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { writeFolderAtomically } from '../src/node/atomic.js';
import { loadPhi } from '../src/node/index.js';
import { ROOT } from './helpers.js';

const phi = (args: string[]) =>
  spawnSync(process.execPath, [path.join(ROOT, 'bin', 'phi.js'), ...args], { encoding: 'utf8' });

describe('writeFolderAtomically', () => {
  const work = mkdtempSync(path.join(tmpdir(), 'phi-atomic-'));

  test('a write that fails (a full disk) leaves no folder and says why, once', async () => {
    const target = path.join(work, 'new');
    await expect(
      writeFolderAtomically(target, async (dir) => {
        writeFileSync(path.join(dir, 'config.json'), '{}');
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), {
          code: 'ENOSPC',
        });
      }),
    ).rejects.toThrow(`no space left on the device writing ${target}`);
    expect(existsSync(target)).toBe(false);
    expect(readdirSync(work).filter((f) => f.startsWith('new'))).toEqual([]);
  });

  test('an earlier model folder is replaced only once the new one is complete', async () => {
    const target = path.join(work, 'model');
    mkdirSync(target);
    writeFileSync(path.join(target, 'config.json'), '"old"');
    await expect(
      writeFolderAtomically(target, async (dir) => {
        writeFileSync(path.join(dir, 'config.json'), '"new"');
        throw new Error('killed');
      }),
    ).rejects.toThrow('killed');
    expect(readFileSync(path.join(target, 'config.json'), 'utf8')).toBe('"old"');
    await writeFolderAtomically(target, async (dir) =>
      writeFileSync(path.join(dir, 'config.json'), '"new"'),
    );
    expect(readFileSync(path.join(target, 'config.json'), 'utf8')).toBe('"new"');
    expect(readdirSync(work).filter((f) => f.startsWith('model'))).toEqual(['model']);
  });

  test('a folder that holds something else is refused, not replaced', async () => {
    const target = path.join(work, 'home');
    mkdirSync(target);
    writeFileSync(path.join(target, 'notes.txt'), 'mine');
    await expect(writeFolderAtomically(target, async () => {})).rejects.toThrow(
      /is a folder with other files in it \(no config\.json\).*choose a new or empty folder/,
    );
    const r = phi(['synth', '--out', target]);
    expect([r.status, r.stderr]).toEqual([
      1,
      expect.stringMatching(/^phi: --out .*home is a folder with other files/),
    ]);
    expect(readFileSync(path.join(target, 'notes.txt'), 'utf8')).toBe('mine');
  });
});

test('phi synth killed mid-write over a model leaves that model loading as before', async () => {
  const work = mkdtempSync(path.join(tmpdir(), 'phi-kill-'));
  const target = path.join(work, 'm');
  expect(phi(['synth', '--out', target, '--seed', '3']).status).toBe(0);
  const before = await loadPhi(target, { threads: 1, progress: null });
  const want = Array.from(before.logits([1, 2, 3]));
  before.close();
  // the real shapes take seconds to write: kill it once it has started
  const child = spawn(process.execPath, [
    path.join(ROOT, 'bin', 'phi.js'),
    'synth',
    '--size',
    'phi-1_5',
    '--out',
    target,
  ]);
  await new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (readdirSync(work).some((f) => f.includes('.partial-'))) {
        clearInterval(check);
        resolve();
      }
    }, 20);
  });
  await new Promise((r) => setTimeout(r, 300));
  child.kill('SIGKILL');
  await new Promise((r) => child.on('exit', r));
  const after = await loadPhi(target, { threads: 1, progress: null });
  expect(Array.from(after.logits([1, 2, 3]))).toEqual(want);
  after.close();
  // what is left beside it is a .partial folder, which nothing loads by accident
  expect(
    readdirSync(work)
      .filter((f) => f !== 'm')
      .every((f) => f.startsWith('m.partial-')),
  ).toBe(true);
  rmSync(work, { recursive: true, force: true });
});

// a 5 MB tmpfs makes a full disk; mounting one needs root, so where that fails the test is
// skipped, saying so in its name (writeFolderAtomically's own test covers the logic)
const small = mkdtempSync(path.join(tmpdir(), 'phi-small-'));
const canMount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=5m', 'tmpfs', small]).status === 0;

(canMount ? test : test.skip)(
  `phi synth onto a full disk (a 5 MB tmpfs): one clear line, no folder${canMount ? '' : ' (skipped: cannot mount a tmpfs here)'}`,
  () => {
    try {
      const r = phi(['synth', '--out', path.join(small, 'm')]);
      expect([r.status, r.stderr.trim()]).toEqual([
        1,
        `phi: no space left on the device writing ${path.join(small, 'm')}`,
      ]);
      expect(readdirSync(small)).toEqual([]);
    } finally {
      spawnSync('umount', [small]);
    }
  },
);
