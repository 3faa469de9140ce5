/**
 * The sample batches the z-loss and granularity pages route through
 * OLMoE-mini, and the ablation's opening sample, routed in Node by onnxruntime-node with the same tokenizer,
 * sample sequences, windowing and summary code the pages run in the reader's
 * browser. Two consumers at build time: the data loader
 * `src/data/sample-batches.json.ts` (the pages' build-time numbers as data) and
 * `tools/build-copies.ts` (the same numbers as HTML in the built page, so that
 * they paint before any script runs).
 */
import { existsSync, readFileSync } from "node:fs";
import * as ort from "onnxruntime-node";
import { forwardFeeds, overrideShapeOf } from "../src/lib/model/route-overrides.js";
import { olmoeMini } from "../src/lib/model/olmoe-mini.js";
import { Tokenizer } from "../src/lib/model/tokenizer.js";
import { sampleSequences } from "../src/lib/model/sample-sequences.js";
import { joinWindows } from "../src/lib/model/windows.js";
import { summarizeBatch, type RoutingSummary } from "../src/lib/summary.js";
import type { SummaryJson } from "../src/components/build-time.js";
import { readSampleFiles } from "./sample-files.js";

/** One routed batch: each sequence's domain, and the batch's summary as plain arrays. */
export interface SampleBatchJson {
  domains: string[];
  summary: SummaryJson;
}

/** Per checkpoint: 2 sequences per domain (the z-loss page) and 4 (granularity). */
export type SampleBatchesJson = Record<string, { perDomain2: SampleBatchJson; perDomain4: SampleBatchJson }>;

/** Sums over ≤ 128 tokens, kept to float32's precision: the live run computes from float32 logits too. */
const compact = (values: ArrayLike<number>): number[] =>
  Array.from(values, (v) => Number(Math.fround(v).toPrecision(9)));

function serialise(summary: RoutingSummary): SummaryJson {
  return {
    layers: summary.layers,
    experts: summary.experts,
    topK: summary.topK,
    tokens: summary.tokens,
    sequenceLengths: [...summary.sequenceLengths],
    probSum: compact(summary.probSum),
    load: Array.from(summary.load),
    logSumExpSquareSum: compact(summary.logSumExpSquareSum),
    maxLogit: summary.maxLogit,
  };
}

/** The tokenizer, the sample texts and a session per checkpoint found under `root`/data/models. */
export function sampleInputs(root: URL) {
  const tokenizer = new Tokenizer(JSON.parse(readFileSync(new URL("data/tokenizer.json", root), "utf8")));
  const samples = readSampleFiles(root);
  const checkpoints = olmoeMini.checkpoints.filter((c) => existsSync(new URL(`data/models/${c}.onnx`, root)));
  const session = (checkpoint: string) =>
    ort.InferenceSession.create(new URL(`data/models/${checkpoint}.onnx`, root).pathname);
  return { tokenizer, samples, checkpoints, session };
}

/** Sequences routed one at a time, as the pages route them, and joined into one batch. */
async function routeEach(session: ort.InferenceSession, sequences: readonly (readonly number[])[]) {
  const parts = [];
  for (const ids of sequences) {
    const result = await session.run(
      forwardFeeds(ort.Tensor, session.inputNames, overrideShapeOf(olmoeMini), [...ids], 1, ids.length),
    );
    const router = result.router_logits;
    const bias = result.expert_bias;
    parts.push({
      router: router.data as Float32Array,
      dims: [...router.dims],
      topK: olmoeMini.topK,
      bias: bias ? (bias.data as Float32Array) : null,
    });
  }
  return joinWindows(parts);
}

/** The ablation's side-by-side as it opens: the first `tokens` tokens of one sample text. */
export interface SideBySideOpening {
  sample: string;
  tokens: number;
}

/**
 * Every checkpoint found under `root`/data/models (the others are left out),
 * each opened once: the sample batches of the z-loss and granularity pages,
 * and with `side`, the ablation's opening sample as the page routes it in its
 * worker (src/ablation.md). The sample windows are tokenised once for all.
 */
export async function routeForBuild(root: URL, side?: SideBySideOpening) {
  const { tokenizer, samples, checkpoints, session: open } = sampleInputs(root);
  const windows = ([2, 4] as const).map((perDomain) => ({
    perDomain,
    sequences: sampleSequences(tokenizer, samples, 128, perDomain),
  }));
  const sideIds = side ? tokenizer.encode(samples[side.sample]).slice(0, side.tokens) : [];
  const batches: SampleBatchesJson = {};
  const sideBatches = [];
  for (const checkpoint of checkpoints) {
    const session = await open(checkpoint);
    const routed: Partial<SampleBatchesJson[string]> = {};
    for (const { perDomain, sequences } of windows)
      routed[`perDomain${perDomain}`] = {
        domains: sequences.map((s) => s.domain),
        summary: serialise(
          summarizeBatch(
            await routeEach(
              session,
              sequences.map((s) => s.ids),
            ),
          ),
        ),
      };
    batches[checkpoint] = routed as SampleBatchesJson[string];
    if (side) sideBatches.push({ checkpoint, batch: await routeEach(session, [sideIds]) });
    await session.release();
  }
  return { batches, side: { ids: sideIds, tokenizer, batches: sideBatches } };
}
