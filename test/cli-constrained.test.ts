// `phi generate` under a constraint, as a user runs it: --json-schema FILE, --json-mode,
// --grammar FILE, --regex RE, with --format, and the errors a bad constraint gives.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { corpus, invalid } from './constraints.js';
import { ROOT, fixture } from './helpers.js';

const MODEL = fixture('tiny-phi-f32');
const dir = mkdtempSync(path.join(tmpdir(), 'phi-constrained-'));
const file = (name: string, text: string) => {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
};

function phi(args: string[]) {
  const r = spawnSync(
    process.execPath,
    [path.join(ROOT, 'bin', 'phi.js'), 'generate', '--model', MODEL, '--quiet', ...args],
    { cwd: ROOT, encoding: 'utf8' },
  );
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('phi generate with a constraint', () => {
  const [, schema] = corpus().find(([n]) => n === 'person')!;
  const schemaFile = file('person.json', JSON.stringify(schema));

  test('--json-schema FILE with --format qa: JSON valid under the schema, after one space', () => {
    let stopped = 0;
    for (const seed of ['1', '2', '3']) {
      const r = phi([
        '--prompt',
        'Describe a person.',
        '--format',
        'qa',
        '--json-schema',
        schemaFile,
        '--temperature',
        '1',
        '--seed',
        seed,
        '-n',
        '120',
        '--json',
      ]);
      expect(r.code).toBe(0);
      const lines = r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const summary = lines.pop()!;
      const text = lines.map((l) => l.text).join('');
      if (summary.stop_reason !== 'eos') continue;
      stopped++;
      expect(text).toMatch(/^ ?\{/);
      expect([text, invalid(schema, text)]).toEqual([text, null]);
    }
    expect(stopped).toBeGreaterThan(0);
  });

  test('--regex, --grammar FILE and --json-mode', () => {
    const re = phi(['--prompt', 'Code:', '--regex', '[A-Z]{2}[0-9]{3}', '--temperature', '1']);
    expect(re.stdout.trim()).toMatch(/^[A-Z]{2}[0-9]{3}$/);
    const g = file('yn.gbnf', '# yes or no\nroot ::= ("yes" | "no") "."\n');
    expect(phi(['--prompt', 'Q?', '--grammar', g]).stdout.trim()).toMatch(/^(yes|no)\.$/);
    for (const seed of ['1', '2', '3', '4']) {
      const j = phi([
        '--prompt',
        'Q?',
        '--json-mode',
        '-n',
        '80',
        '--temperature',
        '1',
        '--seed',
        seed,
        '--json',
      ]);
      expect(j.code).toBe(0);
      const lines = j.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const summary = lines.pop()!;
      const text = lines.map((l) => l.text).join('');
      expect(text.startsWith('{')).toBe(true);
      if (summary.stop_reason === 'eos') expect(invalid({ type: 'object' }, text)).toBeNull();
      else expect(summary.stop_reason).toBe('length');
    }
  });

  test.each([
    [['--json-schema', 'nope.json'], /cannot read --json-schema nope.json: no such file/],
    [
      ['--grammar', 'GRAMMAR'],
      /--grammar .*yn2.gbnf: EBNF parser error at line 1, column 10: Rule "maybe" is not defined/,
    ],
    [
      ['--json-schema', 'UNIQUE'],
      /--json-schema .*unique.json: \/uniqueItems: the keyword "uniqueItems" is not supported/,
    ],
    [['--json-schema', 'BROKEN'], /--json-schema .*broken.json: is not valid JSON/],
    [['--regex', '(a'], /--regex \(a: is not a valid regular expression/],
    [['--regex', 'a', '--json-mode'], /give one constraint, not --json-mode and --regex/],
  ])('%j is an error naming it', (args, message) => {
    const swap: Record<string, string> = {
      GRAMMAR: file('yn2.gbnf', 'root ::= maybe'),
      UNIQUE: file('unique.json', '{"type": "array", "uniqueItems": true}'),
      BROKEN: file('broken.json', '{"type": '),
    };
    const r = phi(['--prompt', 'x', ...args.map((a) => swap[a] ?? a)]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
  });
});
