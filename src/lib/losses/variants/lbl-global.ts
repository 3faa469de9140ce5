/**
 * `lbl.global`: `f` counted over the global batch, `P` local to each
 * micro-batch, averaged as gradient accumulation averages (Qiu et al. 2025;
 * Megatron-LM's global_aux_loss).
 */
import { microBatches, sequenceOffsets, wholeBatch } from "../../batching.js";
import { groupTotals } from "../../summary.js";
import { defineLoss, type ScoreBlock } from "../descriptor.js";
import { globalPerLayer } from "../lbl.js";
import { mean } from "../reduce.js";

export const lblGlobal = defineLoss({
  family: "lbl",
  variant: "global",
  formula: String.raw`\frac{1}{L}\sum_l E \sum_e f^{\text{global}}_{l,e}\,\frac{1}{M}\sum_m P^{(m)}_{l,e}`,
  units: "dimensionless",
  balance: () => 1,
  note: () => "f over the whole batch, P per micro-batch",
  value: (summary, { microBatchSequences }) => mean(globalPerLayer(summary, microBatchSequences)),
  gradient: {
    kind: "weighted-scores",
    *blocks(summary, { microBatchSequences }): Generator<ScoreBlock> {
      const { layers, experts, topK, sequenceLengths } = summary;
      const groups = microBatches(sequenceLengths.length, microBatchSequences);
      const offsets = sequenceOffsets(sequenceLengths);
      for (let layer = 0; layer < layers; layer++) {
        const global = groupTotals(summary, layer, wholeBatch(sequenceLengths.length)[0]);
        const weights = global.load.map((c) => c / (global.tokens * topK));
        for (const group of groups) {
          const tokens = offsets[group.end] - offsets[group.first];
          yield { layer, group, weights, scale: experts / (tokens * groups.length * layers) };
        }
      }
    },
  },
});
