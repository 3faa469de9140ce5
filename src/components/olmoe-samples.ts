// Routes the lab's sample texts (code and prose) through OLMoE-mini in a
// worker and returns their router logits as one batch, one sequence per
// sample window, with each sequence's domain: real logits for the pages that
// first explain an idea on synthetic ones.
import { ModelClient, routeSequences } from "./model-client.js";
import { backendPreference } from "./backend-preference.js";
import { Tokenizer, type TokenizerFile } from "../lib/model/tokenizer.js";
import { sampleSequences } from "../lib/model/sample-sequences.js";
import type { RouterLogits } from "../lib/types.js";

export interface SampleBatch {
  checkpoint: string;
  backend: string;
  /** Why WASM ran instead of WebGPU (null when WebGPU ran). */
  fallbackReason: string | null;
  logits: RouterLogits;
  sequenceLengths: number[];
  /** The checkpoint's selection bias, layers × experts, when its file has one. */
  selectionBias?: Float32Array;
  domains: ("code" | "prose")[];
  ms: number;
}

export interface SampleBatchOptions {
  workerUrl: string;
  modelUrl: string;
  checkpoint: string;
  wasmPaths: { wasm: { mjs: string; wasm: string }; webgpu: { mjs: string; wasm: string } };
  tokenizer: TokenizerFile;
  samples: Record<string, string>;
  /** Tokens per sequence. */
  length?: number;
  /** Sequences per domain. */
  perDomain?: number;
  /** What is happening and how far along (0–1), for a progress line while the page waits. */
  onProgress?: (message: string, fraction: number) => void;
}

export async function routeSampleBatch(options: SampleBatchOptions): Promise<SampleBatch> {
  const sequences = sampleSequences(new Tokenizer(options.tokenizer), options.samples, options.length, options.perDomain);
  const client = new ModelClient(options.workerUrl);
  const progress = options.onProgress ?? (() => {});
  client.onProgress = (loaded, total, fromCache) =>
    progress(fromCache ? `${options.checkpoint}: read from this browser's cache` : `${options.checkpoint}: downloading (${(loaded / 1e6).toFixed(1)}${total ? ` of ${(total / 1e6).toFixed(1)}` : ""} MB)`, total ? 0.5 * (loaded / total) : 0);
  try {
    progress(`${options.checkpoint}: starting OLMoE-mini`, 0);
    const loaded = await client.load({ modelUrl: options.modelUrl, wasmPaths: options.wasmPaths, backend: backendPreference() });
    const { logits, sequenceLengths, selectionBias, ms } = await routeSequences(client, sequences.map((s) => s.ids), (i, n) =>
      progress(`${options.checkpoint}: routing sequence ${i + 1} of ${n} on ${loaded.backend === "webgpu" ? "WebGPU" : "WASM"}`, 0.5 + 0.5 * (i / n)));
    return { checkpoint: options.checkpoint, backend: loaded.backend, fallbackReason: loaded.fallbackReason, logits, sequenceLengths, selectionBias, domains: sequences.map((s) => s.domain), ms };
  } finally {
    client.terminate();
  }
}
