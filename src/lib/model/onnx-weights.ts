/**
 * An ONNX model split into its graph and its weights: the graph with every
 * initializer turned into a graph input, and the initializers' values, to be
 * fed at each run. OLMoE-mini's checkpoints share one graph and differ only in
 * their weights, so a page that routes four of them opens one inference
 * session and feeds it four sets of weights: on two cores onnxruntime-web
 * takes 0.3–0.45 s to open a session for each checkpoint (parsing and
 * planning ~1,000 nodes) against ~20 ms (15–70 ms in Node) to read a checkpoint's weights here.
 *
 * Checkpoints exported by torch differ in ways that do not change what they
 * compute, and the graph is normalised so that equal graphs are equal bytes:
 * - torch names nodes with a running counter (`Constant_55` in one file is
 *   `Constant_53` in another): node names are dropped;
 * - torch shares one initializer between equal weights through an Identity
 *   node (all-zero expert biases: one tensor and `Identity_1`), where a
 *   checkpoint with distinct values has two initializers: an Identity that
 *   copies an initializer becomes a weight of its own (the same values);
 * - the model's metadata may name its checkpoint: it is dropped.
 * Weights become inputs in the order of their names. `key` identifies the
 * graph: equal keys, equal graph bytes (a hash is a Map key; `sameGraph`
 * confirms).
 *
 * A minimal protobuf reader and writer for the parts of onnx.proto this needs
 * (ModelProto, GraphProto, NodeProto, TensorProto, ValueInfoProto); anything
 * it cannot split exactly (external data, sparse or typed-field initializers,
 * a truncated file) throws, and the caller opens the file as it is.
 */

/** One initializer's value. */
export interface Weight {
  readonly name: string;
  /** ONNX's TensorProto.DataType (1 float32, 10 float16, 7 int64, …). */
  readonly dataType: number;
  readonly dims: readonly number[];
  /**
   * Its bytes as the file stores them (little-endian): a view of the file,
   * not a copy, and so not always aligned for its typed array (`weightValues`).
   */
  readonly data: Uint8Array;
}

export interface SplitModel {
  /** The model with no initializer: every weight is a graph input after the graph's own inputs (written when first read). */
  readonly graph: Uint8Array;
  /** Identifies `graph` (a hash of its bytes and their length; computed when read). */
  readonly key: string;
  /** The graph's own inputs (what a caller feeds besides the weights), in the graph's order. */
  readonly inputNames: readonly string[];
  /** The weights, in the order the graph declares them as inputs. */
  readonly weights: readonly Weight[];
  /** The graph's outputs, in its order. */
  readonly outputNames: readonly string[];
  /** The graph's nodes in its order (an Identity that copies a weight is a weight instead): what a reader of the graph's structure needs. */
  readonly nodes: readonly GraphNode[];
}

/** One node of the graph: its operator and the names of the values it reads and writes. */
export interface GraphNode {
  readonly opType: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
}

type WeightArray = Float32Array | Uint8Array | Int8Array | Int32Array | BigInt64Array | Uint16Array | Float64Array;

/** Each ONNX data type a weight may have: onnxruntime's name for it, its width, and the typed array it is fed as. */
export const WEIGHT_TYPES: Readonly<
  Record<
    number,
    { type: string; bytes: number; array: new (buffer: ArrayBuffer, byteOffset: number, length: number) => WeightArray }
  >
> = {
  1: { type: "float32", bytes: 4, array: Float32Array },
  2: { type: "uint8", bytes: 1, array: Uint8Array },
  3: { type: "int8", bytes: 1, array: Int8Array },
  6: { type: "int32", bytes: 4, array: Int32Array },
  7: { type: "int64", bytes: 8, array: BigInt64Array },
  9: { type: "bool", bytes: 1, array: Uint8Array },
  10: { type: "float16", bytes: 2, array: Uint16Array }, // onnxruntime takes float16 as its bits
  11: { type: "float64", bytes: 8, array: Float64Array },
};

/**
 * The runtime's Tensor constructor (onnxruntime-web's or -node's), as weightFeeds calls it: `any` because the
 * runtimes overload it per type name, which no one signature over every weight type matches.
 */
export type AnyTensorConstructor<T> = new (type: any, data: any, dims: readonly number[]) => T;

/**
 * A weight's values as its typed array: a view of the file where its bytes lie
 * at a multiple of the type's width, else a copy (protobuf aligns nothing).
 */
export function weightValues(weight: Weight): WeightArray {
  const { bytes, array } = WEIGHT_TYPES[weight.dataType];
  const aligned = alignedBytes(weight);
  return new array(aligned.buffer as ArrayBuffer, aligned.byteOffset, aligned.byteLength / bytes);
}

/** The weight's bytes where they lie at a multiple of its type's width, else a copy of them (at offset 0). */
function alignedBytes({ data, dataType }: Weight): Uint8Array {
  return data.byteOffset % WEIGHT_TYPES[dataType].bytes === 0 ? data : data.slice();
}

/**
 * The weights with each one's bytes aligned for its typed array: the same
 * weight where they are, a copy where not. A session fed the same weights at
 * every run aligns them once (`weightFeeds` then copies nothing).
 */
export function alignedWeights(weights: readonly Weight[]): Weight[] {
  return weights.map((weight) => {
    const data = alignedBytes(weight);
    return data === weight.data ? weight : { ...weight, data };
  });
}

/** A checkpoint's weights as the runtime's tensors, by input name: views of the weights' bytes where aligned (`alignedWeights`). */
export function weightFeeds<T>(Tensor: AnyTensorConstructor<T>, weights: readonly Weight[]): Record<string, T> {
  const feeds: Record<string, T> = {};
  for (const weight of weights)
    feeds[weight.name] = new Tensor(WEIGHT_TYPES[weight.dataType].type, weightValues(weight), weight.dims);
  return feeds;
}

// onnx.proto field numbers used here.
const MODEL_GRAPH = 7;
const MODEL_METADATA = 14;
const GRAPH_NODE = 1;
const GRAPH_INITIALIZER = 5;
const GRAPH_INPUT = 11;
const GRAPH_OUTPUT = 12;
const GRAPH_SPARSE_INITIALIZER = 15;
const NODE_INPUT = 1;
const NODE_OUTPUT = 2;
const NODE_NAME = 3;
const NODE_OP_TYPE = 4;
const NODE_DOMAIN = 7;
const VALUE_INFO_NAME = 1;
const TENSOR_DIMS = 1;
const TENSOR_DATA_TYPE = 2;
const TENSOR_NAME = 8;
const TENSOR_RAW_DATA = 9;
const TENSOR_DATA_LOCATION = 14;
/** TensorProto fields that hold values other than in raw_data (segment, *_data, external_data). */
const TENSOR_VALUE_FIELDS = new Set([3, 4, 5, 6, 7, 10, 11, 13]);

/** One field of a protobuf message: its number, wire type, value (varint) or bytes (length-delimited), and its whole encoding. */
interface Field {
  number: number;
  wire: number;
  value: number;
  bytes: Uint8Array;
  encoded: Uint8Array;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

function readVarint(buffer: Uint8Array, at: number): [value: number, next: number] {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (at >= buffer.length) throw new Error("the ONNX file ends inside a number");
    const byte = buffer[at++];
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return [value, at];
    scale *= 128;
  }
  throw new Error("the ONNX file has a malformed number");
}

/** The fields of one message, in order. */
function fields(message: Uint8Array): Field[] {
  const out: Field[] = [];
  let at = 0;
  while (at < message.length) {
    const start = at;
    const [tag, afterTag] = readVarint(message, at);
    const number = Math.floor(tag / 8);
    const wire = tag % 8;
    at = afterTag;
    let value = 0;
    let bytes = message.subarray(at, at);
    if (wire === 0) [value, at] = readVarint(message, at);
    else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else if (wire === 2) {
      const [length, afterLength] = readVarint(message, at);
      at = afterLength + length;
      bytes = message.subarray(afterLength, at);
    } else throw new Error(`the ONNX file has an unsupported protobuf wire type ${wire}`);
    if (number === 0 || at > message.length) throw new Error("the ONNX file is truncated or not an ONNX model");
    out.push({ number, wire, value, bytes, encoded: message.subarray(start, at) });
  }
  return out;
}

const text = (field: Field) => utf8.decode(field.bytes);
const stringsOf = (all: Field[], number: number) => all.filter((f) => f.number === number).map(text);

function varint(value: number): number[] {
  const out: number[] = [];
  while (value >= 0x80) {
    out.push((value % 128) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** A length-delimited field (wire type 2). */
const message = (number: number, content: Uint8Array) =>
  concat([Uint8Array.from([...varint(number * 8 + 2), ...varint(content.length)]), content]);
const varintField = (number: number, value: number) => Uint8Array.from([...varint(number * 8), ...varint(value)]);

/** ValueInfoProto of a tensor input: name, and type { tensor_type { elem_type, shape { dim { dim_value }… } } }. */
function tensorInput(name: string, dataType: number, dims: readonly number[]): Uint8Array {
  const shape = concat(dims.map((d) => message(1, varintField(1, d))));
  const tensorType = concat([varintField(1, dataType), message(2, shape)]);
  return message(
    GRAPH_INPUT,
    concat([message(VALUE_INFO_NAME, encoder.encode(name)), message(2, message(1, tensorType))]),
  );
}

function readWeight(tensor: Uint8Array): Weight {
  const all = fields(tensor);
  const name = stringsOf(all, TENSOR_NAME)[0] ?? "?"; // written after the values: read first, for the messages
  let dataType = 0;
  const dims: number[] = [];
  let raw: Uint8Array | null = null;
  for (const field of all) {
    if (field.number === TENSOR_DATA_TYPE) dataType = field.value;
    else if (field.number === TENSOR_DIMS) {
      if (field.wire === 0) dims.push(field.value);
      else for (let at = 0, d = 0; at < field.bytes.length; dims.push(d)) [d, at] = readVarint(field.bytes, at);
    } else if (field.number === TENSOR_RAW_DATA) raw = field.bytes;
    else if (field.number === TENSOR_DATA_LOCATION && field.value !== 0)
      throw new Error(`the weight ${name} is stored outside the file`);
    else if (TENSOR_VALUE_FIELDS.has(field.number)) throw new Error(`the weight ${name} is not stored as raw data`);
  }
  const type = WEIGHT_TYPES[dataType];
  if (!type) throw new Error(`the weight ${name} has an unsupported data type ${dataType}`);
  const count = dims.reduce((a, b) => a * b, 1);
  const data = raw ?? new Uint8Array(0);
  if (data.length !== count * type.bytes)
    throw new Error(`the weight ${name} holds ${data.length} bytes for ${count} values of ${type.type}`);
  // A view, no copy: the lab's forward pass decodes most weights (float16) straight from the file's
  // bytes; a copy of every weight was a checkpoint's size in fresh memory (issue 14: docs/architecture.md).
  return { name, dataType, dims, data };
}

/** Splits an ONNX model into its normalised graph (weights as inputs) and its weights; throws where it cannot do so exactly. */
export function splitWeights(model: Uint8Array): SplitModel {
  const modelFields = fields(model);
  const graphs = modelFields.filter((f) => f.number === MODEL_GRAPH);
  if (graphs.length !== 1) throw new Error("the file is not an ONNX model (it has no graph)");
  const graphFields = fields(graphs[0].bytes);
  if (graphFields.some((f) => f.number === GRAPH_SPARSE_INITIALIZER))
    throw new Error("the model has sparse initializers");

  const byName = new Map<string, Weight>();
  for (const field of graphFields)
    if (field.number === GRAPH_INITIALIZER) {
      const weight = readWeight(field.bytes);
      byName.set(weight.name, weight);
    }
  const outputNames = graphFields
    .filter((f) => f.number === GRAPH_OUTPUT)
    .map((f) => stringsOf(fields(f.bytes), VALUE_INFO_NAME)[0]);
  const graphOutputs = new Set(outputNames);
  const inputNames = graphFields
    .filter((f) => f.number === GRAPH_INPUT)
    .map((f) => stringsOf(fields(f.bytes), VALUE_INFO_NAME)[0])
    .filter((name) => !byName.has(name));

  // Nodes without their names; an Identity that copies an initializer becomes a weight of its own.
  const nodes: Field[][] = [];
  const graphNodes: GraphNode[] = [];
  for (const field of graphFields) {
    if (field.number !== GRAPH_NODE) continue;
    const nodeFields = fields(field.bytes);
    const [opType] = stringsOf(nodeFields, NODE_OP_TYPE);
    const [domain = ""] = stringsOf(nodeFields, NODE_DOMAIN);
    const ins = stringsOf(nodeFields, NODE_INPUT);
    const outs = stringsOf(nodeFields, NODE_OUTPUT);
    const source = ins.length === 1 ? byName.get(ins[0]) : undefined;
    if (opType === "Identity" && domain === "" && source && outs.length === 1 && !graphOutputs.has(outs[0])) {
      if (!byName.has(outs[0])) byName.set(outs[0], { ...source, name: outs[0] });
      continue;
    }
    nodes.push(nodeFields);
    graphNodes.push({ opType, inputs: ins, outputs: outs });
  }

  const weights = [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  // The graph's own fields in their order (nodes rewritten, initializers gone), then one input per weight.
  // Written when first asked for: only onnxruntime reads it, and the lab's own forward pass, which
  // reads most checkpoints, needs the nodes and weights alone (10–15 ms a checkpoint in Node).
  const encode = (): Uint8Array => {
    const graph: Uint8Array[] = [];
    let nodesWritten = false;
    for (const field of graphFields) {
      if (field.number === GRAPH_NODE) {
        if (!nodesWritten)
          for (const node of nodes)
            graph.push(message(GRAPH_NODE, concat(node.filter((f) => f.number !== NODE_NAME).map((f) => f.encoded))));
        nodesWritten = true;
      } else if (field.number === GRAPH_INPUT) {
        const [name] = stringsOf(fields(field.bytes), VALUE_INFO_NAME);
        if (!byName.has(name)) graph.push(field.encoded); // an initializer listed as an input is declared below
      } else if (field.number !== GRAPH_INITIALIZER) graph.push(field.encoded);
    }
    for (const weight of weights) graph.push(tensorInput(weight.name, weight.dataType, weight.dims));
    return concat([
      ...modelFields.filter((f) => f.number !== MODEL_GRAPH && f.number !== MODEL_METADATA).map((f) => f.encoded),
      message(MODEL_GRAPH, concat(graph)),
    ]);
  };
  let bytes: Uint8Array | null = null;
  let key: string | null = null;
  return {
    get graph() {
      return (bytes ??= encode());
    },
    get key() {
      return (key ??= `${hash(this.graph)}:${this.graph.length}`);
    },
    inputNames,
    weights,
    outputNames,
    nodes: graphNodes,
  };
}

/** Whether two split graphs are the same bytes (a key match confirmed). */
export function sameGraph(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** FNV-1a, 32 bits, as 8 hex digits. */
function hash(bytes: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return (h >>> 0).toString(16).padStart(8, "0");
}
