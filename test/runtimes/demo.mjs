// The demo page in headless Chromium: load the tiny fixture by URL, generate from the Code
// example, and check that the streamed text equals what Node produces; pick a LoRA adapter
// folder and check the same with it; then open the "what the model did" view; then "teach it":
// train an adapter in the page on pasted JSONL, with its live loss chart, whose losses must be
// Node's for the same run, and generate with it. Screenshots: test/runtimes/demo.png,
// demo-inside.png, demo-teach.png.
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';
import { openChromium } from './chromium.mjs';
import { TRAIN_OPTIONS, TRAIN_RECORDS } from './train-case.mjs';
import { FORMATS, loadPhi } from '../../dist/src/node/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = path.join(here, '..', 'fixtures', 'tiny-phi-f16');
const prompt = 'def print_prime(n):\n   """\n   Print all primes between 1 and n\n   """';
const adapterDir = path.join(here, '..', 'fixtures', 'lora', 'tiny-phi-f32-r4'); // tiny shapes
const node = await loadPhi(fixture, { adapters: { a: adapterDir } });
const asked = { maxNewTokens: 20, temperature: 0, stop: FORMATS.code.stop };
const want = await node.complete(prompt, asked);
const wantAdapted = await node.complete(prompt, { ...asked, adapter: 'a' });
// "teach it": the page's defaults but 8 steps, on the run every runtime trains
const teach = { ...TRAIN_OPTIONS, steps: 8, lr: 1e-3, rank: 8, alpha: 16, seq: 64 };
delete teach.dropout; // the page leaves it at its default
const teachData = TRAIN_RECORDS.map((r) => JSON.stringify(r)).join('\n');
const taught = node.finetune(teachData, teach);
const wantLosses = [];
for await (const m of taught) wantLosses.push(m.loss);
node.addAdapter('taught', taught.adapter());
const wantTaught = await node.complete(prompt, { ...asked, adapter: 'taught' });
node.close();

const { browser, origin, close } = await openChromium();
let result;
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(`${origin}/`);
  await page.fill('#url', '/test/fixtures/tiny-phi-f16');
  await page.click('#load-url');
  await page.waitForFunction(() => window.demo.loaded || window.demo.error, null, {
    timeout: 60_000,
  });
  await page.click('[data-example=code]');
  await page.fill('#max', '20');
  await page.click('#generate');
  await page.waitForFunction(() => window.demo.ids || window.demo.error, null, { timeout: 60_000 });
  const got = await page.evaluate(() => ({
    text: window.demo.text,
    ids: window.demo.ids,
    error: window.demo.error,
  }));
  const status = await page.textContent('#model-status');
  await page.screenshot({ path: path.join(here, 'demo.png') });
  // the adapter folder, as a user picks it (only its two PEFT files matter)
  await page.setInputFiles('#adapter', adapterDir);
  await page.waitForFunction(() => window.demo.adapter || window.demo.error, null, {
    timeout: 60_000,
  });
  await page.evaluate(() => (window.demo.ids = null));
  await page.click('#generate');
  await page.waitForFunction(() => window.demo.ids || window.demo.error, null, { timeout: 60_000 });
  const adapted = await page.evaluate(() => ({ text: window.demo.text, error: window.demo.error }));
  await page.click('#tab-inside');
  await page.selectOption('#layer', '1');
  await page.click('#inspect');
  await page.waitForFunction(() => window.demo.inspected, null, { timeout: 60_000 });
  await page.screenshot({ path: path.join(here, 'demo-inside.png') });
  // teach it: paste, train, watch the chart, generate with what it learned
  await page.click('#tab-teach');
  await page.fill('#teach-data', teachData);
  await page.fill('#teach-steps', String(teach.steps));
  await page.click('#train');
  await page.waitForFunction(() => window.demo.trained || window.demo.error, null, {
    timeout: 120_000,
  });
  const teachStatus = await page.textContent('#train-status');
  const files = await page.$$eval('#train-files a', (as) => as.map((a) => a.download));
  await page.screenshot({ path: path.join(here, 'demo-teach.png') });
  const losses = await page.evaluate(() => window.demo.losses);
  await page.evaluate(() => (window.demo.ids = null));
  await page.click('#tab-text');
  await page.click('#generate');
  await page.waitForFunction(() => window.demo.ids || window.demo.error, null, { timeout: 60_000 });
  const afterTeach = await page.evaluate(() => ({
    text: window.demo.text,
    error: window.demo.error,
  }));
  const lossesMatch =
    losses.length === wantLosses.length &&
    losses.every((v, i) => Math.abs(v - wantLosses[i]) <= 1e-6 * wantLosses[i]);
  const ok =
    !got.error &&
    got.text === want.text &&
    JSON.stringify(got.ids) === JSON.stringify(want.ids) &&
    !adapted.error &&
    adapted.text === wantAdapted.text &&
    wantAdapted.text !== want.text &&
    lossesMatch &&
    losses.at(-1) < losses[0] &&
    files.join() === 'adapter_config.json,adapter_model.safetensors' &&
    !afterTeach.error &&
    afterTeach.text === wantTaught.text &&
    wantTaught.text !== want.text;
  result = {
    runtime: 'chromium demo page',
    ok,
    status,
    page_text: got.text,
    node_text: want.text,
    page_text_with_adapter: adapted.text,
    node_text_with_adapter: wantAdapted.text,
    teach: { status: teachStatus, losses, node_losses: wantLosses, files },
    page_text_taught: afterTeach.text,
    node_text_taught: wantTaught.text,
    error: got.error ?? adapted.error ?? afterTeach.error,
  };
} finally {
  await close();
}
console.log(JSON.stringify(result));
process.exit(result?.ok ? 0 : 1);
