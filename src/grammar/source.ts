// Where XGrammar's code comes from in Node, Deno and Bun: the installed package's file, read
// as text (library.ts says why text). The browser bundle swaps this file for
// source.browser.ts, which fetches the copy beside the bundle.

export interface XGrammarSource {
  /** The UMD file's text. */
  text: string;
  /** What its Node branch calls: require('url'), __filename. */
  require?: (id: string) => unknown;
  filename?: string;
}

export async function xgrammarSource(): Promise<XGrammarSource> {
  // specifiers in variables: a bundler for the web should not try to resolve them
  const [moduleName, fsName] = ['node:module', 'node:fs/promises'];
  const { createRequire } = (await import(moduleName)) as typeof import('node:module');
  const { readFile } = (await import(fsName)) as typeof import('node:fs/promises');
  const require = createRequire(import.meta.url);
  const filename = require.resolve('@mlc-ai/web-xgrammar');
  return { text: await readFile(filename, 'utf8'), require: createRequire(filename), filename };
}
