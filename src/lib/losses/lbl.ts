/**
 * The load-balancing loss `E · Σ_e f[e] · P[e]` (Switch Transformer, GShard)
 * and the variants that real systems compute: Hugging Face's pooled,
 * token-fraction form, and the three granularities of Qiu et al. (2025):
 * per sequence, per micro-batch, and with `f` counted over the global batch.
 * All values are unweighted (before α) and averaged over layers.
 */
import { microBatches, perSequence, wholeBatch, type SequenceGroup } from "../batching.js";
import { groupTotals, type GroupTotals, type RoutingSummary } from "../summary.js";
import { validateMicroBatch } from "../validate.js";
import { mean } from "./reduce.js";

/**
 * `E · Σ f P` within one group: `f[e] = c[e] / (T·k)` (fraction of routing
 * slots, `Σ f = 1`), `P[e] = (1/T) Σ_t p[t][e]`. Perfect balance gives 1.
 */
export function switchLoss(group: GroupTotals, topK: number): number {
  const experts = group.probSum.length;
  const slots = group.tokens * topK;
  let dot = 0;
  for (let e = 0; e < experts; e++) dot += group.load[e] * group.probSum[e];
  return (experts * dot) / (slots * group.tokens);
}

/** `lbl.switch` of each layer, over the whole batch. */
export function switchPerLayer(summary: RoutingSummary): number[] {
  return groupedPerLayer(summary, wholeBatch(summary.sequenceLengths.length));
}

/** `lbl.switch` computed in each group, averaged over the groups, for each layer. */
export function groupedPerLayer(summary: RoutingSummary, groups: readonly SequenceGroup[]): number[] {
  return layerRange(summary).map((l) => mean(groups.map((g) => switchLoss(groupTotals(summary, l, g), summary.topK))));
}

/** `lbl.sequence` of each layer: per sequence, then averaged over sequences. */
export function sequencePerLayer(summary: RoutingSummary): number[] {
  return groupedPerLayer(summary, perSequence(summary.sequenceLengths.length));
}

/** `lbl.micro_batch` of each layer: within each micro-batch of `m` sequences. */
export function microBatchPerLayer(summary: RoutingSummary, microBatchSequences: number): number[] {
  validateMicroBatch(microBatchSequences);
  return groupedPerLayer(summary, microBatches(summary.sequenceLengths.length, microBatchSequences));
}

/**
 * `lbl.global` of each layer: `f` counted over the global batch, `P` local to
 * each micro-batch, the micro-batch losses averaged as gradient accumulation
 * averages them: `E · Σ_e f_global[e] · mean_m(P_m[e])`.
 */
export function globalPerLayer(summary: RoutingSummary, microBatchSequences: number): number[] {
  validateMicroBatch(microBatchSequences);
  const { experts, topK } = summary;
  const groups = microBatches(summary.sequenceLengths.length, microBatchSequences);
  return layerRange(summary).map((l) => {
    const global = groupTotals(summary, l, wholeBatch(summary.sequenceLengths.length)[0]);
    const meanP = new Float64Array(experts);
    for (const g of groups) {
      const local = groupTotals(summary, l, g);
      for (let e = 0; e < experts; e++) meanP[e] += local.probSum[e] / local.tokens / groups.length;
    }
    let dot = 0;
    for (let e = 0; e < experts; e++) dot += (global.load[e] / (global.tokens * topK)) * meanP[e];
    return experts * dot;
  });
}

/**
 * `lbl.hf`: Hugging Face's `load_balancing_loss_func`. The rows of all layers
 * are pooled into one `[L·T, E]` matrix, and `f[e]` is the fraction of
 * tokens (not slots) that chose `e`, so `Σ f = k` and balance reads `k`.
 */
export function hfPooled(summary: RoutingSummary): number {
  const { layers, experts, topK } = summary;
  const pooled: GroupTotals = {
    tokens: layers * summary.tokens,
    probSum: new Float64Array(experts),
    load: new Float64Array(experts),
  };
  for (let l = 0; l < layers; l++) {
    const layer = groupTotals(summary, l, wholeBatch(summary.sequenceLengths.length)[0]);
    for (let e = 0; e < experts; e++) {
      pooled.probSum[e] += layer.probSum[e];
      pooled.load[e] += layer.load[e];
    }
  }
  // Token fractions are k times slot fractions.
  return topK * switchLoss(pooled, topK);
}

function layerRange(summary: RoutingSummary): number[] {
  return Array.from({ length: summary.layers }, (_, l) => l);
}
