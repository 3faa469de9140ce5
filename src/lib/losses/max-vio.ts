/**
 * MaxVio (Wang et al. 2024): how far the busiest expert is above the mean
 * load, relative to it: `(max_e c[e] − T·k/E) / (T·k/E)`. Zero is perfect
 * balance; `E/k − 1` means every token went to the same k experts.
 */
import { microBatches, wholeBatch, type SequenceGroup } from "../batching.js";
import { groupTotals, type RoutingSummary } from "../summary.js";
import { validateMicroBatch } from "../validate.js";
import { mean } from "./reduce.js";
import { studentTQuantile } from "../statistics.js";

export function maxVioOfLoad(load: ArrayLike<number>, tokens: number, topK: number): number {
  const meanLoad = (tokens * topK) / load.length;
  let max = -Infinity;
  for (let e = 0; e < load.length; e++) if (load[e] > max) max = load[e];
  return (max - meanLoad) / meanLoad;
}

function groupedPerLayer(summary: RoutingSummary, groups: readonly SequenceGroup[]): number[] {
  return Array.from({ length: summary.layers }, (_, l) =>
    mean(
      groups.map((g) => {
        const totals = groupTotals(summary, l, g);
        return maxVioOfLoad(totals.load, totals.tokens, summary.topK);
      }),
    ),
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

/**
 * The MaxVio a perfectly uniform router reads by chance on `tokens` tokens,
 * roughly: each token picks k distinct experts, so an expert's count has mean
 * T·k/E and sd √(T·(k/E)(1 − k/E)), and the largest of E of them sits near the expected maximum of E
 * standard normals (Blom's approximation, Φ⁻¹((E − 0.375)/(E + 0.25))), so
 * MaxVio ≈ z_max(E)·√(1 − k/E)/√(T·k/E). Quoted beside every MaxVio: it is why MaxVio is
 * never compared across very different token counts.
 */
export function maxVioSamplingFloor(tokens: number, topK: number, experts: number): number {
  const zMax = studentTQuantile((experts - 0.375) / (experts + 0.25), 1e7);
  return (zMax * Math.sqrt(1 - topK / experts)) / Math.sqrt((tokens * topK) / experts);
}
