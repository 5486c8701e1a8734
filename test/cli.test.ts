// The `phi` command as a user runs it: a subprocess, JSON contracts, exit codes.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { unescape } from '../src/cli/main.js';
import { ROOT, fixture, maxAbsDiff, reference } from './helpers.js';

test('--prompt and --stop escapes: \\n, \\t, \\\\, quotes', () => {
  expect(unescape('a\\nb\\tc\\\\d\\"e\\x')).toBe('a\nb\tc\\d"e\\x');
});

const MODEL = fixture('tiny-phi-f32');
function phi(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'phi.js'), ...args], {
    cwd: ROOT,
    input: input ?? '',
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('phi CLI', () => {
  const c = reference('tiny-phi-f32').cases.find((x) => x.name === 'print_prime')!;

  test('generate --json: a line per token, then the summary', () => {
    const r = phi([
      'generate',
      '--model',
      MODEL,
      '--ids',
      c.input_ids.join(','),
      '-n',
      '20',
      '--temperature',
      '0',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const last = lines.pop();
    expect(lines.map((l) => l.id)).toEqual(c.greedy.new_tokens.slice(0, lines.length));
    for (const l of lines) expect(Object.keys(l).sort()).toEqual(['id', 'text']);
    expect(last.ids).toEqual(c.greedy.new_tokens); // no EOS in the reference continuation
    expect(last.prefill_tokens_per_s).toBeGreaterThan(0);
    expect(last.decode_tokens_per_s).toBeGreaterThan(0);
    expect(last.stop_reason).toBe('length');
    expect(last.backend).toMatch(/^wasm-/);
    expect(r.stderr).toMatch(/prefill .* tokens\/s.*decode .* tokens\/s/);
  });

  test('generate streams text from --prompt (escapes), --prompt-file and stdin alike', () => {
    const a = phi(['generate', '--model', MODEL, '--prompt', 'def f(x):\\n   ', '-n', '6']);
    const b = phi(['generate', '--model', MODEL, '-n', '6'], 'def f(x):\n   ');
    expect(a.code).toBe(0);
    expect(a.stdout).toBe(b.stdout);
    expect(a.stdout.length).toBeGreaterThan(1);
  });

  test('--stop ends the text there, with stop_reason "stop"', () => {
    const full = phi([
      'generate',
      '--model',
      MODEL,
      '--ids',
      c.input_ids.join(','),
      '-n',
      '20',
      '--json',
    ]);
    const text = full.stdout
      .trim()
      .split('\n')
      .slice(0, -1)
      .map((l) => JSON.parse(l).text)
      .join('');
    const nl = text.indexOf('\n');
    const stop = nl >= 0 ? text.slice(nl, nl + 2) : text.slice(3, 5);
    const escaped = stop.replace(/\n/g, '\\n');
    const r = phi([
      'generate',
      '--model',
      MODEL,
      '--ids',
      c.input_ids.join(','),
      '-n',
      '20',
      '--stop',
      escaped,
      '--json',
    ]);
    expect(JSON.parse(r.stdout.trim().split('\n').pop()!).stop_reason).toBe('stop');
  });

  test('logits: last position, and every position with --all, match the reference', () => {
    const r = phi(['logits', '--model', MODEL, '--ids', c.input_ids.join(',')]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.ids).toEqual(c.input_ids);
    expect(out.logits.length).toBe(1);
    expect(maxAbsDiff(out.logits[0], c.logits_last) / c.max_abs_logit_all_positions).toBeLessThan(
      1e-4,
    );
    const all = JSON.parse(
      phi(['logits', '--model', MODEL, '--ids', c.input_ids.join(','), '--all']).stdout,
    );
    expect(all.logits.length).toBe(c.length);
    expect(maxAbsDiff(all.logits[0], c.logits_first) / c.max_abs_logit_all_positions).toBeLessThan(
      1e-4,
    );
  });

  test('the js and wasm backends and 1 or 2 threads give the same greedy ids', () => {
    const run = (extra: string[]) =>
      JSON.parse(
        phi([
          'generate',
          '--model',
          MODEL,
          '--ids',
          c.input_ids.join(','),
          '-n',
          '8',
          '--json',
          ...extra,
        ])
          .stdout.trim()
          .split('\n')
          .pop()!,
      ).ids;
    const js = run(['--backend', 'js']);
    expect(js).toEqual(c.greedy.new_tokens.slice(0, 8));
    expect(run(['--backend', 'wasm', '--threads', '1'])).toEqual(js);
    expect(run(['--backend', 'wasm', '--threads', '2'])).toEqual(js);
  });

  test('tokenize prints a JSON array of ids', () => {
    const r = phi([
      'tokenize',
      '--model',
      MODEL,
      'def print_prime(n):\n   """\n   Print all primes between 1 and n\n   """',
    ]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(c.input_ids);
  });

  test.each([
    [
      ['generate', '--model', MODEL, '--ids', '1,51200'],
      /^phi: token id 51200 at index 1 is out of range/,
    ],
    [['generate', '--model', MODEL, '--ids', '1,x'], /^phi: --ids: "x" is not a token id/],
    [['generate', '--model', MODEL, '--prompt', ''], /^phi: the prompt is empty/],
    [
      ['generate', '--model', MODEL, '--ids', '1', '--temperature', 'hot'],
      /^phi: --temperature: "hot" is not a number/,
    ],
    [
      ['generate', '--model', '/nonexistent', '--prompt', 'hi'],
      /^phi: model directory \/nonexistent not found\. Get the real weights with `phi download`/,
    ],
    [
      ['generate', '--model', MODEL, '--ids', '1', '--context', '600'],
      /^phi: maxPositions must be an integer in 1\.\.512/,
    ],
    [['generate', '--model', MODEL, '--bogus'], /^phi: Unknown option '--bogus'/],
    [['frobnicate'], /^phi: unknown command "frobnicate"/],
    [
      ['generate', '--model', MODEL, '--ids', '1', '--backend', 'cuda'],
      /^phi: --backend must be wasm or js, got "cuda"/,
    ],
    [
      ['generate', '--model', MODEL, '--ids', '1', '--threads', '0'],
      /^phi: --threads must be >= 1, got 0/,
    ],
    [['logits', '--model', MODEL], /^phi: logits needs --ids/],
  ])('error: %j', (args, message) => {
    const r = phi(args as string[]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message as RegExp);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  test('a prompt longer than the context is an error; reaching it while generating is a clear stop', () => {
    const long = phi(['generate', '--model', MODEL, '--ids', '1,2,3,4,5', '--context', '4']);
    expect(long.code).toBe(1);
    expect(long.stderr).toMatch(
      /^phi: the prompt has 5 tokens, longer than the context of 4 positions/,
    );
    const stop = phi([
      'generate',
      '--model',
      MODEL,
      '--ids',
      '1,2,3',
      '--context',
      '4',
      '-n',
      '10',
      '--json',
    ]);
    expect(stop.code).toBe(0);
    expect(stop.stderr).toMatch(/phi: stopped: reached the context limit of 4 positions/);
    expect(JSON.parse(stop.stdout.trim().split('\n').pop()!).stop_reason).toBe('context');
  });
});
