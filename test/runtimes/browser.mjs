// Headless Chromium (Debian's chromium package, driven by playwright-core) runs
// test/runtimes/browser.html from the demo server; prints one JSON line like e2e.mjs.
import { chromium } from 'playwright-core';
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';
import { startServer } from '../../demo/server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const server = await startServer(0);
const { port } = server.address();
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--no-first-run',
  ],
});
let result;
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(`http://127.0.0.1:${port}/test/runtimes/browser.html`);
  await page.waitForFunction(() => window.__result, null, { timeout: 120_000 });
  result = await page.evaluate(() => window.__result);
  await page.screenshot({ path: path.join(here, 'browser.png') });
} finally {
  await browser.close();
  server.close();
}
console.log(JSON.stringify(result));
process.exit(result?.ok ? 0 : 1);
