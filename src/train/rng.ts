// A seeded random number generator, so that a run repeats exactly: the initialisation, the
// shuffle and every dropout mask come from it. SplitMix32 mixes a 32-bit state; streams for
// separate uses are forked from (seed, labels), so drawing more in one never shifts another.

export class Rng {
  private state: number;

  constructor(seed: number, ...labels: number[]) {
    let s = mix(seed >>> 0);
    for (const l of labels) s = mix((s ^ mix(l >>> 0)) >>> 0);
    this.state = s;
  }

  /** A uniform integer in [0, 2^32). */
  u32(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    return mix(this.state);
  }

  /** A uniform float in [0, 1), 32 random bits. */
  next(): number {
    return this.u32() / 4294967296;
  }

  /** A uniform integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Shuffle a in place (Fisher-Yates). */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.below(i + 1);
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  }
}

function mix(z: number): number {
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}
