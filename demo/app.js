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
for (const name of ['text', 'inside', 'teach']) $(`tab-${name}`).onclick = () => tab(name);
function tab(name) {
  for (const n of ['text', 'inside', 'teach']) {
    $(`view-${n}`).hidden = n !== name;
    $(`tab-${n}`).classList.toggle('on', n === name);
  }
}

// "teach it": train an adapter on the pasted text in the engine's worker, with a live loss chart
$('teach-file').onchange = async (e) => {
  const f = e.target.files[0];
  if (f) $('teach-data').value = await f.text();
};
$('train').onclick = () => {
  state.losses = [];
  state.trained = null;
  drawLoss([]);
  $('train').disabled = $('generate').disabled = true;
  $('train-stop').disabled = false;
  $('train-files').textContent = '';
  $('train-status').textContent = 'starting...';
  engine.postMessage({
    type: 'train',
    data: $('teach-data').value,
    options: {
      steps: Number($('teach-steps').value),
      lr: Number($('teach-lr').value),
      rank: Number($('teach-rank').value),
      alpha: 2 * Number($('teach-rank').value),
      seq: Number($('teach-seq').value),
    },
  });
};
$('train-stop').onclick = () => engine.postMessage({ type: 'stop' });

/** The loss of each step so far: a line over steps 1..n, the axis from the lowest to the highest. */
function drawLoss(losses) {
  const c = $('loss-chart');
  const g = c.getContext('2d');
  g.clearRect(0, 0, c.width, c.height);
  const [left, top, w, h] = [44, 10, c.width - 54, c.height - 30];
  g.strokeStyle = '#bbb';
  g.strokeRect(left, top, w, h);
  g.fillStyle = '#333';
  g.font = '11px sans-serif';
  if (!losses.length) return;
  const [lo, hi] = [Math.min(...losses), Math.max(...losses)];
  const span = hi - lo || 1;
  const x = (i) => left + (losses.length === 1 ? w / 2 : (i / (losses.length - 1)) * w);
  const y = (v) => top + h - ((v - lo) / span) * h;
  g.fillText(hi.toFixed(2), 2, top + 8);
  g.fillText(lo.toFixed(2), 2, top + h);
  g.fillText(`step ${losses.length}, loss ${losses.at(-1).toFixed(3)}`, left + 4, top + h + 16);
  g.strokeStyle = 'rgb(40, 90, 200)';
  g.beginPath();
  losses.forEach((v, i) => (i ? g.lineTo(x(i), y(v)) : g.moveTo(x(i), y(v))));
  g.stroke();
}

/** A link that downloads bytes (or text) as a file. */
function download(name, data) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([data]));
  a.download = name;
  a.textContent = name;
  return a;
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
    $('adapter').disabled = $('train').disabled = false;
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
  } else if (m.type === 'training') {
    $('train-status').textContent =
      `${m.parameters.toLocaleString('en')} LoRA parameters, ${m.steps} steps; ${m.memory}`;
    state.trainSteps = m.steps;
  } else if (m.type === 'step') {
    state.losses.push(m.loss);
    drawLoss(state.losses);
    $('train-status').textContent =
      `step ${m.step}/${state.trainSteps}, loss ${m.loss.toFixed(4)}, ` +
      `${m.tokensPerS.toFixed(1)} tokens/s, ${Math.round(m.secondsLeft)} s left`;
  } else if (m.type === 'trained') {
    state.trained = m.summary;
    state.adapter = m.summary;
    $('train').disabled = $('generate').disabled = false;
    $('train-stop').disabled = true;
    $('no-adapter').disabled = false;
    $('adapter-status').textContent = `generating with the adapter: ${m.summary}`;
    $('train-status').textContent += ` — done: ${m.summary}. Generate to try it.`;
    // the adapter in PEFT's layout: both files in one folder load with phi --adapter or PEFT
    $('train-files').replaceChildren(
      'save the adapter (PEFT): ',
      ...Object.entries(m.files).flatMap(([name, data]) => [download(name, data), ' ']),
    );
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
    else if (m.during === 'train') $('train-status').textContent = 'error: ' + m.message;
    else $('done').textContent = 'error: ' + m.message;
    $('generate').disabled = $('train').disabled = !state.loaded;
    $('stop').disabled = $('train-stop').disabled = true;
  }
};
