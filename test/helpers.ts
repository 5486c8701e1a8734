// Shared test helpers: fixture paths, reference data, a seeded PRNG and tolerance checks.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readWasm, spawnWorker } from '../src/node/wasm.js';

/** The Node adapters, for tests that load through the portable core (loadPhiFrom). */
export const NODE = { wasm: { readWasm, spawnWorker } };

// compiled to dist/test/helpers.js; the repo root is two levels up
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FIXTURES = path.join(ROOT, 'test', 'fixtures');
export const CHECKPOINTS = ['tiny-phi-f32', 'tiny-phi-f16', 'tiny-phi-f32-hot'] as const;
export const fixture = (...p: string[]) => path.join(FIXTURES, ...p);

export interface ReferenceCase {
  name: string;
  input_ids: number[];
  length: number;
  max_abs_logit_all_positions: number;
  logits_first: number[];
  logits_last: number[];
  argmax: number[];
  argmax_margin: number[];
  greedy: { new_tokens: number[]; margins: number[] };
}
export interface DebugTensor {
  shape: number[];
  layout: string;
  data: unknown;
}
export interface Reference {
  cases: ReferenceCase[];
  debug_layer0: Record<string, DebugTensor | unknown>;
}

const refCache = new Map<string, Reference>();
export function reference(checkpoint: string): Reference {
  let r = refCache.get(checkpoint);
  if (!r) {
    r = JSON.parse(readFileSync(fixture(checkpoint, 'reference.json'), 'utf8')) as Reference;
    refCache.set(checkpoint, r);
  }
  return r;
}

/** xorshift32, as llama2.c: fresh inputs each run come from a seed printed on failure. */
export function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

export function randomF32(rand: () => number, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (rand() * 2 - 1) * scale;
  return a;
}

const abs = Math.abs; // a module binding: see maxAbsDiff

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    // no Math.abs or Number.isNaN here: jest runs tests in a vm context, where every lookup of
    // a global (Math, Number) in a loop costs about 0.2 µs, 100 times the arithmetic
    const e = a[i] - b[i];
    const d = e < 0 ? -e : e;
    if (!(d <= m)) m = d !== d ? Infinity : d;
  }
  return m;
}

/** Assert |a - b| <= atol + rtol |b| everywhere; the message shows the first offenders. */
export function expectClose(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  atol: number,
  rtol = 0,
  label = '',
): void {
  if (a.length !== b.length) throw new Error(`${label}: length ${a.length} vs ${b.length}`);
  const bad: string[] = [];
  for (let i = 0; i < a.length && bad.length < 5; i++) {
    const ok = abs(a[i] - b[i]) <= atol + rtol * abs(b[i]);
    if (!ok) bad.push(`[${i}] ${a[i]} vs ${b[i]}`);
  }
  if (bad.length)
    throw new Error(`${label}: not close (atol ${atol}, rtol ${rtol}): ${bad.join(', ')}`);
}
