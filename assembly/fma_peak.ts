// The arithmetic peak the f32 kernels can reach here, for the bench: multiply-adds from
// registers only, no memory traffic. 12 independent chains of f32x4 multiply-adds (madd: one
// fused instruction in the relaxed build, mul + add in the SIMD128 one), enough to cover the
// latency of two FMA pipes (4 cycles x 2 pipes = 8 in flight), and few enough that V8 keeps
// them and the two constants in the 16 xmm registers of x64 without spilling.
// A thread runs units [from, to), each `reps` rounds of 12 madds (48 multiply-adds, 96 flops), reading
// 4 floats of 1 at out + 16·unit and storing its sum there, so nothing folds away.
import { madd } from './simd';

export function fma_peak(out: usize, reps: i32, from: i32, to: i32): void {
  for (let u = from; u < to; u++) {
    const p = out + ((<usize>u) << 4);
    // acc += m·c, the form of the kernels' inner loops (the accumulator is the addend). m and c
    // come from memory: V8 rebuilds a v128 constant at each use inside a loop (3 instructions,
    // simd.ts), which would measure that instead, and binaryen would fold m·c.
    const m = v128.load(p); // the caller's 1s
    const c = f32x4.mul(m, f32x4.splat(1e-4));
    let a0 = m,
      a1 = f32x4.add(a0, c),
      a2 = f32x4.add(a1, c),
      a3 = f32x4.add(a2, c),
      a4 = f32x4.add(a3, c),
      a5 = f32x4.add(a4, c),
      a6 = f32x4.add(a5, c),
      a7 = f32x4.add(a6, c),
      a8 = f32x4.add(a7, c),
      a9 = f32x4.add(a8, c),
      a10 = f32x4.add(a9, c),
      a11 = f32x4.add(a10, c);
    for (let r = 0; r < reps; r++) {
      a0 = madd(m, c, a0);
      a1 = madd(m, c, a1);
      a2 = madd(m, c, a2);
      a3 = madd(m, c, a3);
      a4 = madd(m, c, a4);
      a5 = madd(m, c, a5);
      a6 = madd(m, c, a6);
      a7 = madd(m, c, a7);
      a8 = madd(m, c, a8);
      a9 = madd(m, c, a9);
      a10 = madd(m, c, a10);
      a11 = madd(m, c, a11);
    }
    const s = f32x4.add(
      f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)),
      f32x4.add(
        f32x4.add(f32x4.add(a4, a5), f32x4.add(a6, a7)),
        f32x4.add(f32x4.add(a8, a9), f32x4.add(a10, a11)),
      ),
    );
    v128.store(p, s);
  }
}
