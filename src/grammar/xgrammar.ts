// XGrammar (@mlc-ai/web-xgrammar: the C++ library compiled to wasm, what WebLLM, vLLM and
// SGLang use) behind a small interface: one tokenizer description per vocabulary, grammars
// compiled against it, and a matcher per generation that says which tokens may come next.
//
// Two things about the package shape this file:
// - It is one UMD file in a "type": "module" package, so `import` runs its browser branch,
//   which in Node calls a `require` that ES modules do not have. The build wraps the file as a
//   function of the CommonJS names it asks for (build/xgrammar.mjs), and we call that with a
//   module object of our own and no `process`: its wasm is inside it (base64), so it needs no
//   file system, and every runtime takes the same path.
// - A grammar it cannot parse aborts the wasm module with the reason printed to the console,
//   not thrown. We hand it a console of our own, so the reason goes into the error, and after
//   an abort compile on a fresh instance (matchers already made keep working on theirs).
import type * as XG from '@mlc-ai/web-xgrammar';
import { xgrammarUrl } from './source.js';

type Library = typeof XG;
type Wrapped = (...names: unknown[]) => void;

let wrapped: Promise<Wrapped> | null = null;

interface Instance {
  lib: Library;
  /** What the library printed lately: the reason of an abort is in it. */
  log: string[];
}

/** What the bundle asks `require` for where there is no document: only a file URL of itself. */
const urlOnly = (id: string) => {
  if (id !== 'url') throw new Error(`XGrammar asked for the module "${id}"`);
  return { pathToFileURL: (f: string) => new URL(f, 'file:///') };
};

async function instantiate(): Promise<Instance> {
  const url = xgrammarUrl();
  wrapped ??= import(/* @vite-ignore */ url.href).then((m: { default: Wrapped }) => m.default);
  let run: Wrapped;
  try {
    run = await wrapped;
  } catch (e) {
    wrapped = null;
    throw new Error(`cannot load XGrammar from ${url.href} for grammars: ${(e as Error).message}`);
  }
  const log: string[] = [];
  const capture = (...args: unknown[]) => {
    log.push(args.map(String).join(' '));
    if (log.length > 20) log.shift();
  };
  const ownConsole = { ...console, log: capture, info: capture, warn: capture, error: capture };
  const module = { exports: {} as Record<string, unknown> };
  run(module.exports, module, urlOnly, 'xgrammar.js', '.', ownConsole, undefined);
  return { lib: module.exports as unknown as Library, log };
}

/** A grammar, schema or regex the library refused, with its reason. */
export class GrammarError extends Error {}

/** The library's reason for an abort: its [FATAL] line, without the C++ file and line. */
function reason(log: string[], e: unknown): string {
  const fatal = [...log].reverse().find((l) => l.includes('[FATAL]'));
  if (!fatal) return (e as Error)?.message ?? String(e);
  return fatal
    .replace(/^\[FATAL\]\s*\S+:\d+:\s*/, '')
    .replace(/^Check failed: \(.*?\) is false: /, '')
    .trim();
}

/** What a vocabulary looks like to XGrammar: every id's bytes, which ids end the text. */
export interface VocabularyInfo {
  /** The text of each id the tokenizer knows, in GPT-2's byte-level alphabet. */
  encodedVocab: string[];
  /** Rows of the model's output (51200 for phi-1.5; ids past encodedVocab are never allowed). */
  vocabSize: number;
  stopIds: number[];
}

/**
 * XGrammar for one vocabulary: its tokenizer info (built once: 0.2-0.3 s for phi's 50295
 * tokens) and a compiler. Compiling works out, for every state of the grammar, which tokens
 * fit; that is what makes a mask per token cheap.
 */
export class GrammarBackend {
  /** Seconds it took to describe the vocabulary to XGrammar. */
  readonly tokenizerInfoSeconds: number;
  private constructor(
    private readonly info: VocabularyInfo,
    private instance: Instance,
    private compiler: XG.GrammarCompiler,
    seconds: number,
  ) {
    this.tokenizerInfoSeconds = seconds;
  }

  static async create(info: VocabularyInfo): Promise<GrammarBackend> {
    const t0 = now();
    const { instance, compiler } = await GrammarBackend.compilerFor(info);
    return new GrammarBackend(info, instance, compiler, now() - t0);
  }

  private static async compilerFor(info: VocabularyInfo) {
    const instance = await instantiate();
    const { TokenizerInfo, GrammarCompiler } = instance.lib;
    const tokenizerInfo = await TokenizerInfo.createTokenizerInfo(
      info.encodedVocab,
      'byte_level',
      false,
      info.vocabSize,
      info.stopIds,
    );
    return { instance, compiler: await GrammarCompiler.createGrammarCompiler(tokenizerInfo) };
  }

  /** `ebnf` compiled, from the rule `root`: what makes masks cheap is worked out here. */
  compile(ebnf: string, root: string): Promise<CompiledGrammar> {
    return this.guarded(
      async (i) => new CompiledGrammar(await this.compiler.compileGrammar(ebnf, root), i.lib),
    );
  }

  /**
   * The EBNF of what `f` builds with the library's converters (JSON Schema, regex), so that
   * every constraint is compiled the same way.
   */
  ebnf(f: (lib: Library) => Promise<XG.Grammar>): Promise<string> {
    return this.guarded(async (i) => {
      const g = await f(i.lib);
      const text = g.toString();
      g.dispose();
      return text;
    });
  }

  /**
   * Run `f` on the library; a refusal becomes a GrammarError with the library's reason. The
   * module aborted mid-call, so what it holds may be half-done: the next call gets a fresh one.
   */
  private async guarded<T>(f: (i: Instance) => Promise<T>): Promise<T> {
    const instance = this.instance;
    instance.log.length = 0; // each call is synchronous inside: what it prints is its own
    try {
      return await f(instance);
    } catch (e) {
      const why = reason(instance.log, e);
      if (this.instance === instance) {
        const fresh = await GrammarBackend.compilerFor(this.info);
        this.instance = fresh.instance;
        this.compiler = fresh.compiler;
      }
      throw new GrammarError(why);
    }
  }
}

/** A compiled grammar and the library instance it lives in (its matchers must come from it). */
export class CompiledGrammar {
  constructor(
    private readonly grammar: XG.CompiledGrammar,
    private readonly lib: Library,
  ) {}

  /** A matcher at the start of the grammar; it ends at one of the vocabulary's stop ids. */
  matcher(): Promise<XG.GrammarMatcher> {
    return this.lib.GrammarMatcher.createGrammarMatcher(this.grammar);
  }
}

const now = () => performance.now() / 1000;
