// `phi finetune` through bin/phi.js, as a user runs it: the adapter it writes loads back (in
// phi-wasm, by PEFT's rules), --init from the shared fixture with everything else off
// reproduces torch's AdamW losses, Ctrl-C saves a checkpoint that --resume continues bit for
// bit, and bad data is a line naming the file and line.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ROOT, fixture } from './helpers.js';

const MODEL = fixture('tiny-phi-f32');
const ADAPTER = fixture('lora', 'tiny-phi-f32-r4');
const REF = JSON.parse(readFileSync(path.join(ADAPTER, 'lora_reference.json'), 'utf8'));
const PHI = path.join(ROOT, 'bin', 'phi.js');

function phi(args: string[]) {
  const r = spawnSync(process.execPath, [PHI, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'finetune-'));
  const lines = Array.from({ length: 40 }, (_, i) =>
    JSON.stringify({
      prompt: `item ${i} colour`,
      completion: ` colour=${['red', 'blue'][i % 2]};`,
    }),
  );
  writeFileSync(path.join(dir, 'kv.jsonl'), lines.join('\n') + '\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const at = (...p: string[]) => path.join(dir, ...p);
const logOf = (file: string) =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step: number; loss: number; lr: number; tokens: number });

describe('phi finetune', () => {
  test('writes a PEFT adapter (and its log and chart) that phi loads back', () => {
    const r = phi([
      ...['finetune', '--model', MODEL, '--data', at('kv.jsonl'), '--out', at('a')],
      ...['--steps', '6', '--seq', '32', '--lr', '5e-3', '--rank', '4', '--log', at('a.jsonl')],
    ]);
    expect(r.stderr).toMatch(/step 6\/6 {2}loss \d+\.\d{4}/);
    expect(r.code).toBe(0);
    for (const f of ['adapter_config.json', 'adapter_model.safetensors', 'log.jsonl', 'loss.svg'])
      expect(existsSync(at('a', f))).toBe(true);
    const config = JSON.parse(readFileSync(at('a', 'adapter_config.json'), 'utf8'));
    expect(config).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 16, bias: 'none' });
    const log = logOf(at('a.jsonl'));
    expect(log.map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(log[5].loss).toBeLessThan(log[0].loss); // it learns
    expect(readFileSync(at('a', 'loss.svg'), 'utf8')).toMatch(/^<svg[^]*<polyline/);
    // it loads as an adapter, and changes the model's output (B moved off zero)
    const ids = ['logits', '--model', MODEL, '--ids', '1,2,3', '-q'];
    const base = JSON.parse(phi(ids).stdout).logits[0] as number[];
    const tuned = JSON.parse(phi([...ids, '--adapter', at('a')]).stdout).logits[0] as number[];
    expect(tuned.some((v, i) => Math.abs(v - base[i]) > 1e-4)).toBe(true);
  });

  test("--init from the fixture, --schedule constant --warmup 0 --dropout 0 --no-shuffle: torch's AdamW losses", () => {
    const a = REF.adamw;
    writeFileSync(at('ids.jsonl'), JSON.stringify({ ids: REF.gradients.train_ids }) + '\n');
    const r = phi([
      ...['finetune', '--model', MODEL, '--data', at('ids.jsonl'), '--out', at('b')],
      ...[
        '--init',
        ADAPTER,
        '--steps',
        '6',
        '--lr',
        String(a.lr),
        '--weight-decay',
        String(a.weight_decay),
      ],
      ...[
        '--schedule',
        'constant',
        '--warmup',
        '0',
        '--dropout',
        '0',
        '--no-shuffle',
        '--clip',
        '0',
      ],
      ...['--log', at('b.jsonl'), '-q'],
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    logOf(at('b.jsonl')).forEach((m, k) =>
      expect(Math.abs(m.loss - a.losses[k]) / a.losses[k]).toBeLessThan(1e-4),
    );
  });

  test('Ctrl-C saves a checkpoint; --resume goes on exactly as the run without a stop', async () => {
    const common = ['--model', MODEL, '--data', at('kv.jsonl'), '--seq', '32', '--steps', '24'];
    const full = phi(['finetune', ...common, '--out', at('full'), '--log', at('full.jsonl'), '-q']);
    expect(full.code).toBe(0);
    // the same run, interrupted once its log shows a few steps
    const child = spawn(
      process.execPath,
      [PHI, 'finetune', ...common, '--out', at('cut'), '--log', at('cut.jsonl')],
      {
        cwd: ROOT,
      },
    );
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (
          existsSync(at('cut.jsonl')) &&
          readFileSync(at('cut.jsonl'), 'utf8').split('\n').length > 3
        ) {
          clearInterval(poll);
          child.kill('SIGINT');
          resolve();
        }
      }, 20);
    });
    const code = await new Promise((r) => child.on('close', r));
    expect(stderr).toMatch(/stopped at step \d+ of 24; saved a checkpoint/);
    expect(code).toBe(130);
    const stoppedAt = logOf(at('cut.jsonl')).length;
    expect(stoppedAt).toBeLessThan(24);
    const resumed = phi([
      'finetune',
      '--resume',
      at('cut'),
      ...common,
      '--log',
      at('cut.jsonl'),
      '-q',
    ]);
    expect(resumed.stderr).toBe('');
    expect(resumed.code).toBe(0);
    expect(logOf(at('cut.jsonl'))).toEqual(
      logOf(at('full.jsonl')).map((m) =>
        expect.objectContaining({ step: m.step, loss: m.loss, lr: m.lr }),
      ),
    );
    expect(readFileSync(at('cut', 'adapter_model.safetensors'))).toEqual(
      readFileSync(at('full', 'adapter_model.safetensors')),
    );
  });

  test.each([
    ['{"text": "a"}\n{"prompt": "x"}\n', /bad\.jsonl:2: "prompt" and "completion" come together/],
    ['{"text": "a"}\nnot json\n', /bad\.jsonl:2: not JSON/],
    ['{"ids": [1, -2]}\n', /bad\.jsonl:1: "ids" must be a list of at least 2 token ids/],
    [
      '{"txt": "a"}\n',
      /bad\.jsonl:1: expected "text", "prompt" and "completion", or "ids"; found "txt"/,
    ],
  ])('bad data %j is a line naming the file and line', (content, message) => {
    writeFileSync(at('bad.jsonl'), content);
    const r = phi([
      'finetune',
      '--model',
      MODEL,
      '--data',
      at('bad.jsonl'),
      '--out',
      at('x'),
      '-q',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    expect(existsSync(at('x'))).toBe(false);
  });

  test('--gradient-checkpointing on and off train the same adapter, byte for byte (dropout on)', () => {
    const common = ['--model', MODEL, '--data', at('kv.jsonl'), '--seq', '32', '--steps', '3'];
    const runs = (['on', 'off'] as const).map((mode) => {
      const r = phi([
        ...['finetune', ...common, '--dropout', '0.2', '--out', at(`ck-${mode}`)],
        ...['--gradient-checkpointing', mode],
      ]);
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(
        mode === 'on' ? /; gradient checkpointing \(\d/ : /; activations kept \(\d/,
      );
      return readFileSync(at(`ck-${mode}`, 'adapter_model.safetensors'));
    });
    expect(runs[0].equals(runs[1])).toBe(true);
    const bad = phi(['finetune', ...common, '--out', at('z'), '--gradient-checkpointing', 'yes']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--gradient-checkpointing must be auto, on or off, got "yes"/);
  });

  test('a flag out of range names it', () => {
    const r = phi([
      'finetune',
      '--model',
      MODEL,
      '--data',
      at('kv.jsonl'),
      '--out',
      at('y'),
      '--dropout',
      '1.5',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--dropout/);
  });
});
