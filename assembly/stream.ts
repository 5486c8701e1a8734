// Memory-read bandwidth probe for the bench: sum bytes [from, to) of ptr as f32x4, nothing else.
// The range is read as 4 sequential streams (its quarters) at once, with independent
// accumulators: on the machines measured, one stream reached 10-15% less than 4 (the hardware
// prefetcher follows each stream; more streams keep more memory requests in flight).
export function stream_sum(base: usize, from: usize, to: usize): f32 {
  const ptr = base + from,
    bytes = to - from;
  let a0 = f32x4.splat(0),
    a1 = f32x4.splat(0),
    a2 = f32x4.splat(0),
    a3 = f32x4.splat(0);
  const q = (bytes >> 2) & ~63; // bytes a stream, whole cache lines
  for (let o: usize = 0; o < q; o += 64) {
    const p = ptr + o;
    for (let k: usize = 0; k < 64; k += 16) {
      a0 = f32x4.add(a0, v128.load(p + k));
      a1 = f32x4.add(a1, v128.load(p + q + k));
      a2 = f32x4.add(a2, v128.load(p + 2 * q + k));
      a3 = f32x4.add(a3, v128.load(p + 3 * q + k));
    }
  }
  const s = f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3));
  return (
    f32x4.extract_lane(s, 0) +
    f32x4.extract_lane(s, 1) +
    f32x4.extract_lane(s, 2) +
    f32x4.extract_lane(s, 3)
  );
}
