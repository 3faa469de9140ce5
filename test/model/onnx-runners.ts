// Runs an exported OLMoE-mini graph with onnxruntime-node and with
// onnxruntime-web's WASM backend (in Node), for the parity tests.
import { readFileSync } from "node:fs";
import * as ortNode from "onnxruntime-node";
import * as ortWeb from "onnxruntime-web";

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
): Promise<ModelOutputs> {
  const batch = inputIds.length,
    seq = inputIds[0].length;
  const ids = BigInt64Array.from(inputIds.flat().map((v) => BigInt(v)));
  if (runtime === "onnxruntime-node") {
    const session = await ortNode.InferenceSession.create(path);
    const out = await session.run({ input_ids: new ortNode.Tensor("int64", ids, [batch, seq]) });
    return unpack(out.logits, out.router_logits, out.expert_bias);
  }
  ortWeb.env.wasm.numThreads = 1;
  const session = await ortWeb.InferenceSession.create(readFileSync(path), { executionProviders: ["wasm"] });
  const out = await session.run({ input_ids: new ortWeb.Tensor("int64", ids, [batch, seq]) });
  return unpack(out.logits, out.router_logits, out.expert_bias);
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
}

/** logits[:, :rows] of a [batch, seq, vocab] output, flat. */
export function firstRows(logits: Float32Array, dims: readonly number[], rows: number): number[] {
  const [batch, seq, vocab] = dims;
  const out: number[] = [];
  for (let b = 0; b < batch; b++)
    for (let t = 0; t < rows; t++) for (let v = 0; v < vocab; v++) out.push(logits[(b * seq + t) * vocab + v]);
  return out;
}
