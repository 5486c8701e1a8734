// The demo page: sends work to the engine worker, streams its answers into the page.
const $ = (id) => document.getElementById(id);
const engine = new Worker('./engine.js', { type: 'module' });
const EXAMPLES = {
  qa: 'What is the meaning of life?\nAnswer:',
  chat: "Alice: I don't know why, I'm struggling to maintain focus while studying. Any suggestions?\nBob:",
  code: 'def print_prime(n):\n   """\n   Print all primes between 1 and n\n   """',
};
const STOPS = { qa: ['\n\n'], chat: ['\nAlice:'], code: ['\ndef ', '\nclass ', '\nif __name__'] };
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
    options: {
      maxNewTokens: Number($('max').value),
      temperature: Number($('temp').value),
      stop: STOPS[format],
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

function drawAttention(att, T) {
  const c = $('attention');
  const cell = Math.max(1, Math.floor(320 / T));
  c.width = c.height = cell * T;
  const g = c.getContext('2d');
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < T; j++) {
      const v = j <= t ? att[t * T + j] : 0;
      g.fillStyle = j <= t ? `rgba(40, 90, 200, ${Math.sqrt(v)})` : '#f3f3f3';
      g.fillRect(j * cell, t * cell, cell, cell);
    }
  }
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
    $('layer').innerHTML = [...Array(m.layers).keys()].map((l) => `<option>${l}</option>`).join('');
    $('head').innerHTML = [...Array(m.heads).keys()].map((h) => `<option>${h}</option>`).join('');
    state.loaded = true;
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
    drawAttention(m.attention, m.tokens.length);
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
    $('model-status').textContent = 'error: ' + m.message;
    $('generate').disabled = !state.loaded;
    $('stop').disabled = true;
  }
};
