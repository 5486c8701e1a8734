// phi-wasm: Phi-1.5 for any JavaScript runtime. This entry imports nothing Node-specific;
// 'phi-wasm/node' adds loading from a directory.
export { loadPhiFrom, loadTokenizer, type LoadOptions, type Backend } from './load.js';
export { planMemory, formatBytes, type MemoryPlan, type MemoryOptions } from './memory.js';
export { Phi, type FinetuneDataOptions } from './engine.js';
export {
  FinetuneRun,
  FINETUNE_DEFAULTS,
  type FinetuneOptions,
  type StepMetrics,
  type Checkpoint as FinetuneCheckpoint,
} from './train/finetune.js';
export { parseJsonl, type TrainRecord, type DataInput } from './train/data.js';
export { adapterFolderFiles } from './weights/adapter_write.js';
export {
  Generation,
  type GenerateOptions,
  type GenerationResult,
  type TokenPiece,
  type TokenLogprob,
  type Prompt,
  type StopReason,
} from './generation.js';
export { PhiForCausalLM, type PhiOptions, type Segment } from './model/causal_lm.js';
export { KVCache } from './model/kv_cache.js';
export { parseConfig, PHI_1_5, type PhiConfig } from './model/config.js';
export { Sampler, argmax, type SamplingOptions } from './sample.js';
export { PhiTokenizer } from './tokenizer/tokenizer.js';
export { TokenStreamDecoder } from './tokenizer/stream.js';
export { createRefKernels } from './kernels/ref/index.js';
export type { Kernels, Weight, WeightDType } from './kernels/types.js';
export {
  memoryFiles,
  urlFiles,
  bufferSource,
  type ModelFiles,
  type ByteSource,
} from './io/source.js';
export {
  openSafetensors,
  writeSafetensors,
  type TensorInfo,
  type DType,
} from './weights/safetensors.js';
export { Checkpoint } from './weights/checkpoint.js';
export { loadWeights, type ProgressInfo } from './weights/load.js';
export {
  createWasmKernels,
  WasmKernels,
  type WasmKernelsOptions,
  type WasmFlavor,
  type SpawnWorker,
} from './kernels/wasm/index.js';
export { inspect, type Inspection } from './inspect.js';
export {
  FORMATS,
  promptFormat,
  chatTranscript,
  turnStops,
  type FormatName,
  type PromptFormat,
} from './prompts.js';
export { DEFAULTS } from './defaults.js';
