// The README is executable: its shell and TypeScript blocks run here as a user would type them,
// and its synopsis, JSON shapes and memory claims are checked against what the code does.
// When a documented command, flag, output shape or claim stops being true, this fails.
//
// Stated substitutions (the test's only liberties):
//   - the real weights: HF_HUB_CACHE is a fresh cache in which `phi synth` wrote a tiny random
//     model as microsoft/phi-1_5, so commands that name no --model find "the real weights";
//   - `npx phi` is bin/phi.js, and `phi-wasm` in TypeScript the package itself (it imports
//     itself by name, as a user's project imports it);
//   - port 8080 is a free port, since tests share the machine;
//   - prime.py (a file the user has) is written into the working folder;
//   - a command the block's `# not run in CI: CMD (why)` comment names is skipped, and so are
//     `npm ci` and `npm test`, which are what CI itself runs.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import ts from 'typescript';
import { parseConfig } from '../src/model/config.js';
import { planMemory, WASM32_BYTES } from '../src/memory.js';
import { Checkpoint } from '../src/weights/checkpoint.js';
import { ROOT } from './helpers.js';
import { phi15Files } from './phi15.js';

const README = readFileSync(path.join(ROOT, 'README.md'), 'utf8');

interface Block {
  lang: string;
  code: string;
  line: number;
}
const blocks: Block[] = [...README.matchAll(/^```(\w*)\n([\s\S]*?)^```/gm)].map((m) => ({
  lang: m[1],
  code: m[2],
  line: README.slice(0, m.index).split('\n').length,
}));
const shell = blocks.filter((b) => b.lang === 'sh');

const work = mkdtempSync(path.join(tmpdir(), 'phi-readme-'));
const cache = path.join(work, 'hub');
const bin = path.join(work, 'bin');
let port = 0;
let env: NodeJS.ProcessEnv;

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });

beforeAll(async () => {
  // a tiny model where the Hugging Face cache keeps microsoft/phi-1_5
  const commit = '0'.repeat(40);
  const repo = path.join(cache, 'models--microsoft--phi-1_5');
  const snap = path.join(repo, 'snapshots', commit);
  execFileSync(process.execPath, [path.join(ROOT, 'bin', 'phi.js'), 'synth', '--out', snap], {
    stdio: 'pipe',
  });
  mkdirSync(path.join(repo, 'refs'), { recursive: true });
  writeFileSync(path.join(repo, 'refs', 'main'), commit);
  // `phi` and `npx phi` on PATH mean this checkout's bin/phi.js
  mkdirSync(bin);
  writeFileSync(
    path.join(bin, 'phi'),
    `#!/bin/sh\nexec "${process.execPath}" "${path.join(ROOT, 'bin', 'phi.js')}" "$@"\n`,
    { mode: 0o755 },
  );
  // the README's ./my-adapter: a PEFT LoRA adapter of the synth model's (tiny) shapes
  cpSync(
    path.join(ROOT, 'test', 'fixtures', 'lora', 'tiny-phi-f32-r4'),
    path.join(work, 'my-adapter'),
    {
      recursive: true,
      filter: (src) => !/(lora_reference\.json|grads\.safetensors)$/.test(src),
    },
  );
  writeFileSync(
    path.join(work, 'prime.py'),
    'def print_prime(n):\n   """\n   Print all primes between 1 and n\n   """\n',
  );
  port = await freePort();
  env = {
    ...process.env,
    HF_HUB_CACHE: cache,
    HF_HUB_OFFLINE: '1', // nothing here may reach for the network
    PATH: `${bin}:${process.env.PATH}`,
  };
});

/** The commands of a shell block: continuation lines joined, comments and blanks dropped. */
function commands(code: string): string[] {
  return code
    .replace(/\\\n\s*/g, '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
}

/** What a block's `# not run in CI: CMD (why)` comments name. */
const skipped = (code: string) =>
  [...code.matchAll(/^# not run in CI: (.+?) \(/gm)].map((m) => m[1].trim());

/** A command as the test runs it: `npx phi` is phi on PATH, 8080 the free port. */
const adapt = (cmd: string) =>
  cmd
    .replace(/\bnpx phi\b/g, 'phi')
    .replace(/8080/g, String(port))
    .replace(/\s+#.*$/, '');

/** Split `a && b && c` into its parts, dropping the ones not run here. */
function runnable(cmd: string, skip: string[]): string[] {
  return cmd
    .split('&&')
    .map((p) => p.trim())
    .filter((p) => !/^npm (ci|test)\b/.test(p))
    .filter((p) => !skip.some((s) => p.startsWith(s)));
}

function sh(cmd: string, input = '') {
  const r = spawnSync('bash', ['-c', cmd], {
    cwd: work,
    env,
    input,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Run a TypeScript block as a module inside the package, so `phi-wasm` resolves to it. */
function runTs(code: string): { status: number | null; stdout: string; stderr: string } {
  const js = ts.transpileModule(code.replace(/8080/g, String(port)), {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  }).outputText;
  const dir = path.join(ROOT, 'dist', 'readme-blocks');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `block-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(file, js);
  const r = spawnSync(process.execPath, [file], {
    cwd: work,
    env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('the README, run', () => {
  test('its first block: install aside, the main job generates from "the real weights"', () => {
    const [first] = shell;
    expect(first.line).toBeLessThan(20); // on the first screen
    const cmds = commands(first.code);
    expect(cmds).toHaveLength(2); // the main job, the tests
    const skip = skipped(first.code);
    expect(skip).toEqual(['phi download']);
    const parts = runnable(adapt(cmds[0]), skip);
    expect(parts).toEqual([expect.stringMatching(/^phi generate --format qa/)]);
    const r = sh(parts[0]);
    expect([r.status, r.stderr]).toEqual([0, expect.stringMatching(/generated \d+ tokens/)]);
    expect(runnable(adapt(cmds[1]), skip)).toEqual([]); // npm ci && npm test: this run
  });

  test('every other shell block runs, each command exiting 0', async () => {
    const ran: string[] = [];
    for (const b of shell.slice(1)) {
      const skip = skipped(b.code);
      let server: ReturnType<typeof spawn> | null = null;
      try {
        for (const cmd of commands(b.code)) {
          for (const part of runnable(adapt(cmd), skip)) {
            if (/^phi serve\b/.test(part)) {
              server = spawn('bash', ['-c', `exec ${part} --port ${port}`], { cwd: work, env });
              await new Promise<void>((resolve, reject) => {
                let err = '';
                server!.stderr!.on('data', (d) => {
                  err += d;
                  if (/ready:/.test(err)) resolve();
                });
                server!.on('exit', () =>
                  reject(new Error(`README line ${b.line}: ${part}\n${err}`)),
                );
              });
              // the TypeScript blocks that talk to this server run while it is up
              for (const t of blocks.filter((x) => x.lang === 'ts' && x.code.includes('8080'))) {
                ran.push(`ts block of line ${t.line}`);
                const r = runTs(t.code);
                expect([`README line ${t.line}`, r.status, r.stderr]).toEqual([
                  `README line ${t.line}`,
                  0,
                  '',
                ]);
              }
              continue;
            }
            // an interactive command gets a line of input and then the end of it
            ran.push(part.split(' ').slice(0, 2).join(' '));
            const r = sh(part, /^phi chat\b/.test(part) ? 'Hello there\n' : '');
            expect([
              `README line ${b.line}: ${part}`,
              r.status,
              r.stderr.split('\n').filter((l) => /^phi:/.test(l)),
            ]).toEqual([`README line ${b.line}: ${part}`, 0, []]);
            if (/\s--json(\s|$)/.test(part)) {
              // the summary line has exactly the fields the README lists
              const last = JSON.parse(r.stdout.trim().split('\n').pop()!);
              const documented = /`(\{"ids":\[\.\.\],"prefill_tokens_per_s".*?\})`/.exec(
                README,
              )![1];
              const keys = [...documented.matchAll(/"(\w+)":/g)].map((m) => m[1]);
              expect(Object.keys(last)).toEqual(keys);
            }
            if (part.startsWith('curl'))
              expect(JSON.parse(r.stdout).choices[0].text).toEqual(expect.any(String));
          }
        }
      } finally {
        server?.kill('SIGTERM');
      }
    }
    // what the blocks hold today, so that a parsing slip cannot skip them silently
    for (const what of ['phi generate', 'phi chat', 'curl', 'ts block'])
      expect([what, ran.some((r) => r.startsWith(what))]).toEqual([what, true]);
  });

  test('the library example runs as written (by Hub id, through the cache)', () => {
    const lib = blocks.find((b) => b.lang === 'ts' && b.code.includes("from 'phi-wasm/node'"))!;
    const r = runTs(lib.code);
    expect([r.status, r.stderr]).toEqual([0, '']);
    expect(r.stdout.length).toBeGreaterThan(0);
  });
});

describe('the README, checked', () => {
  test('the command synopsis: every command and flag it lists is one phi takes', () => {
    const synopsis = blocks.find((b) => b.lang === '' && b.code.startsWith('phi generate'))!;
    // one entry per command: its line and the continuation lines under it
    const entries = synopsis.code.split(/\n(?=phi )/);
    expect(entries.length).toBeGreaterThan(5);
    for (const e of entries) {
      const command = /^phi (\w+)/.exec(e)![1];
      const help = sh(`phi ${command} --help`);
      expect([command, help.status]).toEqual([command, 0]);
      for (const [flag] of e.matchAll(/--[a-z][a-z-]*/g))
        expect([command, flag, help.stdout.includes(flag)]).toEqual([command, flag, true]);
    }
    // and every command phi has is in the synopsis
    const listed = entries.map((e) => /^phi (\w+)/.exec(e)![1]);
    const all = [...sh('phi --help').stdout.matchAll(/^ {2}(\w+) /gm)].map((m) => m[1]);
    expect(all.filter((c) => !listed.includes(c))).toEqual([]);
  });

  test('the memory claims: what the README says fits in wasm32 memory fits, and what it says does not, does not', async () => {
    const claims = [
      ...README.matchAll(
        /for phi-1\.5 (f16|q8|q4), ((?:\d+ slots? of \d+ positions(?:,? (?:or|and) )?)+) fit/g,
      ),
    ];
    expect(claims.length).toBeGreaterThan(0);
    const files = phi15Files();
    const ck = await Checkpoint.open(files);
    const cfg = parseConfig(await files.readText('config.json'), 'phi-1_5/config.json');
    const fits = (dtype: 'f16' | 'q8' | 'q4', parallel: number, maxPositions: number) =>
      planMemory(ck, cfg, {
        dtype: dtype === 'f16' ? 'auto' : dtype,
        threads: 2,
        parallel,
        maxPositions,
        maxBatch: 64,
      }).total <=
      WASM32_BYTES - (1 << 20);
    for (const [, dtype, list] of claims)
      for (const [, n, ctx] of list.matchAll(/(\d+) slots? of (\d+) positions/g)) {
        expect([dtype, n, ctx, fits(dtype as 'f16', Number(n), Number(ctx))]).toEqual([
          dtype,
          n,
          ctx,
          true,
        ]);
        // and the claim is the most that fits: twice the context does not
        if (Number(ctx) < cfg.maxPositions)
          expect([
            dtype,
            n,
            2 * Number(ctx),
            fits(dtype as 'f16', Number(n), 2 * Number(ctx)),
          ]).toEqual([dtype, n, 2 * Number(ctx), false]);
      }
    // the server example's flags fit phi-1.5 as stored
    const serveLine = /npx phi serve --parallel (\d+) --context (\d+)/.exec(README)!;
    expect(fits('f16', Number(serveLine[1]), Number(serveLine[2]))).toBe(true);
    await ck.close();
  });

  test('no dangling references: every link and every repository path in README.md and docs/ exists', () => {
    // what commands write, not what the repository holds
    const outputs = new Set(['bench/results/latest.json', 'weights/phi-1_5', 'weights/phi-tiny']);
    const docs = [
      'README.md',
      ...readdirSync(path.join(ROOT, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .map((f) => `docs/${f}`),
    ];
    const missing: string[] = [];
    for (const doc of docs) {
      const text = readFileSync(path.join(ROOT, doc), 'utf8');
      for (const [, target] of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g))
        if (!/^https?:/.test(target) && !existsSync(path.resolve(ROOT, path.dirname(doc), target)))
          missing.push(`${doc}: link ${target}`);
      for (const [, p] of text.matchAll(
        /`((?:src|test|assembly|bench|docs|scripts|demo|weights)\/[\w./-]*)`/g,
      ))
        if (!outputs.has(p) && !existsSync(path.join(ROOT, p))) missing.push(`${doc}: path ${p}`);
    }
    expect(missing).toEqual([]);
  });

  test('the measured time of npm test is stated', () => {
    expect(README).toMatch(/`npm test` takes about \d+ s/);
  });
});
