// The one check that token ids are ids of the vocabulary, for every door they come in by (the
// model's step, the engine, the server's prompts and /detokenize).

/**
 * Why `ids` are not all token ids of a vocabulary of `V` (integers in 0..V-1), naming the first
 * that is not; null when they all are.
 */
export function badTokenId(ids: readonly unknown[], V: number): string | null {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!Number.isInteger(id) || (id as number) < 0 || (id as number) >= V)
      return `token id ${describe(id)} at index ${i} is out of range: the vocabulary has ids 0..${V - 1}`;
  }
  return null;
}

/** A value as a message shows it, safely for anything (JSON.stringify overflows on deep arrays). */
const describe = (v: unknown): string =>
  typeof v === 'number' || typeof v === 'boolean' || v === null
    ? String(v)
    : typeof v === 'string'
      ? JSON.stringify(v.slice(0, 40))
      : Array.isArray(v)
        ? 'an array'
        : typeof v;
