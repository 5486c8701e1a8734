// The demo page in headless Chromium: load the tiny fixture by URL, generate from the Code
// example, and check that the streamed text equals what Node produces; pick a LoRA adapter
// folder and check the same with it; then open the "what the model did" view. Screenshots:
// test/runtimes/demo.png, demo-inside.png.
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';
import { openChromium } from './chromium.mjs';
import { FORMATS, loadPhi } from '../../dist/src/node/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = path.join(here, '..', 'fixtures', 'tiny-phi-f16');
const prompt = 'def print_prime(n):\n   """\n   Print all primes between 1 and n\n   """';
const adapterDir = path.join(here, '..', 'fixtures', 'lora', 'tiny-phi-f32-r4'); // tiny shapes
const node = await loadPhi(fixture, { adapters: { a: adapterDir } });
const asked = { maxNewTokens: 20, temperature: 0, stop: FORMATS.code.stop };
const want = await node.complete(prompt, asked);
const wantAdapted = await node.complete(prompt, { ...asked, adapter: 'a' });
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
  const ok =
    !got.error &&
    got.text === want.text &&
    JSON.stringify(got.ids) === JSON.stringify(want.ids) &&
    !adapted.error &&
    adapted.text === wantAdapted.text &&
    wantAdapted.text !== want.text;
  result = {
    runtime: 'chromium demo page',
    ok,
    status,
    page_text: got.text,
    node_text: want.text,
    page_text_with_adapter: adapted.text,
    node_text_with_adapter: wantAdapted.text,
    error: got.error ?? adapted.error,
  };
} finally {
  await close();
}
console.log(JSON.stringify(result));
process.exit(result?.ok ? 0 : 1);
