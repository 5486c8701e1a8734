// The loss curve as a small SVG, dependency-free: training loss a step (and its running
// mean), the eval loss where there is one. `phi finetune` writes it beside the adapter.
import type { StepMetrics } from './finetune.js';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

export function lossChart(log: readonly StepMetrics[], title: string): string {
  const [W, H, L, R, T, B] = [640, 320, 56, 16, 28, 36];
  const steps = log.map((m) => m.step);
  const losses = log.flatMap((m) => (m.evalLoss === undefined ? [m.loss] : [m.loss, m.evalLoss]));
  const [x0, x1] = [Math.min(0, ...steps), Math.max(1, ...steps)];
  let [y0, y1] = [Math.min(...losses), Math.max(...losses)];
  if (!Number.isFinite(y0)) [y0, y1] = [0, 1];
  if (y1 - y0 < 1e-9) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const x = (s: number) => L + ((s - x0) / (x1 - x0)) * (W - L - R);
  const y = (v: number) => T + (1 - (v - y0) / (y1 - y0)) * (H - T - B);
  const line = (pts: [number, number][], color: string, width: number) =>
    pts.length
      ? `<polyline fill="none" stroke="${color}" stroke-width="${width}" points="${pts.map(([s, v]) => `${x(s).toFixed(1)},${y(v).toFixed(1)}`).join(' ')}"/>`
      : '';
  const k = Math.max(1, Math.round(log.length / 20)); // running mean over about 5% of the run
  const smooth = log.map((m, i): [number, number] => {
    const w = log.slice(Math.max(0, i - k + 1), i + 1);
    return [m.step, w.reduce((s, v) => s + v.loss, 0) / w.length];
  });
  const evals = log
    .filter((m) => m.evalLoss !== undefined)
    .map((m): [number, number] => [m.step, m.evalLoss!]);
  const ticks = [y0, (y0 + y1) / 2, y1]
    .map((v) => `<text x="${L - 6}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(2)}</text>`)
    .join('');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${L}" y="16" font-size="13">${esc(title)}</text>`,
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#888"/>`,
    `<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#888"/>`,
    ticks,
    `<text x="${L}" y="${H - B + 14}">${x0}</text><text x="${W - R}" y="${H - B + 14}" text-anchor="end">${x1}</text>`,
    `<text x="${(L + W - R) / 2}" y="${H - 6}" text-anchor="middle">step</text>`,
    line(
      log.map((m) => [m.step, m.loss]),
      '#9ecae1',
      1,
    ),
    line(smooth, '#08519c', 2),
    line(evals, '#e6550d', 2),
    `<text x="${W - R}" y="16" text-anchor="end"><tspan fill="#08519c">train loss</tspan>${evals.length ? ' <tspan fill="#e6550d">eval loss</tspan>' : ''}</text>`,
    '</svg>',
  ].join('\n');
}
