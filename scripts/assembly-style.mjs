// Prettier and ESLint for assembly/, like the rest of the code. AssemblyScript's function
// decorators (@inline) are not TypeScript syntax, so each file is checked with them turned into
// comments and written back with them restored:
//   node scripts/assembly-style.mjs          check (npm run lint)
//   node scripts/assembly-style.mjs --write  format (npm run format)
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import * as prettier from 'prettier';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dir = path.join(root, 'assembly');
const write = process.argv.includes('--write');
const hide = (s) => s.replace(/^(\s*)@(inline|lazy|global|unmanaged|final)\b/gm, '$1/*@$2*/');
const show = (s) => s.replace(/\/\*@(inline|lazy|global|unmanaged|final)\*\//g, '@$1');

const options = { ...(await prettier.resolveConfig(path.join(dir, 'x.ts'))), parser: 'typescript' };
const eslint = new ESLint({ cwd: root, ignore: false }); // eslint . skips assembly/: it cannot parse the decorators
let problems = 0;
for (const f of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
  const file = path.join(dir, f);
  const text = readFileSync(file, 'utf8');
  const formatted = show(await prettier.format(hide(text), options));
  if (formatted !== text) {
    if (write) writeFileSync(file, formatted);
    else {
      console.log(`assembly/${f}: not formatted (npm run format)`);
      problems++;
    }
  }
  const [result] = await eslint.lintText(hide(write ? formatted : text), { filePath: file });
  for (const m of result.messages) {
    console.log(`assembly/${f}:${m.line}:${m.column} ${m.message} (${m.ruleId})`);
    problems++;
  }
}
if (problems) process.exit(1);
console.log('assembly/: formatted and lint-clean');
