// A dependency-free SVG chart of a bench report: decode and prefill tokens/s per
// configuration, with the memory-bandwidth roofline for decode.
interface Row {
  dtype: string;
  threads: number;
  prefill_tokens: number;
  prefill_tokens_per_s: number;
  decode_tokens_per_s: number;
  decode_context_tokens: number;
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

function panel(
  x0: number,
  title: string,
  bars: { label: string; value: number }[],
  limit: { label: string; value: number } | null,
): string {
  const W = 420;
  const H = 260;
  const top = 40;
  const bottom = 60;
  const max = Math.max(...bars.map((b) => b.value), limit?.value ?? 0) * 1.15 || 1;
  const bw = (W - 40) / Math.max(1, bars.length);
  const y = (v: number) => top + (H - top - bottom) * (1 - v / max);
  let s = `<g transform="translate(${x0},0)"><text x="${W / 2}" y="22" text-anchor="middle" font-weight="bold">${esc(title)}</text>`;
  s += `<line x1="30" y1="${H - bottom}" x2="${W - 10}" y2="${H - bottom}" stroke="#333"/>`;
  bars.forEach((b, i) => {
    const x = 35 + i * bw;
    s += `<rect x="${x}" y="${y(b.value)}" width="${bw * 0.7}" height="${H - bottom - y(b.value)}" fill="#4a7bd0"/>`;
    s += `<text x="${x + bw * 0.35}" y="${y(b.value) - 4}" text-anchor="middle" font-size="11">${b.value.toFixed(1)}</text>`;
    s += `<text x="${x + bw * 0.35}" y="${H - bottom + 14}" text-anchor="middle" font-size="10">${esc(b.label)}</text>`;
  });
  if (limit) {
    s += `<line x1="30" y1="${y(limit.value)}" x2="${W - 10}" y2="${y(limit.value)}" stroke="#d04a4a" stroke-dasharray="5,4"/>`;
    s += `<text x="${W - 12}" y="${y(limit.value) - 4}" text-anchor="end" font-size="10" fill="#d04a4a">${esc(limit.label)}</text>`;
  }
  return s + '</g>';
}

export function chart(r: Report): string {
  const label = (row: Row) => `${row.dtype} ${row.threads}t p${row.prefill_tokens}`;
  const decodeRows = r.results.filter((row) => row.decode_tokens_per_s > 0);
  const f16Bytes = r.weight_bytes_per_token.f16 ?? Object.values(r.weight_bytes_per_token)[0];
  const roof = (r.bandwidth_gb_per_s * 1e9) / f16Bytes;
  const weights = r.weights === 'synthetic' ? 'synthetic weights of the phi-1.5 shapes' : r.weights;
  const cuda = r.cuda_baseline
    ? `CUDA baseline (${r.cuda_baseline.gpu}): decode ${r.cuda_baseline.decode_tokens_per_s.toFixed(1)}, prefill ${r.cuda_baseline.prefill_tokens_per_s.toFixed(0)} tokens/s`
    : 'CUDA baseline: missing';
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="880" height="320" font-family="sans-serif" font-size="12">` +
    `<rect width="880" height="320" fill="white"/>` +
    panel(
      10,
      'decode tokens/s (batch 1)',
      decodeRows.map((row) => ({ label: label(row), value: row.decode_tokens_per_s })),
      {
        label: `f16 roofline ${roof.toFixed(1)} (${r.bandwidth_gb_per_s.toFixed(0)} GB/s)`,
        value: roof,
      },
    ) +
    panel(
      450,
      'prefill tokens/s',
      r.results.map((row) => ({ label: label(row), value: row.prefill_tokens_per_s })),
      null,
    ) +
    `<text x="440" y="290" text-anchor="middle" font-size="11">phi-wasm, phi-1.5 on ${esc(weights)}, ${esc(r.date.slice(0, 10))}</text>` +
    `<text x="440" y="308" text-anchor="middle" font-size="11">${esc(cuda)}</text>` +
    `</svg>\n`
  );
}
