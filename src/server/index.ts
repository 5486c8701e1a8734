// An OpenAI-compatible HTTP API over one loaded model, as a web-standard fetch handler
// (Request) => Promise<Response>: it runs under Node (src/node/serve.ts), Deno.serve and
// Bun.serve alike. Endpoints, as llama-server and ollama have them (the table: app.ts):
//   GET  /health                  200 {"status":"ok"}, 503 while the model loads
//   GET  /v1/models[/{id}]        the one model
//   POST /v1/completions          prompt -> text (stream: Server-Sent Events)
//   POST /v1/chat/completions     messages in the model card's Chat format -> reply
//   POST /tokenize, /detokenize   llama-server's
// Concurrency is the engine's (src/engine.ts): `parallel` slots decode in one batched step,
// a request waits in its queue for a slot; this server bounds that queue (503 past it).
//
// Files: app.ts (routes), http.ts (errors, CORS, Host, log, SSE), context.ts (what endpoints
// share), answer.ts (the generation skeleton), endpoints/ (one file each), requests.ts (fields).
export { createServer, type Server } from './app.js';
export { ApiError } from './errors.js';
export { isLoopbackName } from './http.js';
export { resolveOptions, type ServerOptions } from './options.js';
