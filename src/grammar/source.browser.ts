// The browser bundle's twin of source.ts: xgrammar.mjs sits beside the bundle
// (scripts/build-browser.mjs), imported the first time a request asks for a constraint, so a
// page that never does never downloads it.

export const xgrammarUrl = () => new URL('./xgrammar.mjs', import.meta.url);
