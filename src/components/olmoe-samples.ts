// Routes the lab's sample texts (code and prose) through OLMoE-mini in a
// worker and returns their router logits as one batch, one sequence per
// sample window, with each sequence's domain: real logits for the pages that
// first explain an idea on synthetic ones.
import { ModelClient } from "./model-client.js";
import { Tokenizer, type TokenizerFile } from "../lib/model/tokenizer.js";
import { joinWindows } from "../lib/model/windows.js";
import { sampleSequences } from "../lib/model/sample-sequences.js";
import type { RouterLogits } from "../lib/types.js";

export interface SampleBatch {
  checkpoint: string;
  backend: string;
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
}

export async function routeSampleBatch(options: SampleBatchOptions): Promise<SampleBatch> {
  const sequences = sampleSequences(new Tokenizer(options.tokenizer), options.samples, options.length, options.perDomain);
  const client = new ModelClient(options.workerUrl);
  try {
    const loaded = await client.load({ modelUrl: options.modelUrl, wasmPaths: options.wasmPaths, backend: "auto" });
    const parts = [];
    let ms = 0;
    for (const sequence of sequences) {
      const result = await client.forward(sequence.ids);
      ms += result.ms;
      parts.push(result);
    }
    const { logits, sequenceLengths, selectionBias } = joinWindows(parts);
    return { checkpoint: options.checkpoint, backend: loaded.backend, logits, sequenceLengths, selectionBias, domains: sequences.map((s) => s.domain), ms };
  } finally {
    client.terminate();
  }
}
