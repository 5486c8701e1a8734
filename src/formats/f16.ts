// IEEE 754 half precision <-> f32, bit by bit.
// f16: 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits. Subnormals (exponent 0)
// are 2^-14 · m/1024 and must be decoded, not flushed (the reference checkpoints have them).

/** Decode one f16 (as u16 bits) to a number. */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24; // subnormal (or zero)
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** All 65536 f16 values as f32: decoding by table lookup is the fast path in plain JS. */
export const F16_TABLE: Float32Array = (() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) t[h] = f16ToF32(h);
  return t;
})();

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Encode a number to f16 bits, rounding to nearest even (as numpy/torch .half() do). */
export function f32ToF16(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf or NaN
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> inf
  if (e <= 0) {
    // subnormal half: shift the implicit-1 mantissa right, rounding to nearest even
    if (e < -10) return sign; // underflow to ±0
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let m = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && m & 1)) m++;
    return sign | m;
  }
  let m = mant >>> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && m & 1)) {
    m++;
    if (m === 0x400) {
      m = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | m;
}

/** f16 bits (or BF16 bits) widened to f32, a whole array at a time: f16 by table lookup, BF16
 * as the top half of an f32's bits. */
export function widenHalf(bits: Uint16Array, kind: 'f16' | 'bf16'): Float32Array {
  const out = new Float32Array(bits.length);
  if (kind === 'f16') {
    for (let i = 0; i < bits.length; i++) out[i] = F16_TABLE[bits[i]];
  } else {
    const u = new Uint32Array(out.buffer);
    for (let i = 0; i < bits.length; i++) u[i] = bits[i] << 16;
  }
  return out;
}

/**
 * Scale f16 bits in place by 2^k (k >= 0), exactly: normal values get k added to their
 * exponent, subnormals are re-encoded (as normals once k is large enough). The caller
 * guarantees that the largest value does not overflow.
 */
export function scaleF16InPlace(data: Uint16Array, k: number): void {
  const factor = 2 ** k;
  const add = k << 10;
  for (let i = 0; i < data.length; i++) {
    const h = data[i];
    if ((h & 0x7fff) === 0) continue; // ±0
    data[i] = h & 0x7c00 ? h + add : f32ToF16(F16_TABLE[h] * factor);
  }
}

/** Largest biased exponent among finite values, and whether any value is subnormal. */
export function f16Stats(data: Uint16Array): { maxExponent: number; subnormals: boolean } {
  let maxExponent = 0;
  let subnormals = false;
  for (let i = 0; i < data.length; i++) {
    const e = (data[i] >> 10) & 0x1f;
    if (e === 0x1f) continue;
    if (e > maxExponent) maxExponent = e;
    else if (e === 0 && data[i] & 0x3ff) subnormals = true;
  }
  return { maxExponent, subnormals };
}
