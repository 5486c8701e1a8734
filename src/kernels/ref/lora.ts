// out (T, d) += scale · u (T, r) · v (r, d): a LoRA term's up-projection (v = Bᵀ, u = x·Aᵀ),
// and the merge W += s·B·A (u = B, v = A). Each output's r products summed in order, in f64.
export function lora_add(
  out: Float32Array,
  u: Float32Array,
  v: Float32Array,
  scale: number,
  T: number,
  r: number,
  d: number,
): void {
  for (let t = 0; t < T; t++)
    for (let i = 0; i < d; i++) {
      let acc = 0;
      for (let k = 0; k < r; k++) acc += u[t * r + k] * v[k * d + i];
      out[t * d + i] += scale * acc;
    }
}
