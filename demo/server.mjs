// A static file server for the demo and the browser tests, on 127.0.0.1. It serves the files
// the page needs and nothing else (the demo, the build, model folders under weights/, models
// in the Hugging Face cache by Hub id at /hub/ORG/NAME/, read only, and the test fixtures),
// sends the cross-origin isolation headers (COOP/COEP) that SharedArrayBuffer, and so the
// worker threads, need in browsers, and answers HEAD and Range requests, which the URL loader
// uses to read safetensors one tensor at a time. Bad URLs are 400, anything else 404; it
// never crashes on a request.
//   node demo/server.mjs [port]        (npm run demo; port 8000, so phi serve keeps 8080)
import { createReadStream, existsSync, promises as fs, readdirSync } from 'node:fs';
import { createServer } from 'node:http';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const DEMO_PORT = 8000;

/** The models the page can load: folders under weights/ and complete Hub snapshots in the cache. */
async function models() {
  const found = [];
  const weights = path.join(ROOT, 'weights');
  for (const d of existsSync(weights) ? readdirSync(weights, { withFileTypes: true }) : [])
    if (d.isDirectory() && existsSync(path.join(weights, d.name, 'config.json')))
      found.push({ name: `weights/${d.name}`, url: `/weights/${d.name}` });
  const hub = await import('../dist/src/node/hub.js').catch(() => null);
  const cache = hub?.hubCacheDir();
  for (const d of cache && existsSync(cache) ? readdirSync(cache) : []) {
    const m = /^models--([^-].*?)--(.+)$/.exec(d);
    if (!m) continue;
    const repo = `${m[1]}/${m[2]}`;
    if (hub.cachedSnapshot({ repo, revision: 'main' }, cache))
      found.push({ name: repo, url: `/hub/${repo}` });
  }
  return found;
}

/** /hub/ORG/NAME/FILE: the file in the cache's snapshot of ORG/NAME (its main revision). */
async function hubFile(pathname) {
  const m = /^\/hub\/([\w.-]+)\/([\w.-]+)(\/.*)?$/.exec(pathname);
  if (!m) return 404;
  const hub = await import('../dist/src/node/hub.js').catch(() => null);
  const dir = hub?.cachedSnapshot({ repo: `${m[1]}/${m[2]}`, revision: 'main' });
  if (!dir) return 404;
  return fileFor(`/m${m[3] ?? '/'}`, { m: dir });
}
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.css': 'text/css',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** The folders the page may read, relative to the repository. */
const SERVED = ['demo', 'build', 'weights', 'test/fixtures', 'test/runtimes', 'dist/src'];

/** The file a URL path names, or an HTTP status: 400 malformed, 404 not ours to serve. */
function fileFor(pathname, mounts) {
  let decoded;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return 400; // malformed percent-encoding
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return 400;
  const parts = decoded.split('/').filter((p) => p !== '');
  // no hidden files (.git), no way up
  if (parts.some((p) => p.startsWith('.'))) return 404;
  const rel = parts.join('/');
  const at = Object.keys(mounts).find((d) => rel === d || rel.startsWith(d + '/'));
  if (at === undefined) return 404;
  const dir = mounts[at];
  const file = path.resolve(dir, rel.slice(at.length + 1));
  return file === dir || file.startsWith(dir + path.sep) ? file : 404;
}

/**
 * Serve on 127.0.0.1. `mounts` maps URL prefixes (no leading slash) to folders; by default the
 * repository's SERVED folders at their own paths.
 */
export function startServer(
  port = 0,
  { isolate = true, mounts = Object.fromEntries(SERVED.map((d) => [d, path.join(ROOT, d)])) } = {},
) {
  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  });
  const handle = async (req, res) => {
    let url;
    try {
      url = new URL(req.url, 'http://localhost');
    } catch {
      res.writeHead(400).end('bad request');
      return;
    }
    if (url.pathname === '/' || url.pathname === '/demo') {
      res.writeHead(302, { location: '/demo/' }).end(); // so the page's relative URLs resolve
      return;
    }
    if (url.pathname === '/models.json') {
      const body = JSON.stringify(await models());
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(body);
      return;
    }
    let file = url.pathname.startsWith('/hub/')
      ? await hubFile(url.pathname)
      : fileFor(url.pathname, mounts);
    if (typeof file === 'number') {
      res.writeHead(file).end(file === 400 ? 'bad request' : 'not found');
      return;
    }
    if (url.pathname.endsWith('/')) file = path.join(file, 'index.html');
    let stat;
    try {
      stat = await fs.stat(file);
      if (stat.isDirectory()) throw new Error('directory');
    } catch {
      res.writeHead(404).end('not found');
      return;
    }
    const headers = {
      'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'accept-ranges': 'bytes',
      'cache-control': 'no-store',
    };
    if (isolate) {
      headers['cross-origin-opener-policy'] = 'same-origin';
      headers['cross-origin-embedder-policy'] = 'require-corp';
      headers['cross-origin-resource-policy'] = 'same-origin';
    }
    const range = req.headers.range?.match(/^bytes=(\d+)-(\d*)$/);
    let [start, end] = [0, stat.size - 1];
    if (range) {
      start = Number(range[1]);
      end = range[2] ? Math.min(Number(range[2]), stat.size - 1) : stat.size - 1;
      if (start > end) {
        res.writeHead(416, { 'content-range': `bytes */${stat.size}` }).end();
        return;
      }
      headers['content-range'] = `bytes ${start}-${end}/${stat.size}`;
    }
    headers['content-length'] = end - start + 1;
    res.writeHead(range ? 206 : 200, headers);
    if (req.method === 'HEAD') res.end();
    else
      createReadStream(file, { start, end })
        .on('error', () => res.destroy())
        .pipe(res);
  };
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const server = await startServer(Number(process.argv[2] ?? DEMO_PORT), {
    isolate: !process.argv.includes('--no-isolation'),
  });
  const { port } = server.address();
  console.log(`phi-wasm demo: http://127.0.0.1:${port}/  (Ctrl-C to stop)`);
}
