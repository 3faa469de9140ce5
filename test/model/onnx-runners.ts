// Runs an exported OLMoE-mini graph with onnxruntime-node and with
// onnxruntime-web's WASM backend (in Node), for the parity tests.
import { existsSync, readFileSync } from "node:fs";
import * as ortNode from "onnxruntime-node";
import * as ortWeb from "onnxruntime-web";
import {
  forwardFeeds,
  overrideShapeOf,
  type OverrideShape,
  type RouteOverrides,
} from "../../src/lib/model/route-overrides.js";
import { olmoeMini } from "../../src/lib/model/olmoe-mini.js";

export interface ModelOutputs {
  logits: Float32Array;
  logitsDims: readonly number[];
  router: Float32Array;
  routerDims: readonly number[];
  /** expert_bias, layers × experts, when the graph has that output. */
  bias: Float32Array | null;
}

export type Runtime = "onnxruntime-node" | "onnxruntime-web (wasm)";
export const runtimes: Runtime[] = ["onnxruntime-node", "onnxruntime-web (wasm)"];

export async function runModel(
  runtime: Runtime,
  path: string,
  inputIds: readonly (readonly number[])[],
  overrides: RouteOverrides = {},
): Promise<ModelOutputs> {
  const batch = inputIds.length,
    seq = inputIds[0].length;
  const ids = inputIds.flat();
  const shape = overrideShapeBeside(path);
  if (runtime === "onnxruntime-node") {
    const session = await ortNode.InferenceSession.create(path);
    const out = await session.run(forwardFeeds(ortNode.Tensor, session.inputNames, shape, ids, batch, seq, overrides));
    return unpack(out.logits, out.router_logits, out.expert_bias);
  }
  ortWeb.env.wasm.numThreads = 1;
  const session = await ortWeb.InferenceSession.create(readFileSync(path), { executionProviders: ["wasm"] });
  const out = await session.run(forwardFeeds(ortWeb.Tensor, session.inputNames, shape, ids, batch, seq, overrides));
  return unpack(out.logits, out.router_logits, out.expert_bias);
}

/** The override shape of the graph at `path`, from the reference export.py writes beside it (else OLMoE-mini's). */
function overrideShapeBeside(path: string): OverrideShape {
  const referencePath = path.replace(/\.onnx$/, ".reference.json");
  if (!existsSync(referencePath)) return overrideShapeOf(olmoeMini);
  const { config } = JSON.parse(readFileSync(referencePath, "utf8")) as {
    config: { n_layers: number; top_k: number; n_experts: number; d_model: number };
  };
  return { layers: config.n_layers, topK: config.top_k, experts: config.n_experts, width: config.d_model };
}

function unpack(
  logits: { data: unknown; dims: readonly number[] },
  router: { data: unknown; dims: readonly number[] },
  bias?: { data: unknown },
): ModelOutputs {
  return {
    logits: logits.data as Float32Array,
    logitsDims: logits.dims,
    router: router.data as Float32Array,
    routerDims: router.dims,
    bias: bias ? (bias.data as Float32Array) : null,
  };
}

export function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

/** The reference file export.py writes beside each .onnx. */
export interface Reference {
  strategy: string;
  precision: "fp32" | "reduced";
  config: { n_layers: number; n_experts: number; top_k: number; vocab_size: number };
  input_ids: number[][];
  domains: string[];
  router_logits: number[][][][];
  /** layers × experts; absent in files exported before the output existed. */
  expert_bias?: number[][];
  logits_first_rows: number[][][];
  /** PyTorch's outputs under overrides (export.py forced_reference); absent before they existed. */
  overrides?: { weights: string; cases: Record<string, OverrideCase> };
}

export interface OverrideCase {
  next_token_log_probs: number[][];
  last_router_logits: number[][][];
  chosen: number[][][][];
  forced_experts?: number[][][][];
  router_input_noise?: { shape: number[]; scale: number; rule: "hashed_noise" };
}

/** log p(next token) at every position but the last: [batch, seq − 1], flat. */
export function nextTokenLogProbs(logits: Float32Array, dims: readonly number[], ids: readonly (readonly number[])[]) {
  const [batch, seq, vocab] = dims;
  const out: number[] = [];
  for (let b = 0; b < batch; b++)
    for (let t = 0; t < seq - 1; t++) {
      const row = logits.subarray((b * seq + t) * vocab, (b * seq + t + 1) * vocab);
      let max = -Infinity;
      for (const v of row) max = Math.max(max, v);
      let sum = 0;
      for (const v of row) sum += Math.exp(v - max);
      out.push(row[ids[b][t + 1]] - max - Math.log(sum));
    }
  return out;
}

/** logits[:, :rows] of a [batch, seq, vocab] output, flat. */
export function firstRows(logits: Float32Array, dims: readonly number[], rows: number): number[] {
  const [batch, seq, vocab] = dims;
  const out: number[] = [];
  for (let b = 0; b < batch; b++)
    for (let t = 0; t < rows; t++) for (let v = 0; v < vocab; v++) out.push(logits[(b * seq + t) * vocab + v]);
  return out;
}
