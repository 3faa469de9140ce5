/**
 * Reading router logits from a file of any size in chunks: the header is
 * parsed first (`planLogits`), then rows arrive in order (`streamLogits`),
 * each chunk decoded and checked on its own, so that a 1 GB file never has to
 * be held whole. `.npy` (C order) and `.safetensors` stream; JSON and
 * Fortran-ordered `.npy` are read whole, up to `MAX_WHOLE_BYTES`.
 */
import { LabInputError, type FloatArray } from "../types.js";
import { firstInvalidLogit, invalidLogitMessage, logitPosition } from "../validate.js";
import { checkedFormat, readLogits, type LogitsFormat } from "./read.js";
import { SummaryBuilder, type LayerRange, type SummaryOptions } from "../summary.js";
import { validateBatch } from "../validate.js";
import { npyDataStart, parseNpyHeader } from "./npy.js";
import { MAX_HEADER_BYTES, biasOfTensors, parseSafetensorsHeader, safetensorsShape } from "./safetensors.js";
import {
  DecodeBuffers,
  decodeFloats,
  elementBytes,
  layoutOfShape,
  type ElementType,
  type LogitsInput,
} from "./tensor.js";

/** A file, a Blob or a byte array, read by ranges. */
export interface ByteSource {
  readonly name: string;
  readonly size: number;
  read(start: number, end: number): Promise<Uint8Array>;
  /**
   * `read`, for the rows' chunks (`streamLogits`): the caller is done with the
   * bytes once it has called `readChunk` twice more, so a source may reuse
   * their memory then. Optional: `read` serves when it is absent.
   */
  readChunk?(start: number, end: number): Promise<Uint8Array>;
}

export const MAX_WHOLE_BYTES = 256 * 1024 * 1024;

export function bytesSource(bytes: Uint8Array, name: string): ByteSource {
  return { name, size: bytes.length, read: async (start, end) => bytes.subarray(start, end) };
}

export interface LogitsPlan {
  format: LogitsFormat;
  layers: number;
  tokens: number;
  experts: number;
  dtype: string;
  topK?: number;
  sequenceLengths?: number[];
  microBatchSequences?: number;
  /** Byte ranges holding the rows, in order. */
  segments: { start: number; count: number; type: ElementType; littleEndian: boolean }[];
  /** Inputs read whole (JSON, Fortran order). */
  whole?: LogitsInput;
  /** The expert bias the file carries (a safetensors bias tensor), layers × experts. */
  selectionBias?: ArrayLike<number>;
  /** Where that bias came from, for messages: the tensor names. */
  selectionBiasSource?: string;
}

export async function planLogits(source: ByteSource): Promise<LogitsPlan> {
  const { name, size } = source;
  if (size === 0) throw new LabInputError(`${name} is empty`);
  const head = await source.read(0, Math.min(size, 65536));
  const format = checkedFormat(head, name);

  const whole = async (): Promise<LogitsPlan> => {
    if (size > MAX_WHOLE_BYTES) {
      throw new LabInputError(
        `${name} is ${(size / 2 ** 20).toFixed(0)} MiB; ${format === "json" ? "JSON" : "Fortran-ordered .npy"} files are read whole, up to ${MAX_WHOLE_BYTES / 2 ** 20} MiB: save large logits as C-ordered .npy or .safetensors`,
      );
    }
    const input = readLogits(await source.read(0, size), name);
    const { layers, tokens, experts } = input.logits;
    return {
      format,
      layers,
      tokens,
      experts,
      dtype: input.logits.data instanceof Float64Array ? "float64" : "float32",
      topK: input.topK,
      sequenceLengths: input.sequenceLengths,
      microBatchSequences: input.microBatchSequences,
      segments: [],
      whole: input,
    };
  };

  if (format === "json") return whole();
  if (format === "npy") {
    // A .npy header may be longer than the first read (format 2 and 3 allow up
    // to 4 GiB): read exactly as much as its preamble declares, within a bound.
    const declaredEnd = npyDataStart(head);
    const headerBytes =
      declaredEnd !== null && declaredEnd > head.length && declaredEnd <= Math.min(size, MAX_HEADER_BYTES)
        ? await source.read(0, declaredEnd)
        : head;
    const header = parseNpyHeader(headerBytes, size, name);
    if (header.fortranOrder) return whole();
    const layout = layoutOfShape(header.shape, name);
    return {
      format,
      ...layout,
      dtype: header.type,
      segments: [
        { start: header.dataStart, count: header.count, type: header.type, littleEndian: header.littleEndian },
      ],
    };
  }
  const declared = head.length >= 8 ? Number(new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true)) : 0;
  const headerBytes =
    declared > 0 && declared <= MAX_HEADER_BYTES && 8 + declared <= size ? await source.read(0, 8 + declared) : head;
  const header = parseSafetensorsHeader(headerBytes, size, name);
  const layout = layoutOfShape(safetensorsShape(header), name);
  // A bias is a few numbers per layer: read it with the header.
  const biasValues = await Promise.all(
    header.biasEntries.map(async (e) =>
      decodeFloats(
        await source.read(header.dataStart + e.begin, header.dataStart + e.end),
        0,
        (e.end - e.begin) / elementBytes[e.type],
        e.type,
      ),
    ),
  );
  const bias = header.biasEntries.length
    ? biasOfTensors(header.biasEntries, biasValues, layout.layers, layout.experts, name)
    : undefined;
  return {
    format,
    ...layout,
    ...(bias
      ? { selectionBias: bias, selectionBiasSource: header.biasEntries.map((e) => `'${e.name}'`).join(", ") }
      : {}),
    ...header.metadata,
    sequenceLengths: header.metadata.sequenceLengths ?? layout.sequenceLengths,
    dtype: header.entries[0].type,
    segments: header.entries.map((e) => ({
      start: header.dataStart + e.begin,
      count: (e.end - e.begin) / elementBytes[e.type],
      type: e.type,
      littleEndian: true,
    })),
  };
}

export interface StreamOptions {
  /** Bytes read at a time (whole rows; at least one). */
  readonly chunkBytes?: number;
  /** Only these layers' rows (a shard: another worker reads the others); the progress counts only their bytes. */
  readonly layers?: LayerRange;
  /**
   * The rows go only to a SummaryBuilder's softmax path, which checks each
   * value as it reads it, with the same sentence: the stream's own check
   * would be a second pass over every chunk.
   */
  readonly consumerChecksValues?: boolean;
}

/**
 * Calls `onRows` with consecutive chunks of whole rows (`count` rows in
 * `values`), checking every value; `onProgress` gets the bytes read so far.
 * `values` is valid only during the call: the next chunk is read or decoded
 * into the same memory (copy what must be kept).
 */
export async function streamLogits(
  source: ByteSource,
  plan: LogitsPlan,
  onRows: (values: FloatArray, count: number) => void,
  onProgress: (done: number, total: number) => void = () => {},
  options: StreamOptions = {},
): Promise<void> {
  const { chunkBytes = 16 * 1024 * 1024, layers = { first: 0, end: plan.layers } } = options;
  const { experts, tokens } = plan;
  const [firstRow, endRow] = [layers.first * tokens, layers.end * tokens];
  if (plan.whole) {
    onRows(plan.whole.logits.data.subarray(firstRow * experts, endRow * experts), endRow - firstRow);
    onProgress(source.size, source.size);
    return;
  }
  // The rows of each segment that fall in [firstRow, endRow), and their bytes.
  let segmentRow = 0;
  const parts = plan.segments.map((segment) => {
    const rows = segment.count / experts;
    const from = Math.max(0, firstRow - segmentRow);
    const to = Math.max(from, Math.min(rows, endRow - segmentRow));
    segmentRow += rows;
    return { segment, from, to };
  });
  const total = parts.reduce((n, p) => n + (p.to - p.from) * experts * elementBytes[p.segment.type], 0);
  // The chunks in file order; each is read while the one before it is summarised
  // (a read goes through the browser's file machinery, off this thread).
  const chunks = parts.flatMap(({ segment, from, to }) => {
    const rowBytes = experts * elementBytes[segment.type];
    const rowsPerChunk = Math.max(1, Math.floor(chunkBytes / rowBytes));
    const list = [];
    for (let first = from; first < to; first += rowsPerChunk)
      list.push({
        segment,
        rowBytes,
        start: segment.start + first * rowBytes,
        count: Math.min(rowsPerChunk, to - first),
      });
    return list;
  });
  // One chunk is held (summarised) while the next is read, never more: `readChunk`'s contract.
  const readChunk = source.readChunk?.bind(source) ?? source.read.bind(source);
  const read = (i: number) => readChunk(chunks[i].start, chunks[i].start + chunks[i].count * chunks[i].rowBytes);
  const decoded = new DecodeBuffers();
  let done = 0;
  let row = firstRow;
  let next = chunks.length ? read(0) : null;
  for (let i = 0; i < chunks.length; i++) {
    const { segment, rowBytes, start, count } = chunks[i];
    const bytes = await next!;
    next = i + 1 < chunks.length ? read(i + 1) : null;
    // a read abandoned below (an error thrown) must not be reported as unhandled
    next?.catch(() => {});
    if (bytes.length !== count * rowBytes)
      throw new LabInputError(
        `${source.name} ended early: expected ${count * rowBytes} bytes at offset ${start}, read ${bytes.length}`,
      );
    const values = decodeFloats(bytes, 0, count * experts, segment.type, segment.littleEndian, decoded);
    if (!options.consumerChecksValues) {
      const bad = firstInvalidLogit(values);
      if (bad >= 0) throw invalidValue(source, plan, row, values, bad);
    }
    onRows(values, count);
    row += count;
    done += bytes.length;
    onProgress(done, total);
  }
}

/**
 * A summary builder for a planned file: shape, top-k and sequence lengths are
 * checked (and the summary's memory bounded) before any row is read, so the
 * CLI and the page refuse a bad request the same way.
 */
export function summaryForPlan(
  plan: LogitsPlan,
  topK: number,
  sequenceLengths: readonly number[],
  options: SummaryOptions = {},
): SummaryBuilder {
  validateBatch(
    { data: new Float32Array(0), layers: plan.layers, tokens: plan.tokens, experts: plan.experts },
    { topK, sequenceLengths },
    { skipValues: true },
  );
  return new SummaryBuilder(plan, topK, sequenceLengths, options);
}

/** The sentence for a bad value at `values[bad]`, `values` starting at the file's row `row`. */
function invalidValue(
  source: ByteSource,
  plan: { tokens: number; experts: number },
  row: number,
  values: ArrayLike<number>,
  bad: number,
): LabInputError {
  return new LabInputError(
    `${source.name}: router logit at ${logitPosition(plan, row * plan.experts + bad)} is ${invalidLogitMessage(values[bad])}`,
  );
}
