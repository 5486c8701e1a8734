// A seeded mutation fuzzer for everything a model folder holds: the safetensors header and
// data layout, config.json, tokenizer.json, model.safetensors.index.json and
// generation_config.json. Each case is a mutated copy of the tiny checkpoint loaded through
// the real loader; it must either load and compute finite logits, or fail with one clean
// error that names a file or a field. Never a crash, a hang, or an internal TypeError.
//
// test/fuzz.test.ts runs a fixed budget in CI; `npm run fuzz -- --cases 20000 --seed 7` runs
// more. Cases that once found a bug live in test/fixtures/fuzz-corpus.json as regressions.
import { readFileSync } from 'node:fs';
import { loadPhiFrom } from '../src/load.js';
import { memoryFiles } from '../src/io/source.js';
import { fixture, xorshift } from './helpers.js';

export type Files = Record<string, Uint8Array | string>;

export interface FuzzCase {
  /** what was mutated, for the report */
  what: string;
  files: Files;
}

/** A clean error: one line, naming a file or a field, not JavaScript's own words. */
export function cleanError(message: string): string | null {
  if (message.includes('\n')) return 'more than one line';
  if (
    /Cannot read propert|undefined is not|is not a function|is not iterable|Maximum call stack|Invalid (typed )?array length|Invalid count value|out of memory|RangeError|unreachable/i.test(
      message,
    )
  )
    return 'an internal error';
  if (
    !/(\.json|\.safetensors|tensor|config|token|field|must|expected|missing|shard|header)/i.test(
      message,
    )
  )
    return 'names no file or field';
  return null;
}

/** The case generator's random numbers: neighbouring seeds must not give neighbouring first
 * draws, so the seed is mixed and the generator warmed up. */
function random(seed: number): () => number {
  const r = xorshift(Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b));
  for (let i = 0; i < 8; i++) r();
  return r;
}

const BASE: Files = Object.fromEntries(
  [
    'config.json',
    'generation_config.json',
    'model.safetensors',
    'tokenizer.json',
    'tokenizer_config.json',
  ].map((f) => [f, new Uint8Array(readFileSync(fixture('tiny-phi-f16', f)))]),
);
/** The tokenizer as JSON, with a vocab cut to 300 entries so a case builds it quickly. */
const TOKENIZER = (() => {
  const t = JSON.parse(new TextDecoder().decode(BASE['tokenizer.json'] as Uint8Array));
  t.model.vocab = Object.fromEntries(Object.entries(t.model.vocab).slice(0, 300));
  t.model.merges = (t.model.merges as unknown[]).slice(0, 50);
  return t;
})();
const text = (b: Uint8Array | string) => (typeof b === 'string' ? b : new TextDecoder().decode(b));

/** The safetensors file split into its length, header JSON and data. */
function splitSafetensors(b: Uint8Array) {
  const n = Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
  return { header: JSON.parse(text(b.subarray(8, 8 + n))), data: b.subarray(8 + n) };
}
function joinSafetensors(header: unknown, data: Uint8Array, rawHeader?: string): Uint8Array {
  const h = new TextEncoder().encode(rawHeader ?? JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

const WEIRD = [null, true, -1, 0, 1.5, 1e300, -0, '', 'x', [], {}, [[[[1]]]], 2 ** 53, NaN];

/** A mutation of a JSON value: a field removed, retyped, or set to an awkward value. */
function mutateJson(v: unknown, rand: () => number, depth = 0): [unknown, string] {
  const pick = <T>(a: T[]) => a[Math.floor(rand() * a.length)];
  // the file itself stays an object mostly (one case in ten replaces it whole)
  const descend = depth === 0 ? rand() < 0.9 : rand() < 0.6;
  if (typeof v === 'object' && v !== null && depth < 3 && descend) {
    const keys = Object.keys(v);
    if (keys.length > 0) {
      const k = pick(keys);
      const copy = (Array.isArray(v) ? [...v] : { ...v }) as Record<string, unknown>;
      const r = rand();
      if (r < 0.2 && !Array.isArray(v)) {
        delete copy[k];
        return [copy, `${k} removed`];
      }
      const [inner, what] = mutateJson(copy[k], rand, depth + 1);
      copy[k] = inner;
      return [copy, `${k}.${what}`];
    }
  }
  const w = pick(WEIRD);
  return [w, `= ${JSON.stringify(w)}`];
}

export function makeCase(seed: number): FuzzCase {
  const rand = random(seed);
  // the tokenizer is 2 MB of JSON: only the cases that mutate it carry it (and they are few)
  const { 'tokenizer.json': _tok, 'tokenizer_config.json': _cfg, ...files } = BASE as Files;
  const targets = [
    'header',
    'header',
    'bytes',
    'bytes',
    'config',
    'config',
    'index',
    'generation',
    'tokenizer',
  ];
  const target = targets[Math.floor(rand() * targets.length)];
  const st = BASE['model.safetensors'] as Uint8Array;
  switch (target) {
    case 'header': {
      const { header, data } = splitSafetensors(st);
      const [h, what] = mutateJson(header, rand);
      // sometimes, on the intact header: a key twice inside an entry, or a shape nested deep
      const r = rand();
      const raw = JSON.stringify(header);
      const dup =
        r < 0.06 ? raw.replace('"dtype":"F16"', '"dtype":"F16","dtype":"F16"') : undefined;
      const deep =
        r > 0.97
          ? raw.replace(/"shape":\[[^\]]*\]/, `"shape":${'['.repeat(10000)}1${']'.repeat(10000)}`)
          : undefined;
      files['model.safetensors'] = joinSafetensors(h, data, deep ?? dup);
      return { what: `header ${deep ? 'nested deep' : dup ? 'duplicate dtype' : what}`, files };
    }
    case 'bytes': {
      const b = new Uint8Array(st);
      const r = rand();
      if (r < 0.3) {
        const cut = Math.floor(rand() * b.length);
        files['model.safetensors'] = b.subarray(0, cut);
        return { what: `truncated at ${cut}`, files };
      }
      const n = 1 + Math.floor(rand() * 8);
      const where: number[] = [];
      for (let i = 0; i < n; i++) {
        // mostly in the length and header, where bytes mean structure
        const at = Math.floor(rand() < 0.7 ? rand() * Math.min(b.length, 4096) : rand() * b.length);
        b[at] = Math.floor(rand() * 256);
        where.push(at);
      }
      files['model.safetensors'] = b;
      return { what: `bytes changed at ${where.join(',')}`, files };
    }
    case 'config': {
      const [c, what] = mutateJson(JSON.parse(text(BASE['config.json'])), rand);
      files['config.json'] = JSON.stringify(c);
      return { what: `config ${what}`, files };
    }
    case 'tokenizer': {
      const [t, what] = mutateJson(TOKENIZER, rand);
      files['tokenizer.json'] = JSON.stringify(t);
      return { what: `tokenizer ${what}`, files };
    }
    case 'generation': {
      const [g, what] = mutateJson(JSON.parse(text(BASE['generation_config.json'])), rand);
      files['generation_config.json'] = JSON.stringify(g);
      return { what: `generation_config ${what}`, files };
    }
    default: {
      // a sharded checkpoint: one shard, then its index mutated
      const { header } = splitSafetensors(st);
      const map = Object.fromEntries(
        Object.keys(header)
          .filter((k) => k !== '__metadata__')
          .map((k) => [k, 'model-00001-of-00001.safetensors']),
      );
      delete files['model.safetensors'];
      files['model-00001-of-00001.safetensors'] = st;
      const [idx, what] = mutateJson(
        { metadata: { total_size: st.length }, weight_map: map },
        rand,
      );
      const escape =
        rand() < 0.2 ? { weight_map: { ...map, 'lm_head.bias': '../../etc/passwd' } } : null;
      files['model.safetensors.index.json'] = JSON.stringify(escape ?? idx);
      return { what: `index ${escape ? 'shard outside the folder' : what}`, files };
    }
  }
}

/**
 * Run one case: null if it behaved, else what went wrong. With `outcome`, say instead whether
 * it was 'loaded' or 'refused' (cleanly).
 */
export async function runCase(
  c: FuzzCase,
  timeoutMs = 10_000,
  outcome = false,
): Promise<string | null> {
  const attempt = (async () => {
    try {
      const phi = await loadPhiFrom(memoryFiles('fuzz', c.files), {
        backend: 'js',
        maxPositions: 16,
      });
      const logits = phi.logits([1, 2, 3]);
      if (!logits.every(Number.isFinite)) return 'loaded, but the logits are not finite';
      return outcome ? 'loaded' : null;
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      const why = cleanError(msg);
      return why ? `${why}: ${msg.slice(0, 300)}` : outcome ? 'refused' : null;
    }
  })();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<string>(
    (r) => (timer = setTimeout(() => r(`hung for ${timeoutMs} ms`), timeoutMs)),
  );
  try {
    return await Promise.race([attempt, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
