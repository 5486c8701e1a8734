// The command line's flags: parsed the way people type them. `--top-k 5`, `--top-k=5`, a
// negative value (`--temperature -1`, which then meets its range check instead of "ambiguous"),
// `-n 8`; an unknown flag suggests the nearest known one; every message names the flag as typed.

export class UsageError extends Error {}

export interface Flag {
  name: string;
  short?: string;
  /** boolean flags take no value */
  type: 'string' | 'number' | 'integer' | 'boolean';
  multiple?: boolean;
  /** Other spellings people type from llama-cli or the OpenAI API (`max-tokens` for `-n`). */
  aliases?: string[];
  /** the value's name in the help, e.g. N, TEXT */
  arg?: string;
  help: string;
  /** inclusive range a number must be in, checked here so the message names the flag */
  min?: number;
  max?: number;
  /** exclusive lower bound */
  above?: number;
}

export type Values = Record<string, string | number | boolean | string[] | undefined>;

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      d[i][j] = Math.min(
        d[i - 1][j] + 1,
        d[i][j - 1] + 1,
        d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
  return d[a.length][b.length];
}

/** The known name closest to `name`, if it is close enough to be what was meant. */
export function nearest(name: string, known: string[]): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  for (const k of known) {
    const d = k.startsWith(name) && name.length >= 3 ? 0.5 : distance(name, k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  return bestD <= Math.max(2, Math.floor(name.length / 3)) ? best : null;
}

/** Parse argv against `flags`: the values (numbers checked) and the positionals. */
export function parse(argv: string[], flags: Flag[]): { values: Values; positionals: string[] } {
  const byName = new Map(flags.map((f) => [f.name, f]));
  const byAlias = new Map(flags.flatMap((f) => (f.aliases ?? []).map((a) => [a, f] as const)));
  const byShort = new Map(flags.filter((f) => f.short).map((f) => [f.short!, f]));
  const values: Values = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    let flag: Flag | undefined;
    let typed = a;
    let inline: string | undefined;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = a.slice(2, eq < 0 ? undefined : eq);
      if (eq >= 0) inline = a.slice(eq + 1);
      typed = `--${name}`;
      flag = byName.get(name) ?? byAlias.get(name);
      if (!flag) {
        const guess = nearest(name, [...byName.keys()]);
        throw new UsageError(
          `unknown option ${typed}${guess ? ` (did you mean --${guess}?)` : ''}`,
        );
      }
    } else if (/^-[a-zA-Z]$/.test(a)) {
      flag = byShort.get(a.slice(1));
      if (!flag) throw new UsageError(`unknown option ${a}`);
    } else {
      positionals.push(a);
      continue;
    }
    let raw: string | true;
    if (flag.type === 'boolean') {
      if (inline !== undefined) throw new UsageError(`${typed} takes no value`);
      raw = true;
    } else if (inline !== undefined) raw = inline;
    else if (i + 1 < argv.length)
      raw = argv[++i]; // whatever follows, even "-1"
    else throw new UsageError(`${typed} needs a value${flag.arg ? ` (${flag.arg})` : ''}`);
    const v = raw === true ? true : convert(flag, typed, raw);
    if (flag.multiple)
      values[flag.name] = [...((values[flag.name] as string[]) ?? []), v as string];
    else if (values[flag.name] !== undefined)
      // the last one winning silently hides a typo in a long command line
      throw new UsageError(`${typed} is given twice (--${flag.name} takes one value)`);
    else values[flag.name] = v;
  }
  return { values, positionals };
}

function convert(flag: Flag, typed: string, raw: string): string | number {
  if (flag.type === 'string') return raw;
  const v = Number(raw);
  const integer = flag.type === 'integer';
  if (raw.trim() === '' || !Number.isFinite(v) || (integer && !Number.isInteger(v)))
    throw new UsageError(`${typed}: "${raw}" is not ${integer ? 'an integer' : 'a number'}`);
  const range = () => {
    if (flag.above !== undefined)
      return flag.max !== undefined ? `in (${flag.above}, ${flag.max}]` : `> ${flag.above}`;
    if (flag.max !== undefined) return `in ${flag.min ?? '-∞'}..${flag.max}`;
    return `>= ${flag.min}`;
  };
  if (
    (flag.min !== undefined && v < flag.min) ||
    (flag.max !== undefined && v > flag.max) ||
    (flag.above !== undefined && v <= flag.above)
  )
    throw new UsageError(`${typed} must be ${range()}, got ${raw}`);
  return v;
}

/** The flags section of a command's help. */
export function flagHelp(flags: Flag[]): string {
  const rows = flags.map((f) => {
    const names = [f.name, ...(f.aliases ?? [])].map((n) => `--${n}`).join(', ');
    const left = `${f.short ? `-${f.short}, ` : '    '}${names}${f.arg ? ` ${f.arg}` : ''}`;
    return [left, f.help + (f.multiple ? ' (repeatable)' : '')];
  });
  const w = Math.max(...rows.map(([l]) => l.length)) + 2;
  return rows.map(([l, h]) => `  ${l.padEnd(w)}${h}`).join('\n');
}

/** The escapes every text argument understands: \n, \t, \r, \\, \" and \'. */
export function unescape(s: string): string {
  return s.replace(/\\(n|t|r|\\|"|')/g, (_, c: string) =>
    c === 'n' ? '\n' : c === 't' ? '\t' : c === 'r' ? '\r' : c,
  );
}
