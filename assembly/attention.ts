// Causal attention over the KV cache for heads [h0, h1)   (twin: src/kernels/ref/attention.ts)
//   scores_j = (q_t,h · k_j,h) · scale  for j = 0..pos0+t;  out_t,h = Σ_j softmax(scores)_j v_j,h
// q, out (T, H*Dh); kCache, vCache (H, maxPos, Dh); scores: this thread's scratch (>= pos0+T);
// probs: 0, or (H, T, pos0+T) to receive the probabilities (zeros past the causal limit).
//
// Decoding reads each head's keys and values once, a short run of memory each (41 positions
// of 64 f32 are 10 KB): read one run at a time, memory delivers 7 GB/s to a thread; four runs
// at once, 20-40 GB/s. So both passes take their keys a quarter of the way apart: scores 8
// keys at a time, 2 from each quarter (the query vector loaded once for all 8, the sums
// transposed into vectors); the weighted sum of values 4 rows a step, one from each quarter,
// each row read whole with the sums kept in `out` (in L1). Each (query, head) is computed the
// same way whatever T, so a prefill and one-token steps agree bit for bit.
// Differences from the TS twin: f32 sums over 4 lanes (the twin's are f64, sequential).
import { softmax } from './softmax';
import { hsum, madd } from './simd';

/** [Σ p0, Σ p1, Σ p2, Σ p3]: the lane sums of 4 vectors in one (a transpose, added). */
// @ts-ignore: decorator
@inline function sum4(p0: v128, p1: v128, p2: v128, p3: v128): v128 {
  const a = f32x4.add(i32x4.shuffle(p0, p1, 0, 4, 1, 5), i32x4.shuffle(p0, p1, 2, 6, 3, 7));
  const b = f32x4.add(i32x4.shuffle(p2, p3, 0, 4, 1, 5), i32x4.shuffle(p2, p3, 2, 6, 3, 7));
  return f32x4.add(i32x4.shuffle(a, b, 0, 1, 4, 5), i32x4.shuffle(a, b, 2, 3, 6, 7));
}

/** Scores of 4 keys at k0, k0 + stride, .. against q: the 4 dot products in one vector. */
// @ts-ignore: decorator
@inline function dot4(q: usize, k0: usize, stride: usize, Dh: i32): v128 {
  const d4 = Dh & ~3;
  const k1 = k0 + stride,
    k2 = k1 + stride,
    k3 = k2 + stride;
  let a0 = f32x4.splat(0),
    a1 = f32x4.splat(0),
    a2 = f32x4.splat(0),
    a3 = f32x4.splat(0);
  let c = 0;
  for (; c < d4; c += 4) {
    const o = (<usize>c) << 2;
    const qv = v128.load(q + o);
    a0 = madd(qv, v128.load(k0 + o), a0);
    a1 = madd(qv, v128.load(k1 + o), a1);
    a2 = madd(qv, v128.load(k2 + o), a2);
    a3 = madd(qv, v128.load(k3 + o), a3);
  }
  let s = sum4(a0, a1, a2, a3);
  for (; c < Dh; c++) {
    const o = (<usize>c) << 2;
    const qc = f32x4.splat(load<f32>(q + o));
    s = f32x4.add(
      s,
      f32x4.mul(
        qc,
        f32x4(load<f32>(k0 + o), load<f32>(k1 + o), load<f32>(k2 + o), load<f32>(k3 + o)),
      ),
    );
  }
  return s;
}

/** scores[j] = (q · k_j) · scale for keys [0, keys), k_j at k + j·stride bytes, Dh dims. */
// @ts-ignore: decorator
@inline function qk(
  scores: usize,
  q: usize,
  k: usize,
  stride: usize,
  keys: i32,
  Dh: i32,
  scale: f32,
): void {
  const sc = f32x4.splat(scale);
  let j = 0;
  // 8 keys a step, 2 from each quarter of [0, 8·(keys / 8)): 8 independent multiply-add
  // chains keep both FMA units busy, 4 runs of the cache are read at once
  const d4 = Dh & ~3;
  if (d4 == Dh) {
    const L = (keys >> 3) << 1; // keys a quarter
    const ls = <usize>L * stride, // bytes from one quarter's keys to the next
      lb = (<usize>L) << 2; // and from one quarter's scores to the next
    for (; j < L; j += 2) {
      const k0 = k + <usize>j * stride,
        k1 = k0 + stride;
      const k2 = k0 + ls,
        k3 = k2 + stride;
      const k4 = k2 + ls,
        k5 = k4 + stride;
      const k6 = k4 + ls,
        k7 = k6 + stride;
      let a0 = f32x4.splat(0),
        a1 = f32x4.splat(0),
        a2 = f32x4.splat(0),
        a3 = f32x4.splat(0);
      let a4 = f32x4.splat(0),
        a5 = f32x4.splat(0),
        a6 = f32x4.splat(0),
        a7 = f32x4.splat(0);
      for (let c = 0; c < d4; c += 4) {
        const o = (<usize>c) << 2;
        const qv = v128.load(q + o);
        a0 = madd(qv, v128.load(k0 + o), a0);
        a1 = madd(qv, v128.load(k1 + o), a1);
        a2 = madd(qv, v128.load(k2 + o), a2);
        a3 = madd(qv, v128.load(k3 + o), a3);
        a4 = madd(qv, v128.load(k4 + o), a4);
        a5 = madd(qv, v128.load(k5 + o), a5);
        a6 = madd(qv, v128.load(k6 + o), a6);
        a7 = madd(qv, v128.load(k7 + o), a7);
      }
      // scores j, j + 1 of each quarter
      const lo = f32x4.mul(sum4(a0, a1, a2, a3), sc),
        hi = f32x4.mul(sum4(a4, a5, a6, a7), sc);
      const s = scores + ((<usize>j) << 2);
      v128.store64_lane(s, lo, 0);
      v128.store64_lane(s + lb, lo, 1);
      v128.store64_lane(s + 2 * lb, hi, 0);
      v128.store64_lane(s + 3 * lb, hi, 1);
    }
    j = 4 * L;
  }
  for (; j + 4 <= keys; j += 4)
    v128.store(
      scores + ((<usize>j) << 2),
      f32x4.mul(dot4(q, k + <usize>j * stride, stride, Dh), sc),
    );
  for (; j < keys; j++) {
    const kj = k + <usize>j * stride;
    let a = f32x4.splat(0);
    let c = 0;
    for (; c < d4; c += 4)
      a = madd(v128.load(q + ((<usize>c) << 2)), v128.load(kj + ((<usize>c) << 2)), a);
    let dot = hsum(a);
    for (; c < Dh; c++) dot += load<f32>(q + ((<usize>c) << 2)) * load<f32>(kj + ((<usize>c) << 2));
    store<f32>(scores + ((<usize>j) << 2), dot * scale);
  }
}

/**
 * out[0, Dh) = Σ_j p_j v_j for keys [0, keys), v_j at v + j·stride bytes: 4 rows a step, key i
 * of each quarter of [0, 4·(keys / 4)), added in that order, then the last keys % 4.
 */
// @ts-ignore: decorator
@inline function pv(out: usize, p: usize, v: usize, stride: usize, keys: i32, Dh: i32): void {
  const bytes = (<usize>Dh) << 2,
    bytes4 = (<usize>(Dh & ~3)) << 2; // those in whole vectors
  memory.fill(out, 0, bytes);
  const L = keys >> 2; // keys a quarter
  const ls = <usize>L * stride,
    lp = (<usize>L) << 2;
  for (let i = 0; i < L; i++) {
    const pi = p + ((<usize>i) << 2);
    const p0 = load<f32>(pi),
      p1 = load<f32>(pi + lp),
      p2 = load<f32>(pi + 2 * lp),
      p3 = load<f32>(pi + 3 * lp);
    const s0 = f32x4.splat(p0),
      s1 = f32x4.splat(p1),
      s2 = f32x4.splat(p2),
      s3 = f32x4.splat(p3);
    const v0 = v + <usize>i * stride,
      v1 = v0 + ls,
      v2 = v1 + ls,
      v3 = v2 + ls;
    let c: usize = 0;
    for (; c < bytes4; c += 16) {
      const o = madd(s1, v128.load(v1 + c), madd(s0, v128.load(v0 + c), v128.load(out + c)));
      v128.store(out + c, madd(s3, v128.load(v3 + c), madd(s2, v128.load(v2 + c), o)));
    }
    for (; c < bytes; c += 4) {
      const o = load<f32>(out + c) + p0 * load<f32>(v0 + c) + p1 * load<f32>(v1 + c);
      store<f32>(out + c, o + p2 * load<f32>(v2 + c) + p3 * load<f32>(v3 + c));
    }
  }
  for (let j = 4 * L; j < keys; j++) {
    const pj = load<f32>(p + ((<usize>j) << 2));
    const sj = f32x4.splat(pj);
    const vj = v + <usize>j * stride;
    let c: usize = 0;
    for (; c < bytes4; c += 16)
      v128.store(out + c, madd(sj, v128.load(vj + c), v128.load(out + c)));
    for (; c < bytes; c += 4) store<f32>(out + c, load<f32>(out + c) + pj * load<f32>(vj + c));
  }
}

export function attention(
  out: usize,
  q: usize,
  kCache: usize,
  vCache: usize,
  T: i32,
  pos0: i32,
  H: i32,
  Dh: i32,
  maxPos: i32,
  scale: f32,
  scores: usize,
  probs: usize,
  h0: i32,
  h1: i32,
): void {
  const S = <usize>(H * Dh);
  const stride = (<usize>Dh) << 2; // bytes from one position to the next within a head
  const P = <usize>(pos0 + T);
  for (let t = 0; t < T; t++) {
    const keys = pos0 + t + 1;
    for (let h = h0; h < h1; h++) {
      const head = <usize>h * <usize>maxPos * stride; // head h's keys / values in the caches
      const row = (<usize>t * S + <usize>(h * Dh)) << 2; // query t, head h in q and out
      qk(scores, q + row, kCache + head, stride, keys, Dh, scale);
      softmax(scores, keys);
      if (probs) {
        const dst = probs + (((<usize>h * <usize>T + <usize>t) * P) << 2);
        memory.copy(dst, scores, (<usize>keys) << 2);
        memory.fill(dst + ((<usize>keys) << 2), 0, (P - <usize>keys) << 2);
      }
      pv(out + row, scores, vCache + head, stride, keys, Dh);
    }
  }
}
