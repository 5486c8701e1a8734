// Headless Chromium (Debian's chromium package, driven by playwright-core) runs
// test/runtimes/browser.html from the demo server; prints one JSON line like e2e.mjs.
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';
import { openChromium } from './chromium.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const { browser, origin, close } = await openChromium();
let result;
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(`${origin}/test/runtimes/browser.html`);
  await page.waitForFunction(() => window.__result, null, { timeout: 120_000 });
  result = await page.evaluate(() => window.__result);
  await page.screenshot({ path: path.join(here, 'browser.png') });
} finally {
  await close();
}
console.log(JSON.stringify(result));
process.exit(result?.ok ? 0 : 1);
