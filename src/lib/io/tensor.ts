/**
 * What every reader produces: router logits plus whatever the file could say
 * about the batch. Shapes accepted everywhere: `[T, E]` (one layer),
 * `[L, T, E]`, and `[L, B, S, E]` (batch × sequence, as OLMoE-mini's ONNX
 * `router_logits` output is shaped; it implies B sequences of S tokens).
 */
import { LabInputError, type FloatArray, type LogitsBatch, type RouterLogits } from "../types.js";
import { firstInvalidLogit, invalidLogitMessage, logitPosition } from "../validate.js";

export interface LogitsInput extends Partial<Pick<LogitsBatch, "topK" | "selectionBias">> {
  readonly logits: RouterLogits;
  /** A file may say its sequences (metadata, or a 4-D shape); absent: one sequence. */
  readonly sequenceLengths?: number[];
  readonly microBatchSequences?: number;
}

/**
 * The batch a file describes, once its top-k is known (from the file, or
 * given): the LogitsBatch every summary takes.
 */
export function batchOfInput(input: LogitsInput, topK = input.topK): LogitsBatch {
  if (topK === undefined) throw new LabInputError("the file does not say top_k: give it");
  return {
    logits: input.logits,
    topK,
    sequenceLengths: input.sequenceLengths ?? [input.logits.tokens],
    ...(input.selectionBias ? { selectionBias: input.selectionBias } : {}),
  };
}

/** Layers, tokens and experts of an accepted tensor shape (and the sequences a 4-D shape implies). */
export function layoutOfShape(
  shape: readonly number[],
  what: string,
): { layers: number; tokens: number; experts: number; sequenceLengths?: number[] } {
  let layers: number, tokens: number, experts: number;
  let sequenceLengths: number[] | undefined;
  // Every dimension is checked before anything is sized from it: a tiny file
  // declaring [1, 5e9, 0, 8] must end in a message, not an allocation.
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 1) {
      throw new LabInputError(
        `${what} has shape [${shape.join(", ")}]: ${Number.isSafeInteger(d) && d === 0 ? "a dimension of 0 holds no router logits" : `${d} is not a valid dimension`}`,
      );
    }
  }
  if (!Number.isSafeInteger(shape.reduce((n, d) => n * d, 1)))
    throw new LabInputError(`${what} has an impossibly large shape [${shape.join(", ")}]`);
  if (shape.length === 2) [layers, tokens, experts] = [1, shape[0], shape[1]];
  else if (shape.length === 3) [layers, tokens, experts] = shape as [number, number, number];
  else if (shape.length === 4) {
    const [l, batch, seq, e] = shape;
    [layers, tokens, experts] = [l, batch * seq, e];
    sequenceLengths = new Array(batch).fill(seq);
  } else {
    throw new LabInputError(
      `${what} has ${shape.length} dimensions (shape [${shape.join(", ")}]); expected [tokens, experts], [layers, tokens, experts] or [layers, batch, sequence, experts]`,
    );
  }
  if (layers < 1 || tokens < 1 || experts < 1) {
    throw new LabInputError(`${what} has shape [${shape.join(", ")}]: it holds no router logits`);
  }
  return { layers, tokens, experts, sequenceLengths };
}

export function logitsFromTensor(
  shape: readonly number[],
  data: FloatArray,
  what: string,
): Pick<LogitsInput, "logits" | "sequenceLengths"> {
  const { layers, tokens, experts, sequenceLengths } = layoutOfShape(shape, what);
  if (data.length !== layers * tokens * experts) {
    throw new LabInputError(`${what} declares shape [${shape.join(", ")}] but holds ${data.length} values`);
  }
  const bad = firstInvalidLogit(data);
  if (bad >= 0)
    throw new LabInputError(
      `${what}: router logit at ${logitPosition({ tokens, experts }, bad)} is ${invalidLogitMessage(data[bad])}`,
    );
  return { logits: { data, layers, tokens, experts }, sequenceLengths };
}

/** Float types the binary readers decode, by their names in each format. */
export type ElementType = "float16" | "bfloat16" | "float32" | "float64";

export const elementBytes: Record<ElementType, number> = { float16: 2, bfloat16: 2, float32: 4, float64: 8 };

/**
 * Arrays that `decodeFloats` decodes into, one per precision, each grown to
 * the largest count asked of it and then reused: a stream of chunks decodes
 * every chunk into the same memory. In Chromium fresh memory is what costs
 * (see src/workers/blob-source.ts), and a 16 MB chunk of float16 decodes
 * into 32 MB of float32: the your-logits page read a 512 MB float16 file in
 * 10.30 against 12.31 s (medians of 3 interleaved visits).
 */
export class DecodeBuffers {
  private float32s = new Float32Array(0);
  private float64s = new Float64Array(0);

  float32(count: number): Float32Array {
    if (this.float32s.length < count) this.float32s = new Float32Array(count);
    return this.float32s.subarray(0, count);
  }

  float64(count: number): Float64Array {
    if (this.float64s.length < count) this.float64s = new Float64Array(count);
    return this.float64s.subarray(0, count);
  }
}

/**
 * Decodes `count` elements starting at `bytes[offset]`. Float32 and float64
 * in little-endian are viewed without a copy when aligned; everything else is
 * converted to float32 (half precisions) or copied: into new arrays, or into
 * `buffers`' (valid until they decode again).
 */
export function decodeFloats(
  bytes: Uint8Array,
  offset: number,
  count: number,
  type: ElementType,
  littleEndian = true,
  buffers?: DecodeBuffers,
): FloatArray {
  const absolute = bytes.byteOffset + offset;
  const float32s = () => buffers?.float32(count) ?? new Float32Array(count);
  const float64s = () => buffers?.float64(count) ?? new Float64Array(count);
  if (littleEndian && (type === "float32" || type === "float64")) {
    const width = elementBytes[type];
    if (absolute % width === 0)
      return type === "float32"
        ? new Float32Array(bytes.buffer, absolute, count)
        : new Float64Array(bytes.buffer, absolute, count);
    // Misaligned: the same bytes, copied to where a typed array can view them.
    const out = type === "float32" ? float32s() : float64s();
    new Uint8Array(out.buffer, out.byteOffset, count * width).set(bytes.subarray(offset, offset + count * width));
    return out;
  }
  const view = new DataView(bytes.buffer, absolute, count * elementBytes[type]);
  if (type === "float64") {
    const out = float64s();
    for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, littleEndian);
    return out;
  }
  const out = float32s();
  if (type === "float32") for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, littleEndian);
  else if (type === "bfloat16")
    for (let i = 0; i < count; i++) out[i] = bfloat16ToNumber(view.getUint16(i * 2, littleEndian));
  else for (let i = 0; i < count; i++) out[i] = float16ToNumber(view.getUint16(i * 2, littleEndian));
  return out;
}

const scratch = new DataView(new ArrayBuffer(4));
function bfloat16ToNumber(bits: number): number {
  scratch.setUint32(0, bits << 16);
  return scratch.getFloat32(0);
}

function float16ToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** Product of dimensions, refusing anything that is not a non-negative safe integer. */
export function elementCount(shape: readonly unknown[], what: string): number {
  let count = 1;
  for (const d of shape) {
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) {
      throw new LabInputError(`${what} has an invalid shape [${shape.join(", ")}]`);
    }
    count *= d;
  }
  if (!Number.isSafeInteger(count))
    throw new LabInputError(`${what} has an impossibly large shape [${shape.join(", ")}]`);
  return count;
}
