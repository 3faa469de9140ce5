// Framework data loader: the sample batches the z-loss and granularity pages
// route through OLMoE-mini, routed here at build time by onnxruntime-node with
// the same tokenizer, sample sequences, windowing and summary code the pages
// run in the reader's browser. The pages paint these numbers at once and
// replace them with the live run's when it finishes (a browser test checks the
// two agree within the backends' tolerance).
import { existsSync, readFileSync } from "node:fs";
import * as ort from "onnxruntime-node";
import { forwardFeeds, overrideShapeOf } from "../lib/model/route-overrides.js";
import { olmoeMini } from "../lib/model/olmoe-mini.js";
import { Tokenizer } from "../lib/model/tokenizer.js";
import { sampleSequences } from "../lib/model/sample-sequences.js";
import { readSampleFiles } from "../../tools/sample-files.js";
import { joinWindows } from "../lib/model/windows.js";
import { summarizeBatch, type RoutingSummary } from "../lib/summary.js";

const root = new URL("../../", import.meta.url);
const tokenizer = new Tokenizer(JSON.parse(readFileSync(new URL("data/tokenizer.json", root), "utf8")));
const samples = readSampleFiles(root);

/** Sums over ≤ 128 tokens, kept to float32's precision: the live run computes from float32 logits too. */
const compact = (values: ArrayLike<number>): number[] =>
  Array.from(values, (v) => Number(Math.fround(v).toPrecision(9)));

function serialise(summary: RoutingSummary) {
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

const out: Record<string, Record<string, unknown>> = {};
for (const checkpoint of olmoeMini.checkpoints) {
  const path = new URL(`data/models/${checkpoint}.onnx`, root);
  if (!existsSync(path)) continue;
  const session = await ort.InferenceSession.create(path.pathname);
  out[checkpoint] = {};
  // 2 sequences per domain (the z-loss page) and 4 (granularity), each routed alone, as the pages do.
  for (const perDomain of [2, 4]) {
    const sequences = sampleSequences(tokenizer, samples, 128, perDomain);
    const parts = [];
    for (const { ids } of sequences) {
      const result = await session.run(
        forwardFeeds(ort.Tensor, session.inputNames, overrideShapeOf(olmoeMini), ids, 1, ids.length),
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
    out[checkpoint][`perDomain${perDomain}`] = {
      domains: sequences.map((s) => s.domain),
      summary: serialise(summarizeBatch(joinWindows(parts))),
    };
  }
}
process.stdout.write(JSON.stringify(out));
