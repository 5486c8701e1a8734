// A strict reader for the safetensors format (https://huggingface.co/docs/safetensors).
//
//   bytes 0..8       N, the header length, u64 little-endian
//   bytes 8..8+N     JSON: { "__metadata__": {str: str}?, name: {dtype, shape, data_offsets: [b, e]} ... }
//   bytes 8+N..      the data section; tensor bytes live at [8+N+b, 8+N+e)
//
// Strict like the reference Rust implementation: offsets must tile the data section exactly
// (no gaps, no overlaps, nothing past the end), each tensor's byte range must equal
// prod(shape) * itemsize, and names must be unique. Every error names the file and tensor.
import type { ByteSource } from '../io/source.js';

/** U8 holds phi-wasm's own quantized matrices (see src/weights/load.ts). */
export type DType = 'F32' | 'F16' | 'BF16' | 'U8';

const ITEM_SIZE: Record<DType, number> = { F32: 4, F16: 2, BF16: 2, U8: 1 };
/** dtypes the format defines that phi-wasm does not load. */
const KNOWN_UNSUPPORTED = [
  'F64',
  'I64',
  'I32',
  'I16',
  'I8',
  'U64',
  'U32',
  'U16',
  'BOOL',
  'F8_E4M3',
  'F8_E5M2',
];
/** A header larger than this is not a phi checkpoint header but a corrupt length field. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface TensorInfo {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Absolute byte offset of the tensor in the file. */
  readonly offset: number;
  readonly byteLength: number;
}

export interface SafetensorsFile {
  readonly source: ByteSource;
  readonly metadata: Record<string, string>;
  readonly tensors: Map<string, TensorInfo>;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Read and validate the header of a safetensors file. */
export async function openSafetensors(source: ByteSource): Promise<SafetensorsFile> {
  const file = source.name;
  if (source.size < 8) {
    throw new Error(
      `${file}: truncated safetensors file: ${source.size} bytes, too short for the 8-byte header length`,
    );
  }
  const lenBytes = new Uint8Array(8);
  await source.read(0, lenBytes);
  const n = Number(new DataView(lenBytes.buffer).getBigUint64(0, true));
  if (n > source.size - 8) {
    throw new Error(
      `${file}: header length ${n} runs past the end of the file (${source.size} bytes): truncated or not a safetensors file`,
    );
  }
  if (n > MAX_HEADER_BYTES) {
    throw new Error(`${file}: header length ${n} is implausibly large (> ${MAX_HEADER_BYTES})`);
  }
  const headerBytes = new Uint8Array(n);
  await source.read(8, headerBytes);
  const { metadata, tensors } = parseHeader(file, headerBytes, source.size - 8 - n, 8 + n);
  return { source, metadata, tensors };
}

/**
 * Validate a header's JSON. dataBytes is the length of the data section, dataStart its
 * absolute offset. Exported for tests.
 */
export function parseHeader(
  file: string,
  headerBytes: Uint8Array,
  dataBytes: number,
  dataStart: number,
): { metadata: Record<string, string>; tensors: Map<string, TensorInfo> } {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw new Error(`${file}: header is not valid UTF-8`);
  }
  // before JSON.parse: its recursion would end a 10,000-deep nesting as a stack overflow
  const scan = scanKeys(text);
  if (scan.depth > MAX_DEPTH) {
    throw new Error(
      `${file}: header nests JSON ${scan.depth} levels deep; a safetensors header has at most ${MAX_DEPTH}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new Error(`${file}: header must be a JSON object`);
  }
  if (scan.duplicate) {
    const { key, within } = scan.duplicate;
    throw new Error(
      within === null
        ? `${file}: duplicate tensor name "${key}" in header`
        : `${file}: tensor "${within}": duplicate field "${key}" in its entry`,
    );
  }

  const entries = json as Record<string, unknown>;
  let metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorInfo>();
  for (const [name, raw] of Object.entries(entries)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
        throw new Error(`${file}: __metadata__ must be an object of strings`);
      }
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== 'string') throw new Error(`${file}: __metadata__.${k} is not a string`);
      }
      metadata = raw as Record<string, string>;
      continue;
    }
    tensors.set(name, parseEntry(file, name, raw, dataStart));
  }

  // The offsets must tile [0, dataBytes) exactly.
  const sorted = [...tensors.values()].sort((a, b) => a.offset - b.offset || a.byteLength - b.byteLength);
  let end = dataStart;
  let prev: TensorInfo | null = null;
  for (const t of sorted) {
    if (t.offset < end) {
      throw new Error(
        `${file}: tensors "${prev!.name}" and "${t.name}" overlap (data_offsets ${rel(prev!, dataStart)} and ${rel(t, dataStart)})`,
      );
    }
    if (t.offset > end) {
      throw new Error(
        `${file}: gap in the data section before tensor "${t.name}" (bytes ${end - dataStart}..${t.offset - dataStart} belong to no tensor)`,
      );
    }
    end = t.offset + t.byteLength;
    prev = t;
  }
  for (const t of sorted) {
    if (t.offset + t.byteLength > dataStart + dataBytes) {
      throw new Error(
        `${file}: tensor "${t.name}" data_offsets ${rel(t, dataStart)} run past the end of the data section (${dataBytes} bytes): truncated file`,
      );
    }
  }
  if (end - dataStart !== dataBytes) {
    throw new Error(
      `${file}: data section is ${dataBytes} bytes but the tensors cover ${end - dataStart}: trailing bytes or a wrong header`,
    );
  }
  return { metadata, tensors };
}

function rel(t: TensorInfo, dataStart: number): string {
  return `[${t.offset - dataStart}, ${t.offset - dataStart + t.byteLength}]`;
}

function parseEntry(file: string, name: string, raw: unknown, dataStart: number): TensorInfo {
  const where = `${file}: tensor "${name}"`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new Error(`${where}: entry must be an object with dtype, shape, data_offsets`);
  }
  const { dtype, shape, data_offsets } = raw as Record<string, unknown>;
  if (typeof dtype !== 'string') throw new Error(`${where}: missing dtype`);
  if (!(dtype in ITEM_SIZE)) {
    const kind = KNOWN_UNSUPPORTED.includes(dtype) ? 'unsupported' : 'unknown';
    throw new Error(`${where}: ${kind} dtype "${dtype}" (supported: F32, F16, BF16, and U8 for phi-wasm's quantized files)`);
  }
  if (!Array.isArray(shape) || !shape.every((s) => Number.isSafeInteger(s) && s >= 0)) {
    throw new Error(`${where}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  if (
    !Array.isArray(data_offsets) ||
    data_offsets.length !== 2 ||
    !data_offsets.every((s) => Number.isSafeInteger(s) && s >= 0) ||
    data_offsets[1] < data_offsets[0]
  ) {
    throw new Error(`${where}: data_offsets must be [begin, end] with 0 <= begin <= end, got ${JSON.stringify(data_offsets)}`);
  }
  const [begin, end] = data_offsets as number[];
  const dt = dtype as DType;
  const expected = numel(shape) * ITEM_SIZE[dt];
  if (end - begin !== expected) {
    throw new Error(
      `${where}: shape [${shape.join(', ')}] of ${dt} needs ${expected} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`,
    );
  }
  return { name, dtype: dt, shape: shape as number[], offset: dataStart + begin, byteLength: end - begin };
}

/** {"__metadata__": {...}, name: {dtype, shape: [..], data_offsets: [..]}}: 3 levels. */
const MAX_DEPTH = 3;

/**
 * JSON.parse keeps the last of two equal keys silently; a checkpoint with two tensors of one
 * name, or an entry with two dtypes, is corrupt: scan the keys ourselves. Also measures the
 * nesting depth. Never loops forever on malformed text (JSON.parse reports that afterwards).
 */
function scanKeys(text: string): {
  depth: number;
  duplicate: { key: string; within: string | null } | null;
} {
  // one frame per open object or array: the keys seen, the key that opened it
  const frames: { keys: Set<string> | null; name: string | null; expectKey: boolean }[] = [];
  let pendingKey: string | null = null; // the last key read, which names the next value
  let depth = 0;
  let duplicate: { key: string; within: string | null } | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const top = frames[frames.length - 1];
      if (top?.keys && top.expectKey) {
        let key: string;
        try {
          key = JSON.parse(text.slice(i, j + 1)) as string;
        } catch {
          return { depth, duplicate }; // malformed: JSON.parse says how
        }
        if (top.keys.has(key) && !duplicate)
          duplicate = { key, within: frames.length === 1 ? null : (frames[1]?.name ?? null) };
        top.keys.add(key);
        top.expectKey = false;
        pendingKey = key;
      }
      i = j;
    } else if (c === '{' || c === '[') {
      frames.push({ keys: c === '{' ? new Set() : null, name: pendingKey, expectKey: c === '{' });
      depth = Math.max(depth, frames.length);
      if (depth > MAX_DEPTH) return { depth, duplicate };
    } else if (c === '}' || c === ']') frames.pop();
    else if (c === ',' && frames[frames.length - 1]?.keys) frames[frames.length - 1].expectKey = true;
  }
  return { depth, duplicate };
}

/** Serialise tensors to safetensors bytes (used by tests, the bench and quantized saves). */
/**
 * The start of a safetensors file for these tensors: the 8-byte header length and the header
 * (padded so the data is 8-byte aligned), with the tensors in the order their bytes follow
 * (by name, as transformers saves them). The one writer of the format's header.
 */
export function safetensorsHeader<T extends { name: string; dtype: DType; shape: number[]; byteLength: number }>(
  tensors: readonly T[],
  metadata: Record<string, string>,
): { head: Uint8Array; order: T[]; dataBytes: number } {
  const order = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = { __metadata__: metadata };
  let off = 0;
  for (const t of order) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.byteLength] };
    off += t.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((json.length + 8) % 8)) % 8); // keep the data 8-byte aligned
  const text = new TextEncoder().encode(json);
  const head = new Uint8Array(8 + text.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(text.length), true);
  head.set(text, 8);
  return { head, order, dataBytes: off };
}

/** A whole safetensors file in memory. */
export function writeSafetensors(
  tensors: { name: string; dtype: DType; shape: number[]; data: Uint8Array }[],
  metadata: Record<string, string> = { format: 'pt' },
): Uint8Array {
  const { head, order, dataBytes } = safetensorsHeader(
    tensors.map((t) => ({ ...t, byteLength: t.data.length })),
    metadata,
  );
  const out = new Uint8Array(head.length + dataBytes);
  out.set(head, 0);
  let p = head.length;
  for (const t of order) {
    out.set(t.data, p);
    p += t.data.length;
  }
  return out;
}
