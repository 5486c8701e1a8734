// Attention backward for heads [h0, h1), one sequence at positions 0..T-1
// (twin: src/kernels/ref/attention.ts attention_backward). Per head, query t, key j <= t:
//   dP_j = dO_t · v_j,   g_j = P_tj (dP_j - Σ_i dP_i P_ti) · scale
//   dq_t += g_j k_j,     dk_j += g_j q_t,     dv_j += P_tj dO_t
// dq, dk, dv, dO, q (T, H·Dh); kH, vH (H, T, Dh); probs (H, T, T) the forward's softmax;
// scratch: this thread's row of dP (>= T). A head's columns of dq, dk, dv belong to its
// thread alone and are summed in one order (t, then j), so the thread split changes nothing.
// Differences from the TS twin: f32 sums (4 lanes for the dot products; the twin's are f64).
import { hsum, madd } from './simd';

/** a · b over Dh f32 (4 lanes, then the rest). */
// @ts-ignore: decorator
@inline function dot(a: usize, b: usize, Dh: i32): f32 {
  const d4 = Dh & ~3;
  let acc = f32x4.splat(0);
  let c = 0;
  for (; c < d4; c += 4) {
    const o = (<usize>c) << 2;
    acc = madd(v128.load(a + o), v128.load(b + o), acc);
  }
  let s = hsum(acc);
  for (; c < Dh; c++) s += load<f32>(a + ((<usize>c) << 2)) * load<f32>(b + ((<usize>c) << 2));
  return s;
}

/** y += g · x over Dh f32. */
// @ts-ignore: decorator
@inline function axpy(y: usize, x: usize, g: f32, Dh: i32): void {
  const d4 = Dh & ~3;
  const gv = f32x4.splat(g);
  let c = 0;
  for (; c < d4; c += 4) {
    const o = (<usize>c) << 2;
    v128.store(y + o, madd(gv, v128.load(x + o), v128.load(y + o)));
  }
  for (; c < Dh; c++) {
    const o = (<usize>c) << 2;
    store<f32>(y + o, load<f32>(y + o) + g * load<f32>(x + o));
  }
}

export function attention_backward(
  dq: usize,
  dk: usize,
  dv: usize,
  dO: usize,
  q: usize,
  kH: usize,
  vH: usize,
  probs: usize,
  T: i32,
  H: i32,
  Dh: i32,
  scale: f32,
  dP: usize,
  h0: i32,
  h1: i32,
): void {
  const row = (<usize>(H * Dh)) << 2; // bytes a token in (T, H·Dh)
  const dh = (<usize>Dh) << 2;
  for (let h = h0; h < h1; h++) {
    const col = <usize>h * dh; // the head's columns in (T, H·Dh)
    for (let t = 0; t < T; t++) {
      const at = <usize>t * row + col;
      memory.fill(dq + at, 0, dh);
      memory.fill(dk + at, 0, dh);
      memory.fill(dv + at, 0, dh);
    }
    const kh = kH + <usize>h * <usize>T * dh;
    const vh = vH + <usize>h * <usize>T * dh;
    for (let t = 0; t < T; t++) {
      const P = probs + ((<usize>(h * T + t) * <usize>T) << 2); // row t: keys 0..t
      const at = <usize>t * row + col;
      let s: f32 = 0; // Σ_j dP_j P_tj
      for (let j = 0; j <= t; j++) {
        const p = dot(dO + at, vh + <usize>j * dh, Dh);
        store<f32>(dP + ((<usize>j) << 2), p);
        s += p * load<f32>(P + ((<usize>j) << 2));
      }
      for (let j = 0; j <= t; j++) {
        const p = load<f32>(P + ((<usize>j) << 2));
        const g = p * (load<f32>(dP + ((<usize>j) << 2)) - s) * scale;
        const aj = <usize>j * row + col;
        axpy(dq + at, kh + <usize>j * dh, g, Dh);
        axpy(dk + aj, q + at, g, Dh);
        axpy(dv + aj, dO + at, p, Dh);
      }
    }
  }
}
