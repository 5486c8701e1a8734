// `phi logits`: the logits of token ids as JSON, the last position or every one.
import { UsageError, type Values } from './args.js';
import {
  ADAPTER_FLAGS,
  adapterOptions,
  HELP,
  load,
  MODEL_FLAGS,
  parseIds,
  requestAdapter,
  type Command,
} from './common.js';

async function logits(v: Values): Promise<void> {
  if (v.ids === undefined) throw new UsageError('logits needs --ids 1,2,3');
  const ids = parseIds(v.ids as string);
  const phi = await load(v, adapterOptions(v), true); // ids in, numbers out
  // streamed row by row: --all over a long prompt is T x 51200 numbers
  const out = process.stdout;
  out.write(`{"ids":${JSON.stringify(ids)},"logits":[`);
  let first = true;
  phi.eachLogits(
    ids,
    v.all === true,
    (row) => {
      out.write((first ? '' : ',') + JSON.stringify(Array.from(row)));
      first = false;
    },
    { adapter: requestAdapter(v) },
  );
  out.write(']}\n');
  phi.close();
}

export const logitsCommand: Command = {
  usage: 'phi logits --ids 1,2,3 [--all] [options]',
  about:
    'JSON {"ids":[..],"logits":[[..]]}: the last position\'s logits, or every position\'s (--all, streamed).',
  flags: [
    { name: 'ids', type: 'string', arg: '1,2,3', help: 'token ids' },
    { name: 'all', type: 'boolean', help: 'every position, not only the last' },
    ...MODEL_FLAGS,
    ...ADAPTER_FLAGS,
    HELP,
  ],
  run: logits,
};
