/** `lbl.micro_batch`: the LBL inside each micro-batch of m sequences, averaged (what most trainers compute). */
import { microBatches } from "../../batching.js";
import { defineLoss } from "../descriptor.js";
import { microBatchPerLayer } from "../lbl.js";
import { mean } from "../reduce.js";
import { slotFractionBlocks } from "./blocks.js";

export const lblMicroBatch = defineLoss({
  family: "lbl",
  variant: "micro_batch",
  formula: String.raw`\frac{1}{L}\sum_l \frac{1}{M}\sum_m E \sum_e f^{(m)}_{l,e}\,P^{(m)}_{l,e}`,
  units: "dimensionless",
  balance: () => 1,
  note: (c) => `micro-batches of ${c.microBatch} ${c.unit}${c.microBatch === 1 ? "" : "s"}`,
  value: (summary, { microBatchSequences }) => mean(microBatchPerLayer(summary, microBatchSequences)),
  gradient: {
    kind: "weighted-scores",
    blocks: (summary, { microBatchSequences }) =>
      slotFractionBlocks(summary, microBatches(summary.sequenceLengths.length, microBatchSequences)),
  },
});
