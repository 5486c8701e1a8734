// Small SIMD helpers shared by the kernels.

// multiply-add a·b + c: one fused instruction where relaxed SIMD exists, mul + add otherwise
// (the relaxed build is chosen at run time by feature detection).
// @ts-ignore: decorator
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/**
 * v with each int8 lane negated where neg is all ones: with neg = i8x16.lt_s(s, 0), v·sgn(s).
 * The relaxed int8 dot wants its second operand in 0..127, so a product v·s is taken as
 * (v·sgn s)·|s| (assembly/dot.ts).
 */
// @ts-ignore: decorator
@inline export function negateWhere(v: v128, neg: v128): v128 {
  return i8x16.sub(v128.xor(v, neg), neg);
}

/** The sum of the 4 lanes, pairwise. */
// @ts-ignore: decorator
@inline export function hsum(v: v128): f32 {
  return (
    f32x4.extract_lane(v, 0) +
    f32x4.extract_lane(v, 1) +
    (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3))
  );
}

/**
 * e^x for 4 lanes, to about 1 ulp: 2^n · e^r with n = round(x·log2 e), r = x - n·ln 2 (ln 2 in
 * two parts, so r is exact), e^r by a degree-6 polynomial (Cephes' expf). x is clamped to
 * [-87.3, 88.3], where 2^n stays a normal f32: below, the result is 2^-126 · e^r, not 0.
 * n is rounded by adding 1.5·2^23, which leaves round(x·log2 e) in the low mantissa bits: the
 * integer for 2^n comes from those bits, no float-to-int conversion needed.
 */
// @ts-ignore: decorator
@inline export function exp4(x: v128): v128 {
  const MAGIC = f32x4.splat(12582912.0); // 1.5 · 2^23
  x = f32x4.pmin(f32x4.pmax(x, f32x4.splat(-87.33654)), f32x4.splat(88.37626)); // p: one instruction each
  const m = f32x4.add(f32x4.mul(x, f32x4.splat(1.4426950408889634)), MAGIC);
  const n = f32x4.sub(m, MAGIC); // round(x · log2 e) as a float
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(-2.1219444e-4)));
  let p = f32x4.splat(1.98756915e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  const y = f32x4.add(f32x4.add(f32x4.mul(f32x4.mul(p, r), r), r), f32x4.splat(1));
  // the integer n sits in the low bits of m: 2^n = (n + 127) << 23
  const scale = i32x4.shl(i32x4.add(i32x4.sub(m, MAGIC), i32x4.splat(127)), 23);
  return f32x4.mul(y, scale);
}

// V8 builds a v128 constant anew at each use inside a loop (movq, vmovq, vpunpcklqdq: three
// instructions), and binaryen folds a constant kept in a local back into every use. Masks read
// from memory once, before a loop, stay in a register instead. The bytes live in the module's
// static data, below the heap that the JS side allocates from.
const NIBBLES: usize = memory.data<u8>([
  15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
]);
const F16_HI: usize = memory.data<u16>([
  0x8fff, 0x8fff, 0x8fff, 0x8fff, 0x8fff, 0x8fff, 0x8fff, 0x8fff,
]);

/** 0x0f in every byte: a q4 record's low nibbles. */
// @ts-ignore: decorator
@inline export function nibbleMask(): v128 {
  return v128.load(NIBBLES);
}

/** 0x8fff in every 16-bit lane: an f16's sign and upper bits (assembly/matmul.ts). */
// @ts-ignore: decorator
@inline export function f16HiMask(): v128 {
  return v128.load(F16_HI);
}
