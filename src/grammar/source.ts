// Where XGrammar's code is: build/xgrammar.mjs (scripts/build-xgrammar.mjs), beside the .wasm
// kernels in the package's layout. Spelled `new URL('literal', import.meta.url)`, the form
// bundlers recognise. The browser bundle swaps this file for source.browser.ts, whose copy
// sits beside the bundle.

export const xgrammarUrl = () => new URL('../../../build/xgrammar.mjs', import.meta.url);
