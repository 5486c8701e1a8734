// The official `openai` SDK in Chromium against `phi serve --cors ORIGIN --api-key KEY`, from
// a page on another origin: the preflight must allow the headers the SDK sends (x-stainless-*)
// and answer without the key. Prints one JSON line with ok: true when a completion, a chat
// and a stream come back.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { launchChromium } from './chromium.mjs';
import { startServer } from '../../demo/server.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const site = mkdtempSync(path.join(tmpdir(), 'phi-cors-'));
mkdirSync(path.join(site, 'page'));
const pages = await startServer(0, { isolate: false, mounts: { page: path.join(site, 'page') } });
const origin = `http://127.0.0.1:${pages.address().port}`;

const child = spawn(
  process.execPath,
  [
    path.join(ROOT, 'bin', 'phi.js'),
    'serve',
    '--model',
    path.join(ROOT, 'test', 'fixtures', 'tiny-phi-f32'),
    '--port',
    '0',
    '--threads',
    '1',
    '--cors',
    origin,
    '--api-key',
    'sesame',
  ],
  { stdio: ['ignore', 'ignore', 'pipe'] },
);
let log = '';
const api = await new Promise((resolve, reject) => {
  child.stderr.on('data', (d) => {
    log += d;
    const m = /ready: (http:\/\/[^/\s]+)/.exec(log);
    if (m) resolve(m[1]);
  });
  child.on('exit', () => reject(new Error(log)));
});

writeFileSync(
  path.join(site, 'main.js'),
  `import OpenAI from 'openai';
const client = new OpenAI({ baseURL: ${JSON.stringify(`${api}/v1`)}, apiKey: 'sesame', dangerouslyAllowBrowser: true, maxRetries: 0 });
try {
  const models = await client.models.list();
  const c = await client.completions.create({ model: 'phi-1_5', prompt: 'def f(x):', max_tokens: 4 });
  const chat = await client.chat.completions.create({ model: 'phi-1_5', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 });
  let streamed = 0;
  for await (const ch of await client.chat.completions.create({ model: 'phi-1_5', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, stream: true })) streamed++;
  window.__result = { model: models.data[0].id, completion: c.usage.completion_tokens, chat: chat.choices[0].finish_reason, streamed };
} catch (e) {
  window.__result = { error: String(e) };
}
`,
);
await build({
  entryPoints: [path.join(site, 'main.js')],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  outfile: path.join(site, 'page', 'main.js'),
  nodePaths: [path.join(ROOT, 'node_modules')],
  logLevel: 'error',
});
writeFileSync(
  path.join(site, 'page', 'index.html'),
  '<!doctype html><meta charset="utf-8"><script type="module" src="./main.js"></script>',
);

const browser = await launchChromium();
let result;
try {
  const p = await browser.newPage();
  p.on('console', (m) => process.env.DEBUG && console.error(m.text()));
  await p.goto(`${origin}/page/`);
  await p.waitForFunction(() => window.__result, null, { timeout: 60_000 });
  result = await p.evaluate(() => window.__result);
} finally {
  await browser.close();
  pages.close();
  child.kill('SIGTERM');
}
const ok = !result.error && result.completion === 4 && result.streamed >= 2;
console.log(JSON.stringify({ ok, ...result }));
process.exit(ok ? 0 : 1);
