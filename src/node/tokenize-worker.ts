// A thread that tokenizes for the server, so that a long text without a place to cut it (one
// 100k-character word, a CJK paste) never holds the event loop that every stream and /health
// share. It builds the same tokenizer from the same files' text.
import { parentPort, workerData } from 'node:worker_threads';
import { PhiTokenizer } from '../tokenizer/tokenizer.js';

const { tokenizerJson, configJson } = workerData as { tokenizerJson: string; configJson: string };
const tok = new PhiTokenizer(JSON.parse(tokenizerJson), JSON.parse(configJson));
parentPort!.on('message', ({ id, text }: { id: number; text: string }) => {
  try {
    parentPort!.postMessage({ id, ids: tok.encode(text) });
  } catch (e) {
    parentPort!.postMessage({ id, error: String((e as Error).message) });
  }
});
