// Bounded numbers as EBNF, exactly. XGrammar's own conversion of minimum / maximum lets values
// outside the bounds through (an integer in 0..120 may come out as 124; a number in -1..1 as
// -1.58), so every bounded number in a schema is replaced by a rule from here (schema.ts).
//
// The rule is a trie: no two alternatives start with the same character. (XGrammar also
// mis-matches long lists of alternatives that share prefixes, such as "1" "0" | "1" "0" "0"
// followed by an optional fraction: it took 121 for a number in 0..119.)
//
// A number is written [-] integer-part [. fraction]: no exponent, no leading zeros, never -0,
// at most MAX_DIGITS digits before the point and FRACTION_DIGITS after it. A subset of JSON's
// numbers; every one of them is within the bounds.

const MAX_DIGITS = 15;
const FRACTION_DIGITS = 15;

export interface Bounds {
  /** Lowest value (-Infinity for none) and whether it is excluded. */
  lo: number;
  loExcluded: boolean;
  hi: number;
  hiExcluded: boolean;
}

/** What may follow a digit string that ends here. */
type Tail = 'none' | 'anyFraction' | 'zeroFraction' | 'nonzeroFraction';

/** A digit string as a sequence of digit ranges, and what may follow it. */
interface Seq {
  digits: [number, number][];
  tail: Tail;
}

/** Every digit string of length n from x to y (same length, x <= y, as strings). */
function sameLength(x: string, y: string): [number, number][][] {
  if (x.length === 0) return [[]];
  const [a, b] = [Number(x[0]), Number(y[0])];
  const n = x.length - 1;
  const lead = (d: [number, number], rest: [number, number][][]) => rest.map((r) => [d, ...r]);
  if (a === b) return lead([a, a], sameLength(x.slice(1), y.slice(1)));
  const any: [number, number][] = Array.from({ length: n }, () => [0, 9]);
  return [
    ...lead([a, a], sameLength(x.slice(1), '9'.repeat(n))),
    ...(b - a >= 2 ? [[[a + 1, b - 1] as [number, number], ...any]] : []),
    ...lead([b, b], sameLength('0'.repeat(n), y.slice(1))),
  ];
}

/** The integers a..b (0 <= a), as digit strings without leading zeros. */
function integers(a: number, b: number): [number, number][][] {
  const out: [number, number][][] = [];
  const top = Math.min(b, 10 ** MAX_DIGITS - 1);
  for (let n = String(a).length; n <= String(top).length && a <= top; n++) {
    const lo = Math.max(a, n === 1 ? 0 : 10 ** (n - 1));
    const hi = Math.min(top, 10 ** n - 1);
    if (lo <= hi) out.push(...sameLength(String(lo), String(hi)));
  }
  return out;
}

const cls = ([lo, hi]: [number, number]) => (lo === hi ? `"${lo}"` : `[${lo}-${hi}]`);

/** `count` digits at most, at least one: [0-9] ([0-9] (...)?)? */
function upTo(count: number, digit: string): string {
  let e = digit;
  for (let k = 1; k < count; k++) e = `${digit} (${e})?`;
  return e;
}

/** A fraction with at least one non-zero digit: zeros, then [1-9] and any digits. */
function nonzero(count: number): string {
  const after = (k: number) => (k > 0 ? ` (${upTo(k, '[0-9]')})?` : '');
  let e = '[1-9]';
  for (let k = 1; k < count; k++) e = `([1-9]${after(k)}) | ("0" (${e}))`;
  return e;
}

const TAILS: Record<Exclude<Tail, 'none'>, { body: string; optional: boolean }> = {
  anyFraction: { body: `"." ${upTo(FRACTION_DIGITS, '[0-9]')}`, optional: true },
  zeroFraction: { body: `"." ${upTo(FRACTION_DIGITS, '"0"')}`, optional: true },
  nonzeroFraction: { body: `"." (${nonzero(FRACTION_DIGITS)})`, optional: false },
};

/** The trie of `seqs` as an EBNF expression ('' for the empty string alone). */
function trie(seqs: Seq[]): string {
  const ending = seqs.filter((s) => s.digits.length === 0);
  const rest = seqs.filter((s) => s.digits.length > 0);
  // cut 0..9 where any first range starts or ends: the pieces are disjoint
  const cuts = [...new Set(rest.flatMap((s) => [s.digits[0][0], s.digits[0][1] + 1]))].sort(
    (x, y) => x - y,
  );
  const pieces: { range: [number, number]; child: string }[] = [];
  for (let i = 0; i + 1 < cuts.length; i++) {
    const range: [number, number] = [cuts[i], cuts[i + 1] - 1];
    const group = rest
      .filter((s) => s.digits[0][0] <= range[0] && range[1] <= s.digits[0][1])
      .map((s) => ({ digits: s.digits.slice(1), tail: s.tail }));
    if (!group.length) continue;
    const child = trie(group);
    const last = pieces[pieces.length - 1];
    // neighbouring pieces with the same continuation become one range
    if (last && last.child === child && last.range[1] + 1 === range[0]) last.range[1] = range[1];
    else pieces.push({ range, child });
  }
  const alts = pieces.map(({ range, child }) => (child ? `${cls(range)} ${child}` : cls(range)));
  const tails = [...new Set(ending.map((s) => s.tail))];
  if (tails.length > 1) throw new Error(`a digit string with two tails: ${tails.join(', ')}`);
  let optional = ending.length > 0;
  if (tails.length && tails[0] !== 'none') {
    const t = TAILS[tails[0]];
    alts.push(t.body);
    optional = t.optional;
  }
  if (!alts.length) return '';
  const body = alts.length === 1 && !optional ? alts[0] : `(${alts.join(' | ')})`;
  return optional ? `${body}?` : body;
}

/** The non-negative values in bounds (lo >= 0), as digit strings with their tails. */
function magnitudes(b: Bounds, integer: boolean): Seq[] {
  const { lo, loExcluded, hi, hiExcluded } = b;
  if (hi < lo || (hi === lo && (loExcluded || hiExcluded))) return [];
  const first = loExcluded ? lo + 1 : lo;
  if (integer)
    return integers(first, hiExcluded ? hi - 1 : hi).map((digits) => ({ digits, tail: 'none' }));
  const seqs: Seq[] = integers(first, hi - 1).map((digits) => ({ digits, tail: 'anyFraction' }));
  const digitsOf = (v: number) => [...String(v)].map((d): [number, number] => [+d, +d]);
  // lo itself, excluded: only with a fraction above it; hi itself, included: hi, hi.0, ...
  if (loExcluded) seqs.push({ digits: digitsOf(lo), tail: 'nonzeroFraction' });
  if (hi !== Infinity && !hiExcluded && hi < 10 ** MAX_DIGITS)
    seqs.push({ digits: digitsOf(hi), tail: 'zeroFraction' });
  return seqs;
}

/**
 * The EBNF body of a number (or an integer) in bounds whose finite ends are integers, or null
 * when no value fits.
 */
export function boundedNumber(b: Bounds, integer: boolean): string | null {
  const alts: string[] = [];
  // x < 0, as "-" and its magnitude m = -x: m > 0 always, and the bounds swap
  if (b.lo < 0) {
    const m: Bounds =
      b.hi < 0
        ? { lo: -b.hi, loExcluded: b.hiExcluded, hi: -b.lo, hiExcluded: b.loExcluded }
        : { lo: 0, loExcluded: true, hi: -b.lo, hiExcluded: b.loExcluded };
    const seqs = magnitudes(m, integer);
    if (seqs.length) alts.push(`"-" ${trie(seqs)}`);
  }
  // x >= 0
  if (b.hi >= 0) {
    const nonNegative = b.lo >= 0 ? b : { ...b, lo: 0, loExcluded: false };
    const seqs = magnitudes(nonNegative, integer);
    if (seqs.length) alts.push(trie(seqs));
  }
  if (!alts.length) return null;
  return alts.length === 1 ? alts[0] : `(${alts.join(' | ')})`;
}
