// The demo's engine, in a Web Worker: the page stays responsive and the worker may block on
// Atomics.wait for its kernel threads. Messages in: load, generate, inspect, adapter, train,
// stop. Messages out: progress, loaded, piece, done, inspection, adapter, step, trained, error.
import {
  adapterFolderFiles,
  FORMATS,
  inspect,
  loadPhiFrom,
  memoryFiles,
  urlFiles,
} from '../build/browser/index.js';

let phi = null;
let adapter = null; // the picked LoRA adapter's name, when one is loaded
let abort = null;
let current = null; // the running generation

const send = (type, data = {}) => postMessage({ type, ...data });

onmessage = async ({ data: m }) => {
  try {
    if (m.type === 'load') {
      phi?.close();
      phi = null;
      adapter = null;
      const files = m.files ? memoryFiles('picked folder', m.files) : urlFiles(m.url);
      const threads = self.crossOriginIsolated ? m.threads : 1;
      const t0 = performance.now();
      phi = await loadPhiFrom(files, {
        threads,
        dtype: m.dtype,
        maxPositions: 512,
        onProgress: (loaded, total) => send('progress', { loaded, total }),
      });
      const c = phi.config;
      send('loaded', {
        backend: phi.model.kernels.name,
        isolated: self.crossOriginIsolated,
        seconds: (performance.now() - t0) / 1000,
        layers: c.numLayers,
        heads: c.numHeads,
        summary: `${c.numLayers} layers, ${c.numHeads} heads x ${c.headDim}, hidden ${c.hiddenSize}, vocab ${c.vocabSize}`,
      });
    } else if (m.type === 'generate') {
      abort = new AbortController();
      const stop = FORMATS[m.format]?.stop ?? [];
      const run = phi.generate(m.prompt, { ...m.options, stop, signal: abort.signal, adapter });
      current = run;
      const t0 = performance.now();
      let n = 0;
      for await (const p of run) {
        n++;
        send('piece', {
          text: p.text,
          id: p.id,
          tokensPerS: n / ((performance.now() - t0) / 1000),
        });
      }
      const r = await run.result();
      send('done', {
        ids: r.ids,
        text: r.text,
        stop: r.stopMessage,
        prefill: r.prefillTokensPerS,
        decode: r.decodeTokensPerS,
      });
    } else if (m.type === 'adapter') {
      await current?.result().catch(() => {}); // not while a generation runs with the old one
      if (adapter) phi.unloadAdapter(adapter);
      adapter = null;
      if (m.files) {
        await phi.loadAdapter('picked', memoryFiles('picked adapter folder', m.files));
        adapter = 'picked';
      }
      const info = adapter ? phi.adapterInfo(adapter) : null;
      send('adapter', {
        summary: info
          ? `rank ${info.r}, alpha ${info.lora_alpha}, on ${info.targets.join(', ')}`
          : null,
      });
    } else if (m.type === 'train') {
      // "teach it": a LoRA adapter trained here on the pasted text (train/finetune.ts), then
      // used by every generation, as a picked one would be
      await current?.result().catch(() => {});
      abort = new AbortController();
      const text = m.data.trim();
      // JSONL records ({"text"} or {"prompt", "completion"}) when it looks like them, else text
      const data = text.startsWith('{') ? text : [{ text }];
      const run = phi.finetune(data, { ...m.options, signal: abort.signal });
      const mem = run.memory;
      send('training', {
        steps: run.options.steps,
        parameters: run.params.count(),
        memory: `${(mem.total / 2 ** 20).toFixed(0)} MiB, activations ${mem.keep ? 'kept' : 'recomputed'}`,
      });
      for await (const s of run)
        send('step', {
          step: s.step,
          loss: s.loss,
          tokensPerS: s.tokensPerSecond,
          secondsLeft: s.secondsLeft,
        });
      if (adapter) phi.unloadAdapter(adapter);
      const tuned = run.adapter();
      phi.addAdapter('taught', tuned);
      adapter = 'taught';
      const o = run.options;
      const files = adapterFolderFiles(tuned, 'microsoft/phi-1_5', { lora_dropout: o.dropout });
      send('trained', {
        steps: run.log.length,
        summary: `taught here: rank ${o.rank}, alpha ${o.alpha}, ${run.log.length} steps`,
        files,
      });
    } else if (m.type === 'stop') {
      abort?.abort();
    } else if (m.type === 'inspect') {
      // the model has one slot: a running generation finishes first
      await current?.result().catch(() => {});
      const ids = phi.encode(m.prompt).slice(-phi.model.state.maxBatch);
      const r = inspect(phi, ids, m.layer, m.head);
      // top next-token candidates with their probabilities
      const V = r.logits.length;
      let max = -Infinity;
      for (let i = 0; i < V; i++) max = Math.max(max, r.logits[i]);
      let sum = 0;
      for (let i = 0; i < V; i++) sum += Math.exp(r.logits[i] - max);
      const top = [...r.logits.keys()].sort((a, b) => r.logits[b] - r.logits[a]).slice(0, 10);
      send('inspection', {
        tokens: ids.map((id) => phi.decode([id])),
        attention: r.attention,
        candidates: top.map((id) => ({
          id,
          text: phi.decode([id]),
          p: Math.exp(r.logits[id] - max) / sum,
        })),
      });
    }
  } catch (e) {
    send('error', { during: m.type, message: String(e?.message ?? e) });
  }
};
