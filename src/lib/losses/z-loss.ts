/**
 * Router z-loss (ST-MoE, Zoph et al. 2022): the mean squared logsumexp of the
 * router logits, which keeps them small. Two normalisations are in use:
 * ÷ layers·tokens (ST-MoE, OpenMoE) and ÷ layers·tokens·k (MegaBlocks, OLMoE).
 * The second is the first divided by k: the same as a k-times smaller β.
 */
import type { RoutingSummary } from "../summary.js";

/** `Σ_t lse[l][t]² / T` of each layer. */
export function stMoePerLayer(summary: RoutingSummary): number[] {
  const sequences = summary.sequenceLengths.length;
  return Array.from({ length: summary.layers }, (_, l) => {
    let total = 0;
    for (let s = 0; s < sequences; s++) total += summary.logSumExpSquareSum[l * sequences + s];
    return total / summary.tokens;
  });
}

/** `z_loss.st_moe = (1/(L·T)) Σ_l Σ_t lse²`. */
export function stMoe(summary: RoutingSummary): number {
  const perLayer = stMoePerLayer(summary);
  return perLayer.reduce((a, b) => a + b, 0) / summary.layers;
}

/** `z_loss.olmoe = z_loss.st_moe / k` (MegaBlocks' denominator layers·tokens·top_k). */
export function olmoe(summary: RoutingSummary): number {
  return stMoe(summary) / summary.topK;
}

/**
 * The β that a system effectively applies in the ST-MoE normalisation: OLMoE's
 * configured 0.001 with k = 8 acts as 1.25e-4.
 */
export function effectiveCoefficient(beta: number, topK: number, normalization: "st_moe" | "olmoe"): number {
  return normalization === "olmoe" ? beta / topK : beta;
}
