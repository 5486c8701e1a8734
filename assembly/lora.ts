// out (T, d) += scale · u (T, r) · v (r, d), columns [i0, i1) of d   (twin: src/kernels/ref/lora.ts)
// A LoRA term's up-projection, y += s·(x·Aᵀ)·Bᵀ with u = x·Aᵀ and v = Bᵀ (src/model/lora.ts),
// and, with u = B and v = A, the merge W += s·B·A (src/weights/merge.ts).
// Every output sums its r products in order k = 0, 1, .., then is scaled once and added, so
// the result does not depend on the column split. 32 columns a step: 8 accumulators of 4
// lanes, each taking a broadcast u[t, k] times 4 of v's row k, so that 8 independent chains
// hide the multiply-add's latency (one chain of r steps made decode wait on it); then 4
// columns a step, then one. u (T, r) is tiny and stays in L1.
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
  const end32 = i0 + ((i1 - i0) & ~31);
  const end4 = i0 + ((i1 - i0) & ~3);
  for (let t = 0; t < T; t++) {
    const ut = u + ((<usize>t * <usize>r) << 2);
    const ot = out + <usize>t * dBytes;
    let i = i0;
    for (; i < end32; i += 32) {
      const col = (<usize>i) << 2;
      let a0 = f32x4.splat(0);
      let a1 = a0;
      let a2 = a0;
      let a3 = a0;
      let a4 = a0;
      let a5 = a0;
      let a6 = a0;
      let a7 = a0;
      let vk = v + col;
      for (let k = 0; k < r; k++) {
        const uk = v128.load32_splat(ut + ((<usize>k) << 2));
        a0 = madd(uk, v128.load(vk), a0);
        a1 = madd(uk, v128.load(vk, 16), a1);
        a2 = madd(uk, v128.load(vk, 32), a2);
        a3 = madd(uk, v128.load(vk, 48), a3);
        a4 = madd(uk, v128.load(vk, 64), a4);
        a5 = madd(uk, v128.load(vk, 80), a5);
        a6 = madd(uk, v128.load(vk, 96), a6);
        a7 = madd(uk, v128.load(vk, 112), a7);
        vk += dBytes;
      }
      const o = ot + col;
      v128.store(o, madd(a0, sv, v128.load(o)));
      v128.store(o, madd(a1, sv, v128.load(o, 16)), 16);
      v128.store(o, madd(a2, sv, v128.load(o, 32)), 32);
      v128.store(o, madd(a3, sv, v128.load(o, 48)), 48);
      v128.store(o, madd(a4, sv, v128.load(o, 64)), 64);
      v128.store(o, madd(a5, sv, v128.load(o, 80)), 80);
      v128.store(o, madd(a6, sv, v128.load(o, 96)), 96);
      v128.store(o, madd(a7, sv, v128.load(o, 112)), 112);
    }
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
