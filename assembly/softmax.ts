// x (len,) <- exp(x - max x) / Σ exp(x - max x), in place   (contract: src/kernels/ref/softmax.ts)
// Differences from the TS twin: f32 exp (AssemblyScript's Mathf) and an f32 sum.
export function softmax(x: usize, len: i32): void {
  if (len <= 0) return;
  let max = load<f32>(x);
  for (let i = 1; i < len; i++) max = Mathf.max(max, load<f32>(x + ((<usize>i) << 2)));
  let sum: f32 = 0;
  for (let i = 0; i < len; i++) {
    const e = Mathf.exp(load<f32>(x + ((<usize>i) << 2)) - max);
    store<f32>(x + ((<usize>i) << 2), e);
    sum += e;
  }
  const inv: f32 = 1 / sum;
  for (let i = 0; i < len; i++)
    store<f32>(x + ((<usize>i) << 2), load<f32>(x + ((<usize>i) << 2)) * inv);
}
