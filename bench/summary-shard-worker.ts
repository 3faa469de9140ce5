/**
 * A worker thread of the loss-engine bench: summarises one shard of layers
 * of a batch held in shared memory, as each of the your-logits page's
 * workers summarises its shard of a file (SummaryOptions.layers).
 */
import { parentPort } from "node:worker_threads";
import { SummaryBuilder, type LayerRange } from "../src/lib/summary.js";

interface ShardJob {
  data: Float32Array;
  shape: { layers: number; tokens: number; experts: number };
  topK: number;
  lengths: number[];
  layers: LayerRange;
}

parentPort!.on("message", ({ data, shape, topK, lengths, layers }: ShardJob) => {
  const builder = new SummaryBuilder(shape, topK, lengths, { layers });
  const first = layers.first * shape.tokens;
  const rows = (layers.end - layers.first) * shape.tokens;
  builder.addRows(data, first, rows);
  parentPort!.postMessage(builder.finish());
});
