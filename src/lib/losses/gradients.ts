/**
 * Analytic gradients of the differentiable losses with respect to the router
 * logits, `∂loss/∂x[l][t][e]`, in the same flat layers × tokens × experts
 * layout, for any descriptor with a gradient rule (descriptor.ts). The load
 * fraction `f` comes from an arg-top-k and carries no gradient; only the
 * probabilities do. Every such loss is a sum of blocks
 * `scale · Σ_t Σ_e w_e p[t][e]`, so one rule serves them all:
 *
 *   ∂/∂x[t][j] Σ_e w_e p[t][e] = p[t][j] · (w_j − Σ_e w_e p[t][e]),
 *
 * and every z-loss is `scale · Σ lse²`, with `∂ lse²/∂x_j = 2 · lse · p_j`.
 */
import { sequenceOffsets } from "../batching.js";
import { softmaxRow } from "../routing.js";
import { summarize, type RoutingSummary } from "../summary.js";
import type { RouterLogits } from "../types.js";
import { validateBatch, validateMicroBatch } from "../validate.js";
import { lossName, type LossDescriptor } from "./descriptor.js";
import { lossDescriptors, type DifferentiableLoss } from "./registry.js";

export type { DifferentiableLoss };

/** The names of the registered descriptors that have a gradient, in registry order. */
export const differentiableLosses: readonly DifferentiableLoss[] = (lossDescriptors as readonly LossDescriptor[])
  .filter((d) => d.gradient !== undefined)
  .map((d) => lossName(d) as DifferentiableLoss);

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
export function lossGradient(
  logits: RouterLogits,
  loss: DifferentiableLoss | LossDescriptor,
  options: GradientOptions,
): Float64Array {
  const gradient = new Float64Array(logits.data.length);
  addLossGradient(logits, loss, options, gradient);
  return gradient;
}

/**
 * Adds `weight · ∂loss/∂x` to `into` (layers × tokens × experts), for a
 * caller that sums several losses' gradients step after step: no array is
 * made (in Chromium a fresh 16 KB typed array costs 40–80 µs: see
 * `StepBuffers` in moe-layer.ts). Where each logit has one
 * term of the loss, as in every LBL and z-loss here, `into[i] += weight · g[i]`
 * gives the same bits as adding `weight` times `lossGradient`'s `g[i]`.
 */
export function addLossGradient(
  logits: RouterLogits,
  loss: DifferentiableLoss | LossDescriptor,
  options: GradientOptions,
  into: Float64Array,
  weight = 1,
): void {
  const descriptor: LossDescriptor | undefined =
    typeof loss === "string" ? (lossDescriptors as readonly LossDescriptor[]).find((d) => lossName(d) === loss) : loss;
  const rule = descriptor?.gradient;
  if (!descriptor || !rule) throw new Error(`${typeof loss === "string" ? loss : lossName(loss)} has no gradient`);
  if (into.length !== logits.data.length)
    throw new Error(`the gradient's array holds ${into.length} values; the logits ${logits.data.length}`);
  const sequenceLengths = options.sequenceLengths ?? [logits.tokens];
  const microBatchSequences = options.microBatchSequences ?? 1;
  validateMicroBatch(microBatchSequences);
  const { layers, experts, tokens } = logits;

  if (rule.kind === "squared-lse") {
    // Needs no summary, row by row.
    if (!options.summary) validateBatch(logits, { topK: options.topK, sequenceLengths });
    const twiceScale = 2 * rule.scale({ layers, tokens, topK: options.topK });
    const p = new Float64Array(experts);
    for (let row = 0; row < layers * tokens; row++) {
      const lse = softmaxRow(logits.data, row * experts, experts, p);
      for (let e = 0; e < experts; e++) into[row * experts + e] += weight * (twiceScale * lse * p[e]);
    }
    return;
  }

  const summary = options.summary ?? summarize(logits, options.topK, sequenceLengths);
  const offsets = sequenceOffsets(sequenceLengths);
  const p = new Float64Array(experts);
  for (const block of rule.blocks(summary, { microBatchSequences })) {
    addWeightedProbabilityGradient(
      logits,
      block.layer,
      offsets[block.group.first],
      offsets[block.group.end],
      block.weights,
      block.scale,
      weight,
      into,
      p,
    );
  }
}

/** Adds `weight · scale · p_j (w_j − Σ_e w_e p_e)` for tokens `[start, end)` of one layer (`p`: a row's scratch). */
function addWeightedProbabilityGradient(
  logits: RouterLogits,
  layer: number,
  start: number,
  end: number,
  weights: ArrayLike<number>,
  scale: number,
  weight: number,
  gradient: Float64Array,
  p: Float64Array,
): void {
  const { experts, tokens } = logits;
  for (let t = start; t < end; t++) {
    const offset = (layer * tokens + t) * experts;
    softmaxRow(logits.data, offset, experts, p);
    let expected = 0;
    for (let e = 0; e < experts; e++) expected += weights[e] * p[e];
    for (let e = 0; e < experts; e++) gradient[offset + e] += weight * (scale * p[e] * (weights[e] - expected));
  }
}
