/**
 * Analytic gradients of the differentiable losses with respect to the router
 * logits, `∂loss/∂x[l][t][e]`, in the same flat layers × tokens × experts
 * layout. The load fraction `f` comes from an arg-top-k and carries no
 * gradient; only the probabilities do. Every loss here is a weighted sum of
 * probabilities, so one rule serves them all:
 *
 *   ∂/∂x[t][j] Σ_e w_e p[t][e] = p[t][j] · (w_j − Σ_e w_e p[t][e]).
 *
 * For `E Σ f P` over a group of T tokens, `w = f` and the scale is `E/T`.
 */
import { microBatches, perSequence, sequenceOffsets, wholeBatch, type SequenceGroup } from "../batching.js";
import { softmaxRow } from "../routing.js";
import { groupTotals, summarize, type RoutingSummary } from "../summary.js";
import type { RouterLogits } from "../types.js";
import { validateBatch, validateMicroBatch } from "../validate.js";

export type DifferentiableLoss =
  | "lbl.switch"
  | "lbl.hf"
  | "lbl.sequence"
  | "lbl.micro_batch"
  | "lbl.global"
  | "z_loss.st_moe"
  | "z_loss.olmoe"
  | "cv2.importance";

export const differentiableLosses: readonly DifferentiableLoss[] = [
  "lbl.switch", "lbl.hf", "lbl.sequence", "lbl.micro_batch", "lbl.global", "z_loss.st_moe", "z_loss.olmoe", "cv2.importance",
];

export interface GradientOptions {
  topK: number;
  sequenceLengths?: readonly number[];
  microBatchSequences?: number;
  /**
   * The summary of these same logits with this top-k and these sequence
   * lengths, when the caller has it already: it is not computed again.
   */
  summary?: RoutingSummary;
}

/** `∂loss/∂x` for every logit, float64, layers × tokens × experts. */
export function lossGradient(logits: RouterLogits, loss: DifferentiableLoss, options: GradientOptions): Float64Array {
  const sequenceLengths = options.sequenceLengths ?? [logits.tokens];
  const microBatchSequences = options.microBatchSequences ?? 1;
  validateMicroBatch(microBatchSequences);
  const gradient = new Float64Array(logits.data.length);
  const sequences = sequenceLengths.length;
  const { layers, experts, tokens } = logits;
  const topK = options.topK;

  if (loss === "z_loss.st_moe" || loss === "z_loss.olmoe") {
    // Needs no summary: ∂ lse² / ∂x_j = 2 · lse · p_j, row by row.
    if (!options.summary) validateBatch(logits, { topK, sequenceLengths });
    const scale = (2 / (layers * tokens)) * (loss === "z_loss.olmoe" ? 1 / topK : 1);
    const p = new Float64Array(experts);
    for (let row = 0; row < layers * tokens; row++) {
      const lse = softmaxRow(logits.data, row * experts, experts, p);
      for (let e = 0; e < experts; e++) gradient[row * experts + e] = scale * lse * p[e];
    }
    return gradient;
  }

  const summary = options.summary ?? summarize(logits, topK, sequenceLengths);
  const offsets = sequenceOffsets(sequenceLengths);
  const addGroup = (layer: number, group: SequenceGroup, weights: Float64Array, scale: number) =>
    addWeightedProbabilityGradient(logits, layer, offsets[group.first], offsets[group.end], weights, scale, gradient);

  if (loss === "lbl.hf") {
    const all = wholeBatch(sequences)[0];
    const fraction = new Float64Array(experts);
    for (let l = 0; l < layers; l++) {
      const totals = groupTotals(summary, l, all);
      for (let e = 0; e < experts; e++) fraction[e] += totals.load[e] / (layers * summary.tokens);
    }
    for (let l = 0; l < layers; l++) addGroup(l, all, fraction, experts / (layers * summary.tokens));
    return gradient;
  }

  if (loss === "cv2.importance") {
    // cv2 = E Σ I² / (Σ I)² − 1, and Σ_e I_e = T does not depend on x.
    const all = wholeBatch(sequences)[0];
    for (let l = 0; l < layers; l++) {
      const importance = groupTotals(summary, l, all).probSum;
      const total = importance.reduce((a, b) => a + b, 0);
      const weights = importance.map((value) => (2 * experts * value) / (total * total));
      addGroup(l, all, weights, 1 / layers);
    }
    return gradient;
  }

  if (loss === "lbl.global") {
    const groups = microBatches(sequences, microBatchSequences);
    for (let l = 0; l < layers; l++) {
      const global = groupTotals(summary, l, wholeBatch(sequences)[0]);
      const fraction = global.load.map((c) => c / (global.tokens * topK));
      for (const g of groups) {
        const tokens = offsets[g.end] - offsets[g.first];
        addGroup(l, g, fraction, experts / (tokens * groups.length * layers));
      }
    }
    return gradient;
  }

  const groups =
    loss === "lbl.switch" ? wholeBatch(sequences) : loss === "lbl.sequence" ? perSequence(sequences) : microBatches(sequences, microBatchSequences);
  for (let l = 0; l < layers; l++) {
    for (const g of groups) {
      const totals = groupTotals(summary, l, g);
      const fraction = totals.load.map((c) => c / (totals.tokens * topK));
      addGroup(l, g, fraction, experts / (totals.tokens * groups.length * layers));
    }
  }
  return gradient;
}

/** Adds `scale · p_j (w_j − Σ_e w_e p_e)` for tokens `[start, end)` of one layer. */
function addWeightedProbabilityGradient(
  logits: RouterLogits, layer: number, start: number, end: number, weights: Float64Array, scale: number, gradient: Float64Array,
): void {
  const { experts, tokens } = logits;
  const p = new Float64Array(experts);
  for (let t = start; t < end; t++) {
    const offset = (layer * tokens + t) * experts;
    softmaxRow(logits.data, offset, experts, p);
    let expected = 0;
    for (let e = 0; e < experts; e++) expected += weights[e] * p[e];
    for (let e = 0; e < experts; e++) gradient[offset + e] += scale * p[e] * (weights[e] - expected);
  }
}
