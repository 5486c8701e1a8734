// LoRA adapters through the `phi` command: generate/logits --adapter (merged, and --no-merge),
// and phi merge writing a checkpoint that loads as a plain model.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Checkpoint } from '../src/weights/checkpoint.js';
import { dirFiles } from '../src/node/files.js';
import { ROOT, fixture, maxAbsDiff } from './helpers.js';

const MODEL = fixture('tiny-phi-f32');
const ADAPTER = fixture('lora', 'tiny-phi-f32-r4');
const REF = JSON.parse(readFileSync(path.join(ADAPTER, 'lora_reference.json'), 'utf8'));
const CASE = REF.inference.cases[2] as {
  input_ids: number[];
  logits_last: number[];
  max_abs_logit_all_positions: number;
  greedy_new_tokens: number[];
};

function phi(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'phi.js'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** generate's greedy ids for the case, after asserting it ran cleanly. */
const greedy = (extra: string[], env: Record<string, string> = {}) => {
  const args = ['generate', '--model', MODEL, '--ids', CASE.input_ids.join(','), '-n', '6'];
  const r = phi([...args, '--json', '-q', ...extra], env);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!).ids as number[];
};

/** phi logits' last row against the merged reference, relative to max |logit|. */
const logitsErr = (extra: string[], model = MODEL) => {
  const r = phi(['logits', '--model', model, '--ids', CASE.input_ids.join(','), '-q', ...extra]);
  expect(r.code).toBe(0);
  const got = JSON.parse(r.stdout).logits[0] as number[];
  return maxAbsDiff(got, CASE.logits_last) / CASE.max_abs_logit_all_positions;
};

describe('phi --adapter and phi merge', () => {
  test('generate --adapter, merged and --no-merge, gives the reference greedy tokens', () => {
    const want = CASE.greedy_new_tokens.slice(0, 6);
    expect(greedy(['--adapter', ADAPTER])).toEqual(want);
    expect(greedy(['--adapter', ADAPTER, '--no-merge', '--threads', '2'])).toEqual(want);
    expect(greedy([])).not.toEqual(want);
  });

  test('logits --adapter matches the merged model to 1e-4, merged or not', () => {
    expect(logitsErr(['--adapter', ADAPTER])).toBeLessThan(1e-4);
    expect(logitsErr(['--adapter', ADAPTER, '--no-merge', '--backend', 'js'])).toBeLessThan(1e-4);
  });

  test('phi merge writes a plain checkpoint: transformers names, no adapter keys, the merged logits', async () => {
    const out = path.join(mkdtempSync(path.join(tmpdir(), 'merged-')), 'm');
    try {
      const r = phi(['merge', '--model', MODEL, '--adapter', ADAPTER, '--out', out, '-q']);
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(
        /wrote model.safetensors, config.json.* \(1 adapter\(s\) merged, f32\)/,
      );
      const [a, b] = await Promise.all([
        Checkpoint.open(dirFiles(MODEL)),
        Checkpoint.open(dirFiles(out)),
      ]);
      expect([...b.entries.keys()].sort()).toEqual([...a.entries.keys()].sort());
      for (const [name, e] of b.entries)
        expect(e.info.shape).toEqual(a.entries.get(name)!.info.shape);
      await Promise.all([a.close(), b.close()]);
      expect(logitsErr([], out)).toBeLessThan(1e-4);
    } finally {
      rmSync(path.dirname(out), { recursive: true, force: true });
    }
  });

  test('an adapter by Hub id resolves through the Hugging Face cache, offline', () => {
    const cache = mkdtempSync(path.join(tmpdir(), 'hf-'));
    try {
      const commit = 'a'.repeat(40);
      const snap = path.join(cache, 'models--someone--phi-1_5-lora', 'snapshots', commit);
      mkdirSync(snap, { recursive: true });
      for (const f of ['adapter_config.json', 'adapter_model.safetensors'])
        cpSync(path.join(ADAPTER, f), path.join(snap, f));
      mkdirSync(path.join(cache, 'models--someone--phi-1_5-lora', 'refs'));
      writeFileSync(path.join(cache, 'models--someone--phi-1_5-lora', 'refs', 'main'), commit);
      const env = { HF_HUB_CACHE: cache, HF_HUB_OFFLINE: '1' };
      const want = CASE.greedy_new_tokens.slice(0, 6);
      expect(greedy(['--adapter', 'someone/phi-1_5-lora'], env)).toEqual(want);
      const missing = phi(
        ['generate', '--model', MODEL, '--ids', '1', '--adapter', 'someone/other-lora', '-q'],
        env,
      );
      expect(missing.stderr).toMatch(/someone\/other-lora is not in the Hugging Face cache/);
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });

  test('flag mistakes are named', () => {
    expect(phi(['generate', '--model', MODEL, '--ids', '1', '--no-merge']).stderr).toMatch(
      /--no-merge needs an --adapter/,
    );
    expect(
      phi([
        'generate',
        '--model',
        MODEL,
        '--ids',
        '1',
        '--no-merge',
        '--adapter',
        ADAPTER,
        '--adapter',
        ADAPTER,
      ]).stderr,
    ).toMatch(/--no-merge applies one --adapter, got 2/);
    expect(phi(['merge', '--model', MODEL, '--out', '/tmp/x']).stderr).toMatch(
      /merge needs --adapter/,
    );
    expect(phi(['merge', '--model', MODEL, '--adapter', ADAPTER, '--out', MODEL]).stderr).toMatch(
      /--out is the model folder/,
    );
    const r = phi(['generate', '--model', MODEL, '--ids', '1', '--adapter', '/no/such/adapter']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/adapter folder \/no\/such\/adapter not found/);
  });
});
