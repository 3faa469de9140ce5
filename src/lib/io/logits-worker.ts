/**
 * Parses a dropped file of router logits off the page's thread: the header
 * first (to ask for top_k when the file cannot say it), then every row in
 * chunks into a routing summary and a replay of expert-bias balancing.
 * Nothing leaves the browser: the file is read from the user's disk only.
 */
import { LabInputError } from "../types.js";
import { validateBatch } from "../validate.js";
import { SummaryBuilder } from "../summary.js";
import { BiasReplayBuilder } from "../loss-free.js";
import { blobSource, planLogits, streamLogits, type ByteSource, type LogitsPlan } from "./stream.js";
import type { LogitsWorkerMessage, LogitsWorkerRequest } from "./logits-protocol.js";

let source: ByteSource | null = null;
let plan: LogitsPlan | null = null;
const post = (message: LogitsWorkerMessage) => (self as unknown as Worker).postMessage(message);

self.onmessage = async (event: MessageEvent<LogitsWorkerRequest>) => {
  const request = event.data;
  try {
    if (request.type === "inspect") {
      source = blobSource(request.file, request.name);
      plan = await planLogits(source);
      const { format, dtype, layers, tokens, experts, topK, sequenceLengths, microBatchSequences } = plan;
      post({ type: "described", file: { name: request.name, bytes: source.size, format, dtype, layers, tokens, experts, topK, sequenceLengths, microBatchSequences } });
    } else {
      if (!source || !plan) throw new LabInputError("no file has been read yet");
      const started = performance.now();
      const sequenceLengths = request.sequenceLengths ?? plan.sequenceLengths ?? [plan.tokens];
      // shape, top_k and sequence lengths are checked before any row is read
      validateBatch({ data: new Float32Array(0), layers: plan.layers, tokens: plan.tokens, experts: plan.experts }, { topK: request.topK, sequenceLengths }, { skipValues: true });
      const summary = new SummaryBuilder(plan, request.topK, sequenceLengths);
      const replay = new BiasReplayBuilder(plan, request.topK, request.biasRate, request.biasBatchTokens);
      await streamLogits(source, plan, (values, count) => {
        summary.addRows(values, 0, count);
        replay.addRows(values, count);
      }, (done, total) => post({ type: "progress", done, total }));
      post({ type: "summarized", summary: summary.finish(), replay: replay.replay, ms: performance.now() - started });
    }
  } catch (error) {
    const tooLarge = error instanceof RangeError || (error instanceof Error && /allocation|out of memory/i.test(error.message));
    post({ type: "error", message: error instanceof LabInputError ? error.message : tooLarge ? "this file is beyond what this browser tab can hold in memory" : `unexpected error: ${(error as Error).message}` });
  }
};
