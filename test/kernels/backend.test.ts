// The wasm backend itself: what it reports, its op table and constants, threads bit for bit,
// and failures that are errors, not hangs.

import type { Weight } from '../../src/kernels/types.js';
import { xorshift } from '../helpers.js';
import { FEW_X_BYTES, STREAM_ROWS, WIDE_ROWS } from '../../src/kernels/wasm/exports.js';
import { createWasmKernels, type WasmKernels } from '../../src/kernels/wasm/index.js';
import { OPS, type OpName } from '../../src/kernels/wasm/ops.js';
import { readWasm, spawnWorker } from '../../src/node/wasm.js';
import {
  ext,
  fill,
  NODE_MAJOR,
  one,
  SEED,
  sums16,
  three,
  two,
  useBackends,
  weights,
} from './wasm-setup.js';

useBackends();

describe(`wasm backend (seed ${SEED})`, () => {
  test('the backend reports what it is', () => {
    expect(one.name).toMatch(/^wasm-(simd|relaxed|relaxed-dot)$/);
    expect(two.threads).toBe(2);
    expect(ext.int8Dot).toBe(false);
  });

  // so that a run on Node 22 or 24 (CI runs this file there too) covers the dot path
  (NODE_MAJOR >= 22 ? test : test.skip)(
    `Node 22+ validates the relaxed build and its int8 dot product passes the self-test${NODE_MAJOR >= 22 ? '' : ` (skipped: Node ${NODE_MAJOR} hides relaxed SIMD behind a flag)`}`,
    () => {
      expect(one.flavor).toBe('relaxed');
      expect(one.int8Dot).toBe(true);
      // and its int16 form, so the forced 'i16' instance below really runs matmul_q4_dot16
      expect(sums16.q4Sums).toBe('i16');
      expect(one.q4Sums).toBe('auto');
    },
  );

  test('the op table lists every kernel the module exports, with its parameters', () => {
    const fns = Object.entries(one.exports).filter(([, v]) => typeof v === 'function');
    const probes = ['heap_base', 'dot_probe', 'dot16_probe'];
    const kernels = fns.map(([name]) => name).filter((name) => !probes.includes(name));
    expect(kernels.sort()).toEqual(Object.keys(OPS).sort());
    for (const [name, f] of fns) {
      if (probes.includes(name)) continue;
      // a wasm export's length is its parameter count
      expect([name, (f as (...a: number[]) => void).length]).toEqual([
        name,
        OPS[name as OpName].params.length,
      ]);
    }
  });

  test("the tiling constants the TypeScript side sizes scratch and splits by are the modules' own", () => {
    // WIDE_ROWS sizes each thread's f16 prefill scratch: a smaller one here would overrun it
    expect(one.exports.WIDE_ROWS.value).toBe(WIDE_ROWS);
    expect(one.exports.STREAM_ROWS.value).toBe(STREAM_ROWS);
    // the few-token quantized path's activations in each thread's scratch: at most this
    expect(one.exports.FEW_X_BYTES.value).toBe(FEW_X_BYTES);
  });

  test('2 and 3 threads give bit-identical results to 1', () => {
    const rand = xorshift(SEED + 3);
    for (const k of [two, three]) {
      // T = 9: two blocks of 4 tokens (the GEMM, f16 widening into per-thread scratch) + 1
      for (const [dtype, T] of [
        ['f32', 3],
        ['f16', 3],
        ['f32', 9],
        ['f16', 9],
      ] as const) {
        const [n, d] = [67, 103];
        const w1 = weights(one, dtype, d, n, rand);
        const wk =
          dtype === 'f32' ? { dtype, data: k.allocF32(d * n) } : { dtype, data: k.allocU16(d * n) };
        (wk.data as Float32Array).set(w1.data as Float32Array);
        const x1 = fill(one.allocF32(T * n), rand);
        const xk = k.allocF32(T * n);
        xk.set(x1);
        const [o1, ok] = [one.allocF32(T * d), k.allocF32(T * d)];
        one.matmul(o1, x1, w1, null, T, n, d);
        k.matmul(ok, xk, wk as Weight, null, T, n, d);
        expect(Array.from(ok)).toEqual(Array.from(o1));
      }
      const [H, Dh, T, pos0] = [5, 16, 2, 9];
      const S = H * Dh;
      const arrs = [T * S, (pos0 + T) * S, (pos0 + T) * S].map((len) =>
        fill(new Float32Array(len), rand),
      );
      const run = (kk: WasmKernels) => {
        const [q, kc, vc] = arrs.map((a) => {
          const b = kk.allocF32(a.length);
          b.set(a);
          return b;
        });
        const out = kk.allocF32(T * S);
        kk.attention(out, q, kc, vc, T, pos0, H, Dh, pos0 + T, 0.25, null);
        return Array.from(out);
      };
      expect(run(k)).toEqual(run(one));
    }
  });

  test('arrays from outside the wasm memory are refused', () => {
    expect(() => one.gelu_new(new Float32Array(4), 4)).toThrow(/allocated by the wasm backend/);
  });
});

describe('wasm backend failures are errors, not hangs', () => {
  test('an op that fails in the workers surfaces as an error and closes the pool', async () => {
    const k = await createWasmKernels({ readWasm, spawnWorker, threads: 2, reserveBytes: 1 << 20 });
    expect(() => k.pool.run(42, [])).toThrow(/unknown kernel op 42/);
    expect(() => k.gelu_new(k.allocF32(4), 4)).toThrow(/the thread pool was closed/);
  });
  test('a model larger than wasm32 memory is refused with its size', async () => {
    await expect(createWasmKernels({ readWasm, reserveBytes: 5.7e9 })).rejects.toThrow(
      /needs 5\.31 GiB of WebAssembly memory, more than the 4 GiB a wasm32 module can address/,
    );
  });
});
