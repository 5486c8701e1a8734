// Debian's Chromium, headless, through playwright-core (no browser download), plus the demo
// server on a free port: what browser.mjs and demo.mjs share.
import { chromium } from 'playwright-core';
import { startServer } from '../../demo/server.mjs';

/** Debian's Chromium (or $CHROMIUM), headless, quiet: every browser test starts it this way. */
export function launchChromium() {
  return chromium.launch({
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
}

export async function openChromium() {
  const server = await startServer(0);
  const browser = await launchChromium();
  return {
    browser,
    origin: `http://127.0.0.1:${server.address().port}`,
    close: async () => {
      await browser.close();
      server.close();
    },
  };
}
