/**
 * NumPy `.npy` files (format versions 1–3): a magic string, a little header
 * written as a Python dict literal, then the raw array. We read float16,
 * float32 and float64 in either byte order, C or Fortran order.
 */
import { LabInputError } from "../types.js";
import {
  decodeFloats,
  elementBytes,
  elementCount,
  logitsFromTensor,
  type ElementType,
  type LogitsInput,
} from "./tensor.js";

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

export function isNpy(bytes: Uint8Array): boolean {
  return bytes.length >= 6 && MAGIC.every((b, i) => bytes[i] === b);
}

const descrTypes: Record<string, ElementType> = { f2: "float16", f4: "float32", f8: "float64" };

/** Where the array starts, as the preamble declares it (null if the preamble is not all there). */
export function npyDataStart(head: Uint8Array): number | null {
  if (!isNpy(head) || head.length < 12) return null;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  return head[6] === 1 ? 10 + view.getUint16(8, true) : 12 + view.getUint32(8, true);
}

/** What a .npy header says, checked against the file's size. */
export interface NpyHeader {
  dataStart: number;
  shape: number[];
  type: ElementType;
  littleEndian: boolean;
  fortranOrder: boolean;
  count: number;
}

/**
 * Parses the header from the first bytes of a .npy file (`head` must hold the
 * whole header: `npyDataStart` says how much that is) and checks the data length against
 * `fileSize`, so a truncated or padded file is refused before any data is read.
 */
export function parseNpyHeader(head: Uint8Array, fileSize: number, name = "the .npy file"): NpyHeader {
  if (!isNpy(head)) throw new LabInputError(`${name} is not a .npy file: it does not start with the bytes \\x93NUMPY`);
  if (head.length < 10) throw new LabInputError(`${name} is truncated: it ends inside the .npy preamble`);
  const major = head[6];
  if (major < 1 || major > 3)
    throw new LabInputError(`${name} uses .npy format version ${major}; versions 1 to 3 are read`);
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const lengthBytes = major === 1 ? 2 : 4;
  if (head.length < 8 + lengthBytes) throw new LabInputError(`${name} is truncated: it ends inside the .npy preamble`);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataStart = 8 + lengthBytes + headerLength;
  if (dataStart > fileSize) {
    throw new LabInputError(
      `${name} is truncated: its header claims ${headerLength} bytes but the file ends after ${fileSize - 8 - lengthBytes}`,
    );
  }
  if (dataStart > head.length)
    throw new LabInputError(
      `${name} has a ${headerLength}-byte header, more than the ${head.length} bytes read for it`,
    );
  const header = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(head.subarray(8 + lengthBytes, dataStart));

  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new LabInputError(
      `${name} has a malformed .npy header (expected 'descr', 'fortran_order' and 'shape'): ${JSON.stringify(header.trim().slice(0, 120))}`,
    );
  }
  const byteOrder = descr[0];
  const type = descrTypes[descr.slice(1)];
  if (!type || !"<>|=".includes(byteOrder)) {
    throw new LabInputError(
      `${name} holds dtype '${descr}'; router logits are read as float16, float32 or float64 ('<f2', '<f4', '<f8')`,
    );
  }
  const shape = shapeText
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => (/^\d+L?$/.test(s) ? Number.parseInt(s, 10) : NaN));
  const count = elementCount(shape, name);
  const needed = count * elementBytes[type];
  const available = fileSize - dataStart;
  if (available < needed) {
    throw new LabInputError(
      `${name} is truncated: shape (${shape.join(", ")}) of ${descr} needs ${needed} bytes of data, the file holds ${available}`,
    );
  }
  if (available > needed) {
    throw new LabInputError(
      `${name} has ${available - needed} bytes after the array that its header does not account for`,
    );
  }
  return {
    dataStart,
    shape,
    type,
    littleEndian: byteOrder !== ">",
    fortranOrder: fortran === "True" && shape.length > 1,
    count,
  };
}

export function readNpy(bytes: Uint8Array, name = "the .npy file"): LogitsInput {
  const header = parseNpyHeader(bytes, bytes.length, name);
  let data = decodeFloats(bytes, header.dataStart, header.count, header.type, header.littleEndian);
  if (header.fortranOrder) data = fortranToC(data, header.shape);
  return logitsFromTensor(header.shape, data, name);
}

/** Reorders a column-major array into row-major. */
function fortranToC<T extends Float32Array | Float64Array>(data: T, shape: number[]): T {
  const out = new (data.constructor as { new (n: number): T })(data.length);
  const rank = shape.length;
  const strideF = new Array<number>(rank);
  strideF[0] = 1;
  for (let d = 1; d < rank; d++) strideF[d] = strideF[d - 1] * shape[d - 1];
  const index = new Array<number>(rank).fill(0);
  for (let i = 0; i < out.length; i++) {
    let source = 0;
    for (let d = 0; d < rank; d++) source += index[d] * strideF[d];
    out[i] = data[source];
    for (let d = rank - 1; d >= 0; d--) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

/** Writes a little-endian float32 `.npy` (tests, fixtures and exports). */
export function writeNpy(data: Float32Array | Float64Array, shape: readonly number[]): Uint8Array {
  const header = npyHeader(data instanceof Float64Array ? "<f8" : "<f4", shape);
  const out = new Uint8Array(header.length + data.byteLength);
  out.set(header, 0);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), header.length);
  return out;
}

/**
 * The bytes of a format-1 .npy header for `descr` ('<f2', '<f4', '<f8') and
 * `shape`, padded to 64 bytes as numpy writes it: the data follow directly.
 * (Tests use it alone to make large, sparse files without writing the data.)
 */
export function npyHeader(descr: string, shape: readonly number[]): Uint8Array {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const unpadded = 10 + header.length + 1;
  header += " ".repeat((64 - (unpadded % 64)) % 64) + "\n";
  const out = new Uint8Array(10 + header.length);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  return out;
}
