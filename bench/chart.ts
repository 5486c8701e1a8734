// A dependency-free SVG chart of a bench report: decode and prefill tokens/s per
// configuration (best of the runs), each bar with the roof that binds it: for decode the
// lower of memory (bandwidth / bytes a token) and compute (the kernel from cache), for
// prefill the kernel's from-cache rate.
interface Row {
  dtype: string;
  threads: number;
  prefill_tokens: number;
  prefill_tokens_per_s_best: number;
  decode_tokens_per_s_best: number;
  decode_context_tokens: number;
  memory_roof_tokens_per_s: number;
  compute_roof_tokens_per_s: number;
  decode_bound: string;
  prefill_roof_tokens_per_s: number;
}
interface Report {
  weights: string;
  bandwidth_gb_per_s: number;
  weight_bytes_per_token: Record<string, number>;
  results: Row[];
  cuda_baseline: { gpu: string; decode_tokens_per_s: number; prefill_tokens_per_s: number } | null;
  date: string;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

interface Bar {
  label: string;
  value: number;
  /** the roof over this bar, and its name */
  roof: number;
  roofLabel: string;
}

function panel(x0: number, title: string, bars: Bar[]): string {
  const W = 420;
  const H = 260;
  const top = 40;
  const bottom = 60;
  const max = Math.max(...bars.map((b) => Math.max(b.value, b.roof))) * 1.15 || 1;
  const bw = (W - 40) / Math.max(1, bars.length);
  const y = (v: number) => top + (H - top - bottom) * (1 - v / max);
  let s = `<g transform="translate(${x0},0)"><text x="${W / 2}" y="22" text-anchor="middle" font-weight="bold">${esc(title)}</text>`;
  s += `<line x1="30" y1="${H - bottom}" x2="${W - 10}" y2="${H - bottom}" stroke="#333"/>`;
  bars.forEach((b, i) => {
    const x = 35 + i * bw;
    s += `<rect x="${x}" y="${y(b.value)}" width="${bw * 0.7}" height="${H - bottom - y(b.value)}" fill="#4a7bd0"/>`;
    s += `<text x="${x + bw * 0.35}" y="${y(b.value) - 4}" text-anchor="middle" font-size="11">${b.value.toFixed(1)}</text>`;
    s += `<text x="${x + bw * 0.35}" y="${H - bottom + 14}" text-anchor="middle" font-size="10">${esc(b.label)}</text>`;
    // the roof: a red dash across the bar's slot, named under the label
    s += `<line x1="${x - 4}" y1="${y(b.roof)}" x2="${x + bw * 0.7 + 4}" y2="${y(b.roof)}" stroke="#d04a4a" stroke-width="2" stroke-dasharray="4,3"/>`;
    s += `<text x="${x + bw * 0.35}" y="${y(b.roof) - 4}" text-anchor="middle" font-size="9" fill="#d04a4a">${b.roof.toFixed(1)}</text>`;
    s += `<text x="${x + bw * 0.35}" y="${H - bottom + 27}" text-anchor="middle" font-size="9" fill="#d04a4a">${esc(b.roofLabel)}</text>`;
  });
  return s + '</g>';
}

export function chart(r: Report): string {
  const label = (row: Row) => `${row.dtype} ${row.threads}t p${row.prefill_tokens}`;
  const decodeRows = r.results.filter((row) => row.decode_tokens_per_s_best > 0);
  const weights = r.weights === 'synthetic' ? 'synthetic weights of the phi-1.5 shapes' : r.weights;
  const cuda = r.cuda_baseline
    ? `CUDA baseline (${r.cuda_baseline.gpu}): decode ${r.cuda_baseline.decode_tokens_per_s.toFixed(1)}, prefill ${r.cuda_baseline.prefill_tokens_per_s.toFixed(0)} tokens/s`
    : 'CUDA baseline: missing';
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="880" height="330" font-family="sans-serif" font-size="12">` +
    `<rect width="880" height="330" fill="white"/>` +
    panel(
      10,
      'decode tokens/s (batch 1) and its roof',
      decodeRows.map((row) => ({
        label: label(row),
        value: row.decode_tokens_per_s_best,
        roof: Math.min(row.memory_roof_tokens_per_s, row.compute_roof_tokens_per_s),
        roofLabel: `${row.decode_bound} roof`,
      })),
    ) +
    panel(
      450,
      'prefill tokens/s and its compute roof',
      r.results.map((row) => ({
        label: label(row),
        value: row.prefill_tokens_per_s_best,
        roof: row.prefill_roof_tokens_per_s,
        roofLabel: 'compute roof',
      })),
    ) +
    `<text x="440" y="300" text-anchor="middle" font-size="11">phi-wasm, phi-1.5 on ${esc(weights)}, ${esc(r.date.slice(0, 10))}, read bandwidth ${r.bandwidth_gb_per_s.toFixed(1)} GB/s</text>` +
    `<text x="440" y="318" text-anchor="middle" font-size="11">${esc(cuda)}</text>` +
    `</svg>\n`
  );
}
