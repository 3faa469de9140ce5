/** `lbl.switch`: Switch Transformer / GShard, per layer over the whole batch (Megatron-LM's aux_loss, MegaBlocks). */
import { wholeBatch } from "../../batching.js";
import { defineLoss } from "../descriptor.js";
import { switchPerLayer } from "../lbl.js";
import { mean } from "../reduce.js";
import { slotFractionBlocks } from "./blocks.js";

export const lblSwitch = defineLoss({
  family: "lbl",
  variant: "switch",
  formula: String.raw`\frac{1}{L}\sum_l E \sum_e f_{l,e}\,P_{l,e},\quad f_{l,e} = \frac{c_{l,e}}{T k},\ P_{l,e} = \frac{1}{T}\sum_t p_{l,t,e}`,
  units: "dimensionless",
  balance: () => 1,
  note: () => "Switch / Megatron / MegaBlocks per layer; balance reads 1",
  value: (summary) => mean(switchPerLayer(summary)),
  gradient: {
    kind: "weighted-scores",
    blocks: (summary) => slotFractionBlocks(summary, wholeBatch(summary.sequenceLengths.length)),
  },
});
