import { boundedNumber } from './numbers.js';

// Which JSON Schema keywords a constraint honours. XGrammar passes over keywords it does not
// know, so a schema using one would compile to a grammar that lets invalid JSON through: such
// a schema is refused, naming the keyword and where it is. Every keyword here is covered by
// the schema corpus (test/fixtures/schemas/), whose outputs are checked by a validator.

/** Keywords that only describe: they never change which JSON is valid. */
const ANNOTATIONS = [
  '$schema',
  '$id',
  '$comment',
  'title',
  'description',
  'default',
  'examples',
  'deprecated',
  'readOnly',
  'writeOnly',
];

/** Keywords that constrain, and that the grammar enforces. */
const ENFORCED = [
  'type',
  'enum',
  'const',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'prefixItems',
  'minItems',
  'maxItems',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'minLength',
  'maxLength',
  'pattern',
  'format',
  'anyOf',
  'oneOf',
  '$ref',
  '$defs',
  'definitions',
];

const KNOWN = new Set([...ANNOTATIONS, ...ENFORCED]);

/**
 * String formats the grammar spells out, each checked against a validator (ajv-formats) in
 * test/grammar.test.ts. Not here: email (XGrammar's rule is unbounded and untested here) and uri
 * (it takes "name:", which validators refuse).
 */
export const FORMATS = [
  'date',
  'time',
  'date-time',
  'duration',
  'ipv4',
  'ipv6',
  'hostname',
  'uuid',
];

const TYPES = new Set(['object', 'array', 'string', 'number', 'integer', 'boolean', 'null']);

/** Keywords whose value is a schema, a list of schemas, or a map of names to schemas. */
const ONE = ['additionalProperties', 'items'];
const LIST = ['anyOf', 'oneOf', 'allOf', 'prefixItems'];
const MAP = ['properties', '$defs', 'definitions'];

/**
 * The first thing in `schema` a constraint cannot honour, as "where: what", or null. `where`
 * is a JSON Pointer into the schema ("" for its root).
 */
export function unsupportedSchema(schema: unknown, where = ''): string | null {
  const at = (...keys: (string | number)[]) =>
    where + keys.map((k) => '/' + pointerKey(k)).join('');
  if (typeof schema === 'boolean') return null;
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema))
    return `${where || '(root)'}: a schema must be an object or a boolean, got ${JSON.stringify(schema)}`;
  const s = schema as Record<string, unknown>;
  for (const k of Object.keys(s))
    if (!KNOWN.has(k))
      return `${at(k)}: the keyword "${k}" is not supported (the output could break it); supported: ${ENFORCED.join(', ')}`;
  const types = s.type === undefined ? [] : [s.type].flat();
  for (const t of types)
    if (typeof t !== 'string' || !TYPES.has(t))
      return `${at('type')}: ${JSON.stringify(t)} is not a JSON Schema type`;
  const forms = ['pattern', 'format', 'minLength', 'maxLength'].filter((k) => s[k] !== undefined);
  if (forms.length > 1 && !(forms.length === 2 && forms.join() === 'minLength,maxLength'))
    return `${at(forms[1])}: ${forms.map((k) => `"${k}"`).join(' with ')} is not supported (the grammar would honour only one of them)`;
  if (s.format !== undefined && !FORMATS.includes(s.format as string))
    return `${at('format')}: the format ${JSON.stringify(s.format)} is not supported; supported: ${FORMATS.join(', ')}`;
  if (s.$ref !== undefined && !(typeof s.$ref === 'string' && /^#(\/|$)/.test(s.$ref)))
    return `${at('$ref')}: only references inside the schema ("#/$defs/...") are supported, got ${JSON.stringify(s.$ref)}`;
  for (const k of ONE)
    if (s[k] !== undefined) {
      const bad = unsupportedSchema(s[k], at(k));
      if (bad) return bad;
    }
  for (const k of LIST)
    if (s[k] !== undefined) {
      if (!Array.isArray(s[k])) return `${at(k)}: must be an array of schemas`;
      for (const [i, sub] of (s[k] as unknown[]).entries()) {
        const bad = unsupportedSchema(sub, at(k, i));
        if (bad) return bad;
      }
    }
  for (const k of MAP)
    if (s[k] !== undefined) {
      if (typeof s[k] !== 'object' || s[k] === null || Array.isArray(s[k]))
        return `${at(k)}: must be an object of schemas`;
      for (const [name, sub] of Object.entries(s[k] as object)) {
        const bad = unsupportedSchema(sub, at(k, name));
        if (bad) return bad;
      }
    }
  return null;
}

/** A key as a JSON Pointer spells it (RFC 6901). */
const pointerKey = (k: string | number) => String(k).replace(/~/g, '~0').replace(/\//g, '~1');

const BOUNDS = ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'];

/** Larger bounds than this are refused: their digits would not be exact in a double. */
const LARGEST_BOUND = 1e15;

/**
 * Formats XGrammar spells too loosely, as the pattern that is exact: its ipv4 takes "010" for
 * an octet and its date takes September 31st, both refused by validators.
 */
const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
const DATE =
  '([0-9]{4}-(0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])' +
  '|[0-9]{4}-(0[469]|11)-(0[1-9]|[12][0-9]|30)' +
  '|[0-9]{4}-02-(0[1-9]|1[0-9]|2[0-8])' +
  '|([0-9]{2}(0[48]|[2468][048]|[13579][26])|([02468][048]|[13579][26])00)-02-29)';
// seconds up to 59: RFC 3339's leap second is valid only at 23:59:60 UTC, which a grammar
// cannot check across a time zone
const TIME =
  '([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])';
const FORMAT_PATTERNS: Record<string, string> = {
  ipv4: `^(${OCTET}\\.){3}${OCTET}$`,
  date: `^${DATE}$`,
  time: `^${TIME}$`,
  'date-time': `^${DATE}T${TIME}$`,
};

/** A schema as XGrammar gets it, and the EBNF rules that stand for its bounded numbers. */
export interface GrammarSchema {
  schema: unknown;
  /** rule name -> EBNF body; in the schema each is a const string, `sentinel(name)`. */
  rules: Map<string, string>;
}

/** The const string a bounded number's rule takes the place of in the schema's grammar. */
export const sentinel = (rule: string) => `__${rule}__`;

/**
 * The schema rewritten where XGrammar would be wrong. A format it spells loosely becomes its
 * exact pattern. Every schema with numeric bounds becomes a const (or an anyOf of a const and its
 * other types) whose grammar is then swapped for an exact rule from numbers.ts. Bounds that
 * are not integers are rounded inwards for numbers (a subset of the values: 0.5 <= x becomes
 * 1 <= x). Throws a "where: what" string for bounds it cannot honour.
 */
export function forGrammar(schema: unknown): GrammarSchema {
  const rules = new Map<string, string>();
  const walk = (s: unknown, where: string): unknown => {
    if (Array.isArray(s)) return s.map((x, i) => walk(x, `${where}/${i}`));
    if (typeof s !== 'object' || s === null) return s;
    const o = s as Record<string, unknown>;
    const copy: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(o))
      copy[k] = k === 'enum' || k === 'const' ? v : walk(v, `${where}/${pointerKey(k)}`);
    const exact = typeof o.format === 'string' ? FORMAT_PATTERNS[o.format] : undefined;
    if (exact) {
      delete copy.format;
      copy.pattern = exact;
    }
    if (!BOUNDS.some((k) => o[k] !== undefined) || o.enum !== undefined || o.const !== undefined)
      return copy;
    const types = o.type === undefined ? null : ([o.type].flat() as string[]);
    if (!types) throw `${where || '(root)'}: numeric bounds need "type": "number" or "integer"`;
    const numeric: string[] = types.filter((t) => t === 'number' || t === 'integer');
    if (!numeric.length) return copy;
    const body = boundedNumber(
      bounds(o, !numeric.includes('number'), where),
      !numeric.includes('number'),
    );
    if (body === null)
      throw `${where || '(root)'}: no ${numeric.join(' or ')} lies within the bounds`;
    const rule = `phi_number_${rules.size}`;
    rules.set(rule, body);
    const others = types.filter((t) => !numeric.includes(t));
    if (!others.length) return { const: sentinel(rule) };
    for (const k of [...BOUNDS, 'type']) delete copy[k];
    return { anyOf: [{ const: sentinel(rule) }, { ...copy, type: others }] };
  };
  return { schema: walk(schema, ''), rules };
}

/** The bounds of a numeric schema, the tighter of each pair, with integer ends. */
function bounds(o: Record<string, unknown>, integer: boolean, where: string) {
  const num = (k: string): number | undefined => {
    const v = o[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw `${where}/${k}: must be a number, got ${JSON.stringify(v)}`;
    if (Math.abs(v) > LARGEST_BOUND)
      throw `${where}/${k}: bounds beyond ${LARGEST_BOUND} are not supported, got ${v}`;
    return v;
  };
  let lo = -Infinity;
  let loExcluded = false;
  let hi = Infinity;
  let hiExcluded = false;
  const [min, max, xmin, xmax] = BOUNDS.map(num);
  if (min !== undefined) lo = min;
  if (xmin !== undefined && xmin >= lo) [lo, loExcluded] = [xmin, true];
  if (max !== undefined) hi = max;
  if (xmax !== undefined && xmax <= hi) [hi, hiExcluded] = [xmax, true];
  // a bound between integers: the nearest integer inside it (exact for integers)
  if (!Number.isInteger(lo) && lo !== -Infinity) [lo, loExcluded] = [Math.ceil(lo), false];
  if (!Number.isInteger(hi) && hi !== Infinity) [hi, hiExcluded] = [Math.floor(hi), false];
  if (integer && loExcluded) [lo, loExcluded] = [lo + 1, false];
  if (integer && hiExcluded) [hi, hiExcluded] = [hi - 1, false];
  return { lo, loExcluded, hi, hiExcluded };
}
