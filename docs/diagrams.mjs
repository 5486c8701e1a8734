// Draws the SVG diagrams of docs/reading.md, so they can be regenerated when the code
// changes:   npm run build && node docs/diagrams.mjs
//   block.svg       the parallel block: one LayerNorm feeding attention and the MLP
//   rotary.svg      partial rotary: the first 32 of 64 dimensions of a head, pairs (i, i+16)
//   kv-cache.svg    the KV cache layout (L, H, T_max, Dh) and what one step appends
//   time.svg        where the time of one decoded token goes (from bench/results/reference-*.json)
//   attention.svg   an attention map of the tiny reference checkpoint, from src/inspect.ts
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const svg = (w, h, body) =>
  `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="13">` +
  `<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#444"/></marker></defs>` +
  `<rect width="${w}" height="${h}" fill="white"/>${body}</svg>\n`;
const box = (x, y, w, h, label, fill = '#e8eefb', sub = '') =>
  `<rect x="${x}" y="${y}" width="${w}" height="${h}" rx="6" fill="${fill}" stroke="#345"/>` +
  `<text x="${x + w / 2}" y="${y + h / 2 + (sub ? -2 : 5)}" text-anchor="middle">${esc(label)}</text>` +
  (sub
    ? `<text x="${x + w / 2}" y="${y + h / 2 + 14}" text-anchor="middle" font-size="11" fill="#555">${esc(sub)}</text>`
    : '');
const arrow = (x1, y1, x2, y2) =>
  `<line x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}" stroke="#444" stroke-width="1.5" marker-end="url(#arrow)"/>`;
const text = (x, y, s, o = {}) =>
  `<text x="${x}" y="${y}" text-anchor="${o.anchor ?? 'middle'}" font-size="${o.size ?? 13}" fill="${o.fill ?? '#222'}"${o.bold ? ' font-weight="bold"' : ''}>${esc(s)}</text>`;

function block() {
  let b = text(
    300,
    24,
    'One Phi decoder layer (src/model/block.ts): attention and MLP in parallel',
    { bold: true },
  );
  b += box(250, 50, 100, 36, 'x', '#fff', '(T, D)');
  b += arrow(300, 86, 300, 116);
  b += box(220, 118, 160, 40, 'input_layernorm', '#fdf1d6', 'h = ln(x), shared');
  b += arrow(270, 158, 160, 200) + arrow(330, 158, 440, 200);
  b += box(60, 202, 200, 56, 'attention(h)', '#e8eefb', 'q,k,v · rotary · KV cache · dense');
  b += box(340, 202, 200, 56, 'mlp(h)', '#e6f4ea', 'fc2(gelu_new(fc1(h)))');
  b += arrow(160, 258, 280, 318) + arrow(440, 258, 320, 318);
  b += `<circle cx="300" cy="330" r="14" fill="#fff" stroke="#345"/>` + text(300, 335, '+');
  // the residual: x straight to the sum
  b += `<path d="M250,68 L30,68 L30,330 L282,330" fill="none" stroke="#888" stroke-dasharray="5,4" marker-end="url(#arrow)"/>`;
  b += text(36, 200, 'residual', { anchor: 'start', size: 11, fill: '#666' });
  b += arrow(300, 344, 300, 374);
  b += box(190, 376, 220, 36, 'x + attn(h) + mlp(h)', '#fff');
  b += text(
    300,
    440,
    'GPT-2 and Llama run attention and MLP one after the other, each with its own norm;',
    { size: 11, fill: '#555' },
  );
  b += text(300, 456, 'Phi runs both on the same ln(x) and adds both to x.', {
    size: 11,
    fill: '#555',
  });
  return svg(600, 470, b);
}

function rotary() {
  const cell = 14;
  const x0 = 40;
  let b = text(
    480,
    24,
    'Partial rotary (NeoX rotate_half) on one head of Dh = 64 (src/model/rotary.ts)',
    { bold: true },
  );
  for (let i = 0; i < 64; i++) {
    const rotated = i < 32;
    b += `<rect x="${x0 + i * cell}" y="60" width="${cell - 1}" height="26" fill="${rotated ? (i < 16 ? '#c9d8f5' : '#f5d0c9') : '#eee'}" stroke="#999" stroke-width="0.5"/>`;
    if (i % 8 === 0 || i === 63)
      b += text(x0 + i * cell + cell / 2, 102, i, { size: 10, fill: '#555' });
  }
  for (const i of [0, 5, 15]) {
    const xa = x0 + i * cell + cell / 2;
    const xb = x0 + (i + 16) * cell + cell / 2;
    b += `<path d="M${xa},60 C${xa},${30 - i} ${xb},${30 - i} ${xb},60" fill="none" stroke="#345" stroke-width="1.2"/>`;
  }
  b += text(
    x0 + 16 * cell,
    130,
    'first R = 32 dims: pairs (i, i + 16) rotate by angle p · θ_i, θ_i = 10000^(-2i/32)',
    { size: 12 },
  );
  b += text(x0 + 48 * cell, 150, 'dims 32..63 pass through', { size: 12, fill: '#666' });
  b += text(
    x0 + 16 * cell,
    172,
    'x[i] ← x[i] cos a − x[i+16] sin a      x[i+16] ← x[i+16] cos a + x[i] sin a',
    { size: 12 },
  );
  b += text(
    x0 + 32 * cell,
    200,
    'Not llama2.c\u2019s interleaved pairs (2i, 2i+1): that order is wrong for Phi.',
    { size: 11, fill: '#a33' },
  );
  return svg(x0 * 2 + 64 * cell, 215, b);
}

function kvCache() {
  let b = text(
    360,
    24,
    'The KV cache of one sequence (src/model/kv_cache.ts): keys and values, (L, H, T_max, Dh)',
    { bold: true },
  );
  const x0 = 60;
  const y0 = 60;
  for (let l = 0; l < 3; l++) {
    const y = y0 + l * 110;
    b += text(x0 - 8, y + 45, l < 2 ? `layer ${l}` : 'layer …', { anchor: 'end', size: 12 });
    for (let h = 0; h < 4; h++) {
      const x = x0 + h * 160;
      b += `<rect x="${x}" y="${y}" width="150" height="90" fill="#f6f8fa" stroke="#345"/>`;
      b += text(x + 75, y - 4, h < 3 ? `head ${h}` : 'head …', { size: 11, fill: '#555' });
      for (let p = 0; p < 9; p++) {
        const filled = p < 6;
        const now = p === 6;
        b += `<rect x="${x + 6}" y="${y + 6 + p * 9}" width="138" height="7" fill="${filled ? '#9fb8e8' : now ? '#e8a09f' : '#fff'}" stroke="#ccc" stroke-width="0.5"/>`;
      }
    }
  }
  b += text(
    x0 + 320,
    y0 + 340,
    'each row: one position\u2019s Dh = 64 values; blue: positions 0..p−1 already cached; red: this step appends position p',
    { size: 11 },
  );
  b += text(
    x0 + 320,
    y0 + 358,
    'head-major, so attention reads one head\u2019s keys for all positions as one stream',
    { size: 11, fill: '#555' },
  );
  b += text(
    x0 + 320,
    y0 + 376,
    'phi-1.5: 2 · 24 · 2048 · 2048 · 4 bytes = 768 MiB at the full 2048 context (f32); --context N allocates less',
    { size: 11, fill: '#555' },
  );
  return svg(720, 450, b);
}

function timePerToken() {
  const refs = readdirSync(path.join(ROOT, 'bench', 'results'))
    .filter((f) => /^reference-.*\.json$/.test(f))
    .sort();
  const ref = refs.length
    ? JSON.parse(readFileSync(path.join(ROOT, 'bench', 'results', refs[refs.length - 1]), 'utf8'))
    : null;
  const profile = ref?.profile ?? null;
  let b = text(360, 24, 'Where the time of one decoded token goes (phi-1.5, 2 threads)', {
    bold: true,
  });
  if (!profile)
    return svg(
      720,
      60,
      b + text(360, 48, 'no profile in bench/results/reference-*.json', { size: 12 }),
    );
  const rows = Object.entries(profile.ms_per_token).sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((n, [, v]) => n + v, 0);
  rows.forEach(([name, ms], i) => {
    const y = 50 + i * 26;
    const w = (ms / total) * 480;
    b += text(200, y + 14, name, { anchor: 'end', size: 12 });
    b += `<rect x="210" y="${y}" width="${w}" height="18" fill="#4a7bd0"/>`;
    b += text(216 + w, y + 14, `${ms.toFixed(2)} ms (${((100 * ms) / total).toFixed(0)}%)`, {
      anchor: 'start',
      size: 11,
    });
  });
  const y = 60 + rows.length * 26;
  b += text(
    360,
    y + 10,
    `${profile.dtype}, ${profile.backend}, node ${profile.node}: ${total.toFixed(1)} ms a token; measured by ${profile.command}`,
    { size: 11, fill: '#555' },
  );
  return svg(720, y + 24, b);
}

async function attentionMap() {
  const { loadPhi, inspect } = await import('../dist/src/node/index.js');
  const phi = await loadPhi(path.join(ROOT, 'test', 'fixtures', 'tiny-phi-f32-hot'), {
    threads: 1,
  });
  const prompt = 'def print_prime(n):\n   """Print all primes"""';
  const ids = phi.encode(prompt);
  const T = ids.length;
  const { attention } = inspect(phi, ids, 1, 2);
  const tokens = ids.map((id) => JSON.stringify(phi.decode([id])).slice(1, -1));
  phi.close();
  const cell = 22;
  const m = 110;
  const width = Math.max(640, m + cell * T + 20);
  let b = text(
    10,
    20,
    'Attention of layer 1, head 2, on a prompt (tiny-phi-f32-hot, random weights)',
    { anchor: 'start', bold: true, size: 12 },
  );
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < T; j++) {
      const v = j <= t ? attention[t * T + j] : 0;
      b += `<rect x="${m + j * cell}" y="${m + t * cell}" width="${cell - 1}" height="${cell - 1}" fill="${j <= t ? `rgba(40,90,200,${Math.sqrt(v).toFixed(3)})` : '#f3f3f3'}"/>`;
    }
    b += text(m - 6, m + t * cell + cell * 0.7, tokens[t], { anchor: 'end', size: 11 });
    b += `<text transform="translate(${m + t * cell + cell * 0.65},${m - 6}) rotate(-90)" font-size="11">${esc(tokens[t])}</text>`;
  }
  b += text(10, m - 30, 'key →', { anchor: 'start', size: 12, bold: true });
  b += text(10, m - 14, 'query ↓', { anchor: 'start', size: 12, bold: true });
  b += text(
    10,
    m + cell * T + 22,
    'row t: how much query token t attends to each key token j <= t (causal: none after t)',
    { anchor: 'start', size: 11, fill: '#555' },
  );
  return svg(width, m + cell * T + 36, b);
}

const out = {
  'block.svg': block(),
  'rotary.svg': rotary(),
  'kv-cache.svg': kvCache(),
  'time.svg': timePerToken(),
  'attention.svg': await attentionMap(),
};
for (const [f, s] of Object.entries(out)) writeFileSync(path.join(HERE, f), s);
console.log(
  `wrote ${Object.keys(out)
    .map((f) => `docs/${f}`)
    .join(', ')}`,
);
