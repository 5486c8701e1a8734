// `phi download`: fetch a model from the Hugging Face Hub into its cache (or a folder).
import { download } from '../node/download.js';
import { DEFAULT_MODEL } from '../node/hub.js';
import { HELP, QUIET, type Command } from './common.js';

export const downloadCommand: Command = {
  usage: 'phi download [--repo ID] [--revision REV] [--dir DIR]',
  about:
    'Fetch a model from the Hugging Face Hub into its cache (or --dir); resumes, verifies hashes.',
  flags: [
    { name: 'repo', type: 'string', arg: 'ID', help: `repository (default ${DEFAULT_MODEL})` },
    {
      name: 'revision',
      type: 'string',
      arg: 'REV',
      help: 'branch, tag or commit (default main)',
    },
    { name: 'dir', type: 'string', arg: 'DIR', help: 'a plain folder instead of the cache' },
    QUIET,
    HELP,
  ],
  run: async (v) => {
    const r = await download({
      repo: v.repo as string | undefined,
      revision: v.revision as string | undefined,
      dir: v.dir as string | undefined,
      log: v.quiet ? { write: () => true } : process.stderr,
    });
    process.stderr.write(`downloaded ${r.files.length} files into ${r.dir}\n`);
  },
};
