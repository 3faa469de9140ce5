/** `max_vio.micro_batch`: MaxVio inside each micro-batch of m sequences, averaged. */
import { defineLoss } from "../descriptor.js";
import { microBatchPerLayer } from "../max-vio.js";
import { mean } from "../reduce.js";

export const maxVioMicroBatch = defineLoss({
  family: "max_vio",
  variant: "micro_batch",
  formula: String.raw`\frac{1}{L}\sum_l \frac{1}{M}\sum_m \frac{\max_e c^{(m)}_{l,e} - T_m k/E}{T_m k/E}`,
  units: "relative excess load of the busiest expert",
  balance: () => 0,
  note: (c) => `inside micro-batches of ${c.microBatch} ${c.unit}${c.microBatch === 1 ? "" : "s"}`,
  value: (summary, { microBatchSequences }) => mean(microBatchPerLayer(summary, microBatchSequences)),
});
