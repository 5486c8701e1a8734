// Runs in a Web Worker (browsers let only workers block on Atomics.wait, so the engine with
// threads lives in a worker): load the fixture over HTTP, greedy-generate, post the result.
import { loadPhiFrom, urlFiles } from '../../build/browser/index.js'; // the browser bundle (npm run build)
import { constrainedCase } from './constrained-case.mjs';
import { trainLosses } from './train-case.mjs';

onmessage = async (e) => {
  const { base, threads, ids, maxNewTokens } = e.data;
  try {
    const phi = await loadPhiFrom(urlFiles(base), { backend: 'wasm', threads });
    const r = await phi.complete({ ids }, { maxNewTokens, stopAtEos: false });
    const pieces = [];
    for await (const p of phi.generate('def print_prime(n):', { maxNewTokens: 8 }))
      pieces.push(p.text);
    // the constrained case: XGrammar fetched from beside the bundle
    const constrained = threads === 2 ? await constrainedCase(phi) : null;
    const training = await trainLosses(phi); // the fine-tune every runtime runs
    postMessage({
      threads,
      training,
      constrained,
      backend: phi.model.kernels.name,
      ids: r.ids,
      text: pieces.join(''),
      isolated: self.crossOriginIsolated,
    });
    phi.close();
  } catch (err) {
    postMessage({ threads, error: String(err?.stack ?? err) });
  }
};
