/**
 * OLMoE-mini's forward pass up to its last router, in TypeScript: the router
 * logits and the expert bias that every routing view reads, computed from a
 * checkpoint's router-only graph (data/recipe/router_only.py) without
 * onnxruntime-web.
 *
 * Why a forward pass of our own: the routing views need ~0.2 GFLOP per
 * checkpoint, which plain JavaScript computes in a few tenths of a second,
 * while onnxruntime-web's first answer on a two-core machine costs 1.5–3 s
 * before any of it (the runtime's init, its first session and first run, with
 * V8 compiling ~3,700 wasm functions on first call: issue 14's measurements in
 * docs/architecture.md). The full graphs (next-token predictions, route
 * overrides) and a reader's `?ep=wasm` / `?ep=webgpu` still run on
 * onnxruntime-web.
 *
 * What it computes is data/recipe/model.py's OLMoE-mini, step for step as the
 * exported graph does it, each intermediate rounded to float32 as the graph
 * stores it (sums in float64, but for the matrix products' four float32 lanes:
 * linear-kernel.ts, in WebAssembly SIMD where the caller passes it): RMSNorm pre-norm; QK-norm over the
 * whole projected q and k before the split into heads; RoPE with the
 * rotate-half convention; causal softmax attention; a bias-free router,
 * softmax over all experts, top-k of the probabilities plus the expert bias
 * (ties to the lower index, as ONNX's TopK), gates the unbiased probabilities,
 * not renormalised; SwiGLU experts. The last block stops at its router, as the
 * router-only graph does. test/router-forward.test.ts checks it against
 * onnxruntime-node on the same files and against PyTorch's reference logits.
 *
 * The graph is read, not trusted: `readRouterGraph` finds each weight by the
 * name the exporter gave it (a projection, named only `onnx::MatMul_N`, by
 * the scope in the name of the MatMul that reads it, `/model/blocks.0/attn/q/…`;
 * data/recipe/from_onnx.py matches them by the trace's order instead) and refuses a file whose
 * inputs, outputs, shapes or baked route overrides are not the router-only
 * graph this computes; the caller then runs the file on onnxruntime-web.
 */
import type { OlmoeMini } from "./olmoe-mini-facts.js";
import { weightValues, type SplitModel, type Weight } from "./onnx-weights.js";
import { linearLanes, type Linear } from "./linear-kernel.js";
import { topKRow } from "../routing.js";

/** The attention and MoE weights of one block. Projections are stored [out, in]: each output is a dot product over one contiguous row. */
interface Block {
  readonly attnNorm: Float32Array; // [width]
  readonly qNorm: Float32Array; // [width]
  readonly kNorm: Float32Array; // [width]
  readonly moeNorm: Float32Array; // [width]
  readonly q: Float32Array; // [width, width]
  readonly k: Float32Array; // [width, width]
  readonly v: Float32Array; // [width, width]
  readonly o: Float32Array; // [width, width]
  readonly router: Float32Array; // [experts, width]
  /** The experts, for every block but the last (the graph stops at its router). */
  readonly experts: Experts | null;
}

/**
 * The experts' weights as the file stores them, decoded and transposed one
 * expert at a time by each pass that routes tokens to it (`transposeInto`):
 * decoded once per checkpoint, they were 7 MB of fresh float32 memory, and on
 * the two-core machine a fresh page of memory costs more than decoding it
 * again (docs/architecture.md). Decoding all of them takes a pass 2–4 ms.
 */
interface Experts {
  readonly gate: Stored; // [experts, width, hidden]
  readonly up: Stored; // [experts, width, hidden]
  readonly down: Stored; // [experts, hidden, width]
  /** Added to the probabilities to choose (loss-free balancing), never to the gates. */
  readonly bias: Float32Array; // [experts]
}

/** A float32 or float16 weight's values, read where they lie in the file: a DataView asks no alignment and copies nothing. */
interface Stored {
  readonly half: boolean;
  readonly view: DataView;
}

/** A checkpoint's router-only graph, ready to run. */
export interface RouterGraph {
  readonly vocab: number;
  readonly width: number;
  readonly heads: number;
  readonly experts: number;
  readonly topK: number;
  readonly hidden: number;
  readonly ropeTheta: number;
  readonly normEps: number;
  readonly embed: Stored; // [vocab, width]: each token's row is read as the pass needs it
  readonly blocks: readonly Block[];
  /** The graph's expert_bias output, layers × experts. */
  readonly expertBias: Float32Array;
}

/** What a forward pass returns: router_logits, layers × batch × seq × experts, as onnxruntime's output. */
export interface RouterLogits {
  readonly router: Float32Array;
  readonly dims: readonly [layers: number, batch: number, seq: number, experts: number];
}

const FLOAT32 = 1;
const FLOAT16 = 10;
const INT64 = 7;

/**
 * Reads a split router-only graph (src/lib/model/onnx-weights.ts) into the
 * weights `routerForward` runs; throws, saying what differs, for any file
 * that is not OLMoE-mini's router-only graph with no route override baked in.
 */
export function readRouterGraph(split: SplitModel, model: OlmoeMini): RouterGraph {
  const { d_model: width, n_heads: heads, n_experts: experts, top_k: topK, expert_hidden: hidden } = model.architecture;
  const layers = model.layers;
  if (split.inputNames.length !== 1 || split.inputNames[0] !== "input_ids")
    throw new Error(`the graph's inputs are ${split.inputNames.join(", ")}, not input_ids alone (a full graph)`);
  if (!split.outputNames.includes("router_logits") || !split.outputNames.includes("expert_bias"))
    throw new Error(`the graph's outputs are ${split.outputNames.join(", ")}, not router_logits and expert_bias`);
  if (split.outputNames.includes("logits")) throw new Error("the graph has an LM head (a full graph)");

  const byName = new Map(split.weights.map((w) => [w.name, w]));
  const stored = (name: string, dims: readonly number[]): Weight => {
    const weight = byName.get(name) ?? byName.get(`${name}__fp16`);
    if (!weight) throw new Error(`the graph has no weight ${name}`);
    if (weight.dims.join() !== dims.join())
      throw new Error(`the weight ${name} is [${weight.dims.join(", ")}], not [${dims.join(", ")}]`);
    return weight;
  };
  const floats = (name: string, dims: readonly number[]): Float32Array => decodeFloats(stored(name, dims));
  const matrices = (name: string, dims: readonly number[]): Stored => storedValues(stored(name, dims));
  // The exporter names a Linear's weight after its MatMul (onnx::MatMul_1332): the MatMul's output names its scope.
  const projections = new Map<string, string>();
  for (const node of split.nodes) {
    const scope = /^\/model\/blocks\.(\d+)\/(attn\/[qkvo]|moe\/router)\/MatMul_output_0$/.exec(node.outputs[0] ?? "");
    if (node.opType === "MatMul" && scope && byName.has(node.inputs[1]))
      projections.set(`${scope[1]}/${scope[2]}`, node.inputs[1]);
  }
  const projection = (layer: number, what: string, outputs: number): Float32Array => {
    const name = projections.get(`${layer}/${what}`);
    if (!name) throw new Error(`the graph has no ${what} projection in block ${layer}`);
    return transposeInto(
      storedValues(stored(name, [width, outputs])),
      0,
      width,
      outputs,
      new Float32Array(width * outputs),
    );
  };
  checkNoOverride(byName);

  const blocks: Block[] = [];
  for (let layer = 0; layer < layers; layer++) {
    const prefix = `model.blocks.${layer}`;
    const last = layer === layers - 1;
    blocks.push({
      attnNorm: floats(`${prefix}.attn_norm.weight`, [width]),
      qNorm: floats(`${prefix}.attn.q_norm.weight`, [width]),
      kNorm: floats(`${prefix}.attn.k_norm.weight`, [width]),
      moeNorm: floats(`${prefix}.moe_norm.weight`, [width]),
      q: projection(layer, "attn/q", width),
      k: projection(layer, "attn/k", width),
      v: projection(layer, "attn/v", width),
      o: projection(layer, "attn/o", width),
      router: projection(layer, "moe/router", experts),
      experts: last
        ? null
        : {
            gate: matrices(`${prefix}.moe.w_gate`, [experts, width, hidden]),
            up: matrices(`${prefix}.moe.w_up`, [experts, width, hidden]),
            down: matrices(`${prefix}.moe.w_down`, [experts, hidden, width]),
            bias: floats(`${prefix}.moe.expert_bias`, [experts]),
          },
    });
  }
  const embed = byName.get("model.embed.weight");
  if (!embed || embed.dims.length !== 2 || embed.dims[1] !== width)
    throw new Error(`the graph has no embedding of width ${width}`);
  // The expert_bias output is an Identity of the stacked biases.
  const biasSource = split.nodes.find((n) => n.opType === "Identity" && n.outputs[0] === "expert_bias")?.inputs[0];
  if (!biasSource) throw new Error("the graph's expert_bias output is not a stored weight");
  return {
    vocab: embed.dims[0],
    width,
    heads,
    experts,
    topK,
    hidden,
    ropeTheta: model.architecture.rope_theta,
    normEps: model.architecture.norm_eps,
    embed: storedValues(embed),
    blocks,
    expertBias: floats(biasSource, [layers, experts]),
  };
}

/** The router-only graph bakes the route overrides' no-override values in (route-overrides.ts): any other value is a route this does not compute. */
function checkNoOverride(byName: ReadonlyMap<string, Weight>): void {
  const forced = byName.get("forced_experts");
  if (forced && (forced.dataType !== INT64 || (weightValues(forced) as BigInt64Array).some((e) => e !== -1n)))
    throw new Error("the graph forces a route (forced_experts is not all -1)");
  const noise = byName.get("router_input_noise");
  if (noise && decodeFloats(noise).some((e) => e !== 0)) throw new Error("the graph perturbs the router's input");
  const bf16 = byName.get("router_bf16");
  if (bf16 && decodeFloats(bf16).some((e) => e !== 0))
    throw new Error("the graph rounds the router's input to bfloat16");
}

function storedValues(weight: Weight): Stored {
  if (weight.dataType !== FLOAT32 && weight.dataType !== FLOAT16)
    throw new Error(`the weight ${weight.name} is not stored as float32 or float16`);
  const { buffer, byteOffset, byteLength } = weight.data;
  return { half: weight.dataType === FLOAT16, view: new DataView(buffer, byteOffset, byteLength) };
}

/** A small weight (a norm, the biases) as float32 values of its own. */
function decodeFloats(weight: Weight): Float32Array {
  const values = storedValues(weight);
  const out = new Float32Array(weight.data.byteLength / (values.half ? 2 : 4));
  readValues(values, 0, out.length, out, 0);
  return out;
}

/** `count` stored values from index `from` into `out` at `at`, as float32. */
function readValues(stored: Stored, from: number, count: number, out: Float32Array, at: number): void {
  const { view } = stored;
  if (stored.half) {
    const table = halfTable();
    for (let i = 0; i < count; i++) out[at + i] = table[view.getUint16(2 * (from + i), true)];
  } else for (let i = 0; i < count; i++) out[at + i] = view.getFloat32(4 * (from + i), true);
}

/** Every float16 bit pattern's value, built on first use (256 KB): decoding a weight is then one lookup per value. */
let halfValues: Float32Array | null = null;

/** IEEE half-precision bits → their float32 value, by the bits (exact: every float16 is a float32). */
export function halfTable(): Float32Array {
  if (!halfValues) {
    halfValues = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const sign = h & 0x8000 ? -1 : 1;
      const exponent = (h >> 10) & 0x1f;
      const fraction = h & 0x3ff;
      halfValues[h] =
        exponent === 0
          ? sign * fraction * 2 ** -24
          : exponent === 31
            ? fraction
              ? NaN
              : sign * Infinity
            : sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
    }
  }
  return halfValues;
}

/**
 * Matrix `index` of a stored [count, rows, cols] weight, as float32 [cols, rows]
 * into `out`: each output a contiguous row, as `linear` reads it. A float16
 * weight is decoded on the way, with no float32 copy in the stored order between.
 */
function transposeInto(stored: Stored, index: number, rows: number, cols: number, out: Float32Array): Float32Array {
  const { view } = stored;
  const size = rows * cols;
  const from = index * size;
  // Each output row in order, reading the stored column with a stride: in V8, 1 ms for the 64 matrices
  // of a [64, 96, 48] expert weight, against 5.5 ms writing with the stride.
  let written = 0;
  if (stored.half) {
    const table = halfTable();
    for (let c = 0; c < cols; c++)
      for (let read = from + c; read < from + size; read += cols)
        out[written++] = table[view.getUint16(2 * read, true)];
  } else
    for (let c = 0; c < cols; c++)
      for (let read = from + c; read < from + size; read += cols) out[written++] = view.getFloat32(4 * read, true);
  return out;
}

/**
 * A pass's intermediates, kept by name from one pass to the next: ~8 MB of
 * fresh arrays a pass on the z-loss page's 4 × 128 tokens, and on the two-core machine
 * each fresh page of memory costs ~15 µs the first time it is touched
 * (docs/architecture.md), a quarter of the worker's time there. Every array
 * is written in full before it is read; a pass runs from start to end in one
 * call, so no two passes share one. Arrays over `KEEP_AT_MOST` bytes (a long
 * text's batch) are not kept: the worker would hold them for the page's life.
 */
const kept = new Map<string, ArrayBuffer>();
const KEEP_AT_MOST = 32 * 2 ** 20;

function scratch<A extends Float32ArrayConstructor | Int32ArrayConstructor>(
  name: string,
  Array: A,
  length: number,
): InstanceType<A> {
  const bytes = length * 4;
  let buffer = kept.get(name);
  if (!buffer || buffer.byteLength < bytes) {
    buffer = new ArrayBuffer(bytes);
    if (bytes <= KEEP_AT_MOST) kept.set(name, buffer);
  }
  return new Array(buffer, 0, length) as InstanceType<A>;
}

/**
 * Router logits for `batch` sequences of `seq` token ids (row-major), as the
 * router-only graph's `router_logits` output. Throws for an id outside the
 * vocabulary (the graph's Gather would fail too). `linear`: the matrix
 * product, `linearOn` the WebAssembly kernel where the caller has it; both
 * give the same numbers bit for bit (linear-kernel.ts).
 */
export function routerForward(
  graph: RouterGraph,
  inputIds: Int32Array,
  batch: number,
  seq: number,
  linear: Linear = linearLanes,
): RouterLogits {
  const { width, experts, blocks } = graph;
  const tokens = batch * seq;
  if (inputIds.length !== tokens) throw new Error(`${inputIds.length} token ids for a batch of ${batch} × ${seq}`);
  for (let t = 0; t < tokens; t++) {
    const id = inputIds[t];
    if (!(id >= 0 && id < graph.vocab)) throw new Error(`token id ${id} is outside the vocabulary of ${graph.vocab}`);
  }
  const x = scratch("x", Float32Array, tokens * width);
  for (let t = 0; t < tokens; t++) readValues(graph.embed, inputIds[t] * width, width, x, t * width);
  const rope = ropeTables(graph, seq);
  const router = new Float32Array(blocks.length * tokens * experts); // the answer: the caller's to keep
  const normed = scratch("normed", Float32Array, tokens * width);
  for (let layer = 0; layer < blocks.length; layer++) {
    const block = blocks[layer];
    rmsNorm(x, block.attnNorm, graph.normEps, normed);
    addInto(x, attention(graph, block, normed, batch, seq, rope, linear));
    rmsNorm(x, block.moeNorm, graph.normEps, normed);
    const logits = router.subarray(layer * tokens * experts, (layer + 1) * tokens * experts);
    linear(normed, block.router, width, experts, logits);
    if (block.experts) addInto(x, mixture(graph, block.experts, normed, logits, linear));
  }
  return { router, dims: [blocks.length, batch, seq, experts] };
}

/** Σ a[aAt + i] · b[bAt + i], summed in order in float64 (norms and attention scores; the matrix products are `linear`'s). */
function dot(a: Float32Array, aAt: number, b: Float32Array, bAt: number, length: number): number {
  let sum = 0;
  for (let i = 0; i < length; i++) sum += a[aAt + i] * b[bAt + i];
  return sum;
}

/** x · rsqrt(mean(x²) + ε) · weight, per row (model.py's RMSNorm). */
function rmsNorm(x: Float32Array, weight: Float32Array, eps: number, out: Float32Array): Float32Array {
  const width = weight.length;
  for (let at = 0; at < x.length; at += width) {
    const scale = Math.fround(1 / Math.fround(Math.sqrt(Math.fround(dot(x, at, x, at, width) / width) + eps)));
    for (let i = 0; i < width; i++) out[at + i] = Math.fround(x[at + i] * scale) * weight[i];
  }
  return out;
}

function addInto(x: Float32Array, y: Float32Array): void {
  for (let i = 0; i < x.length; i++) x[i] += y[i];
}

/** cos and sin of position × inverse frequency, [seq, head/2], computed in float32 as the graph does. */
function ropeTables(graph: RouterGraph, seq: number): { cos: Float32Array; sin: Float32Array } {
  const half = graph.width / graph.heads / 2;
  const cos = new Float32Array(seq * half);
  const sin = new Float32Array(seq * half);
  for (let j = 0; j < half; j++) {
    const inverse = Math.fround(1 / Math.fround(graph.ropeTheta ** Math.fround((2 * j) / (2 * half))));
    for (let p = 0; p < seq; p++) {
      const angle = Math.fround(p * inverse);
      cos[p * half + j] = Math.cos(angle);
      sin[p * half + j] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

/** Rotates each head's two halves of every row in place (the transformers rotate_half convention). */
function applyRope(x: Float32Array, graph: RouterGraph, seq: number, rope: { cos: Float32Array; sin: Float32Array }) {
  const head = graph.width / graph.heads;
  const half = head / 2;
  for (let t = 0; t < x.length / graph.width; t++) {
    const p = t % seq;
    for (let h = 0; h < graph.heads; h++) {
      const at = t * graph.width + h * head;
      for (let j = 0; j < half; j++) {
        const c = rope.cos[p * half + j];
        const s = rope.sin[p * half + j];
        const a = x[at + j];
        const b = x[at + half + j];
        x[at + j] = Math.fround(a * c) - Math.fround(b * s);
        x[at + half + j] = Math.fround(b * c) + Math.fround(a * s);
      }
    }
  }
}

/** Causal multi-head self-attention with QK-norm and RoPE; returns the output projection. */
function attention(
  graph: RouterGraph,
  block: Block,
  x: Float32Array,
  batch: number,
  seq: number,
  rope: { cos: Float32Array; sin: Float32Array },
  linear: Linear,
): Float32Array {
  const { width, heads, normEps } = graph;
  const tokens = batch * seq;
  const head = width / heads;
  // Normalised in place: each row's scale is computed before any of its values is written.
  const q = linear(x, block.q, width, width, scratch("q", Float32Array, tokens * width));
  rmsNorm(q, block.qNorm, normEps, q);
  const k = linear(x, block.k, width, width, scratch("k", Float32Array, tokens * width));
  rmsNorm(k, block.kNorm, normEps, k);
  const v = linear(x, block.v, width, width, scratch("v", Float32Array, tokens * width));
  applyRope(q, graph, seq, rope);
  applyRope(k, graph, seq, rope);
  const scale = Math.fround(Math.sqrt(head));
  const mixed = scratch("mixed", Float32Array, tokens * width);
  // One sequence's one head at a time, its two products through `linear`: the scores q·k for every pair
  // (the half above the diagonal is computed and never read), and the probabilities times the values,
  // where each query's row is zero past itself (a zero adds nothing, bit for bit: the causal sum exactly).
  const qh = new Float32Array(seq * head); // [seq, head]
  const kh = new Float32Array(seq * head); // [seq, head]
  const vt = new Float32Array(head * seq); // [head, seq]: values transposed, each output a row
  const scores = scratch("scores", Float32Array, seq * seq);
  const probabilities = scratch("probabilities", Float32Array, seq * seq);
  const mix = new Float32Array(seq * head);
  const weights = new Float64Array(seq);
  for (let b = 0; b < batch; b++)
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < seq; i++) {
        const at = (b * seq + i) * width + h * head;
        qh.set(q.subarray(at, at + head), i * head);
        kh.set(k.subarray(at, at + head), i * head);
        for (let d = 0; d < head; d++) vt[d * seq + i] = v[at + d];
      }
      linear(qh, kh, head, seq, scores);
      probabilities.fill(0);
      for (let i = 0; i < seq; i++) {
        let max = -Infinity;
        for (let j = 0; j <= i; j++) {
          const score = Math.fround(scores[i * seq + j] / scale);
          weights[j] = score;
          if (score > max) max = score;
        }
        let sum = 0;
        for (let j = 0; j <= i; j++) sum += weights[j] = Math.fround(Math.exp(weights[j] - max));
        for (let j = 0; j <= i; j++) probabilities[i * seq + j] = weights[j] / sum;
      }
      linear(probabilities, vt, seq, head, mix);
      for (let i = 0; i < seq; i++) mixed.set(mix.subarray(i * head, (i + 1) * head), (b * seq + i) * width + h * head);
    }
  return linear(mixed, block.o, width, width, scratch("attended", Float32Array, tokens * width));
}

/**
 * The MoE layer's output for each token: Σ over its top-k experts of the
 * gate times SwiGLU(x), where the choice is top-k of softmax(logits) + bias
 * and the gate the unbiased probability (not renormalised, as OLMoE). Tokens
 * are grouped by expert so that each expert's weights are read once, hot in cache.
 */
function mixture(
  graph: RouterGraph,
  experts: Experts,
  x: Float32Array,
  logits: Float32Array,
  linear: Linear,
): Float32Array {
  const { width, hidden, topK, experts: count } = graph;
  const tokens = x.length / width;
  const chosen = scratch("chosen", Int32Array, tokens * topK);
  const gates = scratch("gates", Float32Array, tokens * topK);
  const probs = new Float32Array(count);
  const scores = new Float64Array(count);
  for (let t = 0; t < tokens; t++) {
    softmax(logits, t * count, count, probs);
    for (let e = 0; e < count; e++) scores[e] = Math.fround(probs[e] + experts.bias[e]);
    // Largest first, ties to the lower index, as ONNX's TopK.
    topKRow(scores, count, topK, chosen, t * topK);
    for (let s = 0; s < topK; s++) gates[t * topK + s] = probs[chosen[t * topK + s]];
  }
  // Slots grouped by expert, in token order within each.
  const starts = new Int32Array(count + 1);
  for (let i = 0; i < chosen.length; i++) starts[chosen[i] + 1]++;
  for (let e = 0; e < count; e++) starts[e + 1] += starts[e];
  const slotsByExpert = scratch("slotsByExpert", Int32Array, chosen.length);
  const next = starts.slice(0, count);
  for (let i = 0; i < chosen.length; i++) slotsByExpert[next[chosen[i]]++] = i;

  // Each expert's slots as one block of rows, through `linear`: gate and up projections, SwiGLU, down projection.
  let busiest = 0;
  for (let e = 0; e < count; e++) busiest = Math.max(busiest, starts[e + 1] - starts[e]);
  const rows = scratch("rows", Float32Array, busiest * width);
  const gate = scratch("gate", Float32Array, busiest * hidden);
  const up = scratch("up", Float32Array, busiest * hidden);
  const down = scratch("down", Float32Array, busiest * width);
  const slotOut = scratch("slotOut", Float32Array, chosen.length * width);
  const size = hidden * width;
  const gateWeights = scratch("gateWeights", Float32Array, size); // [hidden, width]
  const upWeights = scratch("upWeights", Float32Array, size); // [hidden, width]
  const downWeights = scratch("downWeights", Float32Array, size); // [width, hidden]
  for (let e = 0; e < count; e++) {
    const n = starts[e + 1] - starts[e];
    if (n === 0) continue;
    // Row copies by index: a subarray per row made a view object per slot, a tenth of this function.
    for (let r = 0; r < n; r++) {
      const from = ((slotsByExpert[starts[e] + r] / topK) | 0) * width;
      for (let c = 0; c < width; c++) rows[r * width + c] = x[from + c];
    }
    const block = rows.subarray(0, n * width);
    linear(block, transposeInto(experts.gate, e, width, hidden, gateWeights), width, hidden, gate);
    linear(block, transposeInto(experts.up, e, width, hidden, upWeights), width, hidden, up);
    for (let i = 0; i < n * hidden; i++) gate[i] = swiglu(gate[i], up[i]);
    linear(
      gate.subarray(0, n * hidden),
      transposeInto(experts.down, e, hidden, width, downWeights),
      hidden,
      width,
      down,
    );
    for (let r = 0; r < n; r++) {
      const to = slotsByExpert[starts[e] + r] * width;
      for (let c = 0; c < width; c++) slotOut[to + c] = down[r * width + c];
    }
  }
  // Each token's slots summed in the order of its top-k, as the graph's [1, k] @ [k, d] product.
  // Summed in float64, one slot's row after another (each column's sum in the same order as one by one).
  const out = scratch("mixture", Float32Array, tokens * width);
  const sums = new Float64Array(width);
  for (let t = 0; t < tokens; t++) {
    sums.fill(0);
    for (let s = 0; s < topK; s++) {
      const gate = gates[t * topK + s];
      const from = (t * topK + s) * width;
      for (let c = 0; c < width; c++) sums[c] += gate * slotOut[from + c];
    }
    for (let c = 0; c < width; c++) out[t * width + c] = sums[c];
  }
  return out;
}

/** silu(gate) · up (both float32 already), each step in float32 as the graph (Sigmoid, Mul, Mul). */
function swiglu(gate: number, up: number): number {
  return Math.fround(Math.fround(gate * Math.fround(1 / (1 + Math.exp(-gate)))) * up);
}

function softmax(values: Float32Array, at: number, length: number, out: Float32Array): void {
  let max = -Infinity;
  for (let i = 0; i < length; i++) if (values[at + i] > max) max = values[at + i];
  let sum = 0;
  for (let i = 0; i < length; i++) sum += out[i] = Math.exp(values[at + i] - max);
  for (let i = 0; i < length; i++) out[i] = out[i] / sum;
}
