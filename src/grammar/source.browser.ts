// The browser bundle's twin of source.ts: XGrammar's file sits beside the bundle as
// xgrammar.js (scripts/build-browser.mjs), fetched when a request first needs a grammar, so
// pages that never constrain output never download it.
import type { XGrammarSource } from './source.js';

export async function xgrammarSource(): Promise<XGrammarSource> {
  const url = new URL('./xgrammar.js', import.meta.url);
  const res = await fetch(url);
  if (!res.ok) throw new Error(`cannot fetch ${url} for grammars: HTTP ${res.status}`);
  return { text: await res.text() };
}
