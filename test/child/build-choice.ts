// Child process of test/build-choice.test.ts: load the same checkpoint through the core entry
// (loadPhiFrom) and the Node entry (loadPhi) in the order given by argv[2], and print which
// kernel build each got and its logits. A fresh process, so nothing earlier can have changed
// V8's flags.
import { loadPhiFrom } from '../../src/load.js';
import { dirFiles, loadPhi } from '../../src/node/index.js';
import { fixture, NODE } from '../helpers.js';

const ids = [4299, 3601, 62, 35505, 7, 77];
const dir = fixture('tiny-phi-f32');
const viaCore = () => loadPhiFrom(dirFiles(dir), { ...NODE, threads: 1 });
const viaNode = () => loadPhi(dir, { threads: 1 });
const order = process.argv[2] === 'node-first' ? [viaNode, viaCore] : [viaCore, viaNode];
const out: { backend: string; logits: number[] }[] = [];
for (const load of order) {
  const phi = await load();
  out.push({ backend: phi.model.kernels.name, logits: Array.from(phi.logits(ids)) });
  phi.close();
}
process.stdout.write(JSON.stringify(out) + '\n');
