// x [from, to) <- gelu_new(x) = 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))   (contract: src/kernels/ref/gelu.ts)
// Differences from the TS twin: f32 tanh (AssemblyScript's Mathf).
const SQRT_2_OVER_PI: f32 = 0.7978845608028654;

export function gelu_new(x: usize, from: i32, to: i32): void {
  for (let i = from; i < to; i++) {
    const p = x + ((<usize>i) << 2);
    const v = load<f32>(p);
    store<f32>(
      p,
      <f32>0.5 * v * (<f32>1 + Mathf.tanh(SQRT_2_OVER_PI * (v + <f32>0.044715 * v * v * v))),
    );
  }
}
