// Choosing the next token from the logits (V,). In the order transformers applies them:
//   [constraint mask] -> repetition penalty -> temperature -> top-k -> top-p -> draw.
// A mask (constrained decoding, src/grammar/) comes first, so every later step, greedy
// included, works on the allowed tokens only: a proper sample of the constrained distribution.
// temperature 0 is greedy: argmax over all V logits, as transformers does (padded vocab
// rows included, so greedy matches the reference token for token).

import { applyMask, type TokenMask } from './grammar/mask.js';

export interface SamplingOptions {
  /** 0 = greedy (default); otherwise logits are divided by it before softmax. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 = all). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (1 = all). */
  topP?: number;
  /** > 1 makes tokens already in the prompt or output less likely (CTRL paper; 1 = off). */
  repetitionPenalty?: number;
  /** Seed of the random draws: same seed, same prompt, same options -> same text. */
  seed?: number;
}

/** mulberry32: a small, fast 32-bit PRNG; good enough for sampling, fully reproducible. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Bound once: a global looked up in a loop of V = 51200 is slow where code runs in a vm
// context (jest), and costs nothing here.
const { isFinite: finite } = Number;
const { exp, max: maxOf } = Math;

export function argmax(x: ArrayLike<number>, len = x.length): number {
  let best = 0;
  for (let i = 1; i < len; i++) if (x[i] > x[best]) best = i;
  return best;
}

export function validateSampling(o: SamplingOptions): void {
  const check = (name: string, v: number | undefined, ok: (v: number) => boolean, what: string) => {
    if (v !== undefined && !(Number.isFinite(v) && ok(v))) {
      throw new Error(`${name} must be ${what}, got ${v}`);
    }
  };
  check('temperature', o.temperature, (v) => v >= 0, '>= 0');
  check('top-k', o.topK, (v) => Number.isInteger(v) && v >= 0, 'an integer >= 0');
  check('top-p', o.topP, (v) => v > 0 && v <= 1, 'in (0, 1]');
  check('repetition penalty', o.repetitionPenalty, (v) => v > 0, '> 0');
  check('seed', o.seed, (v) => Number.isInteger(v), 'an integer');
}

export class Sampler {
  private readonly random: () => number;
  private work = new Float32Array(0);

  constructor(private readonly o: SamplingOptions = {}) {
    validateSampling(o);
    this.random = mulberry32(o.seed ?? (Math.random() * 2 ** 32) >>> 0);
  }

  /**
   * Pick the next token from logits (V,) given every token so far (prompt included), among
   * the tokens `mask` allows when there is one.
   */
  next(logits: Float32Array, history: readonly number[], mask?: TokenMask | null): number {
    const V = logits.length;
    if (this.work.length !== V) this.work = new Float32Array(V);
    const x = this.work;
    x.set(logits);
    for (let i = 0; i < V; i++) {
      // NaN or ±Infinity: broken weights or input; sampling from it would be a silent wrong answer
      if (!finite(x[i]))
        throw new Error(
          `the model produced a non-finite logit (${x[i]} for token ${i}): the weights or the input are broken`,
        );
    }
    if (mask) {
      applyMask(x, mask);
      if (x[argmax(x)] === -Infinity) throw new Error('the constraint allows no token here');
    }

    const penalty = this.o.repetitionPenalty ?? 1;
    if (penalty !== 1) {
      for (const id of new Set(history)) {
        x[id] = x[id] > 0 ? x[id] / penalty : x[id] * penalty;
      }
    }
    const temperature = this.o.temperature ?? 0;
    if (temperature === 0) return argmax(x);

    // candidates, most likely first (sorting only when top-k or top-p needs an order)
    const topK = this.o.topK ?? 0;
    const topP = this.o.topP ?? 1;
    let ids: Uint32Array | number[];
    if (topK > 0 || topP < 1) {
      ids = Uint32Array.from({ length: V }, (_, i) => i).sort((a, b) => x[b] - x[a]);
      if (topK > 0 && topK < V) ids = ids.subarray(0, topK);
    } else {
      ids = Array.from({ length: V }, (_, i) => i);
    }

    // softmax(x / T) over the candidates, as exp((x - max) / T): finite for any T > 0 (a tiny
    // T makes x / T overflow to Infinity, and Infinity - Infinity is NaN)
    let max = -Infinity;
    for (let i = 0; i < ids.length; i++) max = maxOf(max, x[ids[i]]);
    const p = new Float64Array(ids.length);
    let sum = 0;
    for (let i = 0; i < ids.length; i++) {
      p[i] = exp((x[ids[i]] - max) / temperature);
      sum += p[i];
    }
    let n = ids.length;
    if (topP < 1) {
      // keep the head of the sorted list until its mass reaches top-p (at least one token)
      let cum = 0;
      for (let i = 0; i < ids.length; i++) {
        cum += p[i] / sum;
        if (cum >= topP) {
          n = i + 1;
          break;
        }
      }
      sum = 0;
      for (let i = 0; i < n; i++) sum += p[i];
    }
    let r = this.random() * sum;
    for (let i = 0; i < n; i++) {
      r -= p[i];
      if (r < 0) return ids[i];
    }
    return ids[n - 1];
  }
}
