// out (T, d) += scale · u (T, r) · v (r, d), columns [i0, i1) of d   (twin: src/kernels/ref/lora.ts)
// A LoRA term's up-projection, y += s·(x·Aᵀ)·Bᵀ with u = x·Aᵀ and v = Bᵀ (src/model/lora.ts),
// and, with u = B and v = A, the merge W += s·B·A (src/weights/merge.ts).
// Every output sums its r products in order k = 0, 1, .., then is scaled once and added, so
// the result does not depend on the column split. 4 columns a step: r multiply-adds of a
// broadcast u[t, k] with 4 of v's row k; u (T, r) is tiny and stays in L1.
import { madd } from './simd';

export function lora_add(
  out: usize,
  u: usize,
  v: usize,
  scale: f32,
  T: i32,
  r: i32,
  d: i32,
  i0: i32,
  i1: i32,
): void {
  const sv = f32x4.splat(scale);
  const dBytes = (<usize>d) << 2;
  const end4 = i0 + ((i1 - i0) & ~3);
  for (let t = 0; t < T; t++) {
    const ut = u + ((<usize>t * <usize>r) << 2);
    const ot = out + <usize>t * dBytes;
    let i = i0;
    for (; i < end4; i += 4) {
      const col = (<usize>i) << 2;
      let acc = f32x4.splat(0);
      let vk = v + col;
      for (let k = 0; k < r; k++) {
        acc = madd(v128.load32_splat(ut + ((<usize>k) << 2)), v128.load(vk), acc);
        vk += dBytes;
      }
      v128.store(ot + col, madd(acc, sv, v128.load(ot + col)));
    }
    for (; i < i1; i++) {
      const col = (<usize>i) << 2;
      let acc: f32 = 0;
      for (let k = 0; k < r; k++)
        acc += load<f32>(ut + ((<usize>k) << 2)) * load<f32>(v + <usize>k * dBytes + col);
      store<f32>(ot + col, load<f32>(ot + col) + acc * scale);
    }
  }
}
