/**
 * Score blocks shared by the LBL variants: `E Σ_e f[e] P[e]` of one group of
 * T tokens is `Σ_t Σ_e (E/T) f[e] p[t][e]`, so its block has the slot
 * fractions as weights and `E/T` as scale; averaging G groups and L layers
 * divides by G·L.
 */
import type { SequenceGroup } from "../../batching.js";
import { groupTotals, type RoutingSummary } from "../../summary.js";
import type { ScoreBlock } from "../descriptor.js";

export function* slotFractionBlocks(summary: RoutingSummary, groups: readonly SequenceGroup[]): Generator<ScoreBlock> {
  const { layers, experts, topK } = summary;
  for (let layer = 0; layer < layers; layer++) {
    for (const group of groups) {
      const totals = groupTotals(summary, layer, group);
      const weights = totals.load.map((c) => c / (totals.tokens * topK));
      yield { layer, group, weights, scale: experts / (totals.tokens * groups.length * layers) };
    }
  }
}
