/**
 * `.safetensors` files: an 8-byte little-endian header length, a JSON header
 * naming each tensor's dtype, shape and byte range, then the data. Router
 * logits come as one `[L,T,E]` (or `[T,E]`, `[L,B,S,E]`) tensor, or as one
 * `[T,E]` tensor per layer, ordered by the numbers in their names
 * (`layer.2` before `layer.10`). Optional `__metadata__` keys `top_k`,
 * `sequence_lengths` (JSON list) and `micro_batch_sequences` are read too.
 *
 * An expert bias may ride along: tensors whose name has a component
 * `expert_bias` (Megatron-LM's `TopKRouter.expert_bias` buffer,
 * `megatron/core/transformer/moe/router.py` @005742ff; torchtitan's MoE) or
 * `e_score_correction_bias` (DeepSeek-V3 in Hugging Face transformers,
 * `mlp.gate.e_score_correction_bias`): one `[L, E]` tensor, or one `[E]` per
 * layer in name order. It routes the file (selection only), as `--bias` does.
 */
import { LabInputError, decimalInteger, type FloatArray } from "../types.js";
import {
  decodeFloats,
  elementBytes,
  elementCount,
  logitsFromTensor,
  type ElementType,
  type LogitsInput,
} from "./tensor.js";

/** Headers beyond this are refused rather than parsed: no real logits file needs one. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const dtypes: Record<string, ElementType> = { F16: "float16", BF16: "bfloat16", F32: "float32", F64: "float64" };

/** A tensor that holds an expert bias, by its name (see above). */
export function isBiasTensorName(name: string): boolean {
  return name.split(".").some((part) => part === "expert_bias" || part === "e_score_correction_bias");
}

export interface TensorEntry {
  name: string;
  type: ElementType;
  shape: number[];
  begin: number;
  end: number;
}

/** True when the bytes start like a safetensors file (length, then `{`). */
export function looksLikeSafetensors(bytes: Uint8Array): boolean {
  if (bytes.length < 9) return false;
  const length = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  return length > 0n && length <= BigInt(bytes.length - 8) && bytes[8] === 0x7b;
}

/** What a safetensors header says, checked against the file's size. */
export interface SafetensorsHeader {
  dataStart: number;
  /** The router-logit tensors in layer order (by the numbers in their names). */
  entries: TensorEntry[];
  /** The expert-bias tensors, in the same order; empty when the file has none. */
  biasEntries: TensorEntry[];
  metadata: Partial<LogitsInput>;
}

/** Parses the header from the first `8 + N` bytes; `fileSize` bounds every tensor. */
export function parseSafetensorsHeader(
  head: Uint8Array,
  fileSize: number,
  name = "the .safetensors file",
): SafetensorsHeader {
  if (head.length < 8) throw new LabInputError(`${name} is too short to be a .safetensors file (${head.length} bytes)`);
  const declared = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
  if (declared > BigInt(MAX_HEADER_BYTES)) {
    throw new LabInputError(
      `${name} declares a ${declared}-byte header; headers over ${MAX_HEADER_BYTES} bytes are refused (is this really a .safetensors file?)`,
    );
  }
  const headerLength = Number(declared);
  if (8 + headerLength > fileSize) {
    throw new LabInputError(
      `${name} is truncated or not a .safetensors file: its header claims ${headerLength} bytes, but only ${fileSize - 8} follow`,
    );
  }
  if (8 + headerLength > head.length)
    throw new LabInputError(
      `${name}: header of ${headerLength} bytes is longer than the ${head.length - 8} bytes read for it`,
    );
  let header: Record<string, unknown>;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(head.subarray(8, 8 + headerLength));
    header = JSON.parse(text);
  } catch {
    throw new LabInputError(`${name} has a header that is not valid JSON: it is corrupt or not a .safetensors file`);
  }
  // JSON.parse keeps the last of two equal keys; the reference implementation
  // refuses such a header, and so do we (which tensor is meant is unknowable).
  const duplicate = firstDuplicateKey(text);
  if (duplicate !== null) throw new LabInputError(`${name} names '${duplicate}' twice in its header: it is corrupt`);
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    throw new LabInputError(`${name} has a header that is not a JSON object`);
  }
  const dataStart = 8 + headerLength;
  const dataLength = fileSize - dataStart;
  const entries = Object.entries(header)
    .filter(([key]) => key !== "__metadata__")
    .map(([key, value]) => parseEntry(key, value, dataLength, name))
    .sort((a, b) => naturalCompare(a.name, b.name));
  if (entries.length === 0) throw new LabInputError(`${name} holds no tensors`);
  checkContiguous(entries, dataLength, name);
  const biasEntries = entries.filter((e) => isBiasTensorName(e.name));
  return {
    dataStart,
    entries: logitsEntries(
      entries.filter((e) => !isBiasTensorName(e.name)),
      name,
    ),
    biasEntries,
    metadata: readMetadata((header.__metadata__ ?? {}) as Record<string, unknown>, name),
  };
}

/** The router-logit tensors: one, or one [T, E] per layer of the same shape. */
function logitsEntries(entries: TensorEntry[], name: string): TensorEntry[] {
  if (entries.length === 0) throw new LabInputError(`${name} holds an expert bias but no router logits`);
  if (entries.length > 1) {
    const first = entries[0];
    for (const entry of entries) {
      if (entry.shape.length !== 2) {
        throw new LabInputError(
          `${name} holds ${entries.length} tensors, so each should be one layer shaped [tokens, experts]; '${entry.name}' has shape [${entry.shape.join(", ")}]`,
        );
      }
      if (entry.shape[0] !== first.shape[0] || entry.shape[1] !== first.shape[1]) {
        throw new LabInputError(
          `inconsistent layers in ${name}: '${entry.name}' has shape [${entry.shape.join(", ")}], '${first.name}' has [${first.shape.join(", ")}]`,
        );
      }
    }
  }
  return entries;
}

/**
 * The file's expert bias, layers × experts, from its bias tensors' decoded
 * values (in `biasEntries` order); checked against the logits' shape.
 */
export function biasOfTensors(
  entries: readonly TensorEntry[],
  values: readonly FloatArray[],
  layers: number,
  experts: number,
  file: string,
): Float64Array {
  const names = entries.map((e) => `'${e.name}'`).join(", ");
  const shapes = entries.map((e) => `[${e.shape.join(", ")}]`).join(", ");
  const fits =
    entries.length === 1
      ? (entries[0].shape.length === 2 && entries[0].shape[0] === layers && entries[0].shape[1] === experts) ||
        (layers === 1 && entries[0].shape.length === 1 && entries[0].shape[0] === experts)
      : entries.length === layers && entries.every((e) => e.shape.length === 1 && e.shape[0] === experts);
  if (!fits)
    throw new LabInputError(
      `the expert bias in ${file} (${names}, shape ${shapes}) does not fit ${layers} layers × ${experts} experts: give one [${layers}, ${experts}] tensor or ${layers} tensors of [${experts}]`,
    );
  const bias = new Float64Array(layers * experts);
  let at = 0;
  for (const v of values) {
    bias.set(v, at);
    at += v.length;
  }
  for (let i = 0; i < bias.length; i++)
    if (!Number.isFinite(bias[i]))
      throw new LabInputError(
        `the expert bias in ${file} is not finite at layer ${Math.floor(i / experts)}, expert ${i % experts}: ${bias[i]}`,
      );
  return bias;
}

/**
 * The tensors must tile the data exactly, as the reference implementation
 * (huggingface/safetensors, `Metadata::validate`) requires: sorted by offset,
 * the first starts at 0, each starts where the previous ends, the last ends
 * at the end of the file. Overlaps, gaps and trailing bytes are refused, so
 * no value is ever read from bytes that belong to another tensor or to none.
 */
function checkContiguous(entries: readonly TensorEntry[], dataLength: number, file: string): void {
  const byOffset = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const entry of byOffset) {
    if (entry.begin !== at) {
      throw new LabInputError(
        entry.begin < at
          ? `${file}: tensor '${entry.name}' starts at byte ${entry.begin} of the data, inside the bytes of another tensor (overlapping data_offsets)`
          : `${file}: tensor '${entry.name}' starts at byte ${entry.begin} of the data, leaving bytes ${at}–${entry.begin} unaccounted for (data_offsets must be contiguous)`,
      );
    }
    at = entry.end;
  }
  if (at !== dataLength)
    throw new LabInputError(
      `${file} has ${dataLength - at} bytes after its last tensor that its header does not account for`,
    );
}

/** The first key that appears twice in one object of a JSON text, or null. */
export function firstDuplicateKey(json: string): string | null {
  const open: Set<string>[] = []; // keys seen in each enclosing object (arrays hold null)
  const kinds: ("object" | "array")[] = [];
  let expectKey = false;
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (c === "{") {
      kinds.push("object");
      open.push(new Set());
      expectKey = true;
    } else if (c === "[") {
      kinds.push("array");
      open.push(new Set());
      expectKey = false;
    } else if (c === "}" || c === "]") {
      kinds.pop();
      open.pop();
      expectKey = false;
    } else if (c === ",") {
      expectKey = kinds[kinds.length - 1] === "object";
    } else if (c === '"') {
      let end = i + 1;
      while (end < json.length && json[end] !== '"') end += json[end] === "\\" ? 2 : 1;
      if (expectKey) {
        const key = JSON.parse(json.slice(i, end + 1)) as string;
        const seen = open[open.length - 1];
        if (seen.has(key)) return key;
        seen.add(key);
        expectKey = false;
      }
      i = end;
    }
  }
  return null;
}

/** The overall tensor shape a header describes: the single tensor's, or [layers, tokens, experts]. */
export function safetensorsShape(header: SafetensorsHeader): number[] {
  return header.entries.length === 1 ? header.entries[0].shape : [header.entries.length, ...header.entries[0].shape];
}

export function readSafetensors(bytes: Uint8Array, name = "the .safetensors file"): LogitsInput {
  const header = parseSafetensorsHeader(bytes, bytes.length, name);
  const decode = (entry: TensorEntry): FloatArray =>
    decodeFloats(
      bytes,
      header.dataStart + entry.begin,
      (entry.end - entry.begin) / elementBytes[entry.type],
      entry.type,
    );
  let result: Pick<LogitsInput, "logits" | "sequenceLengths">;
  if (header.entries.length === 1) {
    result = logitsFromTensor(
      header.entries[0].shape,
      decode(header.entries[0]),
      `tensor '${header.entries[0].name}' in ${name}`,
    );
  } else {
    const perLayer = header.entries[0].shape[0] * header.entries[0].shape[1];
    const stacked = new Float32Array(perLayer * header.entries.length);
    header.entries.forEach((entry, l) => stacked.set(decode(entry), l * perLayer));
    result = logitsFromTensor(safetensorsShape(header), stacked, name);
  }
  const bias = header.biasEntries.length
    ? biasOfTensors(
        header.biasEntries,
        header.biasEntries.map(decode),
        result.logits.layers,
        result.logits.experts,
        name,
      )
    : undefined;
  return { ...result, ...header.metadata, ...(bias ? { selectionBias: bias } : {}) };
}

function parseEntry(key: string, value: unknown, dataLength: number, file: string): TensorEntry {
  const v = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (
    !v ||
    typeof v !== "object" ||
    typeof v.dtype !== "string" ||
    !Array.isArray(v.shape) ||
    !Array.isArray(v.data_offsets) ||
    v.data_offsets.length !== 2
  ) {
    throw new LabInputError(`tensor '${key}' in ${file} lacks a dtype, shape or data_offsets`);
  }
  const type = dtypes[v.dtype];
  if (!type)
    throw new LabInputError(
      `tensor '${key}' in ${file} has dtype ${v.dtype}; router logits are read as F16, BF16, F32 or F64`,
    );
  const shape = v.shape as number[];
  const count = elementCount(shape, `tensor '${key}' in ${file}`);
  const [begin, end] = v.data_offsets as number[];
  if (!Number.isSafeInteger(begin) || !Number.isSafeInteger(end) || begin < 0 || end < begin) {
    throw new LabInputError(`tensor '${key}' in ${file} has invalid data_offsets [${begin}, ${end}]`);
  }
  if (end > dataLength) {
    throw new LabInputError(
      `${file} is truncated: tensor '${key}' ends at byte ${end} of the data, which holds only ${dataLength}`,
    );
  }
  if (end - begin !== count * elementBytes[type]) {
    throw new LabInputError(
      `tensor '${key}' in ${file} has shape [${shape.join(", ")}] (${count * elementBytes[type]} bytes) but data_offsets span ${end - begin} bytes`,
    );
  }
  return { name: key, type, shape, begin, end };
}

function readMetadata(metadata: Record<string, unknown>, file: string): Partial<LogitsInput> {
  const out: { topK?: number; sequenceLengths?: number[]; microBatchSequences?: number } = {};
  const integer = (key: string): number | undefined => {
    if (metadata[key] === undefined) return undefined;
    const n = decimalInteger(metadata[key]);
    if (n === null)
      throw new LabInputError(
        `metadata '${key}' in ${file} is ${JSON.stringify(metadata[key])}, not a decimal integer`,
      );
    return n;
  };
  out.topK = integer("top_k");
  out.microBatchSequences = integer("micro_batch_sequences");
  if (metadata.sequence_lengths !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(String(metadata.sequence_lengths));
    } catch {
      parsed = undefined;
    }
    if (!Array.isArray(parsed) || !parsed.every((n) => Number.isInteger(n))) {
      throw new LabInputError(`metadata 'sequence_lengths' in ${file} must be a JSON list of integers`);
    }
    out.sequenceLengths = parsed;
  }
  for (const key of Object.keys(out) as (keyof typeof out)[]) if (out[key] === undefined) delete out[key];
  return out;
}

/** `layer.2` before `layer.10`: compares runs of digits as numbers. */
function naturalCompare(a: string, b: string): number {
  return a.localeCompare(b, "en", { numeric: true });
}

/** Writes a safetensors file of float32 tensors (tests, fixtures, exports). */
export function writeSafetensors(
  tensors: Record<string, { data: Float32Array; shape: number[] }>,
  metadata?: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const [key, tensor] of Object.entries(tensors)) {
    header[key] = { dtype: "F32", shape: tensor.shape, data_offsets: [offset, offset + tensor.data.byteLength] };
    offset += tensor.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const tensor of Object.values(tensors)) {
    out.set(new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength), at);
    at += tensor.data.byteLength;
  }
  return out;
}
