// The `phi` command as a user runs it: a subprocess, JSON contracts, exit codes.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { cpSync, mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
      /^phi: model folder \/nonexistent not found \(nor is it a Hub id like microsoft\/phi-1_5\)/,
    ],
    [
      ['generate', '--model', MODEL, '--ids', '1', '--context', '600'],
      /^phi: --context must be an integer in 1\.\.512/,
    ],
    [
      ['generate', '--model', MODEL, '--ids', '1', '--context', '0'],
      /^phi: --context must be >= 1, got 0/,
    ],
    [
      ['generate', '--model', MODEL, '--bogus'],
      /^phi: unknown option --bogus \(phi generate --help\)/,
    ],
    [['generate', '--promt', 'x'], /^phi: unknown option --promt \(did you mean --prompt\?\)/],
    [['generate', '--temperature', '-1'], /^phi: --temperature must be >= 0, got -1/],
    [['generate', '--top-p=0'], /^phi: --top-p must be in \(0, 1\], got 0/],
    [['generate', '-n', '-5'], /^phi: -n must be >= 0, got -5/],
    [['generate', '--seed'], /^phi: --seed needs a value \(S\)/],
    [
      ['generate', '--model', MODEL, '--prompt-file', '/nope/prompt.txt'],
      /^phi: cannot read --prompt-file \/nope\/prompt\.txt: no such file\n$/,
    ],
    [
      ['generate', '--model', MODEL, '--prompt', 'x', '--format', 'poem'],
      /^phi: --format must be qa, chat or code, got "poem"/,
    ],
    [['frobnicate'], /^phi: unknown command "frobnicate"/],
    [
      ['synth', '--out', '/tmp/x', '--size', 'huge'],
      /^phi: --size must be tiny or phi-1_5, got "huge"/,
    ],
    [
      ['generate', '--model', MODEL, '--ids', '1', '--backend', 'cuda'],
      /^phi: --backend must be wasm or js, got "cuda"/,
    ],
    [
      ['generate', '--model', MODEL, '--ids', '1', '--threads', '0'],
      /^phi: --threads must be in 1\.\.256, got 0/,
    ],
    [['logits', '--model', MODEL], /^phi: logits needs --ids/],
  ])('error: %j', (args, message) => {
    const [command, ...rest] = args as string[];
    const r = phi([command, '--quiet', ...rest]); // nothing but the error on stderr
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message as RegExp);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  test('--version, and help per command', () => {
    const v = phi(['--version']);
    expect(v.stdout).toBe(
      `phi-wasm ${JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version}\n`,
    );
    const g = phi(['generate', '--help']);
    expect(g.code).toBe(0);
    expect(g.stdout).toMatch(/^usage: phi generate/);
    expect(g.stdout).toMatch(/--prompt-file FILE/);
    expect(g.stdout).not.toMatch(/--out DIR/);
    expect(phi(['serve', '--help']).stdout).toMatch(/--parallel N/);
    expect(phi(['--help']).stdout).toMatch(/synth/);
  });

  test('tokenize takes the same escapes as --prompt', () => {
    const a = JSON.parse(phi(['tokenize', '--model', MODEL, 'a\\nb']).stdout);
    const b = JSON.parse(phi(['tokenize', '--model', MODEL, '--raw-prompt', 'a\nb']).stdout);
    expect(a).toEqual(b);
    expect(a).toEqual([64, 198, 65]);
  });

  test('--format applies the model card template and its stop strings', () => {
    const run = (args: string[]) =>
      phi(['generate', '--model', MODEL, '-n', '12', '--json', '--quiet', ...args]);
    const last = (r: { stdout: string }) => JSON.parse(r.stdout.trim().split('\n').pop()!);
    const qa = run(['--prompt', 'What is 2+2?', '--format', 'qa']);
    const by = run(['--prompt', 'What is 2+2?\\nAnswer:', '--stop', '\\n\\n']);
    expect(last(qa).ids).toEqual(last(by).ids);
    const chat = run(['--prompt', 'Hi', '--format', 'chat']);
    const byChat = run([
      '--prompt',
      'Alice: Hi\\nBob:',
      '--stop',
      '\\nAlice:',
      '--stop',
      '\\nBob:',
    ]);
    expect(last(chat).ids).toEqual(last(byChat).ids);
  });

  test('loading says what it loads and what it took; --quiet says nothing', () => {
    const loud = phi(['generate', '--model', MODEL, '--ids', '1', '-n', '1']);
    expect(loud.stderr).toMatch(
      /loaded .*tiny-phi-f32 \(f32, wasm-[a-z-]+( x\d threads)?\) in \d+\.\d s, \d+\.\d\d GiB resident/,
    );
    const quiet = phi(['generate', '--model', MODEL, '--ids', '1', '-n', '1', '--quiet']);
    expect(quiet.stderr).toBe('');
  });

  test('phi chat: each line a turn, replies equal phi generate on the transcript, and stop at the next turn', () => {
    const r = phi(['chat', '--model', MODEL, '-n', '10', '--quiet'], 'Hello\nHow are you?\n');
    expect(r.code).toBe(0);
    const gen = (prompt: string) =>
      phi([
        'generate',
        '--model',
        MODEL,
        '-n',
        '10',
        '--quiet',
        '--raw-prompt',
        '--prompt',
        prompt,
        '--stop',
        '\nAlice:',
        '--stop',
        '\nBob:',
      ]).stdout.replace(/\n$/, '');
    const first = gen('Alice: Hello\nBob:');
    const second = gen(`Alice: Hello\nBob: ${first.trim()}\nAlice: How are you?\nBob:`);
    expect(r.stdout).toBe(`Bob:${first}\nBob:${second}\n`);
  });

  test('phi chat at the context: the oldest turns are dropped, the system text kept, the session goes on', () => {
    const lines = [
      'one two three four five six seven eight nine ten eleven twelve',
      'thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty',
      'alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu',
    ];
    const args = ['--model', MODEL, '-n', '4', '--context', '64', '--quiet'];
    const r = phi(['chat', '--system', 'A talk.', ...args], lines.join('\n') + '\n');
    expect([r.code, r.stderr]).toEqual([
      0,
      expect.stringMatching(/dropped the \d+ oldest turn\(s\), kept the system text/),
    ]);
    // the replies, one per line typed, and what was dropped before each
    const replies = r.stdout
      .split(/^Bob:/m)
      .slice(1)
      .map((x) => x.replace(/\n$/, ''));
    expect(replies).toHaveLength(3);
    const dropped = [...r.stderr.matchAll(/dropped the (\d+) oldest/g)].reduce(
      (n, m) => n + Number(m[1]),
      0,
    );
    // the last reply is the model's answer to the transcript that was kept
    const turns = lines.flatMap((l, i) => [`Alice: ${l}`, `Bob: ${replies[i].trim()}`]).slice(0, 5);
    const kept = ['A talk.', ...turns.slice(dropped), 'Bob:'].join('\n');
    const want = phi([
      'generate',
      ...args,
      '--raw-prompt',
      '--prompt',
      kept,
      '--stop',
      '\nAlice:',
      '--stop',
      '\nBob:',
    ]);
    expect(want.code).toBe(0);
    expect(replies[2]).toBe(want.stdout.replace(/\n$/, ''));
  });

  // a terminal, as a person has one: util-linux's `script` runs phi chat on a pseudo-terminal
  const hasScript = spawnSync('script', ['--version']).status === 0;
  (hasScript ? test : test.skip)(
    `phi chat on a terminal: Ctrl-C at the prompt clears the line, a second one exits with 130${hasScript ? '' : ' (skipped: no util-linux script here)'}`,
    async () => {
      const { spawn } = await import('node:child_process');
      const cmd = `"${process.execPath}" "${path.join(ROOT, 'bin', 'phi.js')}" chat --model "${MODEL}" --quiet -n 3`;
      const c = spawn('script', ['-qfec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      c.stdout.on('data', (d) => (out += d));
      const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
      const until = async (what: string) => {
        for (let i = 0; i < 400 && !out.includes(what); i++) await wait(25);
      };
      await until('Alice: ');
      c.stdin.write('half typed');
      await until('half typed');
      c.stdin.write('\x03');
      await until('Ctrl-C again');
      const cleared = out.slice(out.lastIndexOf('half typed'));
      // the line is drawn again without what was typed, and the session is still there
      const redrawn = cleared.slice('half typed'.length);
      expect(redrawn.indexOf('Alice: ')).toBeGreaterThanOrEqual(0);
      expect(redrawn.indexOf('Alice: ')).toBeLessThan(
        redrawn.indexOf('(Ctrl-C again or Ctrl-D to leave)'),
      );
      expect(redrawn).not.toContain('half typed');
      c.stdin.write('\x03');
      const code = await new Promise((r) => c.on('exit', r));
      expect(code).toBe(130);
    },
  );

  test('flags people bring from llama-cli and the OpenAI API; a repeated flag is an error', () => {
    const ids = c.input_ids.slice(0, 5).join(',');
    const n = (args: string[]) => {
      const r = phi(['generate', '--model', MODEL, '--ids', ids, '--json', '--quiet', ...args]);
      expect([args, r.code, r.stderr]).toEqual([args, 0, '']);
      return JSON.parse(r.stdout.trim().split('\n').pop()!).ids.length;
    };
    expect(n(['--max-tokens', '3'])).toBe(3);
    expect(n(['--n-predict', '2', '-c', '64', '-t', '1'])).toBe(2);
    const p = phi(['generate', '--model', MODEL, '-p', 'Hello', '-n', '2', '--quiet']);
    expect(p.code).toBe(0);
    const twice = phi(['generate', '--model', MODEL, '--ids', ids, '-n', '3', '--max-tokens', '4']);
    expect([twice.code, twice.stderr.trim()]).toEqual([
      1,
      'phi: --max-tokens is given twice (--max-new-tokens takes one value) (phi generate --help)',
    ]);
    // a bad flag is reported before the model is looked for (here it would be a download)
    const early = spawnSync(
      process.execPath,
      [path.join(ROOT, 'bin', 'phi.js'), 'generate', '--dtype', 'q5', '--prompt', 'hi'],
      {
        encoding: 'utf8',
        env: {
          ...process.env,
          HF_HUB_CACHE: mkdtempSync(path.join(tmpdir(), 'phi-empty-')),
          HF_ENDPOINT: 'http://127.0.0.1:1',
        },
      },
    );
    expect([early.status, early.stderr.trim()]).toEqual([
      1,
      'phi: --dtype must be auto, f32, f16, q8 or q4, got "q5" (phi generate --help)',
    ]);
    // the server's options too: checked by the library's own rules, said as flags, before loading
    for (const [flag, value, said] of [
      ['--api-key', '', '--api-key is empty: it would turn authentication off'],
      ['--model-name', ' ', '--model-name must be a non-empty string'],
      ['--cors', 'x', '--cors must be "*" or an origin'],
    ]) {
      const r = phi(['serve', flag, value, '--model', '/nonexistent/model', '--port', '0']);
      expect([flag, r.code, r.stderr.split('\n')[0].slice(0, said.length + 5)]).toEqual([
        flag,
        1,
        `phi: ${said}`,
      ]);
    }
    // quantize offers only what it can write
    const q = phi(['quantize', '--help']).stdout;
    expect(q).toMatch(/--dtype D\s+q8 \(8-bit\) or q4 \(4-bit\)/);
    expect(q).not.toMatch(/auto|f16|f32/);
  });

  test('a model folder without tokenizer.json: refused where text is needed, fine for ids only', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'phi-notok-'));
    for (const f of ['config.json', 'model.safetensors'])
      cpSync(fixture('tiny-phi-f32', f), path.join(dir, f));
    const text = phi(['generate', '--model', dir, '--prompt', 'hi', '-n', '2', '--quiet']);
    expect([text.code, text.stderr.trim()]).toEqual([
      1,
      `phi: ${dir} has no tokenizer.json, which text needs (for token ids only: generate --ids ... --json, or logits)`,
    ]);
    expect(phi(['generate', '--model', dir, '--ids', '1,2', '-n', '2', '--quiet']).code).toBe(1); // it would print nothing
    const ids = phi(['generate', '--model', dir, '--ids', '1,2', '-n', '2', '--quiet', '--json']);
    expect(ids.code).toBe(0);
    expect(JSON.parse(ids.stdout.trim().split('\n').pop()!).ids).toHaveLength(2);
    expect(phi(['logits', '--model', dir, '--ids', '1,2', '--quiet']).code).toBe(0);
  });

  test('tokenize and detokenize without --model use the shipped tokenizer, offline', () => {
    const env = {
      ...process.env,
      HF_HUB_OFFLINE: '1',
      HF_HUB_CACHE: mkdtempSync(path.join(tmpdir(), 'phi-none-')),
    };
    const run = (args: string[]) =>
      spawnSync(process.execPath, [path.join(ROOT, 'bin', 'phi.js'), ...args], {
        env,
        encoding: 'utf8',
      });
    const t = run(['tokenize', 'Hello world']);
    expect([t.status, t.stderr]).toEqual([0, '']);
    expect(JSON.parse(t.stdout)).toEqual([15496, 995]);
    const d = run(['detokenize', '15496,995']);
    expect([d.status, d.stdout]).toEqual([0, 'Hello world\n']);
    expect(run(['detokenize', '15496', '995']).stdout).toBe('Hello world\n');
    const bad = run(['detokenize', '99999']);
    expect([bad.status, bad.stderr]).toEqual([
      1,
      expect.stringMatching(/^phi: token id 99999 is not one the tokenizer knows \(0\.\.50294\)/),
    ]);
    // and a download with HF_HUB_OFFLINE refuses at once, naming the offline path
    const dl = run(['download']);
    expect([dl.status, dl.stderr]).toEqual([
      1,
      expect.stringMatching(
        /^phi: HF_HUB_OFFLINE is set: not downloading microsoft\/phi-1_5.*phi synth/,
      ),
    ]);
  });

  test('phi synth writes a model that loads: tiny f16 and q8, with the real tokenizer', () => {
    for (const dtype of ['f16', 'q8']) {
      const out = mkdtempSync(path.join(tmpdir(), 'phi-synth-'));
      const s = phi(['synth', '--out', out, '--dtype', dtype, '--seed', '3']);
      expect(s.code).toBe(0);
      expect(s.stderr).toMatch(/wrote a random tiny model/);
      for (const f of [
        'config.json',
        'generation_config.json',
        'model.safetensors',
        'tokenizer.json',
      ])
        expect(existsSync(path.join(out, f))).toBe(true);
      const g = phi([
        'generate',
        '--model',
        out,
        '--prompt',
        'Hello',
        '-n',
        '5',
        '--json',
        '--quiet',
      ]);
      expect(g.code).toBe(0);
      expect(JSON.parse(g.stdout.trim().split('\n').pop()!).ids).toHaveLength(5);
      const again = mkdtempSync(path.join(tmpdir(), 'phi-synth-'));
      phi(['synth', '--out', again, '--dtype', dtype, '--seed', '3']);
      expect(
        readFileSync(path.join(again, 'model.safetensors')).equals(
          readFileSync(path.join(out, 'model.safetensors')),
        ),
      ).toBe(true);
    }
  });

  test('a prompt longer than the context is an error; reaching it while generating is a clear stop', () => {
    const long = phi(['generate', '--model', MODEL, '--ids', '1,2,3,4,5', '--context', '4']);
    expect(long.code).toBe(1);
    expect(long.stderr.trim().split('\n').pop()).toMatch(
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
