// Routes the lab's sample texts (code and prose) through OLMoE-mini in a
// worker and returns their router logits as one batch, one sequence per
// sample window, with each sequence's domain: real logits for the pages that
// first explain an idea on synthetic ones.
import { loadAndRoute, pageModelClient } from "./model-client.js";
import { backendName, backendPreference } from "./backend-preference.js";
import { Tokenizer, type TokenizerFile } from "../lib/model/tokenizer.js";
import { sampleSequences } from "../lib/model/sample-sequences.js";
import type { LogitsBatch } from "../lib/types.js";

/** The sample windows' router logits as one batch (top-k and bias included), with where they came from. */
export interface SampleBatch extends LogitsBatch {
  checkpoint: string;
  backend: string;
  /** Why WASM ran instead of WebGPU (null when WebGPU ran). */
  fallbackReason: string | null;
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

/** Tokenised sample windows, per tokenizer file and samples: a page that routes them with several checkpoints tokenises once. */
const windows = new WeakMap<
  object,
  Map<string, { samples: Record<string, string>; sequences: ReturnType<typeof sampleSequences> }>
>();
function sampleWindows(options: SampleBatchOptions): ReturnType<typeof sampleSequences> {
  const key = `${options.length}/${options.perDomain}`;
  const byOptions = windows.get(options.tokenizer) ?? new Map();
  windows.set(options.tokenizer, byOptions);
  const cached = byOptions.get(key);
  if (cached && cached.samples === options.samples) return cached.sequences;
  const sequences = sampleSequences(
    new Tokenizer(options.tokenizer),
    options.samples,
    options.length,
    options.perDomain,
  );
  byOptions.set(key, { samples: options.samples, sequences });
  return sequences;
}

export async function routeSampleBatch(options: SampleBatchOptions): Promise<SampleBatch> {
  const sequences = sampleWindows(options);
  // The page's one worker: every checkpoint it routes shares onnxruntime's compiled WASM.
  const client = pageModelClient(options.workerUrl);
  const progress = options.onProgress ?? (() => {});
  progress(`${options.checkpoint}: starting OLMoE-mini`, 0);
  const { loaded, routed } = await loadAndRoute(
    client,
    { modelUrl: options.modelUrl, wasmPaths: options.wasmPaths, backend: backendPreference() },
    sequences.map((s) => s.ids),
    {
      onDownload: (done, total, fromCache) =>
        progress(
          fromCache
            ? `${options.checkpoint}: read from this browser's cache`
            : `${options.checkpoint}: downloading (${(done / 1e6).toFixed(1)}${total ? ` of ${(total / 1e6).toFixed(1)}` : ""} MB)`,
          total ? 0.5 * (done / total) : 0,
        ),
      onLoaded: (model) =>
        progress(`${options.checkpoint}: routing ${sequences.length} sequences on ${backendName(model.backend)}`, 0.5),
    },
  );
  const { ms, backend: _backend, fallbackReason: _reason, ...batch } = routed;
  return {
    ...batch,
    checkpoint: options.checkpoint,
    backend: loaded.backend,
    fallbackReason: loaded.fallbackReason,
    domains: sequences.map((s) => s.domain),
    ms,
  };
}
