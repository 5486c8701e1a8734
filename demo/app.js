// The demo page: sends work to the engine worker, streams its answers into the page.
const $ = (id) => document.getElementById(id);
const engine = new Worker('./engine.js', { type: 'module' });
const EXAMPLES = {
  qa: 'What is the meaning of life?\nAnswer:',
  chat: "Alice: I don't know why, I'm struggling to maintain focus while studying. Any suggestions?\nBob:",
  code: 'def print_prime(n):\n   """\n   Print all primes between 1 and n\n   """',
};
// the formats' templates and stops are the library's (src/prompts.ts): the engine applies them
let format = 'code';
$('prompt').value = EXAMPLES.code;
for (const b of document.querySelectorAll('[data-example]')) {
  b.onclick = () => {
    format = b.dataset.example;
    $('prompt').value = EXAMPLES[format];
  };
}

const state = { text: '', busy: false };
window.demo = state; // for the Playwright test

// the models the demo server found (weights/ and the Hugging Face cache): the first is the default
fetch('/models.json')
  .then((r) => (r.ok ? r.json() : []))
  .then((models) => {
    $('models').innerHTML = models
      .map((m) => `<option value="${m.url}">${m.name.replace(/</g, '&lt;')}</option>`)
      .join('');
    // unless someone typed a URL meanwhile
    if (models.length > 0 && $('url').value === $('url').defaultValue)
      $('url').value = models[0].url;
    state.models = models;
  })
  .catch(() => {});

function load(message) {
  $('model-status').textContent = 'loading...';
  $('progress').value = 0;
  $('generate').disabled = $('inspect').disabled = true;
  engine.postMessage({
    ...message,
    type: 'load',
    dtype: $('dtype').value,
    threads: navigator.hardwareConcurrency || 1,
  });
}
$('load-url').onclick = () => load({ url: new URL($('url').value, location.href).href });
$('folder').onchange = async (e) => {
  const files = {};
  for (const f of e.target.files) files[f.name] = new Uint8Array(await f.arrayBuffer());
  load({ files });
};

// an adapter folder picked beside the model: loaded unmerged, used by every generation until
// "base model" unloads it
$('adapter').onchange = async (e) => {
  const files = {};
  for (const f of e.target.files) files[f.name] = new Uint8Array(await f.arrayBuffer());
  $('adapter-status').textContent = 'loading adapter...';
  engine.postMessage({ type: 'adapter', files });
};
$('no-adapter').onclick = () => engine.postMessage({ type: 'adapter', files: null });

$('generate').onclick = () => {
  state.text = '';
  state.busy = true;
  $('output').innerHTML = '';
  const p = document.createElement('span');
  p.className = 'prompt';
  p.textContent = $('prompt').value;
  $('output').append(p);
  $('done').textContent = '';
  $('generate').disabled = true;
  $('stop').disabled = false;
  engine.postMessage({
    type: 'generate',
    prompt: $('prompt').value,
    // the examples are already in their format; the engine adds the format's stop strings
    format,
    options: {
      maxNewTokens: Number($('max').value),
      temperature: Number($('temp').value),
    },
  });
};
$('stop').onclick = () => engine.postMessage({ type: 'stop' });
$('inspect').onclick = () =>
  engine.postMessage({
    type: 'inspect',
    prompt: $('prompt').value,
    layer: Number($('layer').value),
    head: Number($('head').value),
  });
$('tab-text').onclick = () => tab(false);
$('tab-inside').onclick = () => tab(true);
function tab(inside) {
  $('view-text').hidden = inside;
  $('view-inside').hidden = !inside;
  $('tab-text').classList.toggle('on', !inside);
  $('tab-inside').classList.toggle('on', inside);
}

// The attention map of one head: row t is query token t, column j key token j; a darker cell
// means t attends more to j. The tokens label both axes.
function drawAttention(att, tokens) {
  const T = tokens.length;
  const c = $('attention');
  const cell = Math.max(4, Math.min(24, Math.floor(420 / T)));
  const margin = 96; // room for the token labels
  c.width = c.height = margin + cell * T + 4;
  const g = c.getContext('2d');
  g.clearRect(0, 0, c.width, c.height);
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < T; j++) {
      const v = j <= t ? att[t * T + j] : 0;
      g.fillStyle = j <= t ? `rgba(40, 90, 200, ${Math.sqrt(v)})` : '#f3f3f3';
      g.fillRect(margin + j * cell, margin + t * cell, cell, cell);
    }
  }
  const label = (tok) => JSON.stringify(tok).slice(1, -1).slice(0, 12);
  g.fillStyle = '#333';
  g.font = `${Math.min(12, cell)}px monospace`;
  g.textBaseline = 'middle';
  g.textAlign = 'right';
  tokens.forEach((tok, t) => g.fillText(label(tok), margin - 4, margin + t * cell + cell / 2));
  tokens.forEach((tok, j) => {
    g.save();
    g.translate(margin + j * cell + cell / 2, margin - 4);
    g.rotate(-Math.PI / 2);
    g.textAlign = 'left';
    g.fillText(label(tok), 0, 0);
    g.restore();
  });
  g.font = 'bold 11px sans-serif';
  g.textAlign = 'left';
  g.fillText('key →', 4, 10);
  g.fillText('query ↓', 4, 24);
}

engine.onmessage = ({ data: m }) => {
  if (m.type === 'progress') {
    $('progress').value = m.loaded / m.total;
    $('model-status').textContent =
      `loading weights: ${(m.loaded / 1e6).toFixed(0)} / ${(m.total / 1e6).toFixed(0)} MB`;
  } else if (m.type === 'loaded') {
    $('progress').value = 1;
    $('model-status').textContent =
      `${m.summary}; ${m.backend}` +
      (m.isolated ? '' : ' (no cross-origin isolation: one thread)') +
      `; loaded in ${m.seconds.toFixed(1)} s`;
    $('generate').disabled = $('inspect').disabled = false;
    $('adapter').disabled = false;
    $('no-adapter').disabled = true;
    $('adapter-status').textContent = '';
    $('layer').innerHTML = [...Array(m.layers).keys()].map((l) => `<option>${l}</option>`).join('');
    $('head').innerHTML = [...Array(m.heads).keys()].map((h) => `<option>${h}</option>`).join('');
    state.loaded = true;
  } else if (m.type === 'adapter') {
    state.adapter = m.summary;
    $('adapter-status').textContent = m.summary ? `generating with the adapter: ${m.summary}` : '';
    $('no-adapter').disabled = !m.summary;
  } else if (m.type === 'piece') {
    state.text += m.text;
    $('output').append(m.text);
    $('speed').textContent = `${m.tokensPerS.toFixed(1)} tokens/s`;
  } else if (m.type === 'done') {
    state.busy = false;
    state.ids = m.ids;
    $('generate').disabled = false;
    $('stop').disabled = true;
    $('done').textContent =
      `${m.ids.length} tokens (${m.stop}); prefill ${m.prefill.toFixed(1)} tokens/s, decode ${m.decode.toFixed(1)} tokens/s`;
  } else if (m.type === 'inspection') {
    drawAttention(m.attention, m.tokens);
    $('tokens').textContent = 'tokens: ' + m.tokens.map((t) => JSON.stringify(t)).join(' ');
    $('candidates').innerHTML =
      '<tr><td><b>next token</b></td><td><b>p</b></td></tr>' +
      m.candidates
        .map(
          (c) =>
            `<tr><td>${JSON.stringify(c.text).replace(/</g, '&lt;')}</td><td>${(c.p * 100).toPrecision(2)}%</td></tr>`,
        )
        .join('');
    state.inspected = m.candidates.length;
  } else if (m.type === 'error') {
    state.busy = false;
    state.error = m.message;
    // a failed load says so where the model's status is; a failed generation or inspection
    // says so under its output, and the model stays loaded
    if (m.during === 'load') {
      state.loaded = false;
      $('model-status').textContent = 'error: ' + m.message;
    } else if (m.during === 'inspect') $('tokens').textContent = 'error: ' + m.message;
    else if (m.during === 'adapter') $('adapter-status').textContent = 'error: ' + m.message;
    else $('done').textContent = 'error: ' + m.message;
    $('generate').disabled = !state.loaded;
    $('stop').disabled = true;
  }
};
