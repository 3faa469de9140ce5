/**
 * MaxVio (Wang et al. 2024): how far the busiest expert is above the mean
 * load, relative to it: `(max_e c[e] − T·k/E) / (T·k/E)`. Zero is perfect
 * balance; `E/k − 1` means every token went to the same k experts.
 */
import { microBatches, wholeBatch, type SequenceGroup } from "../batching.js";
import { groupTotals, type RoutingSummary } from "../summary.js";
import { validateMicroBatch } from "../validate.js";
import { mean } from "./reduce.js";

export function maxVioOfLoad(load: ArrayLike<number>, tokens: number, topK: number): number {
  const meanLoad = (tokens * topK) / load.length;
  let max = -Infinity;
  for (let e = 0; e < load.length; e++) if (load[e] > max) max = load[e];
  return (max - meanLoad) / meanLoad;
}

function groupedPerLayer(summary: RoutingSummary, groups: readonly SequenceGroup[]): number[] {
  return Array.from({ length: summary.layers }, (_, l) =>
    mean(groups.map((g) => {
      const totals = groupTotals(summary, l, g);
      return maxVioOfLoad(totals.load, totals.tokens, summary.topK);
    })),
  );
}

/** `max_vio.global` of each layer: on the whole batch's loads. */
export function globalPerLayer(summary: RoutingSummary): number[] {
  return groupedPerLayer(summary, wholeBatch(summary.sequenceLengths.length));
}

/** `max_vio.micro_batch` of each layer: per micro-batch, averaged. */
export function microBatchPerLayer(summary: RoutingSummary, microBatchSequences: number): number[] {
  validateMicroBatch(microBatchSequences);
  return groupedPerLayer(summary, microBatches(summary.sequenceLengths.length, microBatchSequences));
}
