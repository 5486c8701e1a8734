// The timing-based choice between two equivalent kernels (src/kernels/wasm/pick.ts).
import { KernelPick } from '../../src/kernels/wasm/pick.js';

/** Run a pick's trial for one shape, the variants taking these times; the calls it made. */
function trial(p: KernelPick, shape: string, time: (variant: 0 | 1, call: number) => number) {
  const made: (0 | 1)[] = [];
  for (let call = 0; call < 100; call++) {
    const v = p.choose(shape);
    made.push(v);
    p.report(shape, v, time(v, call));
  }
  return made;
}

describe('KernelPick', () => {
  test('alternates while it measures, then keeps the faster variant', () => {
    const p = new KernelPick(2, 3, 0.9);
    const made = trial(p, 'a', (v) => (v ? 5 : 10));
    expect(made.slice(0, 10)).toEqual([0, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
    expect(made.slice(10).every((v) => v === 1)).toBe(true);
    expect(p.choices).toEqual({ a: 1 });
  });

  test('keeps the default unless the alternative beats it by the margin', () => {
    const p = new KernelPick(2, 3, 0.9);
    trial(p, 'close', (v) => (v ? 9.5 : 10));
    trial(p, 'slower', (v) => (v ? 12 : 10));
    expect(p.choices).toEqual({ close: 0, slower: 0 });
  });

  test('ignores the warm-up calls and a stall: best times decide', () => {
    const p = new KernelPick(2, 3, 0.9);
    // the alternative is slow while warming up and stalls once while measured; the default
    // has a fast first call (not counted) and is otherwise slower
    trial(p, 's', (v, call) => {
      if (call < 4) return v ? 1000 : 1;
      if (call === 5) return 1000;
      return v ? 5 : 10;
    });
    expect(p.choices).toEqual({ s: 1 });
  });

  test('each shape is decided on its own', () => {
    const p = new KernelPick(1, 2, 0.9);
    trial(p, 'x', (v) => (v ? 1 : 2));
    trial(p, 'y', (v) => (v ? 3 : 2));
    expect(p.choices).toEqual({ x: 1, y: 0 });
    expect(p.choose('never seen')).toBe(0);
  });
});
