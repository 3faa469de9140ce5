/** `lbl.sequence`: the LBL of each sequence, averaged (Megatron-LM's seq_aux_loss, DeepSeek's sequence-wise loss on softmax). */
import { perSequence } from "../../batching.js";
import { defineLoss } from "../descriptor.js";
import { sequencePerLayer } from "../lbl.js";
import { mean } from "../reduce.js";
import { slotFractionBlocks } from "./blocks.js";

export const lblSequence = defineLoss({
  family: "lbl",
  variant: "sequence",
  formula: String.raw`\frac{1}{L}\sum_l \frac{1}{S}\sum_s E \sum_e f^{(s)}_{l,e}\,P^{(s)}_{l,e}`,
  units: "dimensionless",
  balance: () => 1,
  note: (c) => `per ${c.unit}`,
  value: (summary) => mean(sequencePerLayer(summary)),
  gradient: {
    kind: "weighted-scores",
    blocks: (summary) => slotFractionBlocks(summary, perSequence(summary.sequenceLengths.length)),
  },
});
